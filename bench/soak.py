"""Soak: a mixed workload at steady concurrency for a long while, against a real server on PostgreSQL.

    .venv/bin/python bench/soak.py [--minutes 10] [--concurrency 8] [--population 10000] [--no-relay]

Starts its own server (one uvicorn worker) on a fresh database (dropped afterwards), loads a synthetic
population for the office (`guichet seed synthetic`'s loader), and, unless --no-relay, runs
`guichet relay` beside it, sending the activity events to the server's own central routes (a
standalone instance), as a window office does all day. Then, after a 30-second warm-up, every client
loops over a weighted draw of:
- search 60%: households by name, persons by name, persons by national ID, a household by id;
- registration 15%: a new realistic household (confirm_new, so a likely duplicate is registered anyway);
- screening 15%: a household of the population or one registered during the run, every scheme;
- case updates 10%: open a case, add a note, add a follow-up, or put a case to wait / resume it
  (GET for the ETag, then PATCH with If-Match); each client works on cases of its own.
Prints per minute the requests, the rate, the errors and the latencies, the server's resident memory,
and at the end the totals and the memory growth (goal: zero errors, growth under 10%)."""

import argparse
import asyncio
import math
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

import httpx
from sqlalchemy import select

import harness

sys.path.insert(0, str(harness.ROOT))

from app.config import Settings  # noqa: E402
from app.db import create_engine  # noqa: E402
from app.models import Household, Person  # noqa: E402
from app.services import synthetic  # noqa: E402
from app.services.names import fold  # noqa: E402

OFFICE = "SR-ACH"
LOAD_SEED, REGISTRATION_SEED = 1, 7
WARM_UP_SECONDS = 30.0
MIX = (("search", 60), ("registration", 15), ("screening", 15), ("case update", 10))


@dataclass
class Minute:
    requests: int = 0
    errors: int = 0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rss_mib: float = float("nan")
    seconds: float = 60.0


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else float("nan")


class Workload:
    def __init__(self, world: harness.World, area: synthetic.Area, households: list[str], national_ids: list[str],
                 names: list[str], seed: int):
        self.headers = world.headers("clerk")
        self.area = area
        self.households = households  # to screen; registrations join them
        self.free = list(households)  # households that never had a case (a second open case is refused)
        random.Random(seed).shuffle(self.free)
        self.national_ids = national_ids
        self.names = names
        self.registered = 0
        self.first_error: str | None = None

    async def search(self, client: httpx.AsyncClient, rng: random.Random) -> list[httpx.Response]:
        kind = rng.random()
        if kind < 0.35:
            return [await client.get("/api/v1/households", params={"name": rng.choice(self.names)}, headers=self.headers)]
        if kind < 0.7:
            return [await client.get("/api/v1/persons", params={"name": rng.choice(self.names)}, headers=self.headers)]
        if kind < 0.85:
            return [await client.get("/api/v1/persons", params={"national_id": rng.choice(self.national_ids)},
                                     headers=self.headers)]
        return [await client.get(f"/api/v1/households/{rng.choice(self.households)}", headers=self.headers)]

    async def registration(self, client: httpx.AsyncClient, rng: random.Random) -> list[httpx.Response]:
        index = self.registered
        self.registered += 1
        [household] = synthetic.generate_range(self.area, seed=REGISTRATION_SEED, start=index, stop=index + 1,
                                               as_of=date.today())
        response = await client.post("/api/v1/households", json=synthetic.registration_body(household) | {"confirm_new": True},
                                     headers=self.headers)
        if response.status_code == 201:
            self.households.append(response.json()["id"])
            self.free.append(response.json()["id"])
        return [response]

    async def screening(self, client: httpx.AsyncClient, rng: random.Random) -> list[httpx.Response]:
        return [await client.post(f"/api/v1/households/{rng.choice(self.households)}/screenings", headers=self.headers)]

    async def case_update(self, client: httpx.AsyncClient, rng: random.Random, cases: list[str]) -> list[httpx.Response]:
        if len(cases) < 3 or rng.random() < 0.2:
            response = await client.post("/api/v1/cases", json={"household_id": self.free.pop(), "summary": "Asks about schemes"},
                                         headers=self.headers)
            if response.status_code == 201:
                cases.append(response.json()["id"])
            return [response]
        case = rng.choice(cases)
        kind = rng.random()
        if kind < 0.35:
            return [await client.post(f"/api/v1/cases/{case}/notes", json={"text": "Came back with the equity card.",
                                                                          "confidential": rng.random() < 0.2},
                                      headers=self.headers)]
        if kind < 0.6:
            due = (date.today() + timedelta(days=rng.randint(1, 30))).isoformat()
            return [await client.post(f"/api/v1/cases/{case}/follow-ups", json={"due_date": due, "action": "Call back"},
                                      headers=self.headers)]
        current = await client.get(f"/api/v1/cases/{case}", headers=self.headers)
        if current.status_code != 200:
            return [current]
        status = "open" if current.json()["status"] == "waiting" else "waiting"
        return [current, await client.patch(f"/api/v1/cases/{case}", json={"status": status},
                                            headers=self.headers | {"If-Match": current.headers["ETag"]})]


async def population(url: str, households: int) -> tuple[synthetic.Area, list[str], list[str], list[str], float]:
    """Load the office's synthetic population; sample what clients will look for."""
    engine = create_engine(Settings(database_url=url, secret_key=harness.SECRET_KEY, pseudonym_key=harness.PSEUDONYM_KEY,
                                    var_dir=harness.ROOT / "var" / "bench"))
    try:
        summary = await synthetic.load(engine, households=households, office_code=OFFICE, seed=LOAD_SEED, as_of=date.today())
        from app.db import create_sessionmaker

        async with create_sessionmaker(engine)() as session:
            area = await synthetic.resolve_area(session, OFFICE)
            ids = [str(i) for i in (await session.execute(select(Household.id).limit(20_000))).scalars()]
            people = (await session.execute(select(Person.given_name, Person.family_name, Person.national_id)
                                            .where(Person.national_id.is_not(None)).limit(5000))).all()
    finally:
        await engine.dispose()
    rng = random.Random(3)
    names = []
    for p in people:  # what clerks type: a family name, the start of a given name, or both
        kind = rng.random()
        given, family = fold(p.given_name), fold(p.family_name)
        names.append(family if kind < 0.3 else given[: rng.randint(4, 6)] if kind < 0.6 else f"{family} {given[:4]}")
    return area, ids, [p.national_id for p in people], names, summary.seconds


async def soak(base_url: str, pid: int, workload: Workload, *, minutes: float, concurrency: int) -> tuple[list[Minute], float]:
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    started = time.perf_counter()
    measured_from = started + WARM_UP_SECONDS
    ends = measured_from + minutes * 60
    span = min(60.0, minutes * 60)  # a short run (--minutes 0.5) is one shorter "minute"
    buckets = [Minute() for _ in range(max(1, math.ceil(minutes * 60 / span - 1e-9)))]
    rss_start = float("nan")

    def bucket(at: float) -> Minute | None:
        if at < measured_from or at > ends:
            return None
        return buckets[min(len(buckets) - 1, int((at - measured_from) // span))]

    async def client_loop(client: httpx.AsyncClient, n: int) -> None:
        rng = random.Random(1000 + n)
        cases: list[str] = []
        while time.perf_counter() < ends:
            kind = rng.choices(kinds, weights)[0]
            sent = time.perf_counter()
            try:
                if kind == "case update":
                    responses = await workload.case_update(client, rng, cases)
                else:
                    responses = await getattr(workload, kind)(client, rng)
                error = next((r for r in responses if r.status_code not in (200, 201)), None)
                label = str(error.status_code if error else responses[-1].status_code)
                if error is not None and workload.first_error is None:
                    workload.first_error = f"{kind}: {error.request.method} {error.request.url.path} {error.status_code} {error.text[:300]}"
            except httpx.HTTPError as exc:
                error, label = exc, type(exc).__name__
                if workload.first_error is None:
                    workload.first_error = f"{kind}: {label}"
            done = time.perf_counter()
            minute = bucket(done)
            if minute is None:
                continue
            minute.requests += 1
            minute.latencies[kind].append((done - sent) * 1000)
            minute.statuses[label] += 1
            if error is not None:
                minute.errors += 1

    async def sampler() -> None:
        nonlocal rss_start
        await asyncio.sleep(max(0.0, measured_from - time.perf_counter()))
        rss_start = harness.rss_mib(pid)
        for i, minute in enumerate(buckets):
            await asyncio.sleep(max(0.0, min(ends, measured_from + (i + 1) * span) - time.perf_counter()) + 0.05)
            minute.rss_mib = harness.rss_mib(pid)
            minute.seconds = min(span, ends - (measured_from + i * span))
            print(line(i + 1, minute), flush=True)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        await asyncio.gather(sampler(), *(client_loop(client, n) for n in range(concurrency)))
    return buckets, rss_start


def line(number: int, minute: Minute) -> str:
    cells = "  ".join(f"{kind} p50 {pct(minute.latencies[kind], 50):5.1f} p99 {pct(minute.latencies[kind], 99):6.1f}"
                      for kind, _ in MIX)
    return (f"minute {number:>2}: {minute.requests:6d} requests {minute.requests / minute.seconds:6.1f}/s  errors {minute.errors}  "
            f"RSS {minute.rss_mib:5.1f} MiB  |  ms: {cells}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--population", type=int, default=10_000, help="Households loaded before the run.")
    parser.add_argument("--no-relay", action="store_true", help="Do not run the relay beside the server.")
    args = parser.parse_args()

    async with harness.fresh_database() as url:
        migrate_seconds = harness.migrate(url)
        world = await harness.seed_world(url)
        area, households, national_ids, names, load_seconds = await population(url, args.population)
        print(f"PostgreSQL; migrated in {migrate_seconds:.1f} s; {args.population:,} households loaded in {load_seconds:.1f} s; "
              f"1 uvicorn worker; {args.concurrency} clients; {args.minutes:g} min after a {WARM_UP_SECONDS:.0f} s warm-up; "
              f"relay {'off' if args.no_relay else 'on (its own process)'}")
        print("mix: " + ", ".join(f"{kind} {weight}%" for kind, weight in MIX))
        with harness.server(url) as (base_url, pid):
            rss_cold = harness.rss_mib(pid)
            relay = None
            if not args.no_relay:
                relay = subprocess.Popen([sys.executable, "-m", "app.cli", "relay"], cwd=harness.ROOT,
                                         env=harness.server_env(url, GUICHET_CENTRAL_URL=base_url))
            try:
                workload = Workload(world, area, households, national_ids, names, seed=5)
                minutes, rss_start = await soak(base_url, pid, workload, minutes=args.minutes, concurrency=args.concurrency)
                rss_end = harness.rss_mib(pid)
                await asyncio.sleep(3)  # let the relay catch up before reading the backlog
                metrics = httpx.get(f"{base_url}/metrics").text
            finally:
                if relay is not None:
                    relay.terminate()
                    relay.wait(timeout=15)
    total = sum(m.requests for m in minutes)
    errors = sum(m.errors for m in minutes)
    statuses: dict[str, int] = defaultdict(int)
    for minute in minutes:
        for status, n in minute.statuses.items():
            statuses[status] += n
    rates = [m.requests / m.seconds for m in minutes]
    growth = (rss_end - rss_start) / rss_start * 100
    backlog = [ln for ln in metrics.splitlines() if ln.startswith("guichet_outbox_backlog{")]
    server_errors = sum(float(ln.rsplit(" ", 1)[1]) for ln in metrics.splitlines()
                        if ln.startswith("guichet_http_requests_total{") and 'status="5' in ln)
    print(f"total: {total:,} requests in {args.minutes:g} min ({total / (args.minutes * 60):.1f}/s; per minute "
          f"{min(rates):.1f} to {max(rates):.1f}/s); errors {errors} (goal 0); statuses {dict(statuses)}")
    print(f"registered {workload.registered:,} households during the run")
    print(f"server RSS: {rss_cold:.1f} MiB cold, {rss_start:.1f} MiB after warm-up, {rss_end:.1f} MiB at the end: "
          f"growth {growth:+.1f}% (goal < 10%)")
    print(f"server-side 5xx (metrics): {server_errors:.0f}; outbox backlog at the end: "
          + (", ".join(ln.split("office=")[1].replace('"}', ": ").replace('"', "") for ln in backlog) or "none"))
    if workload.first_error:
        print(f"first error: {workload.first_error}")


if __name__ == "__main__":
    os.environ.setdefault("GUICHET_LOG_LEVEL", "WARNING")
    asyncio.run(main())
