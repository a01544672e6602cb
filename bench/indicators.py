"""Indicator queries over a year of 10 million events on PostgreSQL, beside a floor of the same run.

    .venv/bin/python bench/indicators.py [--events 10000000] [--offices 200] [--repeat 60]

1. Builds central's rollups for --events events of --offices offices (25 provinces) over 2026: the
   events come from bench/monitoring_events.py (visits: registrations, screenings of every member for
   every scheme, applications, decisions, referrals, grievances...) and go through the ingest's own
   rollup code (app.services.monitoring.rollups: Fact, Counts, count_subject, Increments, the open-item merge), in
   two processes, straight into the tables with COPY (the raw events are not stored: no query reads
   them). Rows of one period that two flushes produced are summed, then the primary key is built.
2. Starts a central server and times each query shape --repeat times through the HTTP API as a
   monitor (JSON), beside the floor: GET /api/v1/monitoring/indicators/catalog (same app, auth and
   transaction, no rollup read). Goal: p95 < 50 ms for a year by month x province x sex."""

import argparse
import asyncio
import multiprocessing
import os
import time
from datetime import date, timedelta

import httpx

import harness
from monitoring_events import Generator, offices

YEAR = 2026


def _worker(args: tuple[str, list[str], int, int, int]) -> dict[str, int]:
    return asyncio.run(_build(*args))


async def _build(url: str, provinces: list[str], total_events: int, office_count: int, seed: int) -> dict[str, int]:
    import asyncpg

    from app import clock
    from app.events import EVENT_TYPES
    from app.services.monitoring import rollups

    clock.set_timezone("Asia/Phnom_Penh")
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    generator = Generator(seed=seed)
    mine = [o for o in offices(office_count) if o.province in provinces]
    per_office_day = total_events / office_count / 365
    known: dict[tuple[str, str], set[int]] = {}
    items: dict[tuple[str, str], dict] = {}
    stats = {"events": 0, "rows": 0, "items": 0}
    counts = rollups.Counts()

    async def flush() -> None:
        increments = rollups.Increments()
        increments.add_rows(counts.rows)
        counts.rows.clear()
        for cuboid, keys in increments.by_cuboid().items():
            await connection.copy_records_to_table(
                f"staging_{cuboid.lower()}", records=[(*k[1:], increments.counts[k]) for k in keys],
                columns=[*rollups.rollup_columns(cuboid), "value"])
            stats["rows"] += len(keys)

    day = date(YEAR, 1, 1)
    debt = {o.code: 0.0 for o in mine}
    while day.year == YEAR:
        for office in mine:
            debt[office.code] += per_office_day
            while debt[office.code] >= 1:
                for event_type, payload in generator.visit(office, day):
                    p = EVENT_TYPES[(event_type, 1)].model_validate(payload)
                    fact = rollups.Fact(event_type, day, rollups.event_dimensions(office.code, p), p)
                    counts.add_fact(fact)
                    for kind, subject in rollups.subjects(fact):
                        rollups.count_subject(known.setdefault((kind, subject), set()), kind, fact, counts)
                    change = rollups.open_item_change(fact)
                    if change:
                        rollups.merge_open_item(items.setdefault(change[:2], {}), change[2], dict(zip(rollups.DIMENSIONS, fact.dims)))
                    stats["events"] += 1
                    debt[office.code] -= 1
        day += timedelta(days=1)
        if day.day == 1:  # a month done
            await flush()
    await flush()
    await connection.copy_records_to_table("monitoring_open_item", columns=["kind", "item", *rollups.DIMENSIONS, "opened_on",
                                                                           "due_on", "closed_on"], records=[
        (kind, item, *(v.get(d, "") for d in rollups.DIMENSIONS), v.get("opened_on"), v.get("due_on"), v.get("closed_on"))
        for (kind, item), v in items.items()])
    stats["items"] = len(items)
    await connection.close()
    return stats


async def build(url: str, events: int, office_count: int) -> dict[str, float]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.services.monitoring import rollups

    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as c:
        for cuboid, table in rollups.ROLLUP_TABLES.items():
            await c.execute(text(f"CREATE UNLOGGED TABLE staging_{cuboid.lower()} AS SELECT * FROM {table.name} WITH NO DATA"))
    started = time.perf_counter()
    provinces = [f"{p:02d}" for p in range(1, 26)]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        parts = pool.map(_worker, [(url, provinces[i::2], events, office_count, 100 + i) for i in range(2)])
    generated = time.perf_counter() - started
    started = time.perf_counter()
    by_cuboid, size = {}, 0
    async with engine.connect() as c:
        await c.execute(text("SET maintenance_work_mem = '1GB'"))
        await c.execute(text("SET work_mem = '512MB'"))
        for cuboid, table in rollups.ROLLUP_TABLES.items():
            key = ", ".join(rollups.rollup_columns(cuboid))
            # Indexes dropped while the rows go in, then made again (F has no key, an index).
            if cuboid in rollups.APPEND_ONLY:
                index = next(iter(table.indexes))
                await c.execute(text(f"DROP INDEX {index.name}"))
            else:
                await c.execute(text(f"ALTER TABLE {table.name} DROP CONSTRAINT pk_{table.name}"))
            await c.execute(text(f"INSERT INTO {table.name} ({key}, value) SELECT {key}, sum(value) FROM staging_{cuboid.lower()} "
                                 f"GROUP BY {key} ORDER BY period_start"))  # in time order, as ingest writes them
            if cuboid in rollups.APPEND_ONLY:
                await c.execute(text(f"CREATE INDEX {index.name} ON {table.name} ({', '.join(c.name for c in index.columns)})"))
            else:
                await c.execute(text(f"ALTER TABLE {table.name} ADD CONSTRAINT pk_{table.name} PRIMARY KEY ({key})"))
            await c.execute(text(f"DROP TABLE staging_{cuboid.lower()}"))
            await c.execute(text(f"VACUUM ANALYZE {table.name}"))
            by_cuboid[cuboid] = (await c.execute(text(f"SELECT count(*) FROM {table.name}"))).scalar_one()
            size += (await c.execute(text(f"SELECT pg_total_relation_size('{table.name}')"))).scalar_one()
        await c.execute(text("VACUUM ANALYZE monitoring_open_item"))
    rows = sum(by_cuboid.values())
    size = f"{size / 2**20:,.0f} MB"
    await engine.dispose()
    return {"events": sum(p["events"] for p in parts), "generated_s": generated, "merged_s": time.perf_counter() - started,
            "rows": rows, "by_cuboid": by_cuboid, "size": size, "items": sum(p["items"] for p in parts)}


QUERIES = [
    ("clients_served: year by month x province x sex", "clients_served", "month", "province,sex", {}),
    ("persons_registered: year by month x province x sex", "persons_registered", "month", "province,sex", {}),
    ("eligible_determinations: year by quarter x scheme x sex", "eligible_determinations", "quarter", "scheme,sex", {}),
    ("approval_rate: year by month x scheme", "approval_rate", "month", "scheme", {}),
    ("median_days_to_decision: year by quarter x province", "median_days_to_decision", "quarter", "province", {}),
    ("female_headed_households_reached: year by month x prov.", "female_headed_households_reached", "month", "province", {}),
    ("households_registered: year by month x office", "households_registered", "month", "office", {}),
    ("clients_served: one office, year by week x sex", "clients_served", "week", "sex", {"office": "OF-007"}),
    ("persons_registered: one province, year by week x district", "persons_registered", "week", "district", {"province": "08"}),
    ("referrals_overdue: year by month x province", "referrals_overdue", "month", "province", {}),
]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def timed(http: httpx.AsyncClient, params: dict | None, headers: dict, repeat: int, path: str) -> tuple[list[float], int, int]:
    latencies, cells, suppressed = [], 0, 0
    for _ in range(repeat):
        sent = time.perf_counter()
        response = await http.get(path, params=params, headers=headers)
        latencies.append((time.perf_counter() - sent) * 1000)
        assert response.status_code == 200, response.text
        if params:
            body = response.json()
            cells, suppressed = len(body["rows"]), body["suppressed"]
    return latencies, cells, suppressed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--offices", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=60)
    parser.add_argument("--keep", action="store_true", help="keep the database (its URL is printed)")
    parser.add_argument("--reuse", metavar="URL", help="time the queries on a database kept by --keep (no build)")
    args = parser.parse_args()
    if args.reuse:
        await queries(args.reuse, args.repeat)
        return
    async with harness.fresh_database(keep=args.keep) as url:
        harness.migrate(url)
        built = await build(url, args.events, args.offices)
        print(f"built rollups of {built['events']:,} events ({args.offices} offices, {YEAR}): "
              f"{built['generated_s']:.0f} s through the rollup code, {built['merged_s']:.0f} s to merge and index; "
              f"{built['rows']:,} rollup rows ({', '.join(f'{k} {v:,}' for k, v in built['by_cuboid'].items())}), "
              f"{built['size']}; {built['items']:,} open referrals/grievances")
        if args.keep:
            print(f"database: {url}")
        await queries(url, args.repeat)


async def queries(url: str, repeat: int) -> None:
    tokens = await _monitor_token(url)
    with harness.server(url, GUICHET_ROLE="central") as (base, _pid):
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            headers = {"Authorization": f"Bearer {tokens}"}
            await timed(http, None, headers, 5, "/api/v1/monitoring/indicators/catalog")
            floor, _, _ = await timed(http, None, headers, repeat, "/api/v1/monitoring/indicators/catalog")
            print(f"\nPostgreSQL, HTTP as a monitor, {repeat} runs each (after 3 warm-up runs), load average "
                  f"{os.getloadavg()[0]:.1f}")
            print(f"  {'floor: GET /indicators/catalog (auth, no rollup read)':<58} p50 {pct(floor, 50):6.1f} ms  "
                  f"p95 {pct(floor, 95):6.1f} ms")
            for title, indicator, period, group_by, filters in QUERIES:
                params = {"indicator": indicator, "from": f"{YEAR}-01-01", "to": f"{YEAR}-12-31", "period": period,
                          "group_by": group_by, **filters}
                await timed(http, params, headers, 3, "/api/v1/monitoring/indicators")
                latencies, cells, suppressed = await timed(http, params, headers, repeat, "/api/v1/monitoring/indicators")
                print(f"  {title:<58} p50 {pct(latencies, 50):6.1f} ms  p95 {pct(latencies, 95):6.1f} ms  "
                      f"({cells} cells, {suppressed} suppressed)")


async def _monitor_token(url: str, username: str = "monitor") -> str:
    """A monitor's token (the account made on first use)."""
    from sqlalchemy import select

    from app.config import Settings
    from app.db import create_engine, create_sessionmaker
    from app.models import User
    from app.security import issue_token
    from app.services import users
    from app.vocabulary import Role

    settings = Settings(database_url=url, secret_key=harness.SECRET_KEY, pseudonym_key=harness.PSEUDONYM_KEY,
                        var_dir=harness.ROOT / "var" / "bench")
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session, session.begin():
        user = (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()
        if user is None:
            user, _ = await users.create_user(session, None, username=username, password="bench-monitor-pw", role=Role.monitor)
    await engine.dispose()
    return issue_token(settings, subject=user.id, role=Role.monitor, office=None, scheme=None)[0]


if __name__ == "__main__":
    asyncio.run(main())
