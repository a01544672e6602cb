"""Guichet at national scale on PostgreSQL: the same requests on an empty registry, at 100,000 and at
1,000,000 persons, each beside the floor of the same run.

    .venv/bin/python bench/scale.py [--persons 1000000] [--checkpoint 100000] [--concurrency 8]

Starts its own server (one uvicorn worker) on a fresh database, dropped afterwards (--keep keeps it).
The registry is the Siem Reap provincial office's: about a million people, the province's population,
over its ~900 villages, loaded with the synthetic loader (`guichet seed synthetic`, timed here).

Measured at each size:
- name search: GET /households?name= and /persons?name= with what a clerk types (the start of a given
  name, a family name, "family given-start", sometimes Khmer script), one client: p50/p95;
- national-ID lookup: GET /persons?national_id= , one client;
- duplicate matching: POST /persons/matches for people already registered (and so likely to match);
- registration: POST /households, realistic 4-5 person households, at --concurrency clients;
- screening: POST /households/{id}/screenings, one client: p50;
- paged name-prefix search throughput and median at --concurrency clients (openIMIS, on this kind
  of machine with 100,000 individuals: 24 req/s, median 623 ms);
- database size per 100,000 persons (pg_database_size and pg_total_relation_size of the tables)."""

import argparse
import asyncio
import math
import random
import secrets
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import harness
from sqlalchemy import select, text

sys.path.insert(0, str(harness.ROOT))

from app.config import Settings  # noqa: E402
from app.db import create_engine, create_sessionmaker  # noqa: E402
from app.models import Household, Office, Person, User  # noqa: E402
from app.security import hash_password, issue_token  # noqa: E402
from app.services import synthetic  # noqa: E402
from app.services.names import fold  # noqa: E402

OFFICE = "SR-PRV"
LOAD_SEED = 1
REGISTRATION_SEED = 2  # the households registered through the API: other people than the loaded ones


def settings(url: str) -> Settings:
    return Settings(database_url=url, secret_key=harness.SECRET_KEY, pseudonym_key=harness.PSEUDONYM_KEY,
                    var_dir=harness.ROOT / "var" / "bench")


async def provincial_office(url: str) -> dict[str, str]:
    """The Siem Reap provincial office and its clerk; returns the clerk's Authorization header."""
    current = settings(url)
    engine = create_engine(current)
    async with create_sessionmaker(engine)() as session, session.begin():
        office = Office(code=OFFICE, name="Siem Reap Provincial Single Window Office", location_code="17")
        session.add(office)
        await session.flush()
        clerk = User(username="clerk.prv", password_hash=hash_password(secrets.token_urlsafe(12)), role="clerk",
                     office_id=office.id, tokens_valid_after=datetime(2020, 1, 1, tzinfo=UTC))
        session.add(clerk)
        await session.flush()
        token = issue_token(current, subject=clerk.id, role="clerk", office=OFFICE, scheme=None)[0]
    await engine.dispose()
    return {"Authorization": f"Bearer {token}"}


def typed_names(rng: random.Random, n: int) -> list[str]:
    """What clerks type: the start of a given name, a family name, family and the start of the given
    name; one in ten in Khmer script."""
    pools = synthetic.name_pools()
    queries = []
    for _ in range(n):
        family = pools["family"].pick(rng, False)
        given = pools[rng.choice(("female", "male"))].pick(rng, False)
        kind = rng.random()
        if kind < 0.1:
            queries.append(pools[rng.choice(("female", "male"))].pick(rng, True))
        elif kind < 0.45:
            queries.append(fold(given)[: rng.randint(4, 6)])
        elif kind < 0.65:
            queries.append(fold(family))
        else:
            queries.append(f"{fold(family)} {fold(given)[: rng.randint(3, 5)]}")
    return queries


async def sample(url: str, n: int, seed: int) -> dict[str, list]:
    """Registered people and households to look up, match and screen."""
    engine = create_engine(settings(url))
    rng = random.Random(seed)
    async with create_sessionmaker(engine)() as session:
        people = (await session.execute(
            select(Person.given_name, Person.family_name, Person.sex, Person.birth_date, Person.birth_year,
                   Person.national_id, Household.village_code, Household.id)
            .join(Household, Household.id == Person.household_id)
            .where(Person.national_id.is_not(None)).order_by(Person.id)  # random UUIDs: a random stretch
            .limit(n * 20)
        )).all()
    await engine.dispose()
    rng.shuffle(people)
    people = people[:n]
    return {
        "national_ids": [p.national_id for p in people],
        "households": [str(p.id) for p in people],
        "matches": [{"given_name": p.given_name, "family_name": p.family_name, "sex": p.sex,
                     **({"birth_date": p.birth_date.isoformat()} if p.birth_date else {"birth_year": p.birth_year}),
                     "village_code": p.village_code} for p in people],
    }


class Phase:
    """The figures of one registry size."""

    def __init__(self, label: str):
        self.label = label
        self.runs: dict[str, harness.Run] = {}
        self.persons = 0


async def measure(label: str, base_url: str, headers: dict[str, str], url: str, *, concurrency: int, requests: int,
                  registrations: int, registration_offset: int, registration_area: synthetic.Area,
                  full: bool = True) -> Phase:
    phase = Phase(label)
    rng = random.Random(label)
    names = typed_names(rng, requests)
    prefixes = [q.split()[0][:4] for q in names]
    run = phase.runs

    def get(path: str, **params):
        return lambda client, i: client.get(path, params={k: v(i) for k, v in params.items()}, headers=headers)

    run["floor"] = await harness.floor(base_url, concurrency=concurrency, total=requests * 4)
    run["households by name"] = await harness.load(
        "GET /households?name=", base_url, get("/api/v1/households", name=lambda i: names[i]), concurrency=1,
        total=requests)
    run["persons by name"] = await harness.load(
        "GET /persons?name=", base_url, get("/api/v1/persons", name=lambda i: names[i]), concurrency=1,
        total=requests)
    run["prefix search, 1 client"] = await harness.load(
        "GET /persons?name=<prefix> (1)", base_url, get("/api/v1/persons", name=lambda i: prefixes[i]),
        concurrency=1, total=requests)
    run["prefix search, concurrent"] = await harness.load(
        f"GET /persons?name=<prefix> ({concurrency})", base_url,
        get("/api/v1/persons", name=lambda i: prefixes[i % len(prefixes)]), concurrency=concurrency,
        total=requests * 2)
    if not full:
        return phase
    if registrations:
        bodies = [synthetic.registration_body(h) | {"confirm_new": True} for h in synthetic.generate_range(
            registration_area, seed=REGISTRATION_SEED, start=registration_offset,
            stop=registration_offset + registrations, as_of=date.today())]
        run["registration"] = await harness.load(
            "POST /households", base_url, lambda client, i: client.post("/api/v1/households", json=bodies[i], headers=headers),
            concurrency=concurrency, total=registrations)
        run["floor (after registration)"] = await harness.floor(base_url, concurrency=concurrency, total=requests * 4)
    picked = await sample(url, requests, seed=len(label))
    run["national-ID lookup"] = await harness.load(
        "GET /persons?national_id=", base_url,
        get("/api/v1/persons", national_id=lambda i: picked["national_ids"][i % len(picked["national_ids"])]),
        concurrency=1, total=requests)
    run["duplicate matching"] = await harness.load(
        "POST /persons/matches", base_url,
        lambda client, i: client.post("/api/v1/persons/matches", json=picked["matches"][i % len(picked["matches"])],
                                      headers=headers), concurrency=1, total=requests)
    run["screening"] = await harness.load(
        "POST /households/{id}/screenings", base_url,
        lambda client, i: client.post(f"/api/v1/households/{picked['households'][i % len(picked['households'])]}/screenings",
                                      headers=headers), concurrency=1, total=max(50, requests // 2))
    return phase


async def sizes(url: str) -> dict[str, int]:
    engine = create_engine(settings(url))
    async with engine.connect() as connection:
        database = (await connection.execute(text("SELECT pg_database_size(current_database())"))).scalar_one()
        tables = dict((await connection.execute(text(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relname IN "
            "('person', 'household', 'consent_record', 'audit_event', 'activity_event')"
        ))).all())
        persons = (await connection.execute(text("SELECT count(*) FROM person"))).scalar_one()
    await engine.dispose()
    return {"database": database, **tables, "persons": persons}


async def load_to(url: str, persons: int, loaded_households: int) -> tuple[int, synthetic.LoadSummary]:
    """Load households of the seed until the registry holds `persons` people (4.4 a household)."""
    engine = create_engine(settings(url))
    async with engine.connect() as connection:
        have = (await connection.execute(text("SELECT count(*) FROM person"))).scalar_one()
    total = synthetic.LoadSummary()
    target = loaded_households
    while have < persons:
        target += max(10, math.ceil((persons - have) / 4.35))
        summary = await synthetic.load(engine, households=target, office_code=OFFICE, seed=LOAD_SEED, as_of=date.today(),
                                       start=loaded_households)
        loaded_households = target
        have += summary.persons
        total.households += summary.households
        total.persons += summary.persons
        total.seconds += summary.seconds
    await engine.dispose()
    return loaded_households, total


def row(label: str, empty: str, *rest: str) -> str:
    return f"{label:<46}" + "".join(f"{cell:>22}" for cell in (empty, *rest))


def ms(run: harness.Run, p: float) -> str:
    return f"{run.pct(p):.1f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--checkpoint", type=int, default=100_000, help="Also measure the openIMIS comparison here.")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=300, help="Requests per measurement.")
    parser.add_argument("--registrations", type=int, default=1500)
    parser.add_argument("--keep", action="store_true", help="Keep the database (its URL is printed).")
    args = parser.parse_args()

    async with harness.fresh_database(keep=args.keep) as url:
        migrate_seconds = harness.migrate(url)
        await harness.seed_world(url)
        headers = await provincial_office(url)
        empty_sizes = await sizes(url)
        engine = create_engine(settings(url))
        async with create_sessionmaker(engine)() as session:
            area = await synthetic.resolve_area(session, OFFICE)
        await engine.dispose()
        common = dict(concurrency=args.concurrency, requests=args.requests, registration_area=area)
        with harness.server(url) as (base_url, pid):
            await harness.floor(base_url, concurrency=args.concurrency, total=500)  # warm-up
            await harness.load("warm-up", base_url, lambda c, i: c.get("/api/v1/persons", params={"name": "sok"},
                                                                         headers=headers), concurrency=4, total=100)
            empty = await measure("empty", base_url, headers, url, registrations=args.registrations,
                                  registration_offset=0, **common)
            empty.persons = (await sizes(url))["persons"]

            loaded, first = await load_to(url, args.checkpoint, 0)
            middle = await measure("checkpoint", base_url, headers, url, registrations=0, registration_offset=0,
                                   full=False, **common)
            middle.persons = (await sizes(url))["persons"]

            loaded, second = await load_to(url, args.persons, loaded)
            big = await measure("full", base_url, headers, url, registrations=args.registrations,
                                registration_offset=args.registrations, **common)
            big_sizes = await sizes(url)
            big.persons = big_sizes["persons"]
            rss = harness.rss_mib(pid)

    loaded_persons = first.persons + second.persons
    load_seconds = first.seconds + second.seconds
    print(f"PostgreSQL, 1 uvicorn worker; latencies from 1 client unless marked; {args.requests} requests each; "
          f"registration and throughput at {args.concurrency} clients")
    print(f"migrated to head in {migrate_seconds:.1f} s; synthetic load: {loaded_persons:,} persons in {load_seconds:.0f} s "
          f"= {loaded_persons / load_seconds:,.0f} persons/s")
    print()
    print(row("", f"empty ({empty.persons:,})", f"{middle.persons:,} persons", f"{big.persons:,} persons", "ratio big/empty"))

    def line(label: str, key: str, p: float, goal: str, *, with_middle: bool = False) -> None:
        e, b = empty.runs[key], big.runs[key]
        middle_cell = ms(middle.runs[key], p) if with_middle else ""
        print(row(f"{label} p{p:.0f}", ms(e, p), middle_cell, ms(b, p), f"{b.pct(p) / e.pct(p):.2f}x") + f"   goal {goal}")

    line("name search /households", "households by name", 95, "< 50 ms", with_middle=True)
    line("name search /persons", "persons by name", 95, "< 50 ms", with_middle=True)
    line("national-ID lookup", "national-ID lookup", 95, "< 10 ms")
    line("duplicate matching", "duplicate matching", 95, "< 20 ms")
    line("household screening", "screening", 50, "")
    reg_e, reg_b = empty.runs["registration"], big.runs["registration"]
    print(row("registration rate (households/s)", f"{reg_e.rate:.1f}", "", f"{reg_b.rate:.1f}",
              f"{reg_b.rate / reg_e.rate:.0%}") + "   goal >= 80%")
    print(row("registration p99", ms(reg_e, 99), "", ms(reg_b, 99), ""))
    floors = [phase.runs["floor"] for phase in (empty, middle, big)]
    print(row("floor (1 INSERT) rate /s", *(f"{f.rate:.0f}" for f in floors), f"{floors[2].rate / floors[0].rate:.0%}"))
    print()
    print(f"paged name-prefix search (GET /persons?name=<4 letters>, 50 a page) "
          f"- openIMIS at 100,000 individuals: 24 req/s, median 623 ms")
    for phase in (empty, middle, big):
        one, many = phase.runs["prefix search, 1 client"], phase.runs["prefix search, concurrent"]
        print(f"  {phase.persons:>9,} persons: {many.rate:6.0f} req/s at {args.concurrency} clients (median "
              f"{many.pct(50):.1f} ms), median {one.pct(50):.1f} ms at 1 client; "
              f"{many.rate / 24:.0f}x the throughput, {623 / many.pct(50):.0f}x faster median than openIMIS")
    print()
    grown = big_sizes["database"] - empty_sizes["database"]
    per = 100_000 / big.persons
    print(f"database size: {big_sizes['database'] / 2**20:,.0f} MiB at {big.persons:,} persons "
          f"({empty_sizes['database'] / 2**20:.0f} MiB empty): {grown * per / 2**20:.1f} MiB per 100,000 persons")
    for table in ("person", "household", "consent_record", "audit_event", "activity_event"):
        print(f"  {table:<15} {big_sizes.get(table, 0) / 2**20:8.1f} MiB ({big_sizes.get(table, 0) * per / 2**20:.1f} MiB per 100,000 persons)")
    print(f"server RSS after the run: {rss:.0f} MiB")
    errors = {f"{phase.label}/{k}": r.statuses for phase in (empty, middle, big) for k, r in phase.runs.items() if r.errors}
    print(f"errors: {errors or 'none'}")
    print()
    print("every run (client-side rate and latencies; 'server' is the app's own Server-Timing):")
    for phase in (empty, middle, big):
        print(f"  {phase.persons:,} persons")
        for run in phase.runs.values():
            print(f"    {run.line()}  p95 {run.pct(95):.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
