"""Central ingest on PostgreSQL: events/s in batches of 1,000, beside the floor of the same run.

    .venv/bin/python bench/ingest.py [--offices 4] [--batches 20] [--workers 1]

Starts a central server (GUICHET_ROLE=central, its own process) on a fresh database (dropped
afterwards) and registers --offices offices with relay accounts. Each office posts --batches batches
of 1,000 synthetic events (bench/monitoring_events.py: visits to a single window, so mostly screening
determinations) one after the other, as its relay does; the offices post at the same time.

- ingest: POST /api/v1/monitoring/events (validation against the contract, once-only storage by id,
  rollups, unique-person sets and open items, all in one transaction per batch).
- floor: the same batches (new ids) to POST /api/v1/_bench/monitoring-floor: the same app, body and
  table, the rows bulk-inserted as they are, nothing else.
- re-send: batches already ingested posted again (every event a duplicate).
Rounds alternate floor and ingest, so that a drifting machine affects both alike. The bodies are
encoded before the clock starts (the load generator shares the two cores). Besides events/s, the
CPU time the central process and its PostgreSQL backends spent per 1,000 events: on a machine shared
with other work these move far less than the rates."""

import argparse
import asyncio
import json
import os
import time
from datetime import date
from pathlib import Path

import httpx

import harness
from monitoring_events import Generator, fresh_ids, offices


async def seed(url: str, codes: list[tuple[str, str]]) -> dict[str, str]:
    """Gazetteer, offices and their relay accounts; a relay token per office."""
    from app.config import Settings
    from app.db import create_engine, create_sessionmaker
    from app.security import issue_token
    from app.services import locations
    from app.services import offices as office_service
    from app.services.relay import relay_account
    from app.vocabulary import Role

    settings = Settings(database_url=url, secret_key=harness.SECRET_KEY, pseudonym_key=harness.PSEUDONYM_KEY,
                        var_dir=harness.ROOT / "var" / "bench")
    engine = create_engine(settings)
    tokens = {}
    async with create_sessionmaker(engine)() as session, session.begin():
        await locations.load_national_gazetteer(session)
        for code, province in codes:
            await office_service.create_office(session, None, code=code, name=code, location_code=province)
            user, _ = await relay_account(session, code, new_secret=True)
            tokens[code] = issue_token(settings, subject=user.id, role=Role.relay, office=code, scheme=None)[0]
    await engine.dispose()
    return tokens


def cpu_seconds(pid: int, database: str) -> tuple[float, float]:
    """CPU seconds used so far by a process and its descendants, and by the PostgreSQL backends
    connected to a database (read from /proc: Linux only)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats, names = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            names[int(entry.name)] = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)  # ppid, utime + stime
    tree, server = {pid}, 0.0
    for _ in range(3):  # uvicorn's supervisor, its workers
        tree |= {p for p, (parent, _) in stats.items() if parent in tree}
    server = sum(stats[p][1] for p in tree if p in stats)
    postgres = sum(cpu for p, (_, cpu) in stats.items() if names[p].startswith("postgres:") and f" {database} " in names[p])
    return server, postgres


def encode(work: dict[str, list[list[dict]]]) -> dict[str, list[bytes]]:
    return {code: [json.dumps({"events": batch}).encode() for batch in batches] for code, batches in work.items()}


async def post_all(base: str, path: str, work: dict[str, list[bytes]], tokens: dict[str, str]) -> tuple[float, list[float], dict]:
    """Every office posts its batches one after the other, all offices at once: (seconds, latencies, totals)."""
    latencies: list[float] = []
    totals = {"accepted": 0, "duplicates": 0, "rejected": 0, "errors": 0}

    async def office(http: httpx.AsyncClient, code: str) -> None:
        headers = {"Authorization": f"Bearer {tokens[code]}", "Content-Type": "application/json"}
        for body in work[code]:
            sent = time.perf_counter()
            response = await http.post(path, content=body, headers=headers)
            latencies.append((time.perf_counter() - sent) * 1000)
            if response.status_code != 200:
                totals["errors"] += 1
                print("  error", response.status_code, response.text[:300])
                continue
            body = response.json()
            for key in ("accepted", "duplicates"):
                totals[key] += body.get(key, 0)
            totals["rejected"] += len(body.get("rejected", []))

    limits = httpx.Limits(max_connections=len(work), max_keepalive_connections=len(work))
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as http:
        started = time.perf_counter()
        await asyncio.gather(*(office(http, code) for code in work))
        return time.perf_counter() - started, latencies, totals


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offices", type=int, default=4)
    parser.add_argument("--batches", type=int, default=20, help="batches of 1,000 per office")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    generator = Generator(seed=11)
    chosen = offices(args.offices)
    started = time.perf_counter()
    per_round = max(1, args.batches // args.rounds)
    rounds = []
    for r in range(args.rounds):  # each office's year, cut into consecutive rounds
        ingest = {o.code: generator.batches(o, count=per_round, size=1000, first_day=date(2025, 12, 1 + r * 10), days=10)
                  for o in chosen}
        rounds.append((ingest, {code: fresh_ids(batches) for code, batches in ingest.items()}))
    warmup = {o.code: generator.batches(o, count=1, size=1000, first_day=date(2025, 11, 1), days=5) for o in chosen}
    bodies = [(encode(ingest), encode(floor)) for ingest, floor in rounds]
    print(f"generated {sum(len(b) * 1000 for i, _ in rounds for b in i.values()):,} events in {time.perf_counter() - started:.1f} s "
          f"({args.offices} offices x {per_round * args.rounds} batches of 1,000)")

    async with harness.fresh_database() as url:
        harness.migrate(url)
        tokens = await seed(url, [(o.code, o.province) for o in chosen])
        database = url.rsplit("/", 1)[1]
        with harness.server(url, workers=args.workers, GUICHET_ROLE="central") as (base, pid):
            await post_all(base, "/api/v1/monitoring/events", encode(warmup), tokens)
            await post_all(base, "/api/v1/_bench/monitoring-floor", encode({c: fresh_ids(b) for c, b in warmup.items()}), tokens)
            results = {"floor": [0.0, [], 0, 0.0, 0.0], "ingest": [0.0, [], 0, 0.0, 0.0]}
            for (ingest, floor), (ingest_bodies, floor_bodies) in zip(rounds, bodies, strict=True):
                for name, path, work, encoded in (("floor", "/api/v1/_bench/monitoring-floor", floor, floor_bodies),
                                                  ("ingest", "/api/v1/monitoring/events", ingest, ingest_bodies)):
                    cpu_before = cpu_seconds(pid, database)
                    seconds, latencies, totals = await post_all(base, path, encoded, tokens)
                    cpu_after = cpu_seconds(pid, database)
                    results[name][0] += seconds
                    results[name][1] += latencies
                    results[name][2] += sum(len(b) for batches in work.values() for b in batches)
                    results[name][3] += cpu_after[0] - cpu_before[0]
                    results[name][4] += cpu_after[1] - cpu_before[1]
                    if name == "ingest":
                        assert totals["accepted"] == sum(len(b) for bs in work.values() for b in bs), totals
                        assert totals["rejected"] == 0 and totals["errors"] == 0, totals
            resend = {code: batches[:max(1, per_round // 2)] for code, batches in rounds[0][0].items()}
            r_seconds, r_latencies, r_totals = await post_all(base, "/api/v1/monitoring/events", encode(resend), tokens)
            assert r_totals["accepted"] == 0 and r_totals["duplicates"] == sum(len(b) for bs in resend.values() for b in bs)
            rss = harness.rss_mib(pid)

    print(f"\nPostgreSQL, central server with {args.workers} worker(s), {args.offices} offices posting at once, "
          f"batches of 1,000 events")
    rates = {}
    for name in ("floor", "ingest"):
        seconds, latencies, events, server_cpu, postgres_cpu = results[name]
        rates[name] = events / seconds
        print(f"  {name:<8} {rates[name]:9,.0f} events/s   per batch p50 {pct(latencies, 50):6.0f} ms  "
              f"p95 {pct(latencies, 95):6.0f} ms   ({events:,} events)   CPU per 1,000 events: central "
              f"{server_cpu / events * 1e6:4.0f} ms, PostgreSQL {postgres_cpu / events * 1e6:4.0f} ms")
    resent = sum(len(b) for bs in resend.values() for b in bs)
    print(f"  re-send  {resent / r_seconds:9,.0f} events/s   per batch p50 {pct(r_latencies, 50):6.0f} ms   "
          f"(every event a duplicate)")
    print(f"  ingest / floor = {rates['ingest'] / rates['floor']:.0%}   (goals: >= 20,000 events/s and >= 50% of the floor)"
          f"   server RSS {rss:.0f} MiB   load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
