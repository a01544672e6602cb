"""A backlog of 100,000 events drains from an office to central: goal under 30 s.

    .venv/bin/python bench/drain.py [--events 100000] [--office sqlite|postgres]

Central runs on a fresh PostgreSQL database (GUICHET_ROLE=central, its own process) with the office
registered and its relay's client credentials. The office's database (PostgreSQL, or a SQLite file)
holds --events unsent events in its outbox (bench/monitoring_events.py: what an office writes while
central is away). Then `guichet relay --once` runs as its own process, as an operator would start it:
claim 1,000, POST, mark, until nothing is due. Timed from the process start to its exit.

Floor of the same run: the same events in batches of 1,000 posted by one client straight to
POST /api/v1/_bench/monitoring-floor (no claim or marking at the office, no validation, deduplication
or rollups at central)."""

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import httpx

import harness
from ingest import cpu_seconds
from monitoring_events import Generator, fresh_ids, offices, register_offices


async def fill_outbox(url: str, events: list[dict]) -> float:
    """The office's outbox, as its services would have written it (one migration-made table)."""
    from sqlalchemy import insert

    from app.config import Settings
    from app.db import create_engine
    from app.models import ActivityEvent

    started = time.perf_counter()
    rows = [{"id": uuid.UUID(e["id"]), "type": e["type"], "schema_version": 1,
             "occurred_at": datetime.fromisoformat(e["occurred_at"]), "office_code": e["office_code"],
             "payload": e["payload"], "next_attempt_at": datetime(2026, 1, 1, tzinfo=UTC), "attempts": 0}
            for e in events]
    engine = create_engine(Settings(database_url=url, var_dir=Path(tempfile.gettempdir())))
    async with engine.begin() as connection:
        for i in range(0, len(rows), 5000):
            await connection.execute(insert(ActivityEvent.__table__), rows[i:i + 5000])
    await engine.dispose()
    return time.perf_counter() - started


async def count(url: str, sql: str) -> int:
    from sqlalchemy import text

    from app.config import Settings
    from app.db import create_engine

    engine = create_engine(Settings(database_url=url, var_dir=Path(tempfile.gettempdir())))
    async with engine.connect() as connection:
        value = (await connection.execute(text(sql))).scalar_one()
    await engine.dispose()
    return value


async def floor(base: str, events: list[dict]) -> float:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        started = time.perf_counter()
        for i in range(0, len(events), 1000):
            response = await http.post("/api/v1/_bench/monitoring-floor", content=json.dumps({"events": events[i:i + 1000]}),
                                       headers={"Content-Type": "application/json"})
            assert response.status_code == 200, response.text
        return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--office", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--central-workers", type=int, default=1, help="uvicorn workers of the central server")
    args = parser.parse_args()

    office = offices(1)[0]
    started = time.perf_counter()
    events = Generator(seed=5).events(office, count=args.events, first_day=date(2026, 1, 5), days=300)
    print(f"generated {len(events):,} events in {time.perf_counter() - started:.1f} s")
    async with harness.fresh_database() as central_url, harness.fresh_database() as office_pg:
        scratch = tempfile.TemporaryDirectory()
        office_url = office_pg if args.office == "postgres" else f"sqlite+aiosqlite:///{scratch.name}/office.db"
        harness.migrate(central_url)
        harness.migrate(office_url)
        credentials = (await register_offices(central_url, [(office.code, office.province)]))[office.code]
        filled = await fill_outbox(office_url, events)
        print(f"office outbox ({args.office}): {args.events:,} unsent events written in {filled:.1f} s")
        with harness.server(central_url, workers=args.central_workers, GUICHET_ROLE="central") as (base, pid):
            env = {**os.environ, "GUICHET_ROLE": "office", "GUICHET_DATABASE_URL": office_url, "GUICHET_CENTRAL_URL": base,
                   "GUICHET_VAR_DIR": scratch.name, "GUICHET_SECRET_KEY": "office-" + "s" * 40,
                   "GUICHET_PSEUDONYM_KEY": "office-pseudonyms", "GUICHET_LOG_LEVEL": "WARNING",
                   "GUICHET_RELAY_BATCH_SIZE": "1000", **credentials}
            central_before = cpu_seconds(pid, central_url.rsplit("/", 1)[1])
            office_pg_before = cpu_seconds(os.getpid(), office_pg.rsplit("/", 1)[1])[1]
            children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            relay = subprocess.run([sys.executable, "-m", "app.cli", "relay", "--once"], cwd=harness.ROOT, env=env,
                                   capture_output=True, text=True, timeout=600)
            drained = time.perf_counter() - started
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            relay_cpu = children.ru_utime + children.ru_stime - children_before.ru_utime - children_before.ru_stime
            central_after = cpu_seconds(pid, central_url.rsplit("/", 1)[1])
            office_pg_cpu = cpu_seconds(os.getpid(), office_pg.rsplit("/", 1)[1])[1] - office_pg_before
            assert relay.returncode == 0, relay.stderr
            floor_seconds = await floor(base, fresh_ids([events])[0])
        left = await count(office_url, "SELECT count(*) FROM activity_event WHERE sent_at IS NULL")
        stored = await count(central_url, "SELECT count(*) FROM monitoring_event") - args.events  # minus the floor's rows
        scratch.cleanup()
    print(f"\n{relay.stdout.strip()}; {left} left unsent at the office ({args.office}); central stored {stored:,} "
          f"(PostgreSQL, {args.central_workers} worker(s))")
    print(f"  drain   {drained:6.1f} s  {args.events / drained:8,.0f} events/s  (relay process start to exit; goal < 30 s)")
    print(f"  floor   {floor_seconds:6.1f} s  {args.events / floor_seconds:8,.0f} events/s  (same batches posted to the "
          f"floor endpoint by one client)")
    print(f"  drain / floor = {floor_seconds / drained:.0%}   CPU during the drain: relay process {relay_cpu:.1f} s, office "
          f"PostgreSQL {office_pg_cpu:.1f} s, central {central_after[0] - central_before[0]:.1f} s, central PostgreSQL "
          f"{central_after[1] - central_before[1]:.1f} s   load average {os.getloadavg()[0]:.1f}")
    assert left == 0 and stored == args.events


if __name__ == "__main__":
    asyncio.run(main())
