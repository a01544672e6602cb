"""Guichet at national scale on PostgreSQL: the same requests on an empty registry, at 100,000 and at
1,000,000 persons, each beside the floor of the same run.

    .venv/bin/python bench/scale.py [--persons 1000000] [--checkpoint 100000] [--concurrency 8]

Starts its own server (one uvicorn worker) on a fresh database, dropped afterwards (--keep keeps it).
The registry is the Siem Reap provincial office's: about a million people, the province's population,
over its ~900 villages, loaded with the synthetic loader (`guichet seed synthetic`, timed here).

Measured at each size:
- name search: GET /households?name= and /persons?name= with what a clerk types (the start of a given
  name, a family name, "family given-start"; three in ten in Khmer script), one client: p50/p95. A fifth
  of the registry is in Khmer script (with its Latin spelling), so Latin queries find Khmer rows too;
- national-ID lookup: GET /persons?national_id= , one client;
- duplicate matching: POST /persons/matches for people already registered (and so likely to match),
  those registered in Khmer script looked for in Latin half of the time (cross-script);
- registration: POST /households, realistic 4-5 person households, at --concurrency clients;
- screening: POST /households/{id}/screenings, one client: p50;
- paged name-prefix search throughput and median at --concurrency clients (openIMIS, on this kind
  of machine with 100,000 individuals: 24 req/s, median 623 ms);
- database size per 100,000 persons (pg_database_size and pg_total_relation_size of the tables).
After each bulk load the database is vacuumed (by the loader) and checkpointed (here), as an operator
would before opening the office, so that the figures are the registry's and not the load's.
GUICHET_BENCH_POSTGRES_URL picks the server (an admin URL; default: the test server)."""

import argparse
import asyncio
import math
import os
import random
import secrets
import sys
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
    # The loader's VACUUM of a million persons outlasts the 15 s statement timeout on a loaded machine.
    return Settings(database_url=url, secret_key=harness.SECRET_KEY, pseudonym_key=harness.PSEUDONYM_KEY,
                    var_dir=harness.ROOT / "var" / "bench", db_statement_timeout_seconds=900)


async def provincial_office(url: str) -> dict[str, str]:
    """The Siem Reap provincial office and its clerk; returns the clerk's Authorization header."""
    current = settings(url)
    engine = create_engine(current)
    async with create_sessionmaker(engine)() as session, session.begin():
        office = Office(code=OFFICE, name="Siem Reap Provincial Single Window Office", location_code="17")
        session.add(office)
        await session.flush()
        clerk = User(username="clerk.prv", password_hash=await hash_password(secrets.token_urlsafe(12)), role="clerk",
                     office_id=office.id, tokens_valid_after=datetime(2020, 1, 1, tzinfo=UTC))
        session.add(clerk)
        await session.flush()
        token = issue_token(current, subject=clerk.id, role="clerk", office=OFFICE, scheme=None)[0]
    await engine.dispose()
    return {"Authorization": f"Bearer {token}"}


def typed_names(rng: random.Random, n: int) -> list[str]:
    """What clerks type: the start of a given name, a family name, family and the start of the given
    name; three in ten in Khmer script (a given name, or family and given name)."""
    pools = synthetic.name_pools()
    queries = []
    for _ in range(n):
        family = pools["family"].pick(rng, False)
        given = pools[rng.choice(("female", "male"))].pick(rng, False)
        kind = rng.random()
        if kind < 0.15:
            queries.append(pools[rng.choice(("female", "male"))].pick(rng, True))
        elif kind < 0.3:
            queries.append(f"{pools['family'].pick(rng, True)} {pools[rng.choice(('female', 'male'))].pick(rng, True)}")
        elif kind < 0.55:
            queries.append(fold(given)[: rng.randint(4, 6)])
        elif kind < 0.75:
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
            select(Person.given_name, Person.family_name, Person.given_name_latin, Person.family_name_latin, Person.sex,
                   Person.birth_date, Person.birth_year, Person.national_id, Household.village_code, Household.id)
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
        "matches": [{**_name_typed(rng, p), "sex": p.sex,
                     **({"birth_date": p.birth_date.isoformat()} if p.birth_date else {"birth_year": p.birth_year}),
                     "village_code": p.village_code} for p in people],
    }


def _name_typed(rng: random.Random, person) -> dict[str, str]:
    """The person's name as the clerk types it: one registered in Khmer script is typed in Latin half of the
    time (the duplicate check must meet them across scripts)."""
    if person.given_name_latin and rng.random() < 0.5:
        return {"given_name": person.given_name_latin, "family_name": person.family_name_latin}
    return {"given_name": person.given_name, "family_name": person.family_name}


class Registry:
    """One database with its server: the empty one or the big one."""

    def __init__(self, label: str, url: str):
        self.label = label
        self.url = url
        self.base_url = ""
        self.pid = 0
        self.headers: dict[str, str] = {}
        self.runs: dict[str, harness.Run] = {}
        self.cpu: dict[str, CpuMeter] = {}
        self.persons = 0
        self.registered = 0  # households registered through the API so far
        self.migrate_seconds = 0.0


def cpu_seconds(pids: set[int]) -> dict[int, float]:
    """User + system CPU time of each process (root, or the same user, may read /proc/<pid>/stat)."""
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone, or not ours to read
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used


async def backends(url: str) -> set[int]:
    """The PostgreSQL processes serving this database's clients (not autovacuum), readable when the
    server runs on this machine."""
    engine = create_engine(settings(harness.admin_url()))
    async with engine.connect() as connection:
        pids = set((await connection.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = :name AND backend_type = 'client backend'"),
            {"name": url.rsplit("/", 1)[1]}
        )).scalars())
    await engine.dispose()
    return pids


class CpuMeter:
    """CPU the app worker and the database spent on a run: what a request costs, whatever the load of
    the machine (wall-clock latencies on a shared machine include other people's work)."""

    def __init__(self):
        self.app = 0.0
        self.database = 0.0
        self.requests = 0

    async def around(self, registry: "Registry", work):
        before_db = cpu_seconds(await backends(registry.url))
        before_app = cpu_seconds({registry.pid}).get(registry.pid, 0.0)
        run = await work()
        after_db = cpu_seconds(await backends(registry.url))
        self.app += cpu_seconds({registry.pid}).get(registry.pid, 0.0) - before_app
        self.database += sum(used - before_db.get(pid, 0.0) for pid, used in after_db.items())
        self.requests += len(run.latencies_ms)
        return run

    def per_request(self) -> str:
        n = max(self.requests, 1)
        return f"{1000 * self.app / n:.1f} + {1000 * self.database / n:.1f} ms"


def merged(name: str, parts: list[harness.Run]) -> harness.Run:
    statuses: dict[int, int] = {}
    for part in parts:
        for status, n in part.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
    return harness.Run(name, [x for p in parts for x in p.latencies_ms], [x for p in parts for x in p.server_ms],
                       sum(p.seconds for p in parts), sum(p.errors for p in parts), statuses)


async def paired(key: str, name: str, registries: list[Registry], request, *, concurrency: int, total: int,
                 rounds: int = 6) -> None:
    """The same measurement on each registry, interleaved in short rounds (the order alternating), so
    that a neighbour's load on this shared machine weighs on both alike and their ratio holds.
    request(registry, client, i) sends request number i to that registry."""
    parts: dict[str, list[harness.Run]] = {r.label: [] for r in registries}
    meters = {r.label: CpuMeter() for r in registries}
    per_round = max(1, total // rounds)
    for round_ in range(rounds):
        for registry in (registries if round_ % 2 == 0 else registries[::-1]):
            offset = round_ * per_round
            parts[registry.label].append(await meters[registry.label].around(registry, lambda r=registry, o=offset: harness.load(
                name, r.base_url, lambda client, i: request(r, client, o + i), concurrency=concurrency, total=per_round)))
    for registry in registries:
        registry.runs[key] = merged(name, parts[registry.label])
        registry.cpu[key] = meters[registry.label]


async def measure(registries: list[Registry], *, concurrency: int, requests: int, registrations: int,
                  registration_area: synthetic.Area, full: bool = True) -> None:
    rng = random.Random(len(registries[-1].runs) + requests)
    names = typed_names(rng, requests)
    prefixes = [q.split()[0][:4] for q in names]

    def get(path: str, **params):
        return lambda r, client, i: client.get(path, params={k: v(r, i) for k, v in params.items()}, headers=r.headers)

    await paired("floor", "floor (1 INSERT, no auth)", registries,
                 lambda r, client, i: client.post("/api/v1/_bench/floor"), concurrency=concurrency, total=requests * 4)
    await paired("households by name", "GET /households?name=", registries,
                 get("/api/v1/households", name=lambda r, i: names[i % len(names)]), concurrency=1, total=requests)
    await paired("persons by name", "GET /persons?name=", registries,
                 get("/api/v1/persons", name=lambda r, i: names[i % len(names)]), concurrency=1, total=requests)
    await paired("prefix search, 1 client", "GET /persons?name=<prefix> (1)", registries,
                 get("/api/v1/persons", name=lambda r, i: prefixes[i % len(prefixes)]), concurrency=1, total=requests)
    await paired("prefix search, concurrent", f"GET /persons?name=<prefix> ({concurrency})", registries,
                 get("/api/v1/persons", name=lambda r, i: prefixes[i % len(prefixes)]), concurrency=concurrency,
                 total=requests * 2)
    if not full:
        return
    bodies = {r.label: [synthetic.registration_body(h) | {"confirm_new": True} for h in synthetic.generate_range(
        registration_area, seed=REGISTRATION_SEED + n, start=r.registered, stop=r.registered + registrations,
        as_of=date.today())] for n, r in enumerate(registries)}
    await paired("registration", "POST /households", registries,
                 lambda r, client, i: client.post("/api/v1/households", json=bodies[r.label][i], headers=r.headers),
                 concurrency=concurrency, total=registrations)
    for registry in registries:
        registry.registered += registrations
    picked = {r.label: await sample(r.url, requests, seed=requests) for r in registries}

    def pick(kind: str):
        return lambda r, i: picked[r.label][kind][i % len(picked[r.label][kind])]

    await paired("national-ID lookup", "GET /persons?national_id=", registries,
                 get("/api/v1/persons", national_id=pick("national_ids")), concurrency=1, total=requests)
    await paired("duplicate matching", "POST /persons/matches", registries,
                 lambda r, client, i: client.post("/api/v1/persons/matches", json=pick("matches")(r, i), headers=r.headers),
                 concurrency=1, total=requests)
    await paired("screening", "POST /households/{id}/screenings", registries,
                 lambda r, client, i: client.post(f"/api/v1/households/{pick('households')(r, i)}/screenings",
                                                  headers=r.headers), concurrency=1, total=max(60, requests // 2))


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


async def settle(url: str) -> None:
    """Write out what the bulk load dirtied (CHECKPOINT, as a superuser may), so that the measurements
    that follow do not pay for the load's checkpoint."""
    engine = create_engine(settings(url))
    try:
        async with engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("CHECKPOINT"))
    except Exception as exc:  # not a superuser: measure anyway
        print(f"(no CHECKPOINT: {type(exc).__name__})", file=sys.stderr)
    finally:
        await engine.dispose()


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
    await settle(url)
    return loaded_households, total


def row(label: str, *cells: str) -> str:
    return f"{label:<40}" + "".join(f"{cell:>20}" for cell in cells)


def ms(run: harness.Run, p: float) -> str:
    return f"{run.pct(p):.1f} ms"


async def prepare(label: str, url: str) -> Registry:
    registry = Registry(label, url)
    registry.migrate_seconds = harness.migrate(url)
    await harness.seed_world(url)
    registry.headers = await provincial_office(url)
    return registry


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--checkpoint", type=int, default=100_000, help="Also measure the openIMIS comparison here.")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=300, help="Requests per measurement.")
    parser.add_argument("--registrations", type=int, default=1200)
    parser.add_argument("--keep", action="store_true", help="Keep the databases.")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    async with harness.fresh_database(keep=args.keep) as empty_url, harness.fresh_database(keep=args.keep) as big_url:
        empty, big = await prepare("empty", empty_url), await prepare("big", big_url)
        migrate_seconds = min(empty.migrate_seconds, big.migrate_seconds)
        empty_sizes = await sizes(big_url)
        engine = create_engine(settings(big_url))
        async with create_sessionmaker(engine)() as session:
            area = await synthetic.resolve_area(session, OFFICE)
        await engine.dispose()
        common = dict(concurrency=args.concurrency, requests=args.requests, registration_area=area)
        with harness.server(empty_url) as (empty.base_url, empty.pid), harness.server(big_url) as (big.base_url, big.pid):
            for registry in (empty, big):  # warm-up: connections, caches
                await harness.floor(registry.base_url, concurrency=args.concurrency, total=300)
                await harness.load("warm-up", registry.base_url, lambda c, i, r=registry: c.get(
                    "/api/v1/persons", params={"name": "sok"}, headers=r.headers), concurrency=4, total=100)

            loaded, first = await load_to(big_url, args.checkpoint, 0)
            await measure([empty, big], registrations=0, full=False, **common)
            middle = {key: run for key, run in big.runs.items()}
            middle_empty = {key: run for key, run in empty.runs.items()}
            middle_cpu = dict(big.cpu)
            middle_persons = (await sizes(big_url))["persons"]

            loaded, second = await load_to(big_url, args.persons, loaded)
            await measure([empty, big], registrations=args.registrations, **common)
            big_sizes = await sizes(big_url)
            empty.persons, big.persons = (await sizes(empty_url))["persons"], big_sizes["persons"]
            rss = {r.label: harness.rss_mib(r.pid) for r in (empty, big)}

    loaded_persons = first.persons + second.persons
    load_seconds = first.seconds + second.seconds
    print(f"PostgreSQL, 1 uvicorn worker per registry; the empty and the big registry measured in interleaved rounds; "
          f"latencies from 1 client unless marked; {args.requests} requests each; registration and throughput at "
          f"{args.concurrency} clients; load average {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end "
          f"({os.cpu_count()} CPUs)")
    print(f"migrated to head in {migrate_seconds:.1f} s; synthetic load: {loaded_persons:,} persons in "
          f"{load_seconds:.0f} s = {loaded_persons / load_seconds:,.0f} persons/s")
    print()
    print(row("", f"empty ({empty.persons:,})", f"{middle_persons:,} (vs empty)", f"{big.persons:,}", "big / empty"))

    def line(label: str, key: str, p: float, goal: str, *, with_middle: bool = False) -> None:
        e, b = empty.runs[key], big.runs[key]
        cell = f"{ms(middle[key], p)} ({middle[key].pct(p) / middle_empty[key].pct(p):.2f}x)" if with_middle else ""
        print(row(f"{label} p{p:.0f}", ms(e, p), cell, ms(b, p), f"{b.pct(p) / e.pct(p):.2f}x") + f"   goal {goal}")

    line("name search /households", "households by name", 95, "< 50 ms", with_middle=True)
    line("name search /persons", "persons by name", 95, "< 50 ms", with_middle=True)
    line("national-ID lookup", "national-ID lookup", 95, "< 10 ms")
    line("duplicate matching", "duplicate matching", 95, "< 20 ms")
    line("household screening", "screening", 50, "")
    reg_e, reg_b = empty.runs["registration"], big.runs["registration"]
    print(row("registration (households/s)", f"{reg_e.rate:.1f}", "", f"{reg_b.rate:.1f}", f"{reg_b.rate / reg_e.rate:.0%}")
          + "   goal >= 80%")
    print(row("registration p99", ms(reg_e, 99), "", ms(reg_b, 99), f"{reg_b.pct(99) / reg_e.pct(99):.2f}x"))
    print(row("floor (1 INSERT) /s", f"{empty.runs['floor'].rate:.0f}", f"{middle['floor'].rate:.0f}",
              f"{big.runs['floor'].rate:.0f}", f"{big.runs['floor'].rate / empty.runs['floor'].rate:.0%}"))
    print()
    print(f"paged name-prefix search (GET /persons?name=<4 letters>, 50 a page); "
          f"openIMIS at 100,000 individuals, side by side on this kind of machine (2026-12-07): 1 client median 73 ms, "
          f"8 clients 25.8 req/s median 299 ms")
    for persons, runs in ((empty.persons, empty.runs), (middle_persons, middle), (big.persons, big.runs)):
        one, many = runs["prefix search, 1 client"], runs["prefix search, concurrent"]
        print(f"  {persons:>9,} persons: {many.rate:5.0f} req/s at {args.concurrency} clients (median {many.pct(50):.1f} ms); "
              f"median {one.pct(50):.1f} ms at 1 client ({one.rate:.0f} req/s) - vs openIMIS: {many.rate / 25.8:.1f}x the "
              f"throughput, median {73 / one.pct(50):.0f}x (1 client) / {299 / many.pct(50):.0f}x ({args.concurrency} clients) shorter")
    print()
    grown = big_sizes["database"] - empty_sizes["database"]
    per = 100_000 / big.persons
    print(f"database size: {big_sizes['database'] / 2**20:,.0f} MiB at {big.persons:,} persons "
          f"({empty_sizes['database'] / 2**20:.0f} MiB empty): {grown * per / 2**20:.1f} MiB per 100,000 persons")
    for table in ("person", "household", "consent_record", "audit_event", "activity_event"):
        size = big_sizes.get(table, 0)
        print(f"  {table:<15} {size / 2**20:8.1f} MiB ({size * per / 2**20:.1f} MiB per 100,000 persons)")
    print(f"server RSS after the run: {rss['empty']:.0f} MiB (empty registry), {rss['big']:.0f} MiB (big)")
    errors = {f"{r.label}/{k}": run.statuses for r in (empty, big) for k, run in r.runs.items() if run.errors}
    print(f"errors: {errors or 'none'}")
    print()
    print("CPU per request, app worker + database (measured from /proc; independent of the machine's load):")
    for key in empty.cpu:
        if key in big.cpu:
            print(row(f"  {key}", empty.cpu[key].per_request(), middle_cpu[key].per_request() if key in middle_cpu else "",
                      big.cpu[key].per_request()))
    print()
    print("every run (client-side rate and latencies; 'server' is the app's own Server-Timing):")
    for label, runs in (("empty", empty.runs), (f"{middle_persons:,} persons", middle), (f"{big.persons:,} persons", big.runs)):
        print(f"  {label}")
        for run in runs.values():
            print(f"    {run.line()}  p95 {run.pct(95):.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
