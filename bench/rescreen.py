"""`guichet rescreen` at scale on PostgreSQL: households per second, beside a floor from the same run.

    .venv/bin/python bench/rescreen.py [--households 100000]

Makes a fresh database (dropped afterwards), writes the households straight into it with COPY (sizes
1 to 8, about 4.5 members on average, varied facts: IDPoor, ages, disabilities, pregnancies,
schooling, work), then runs the real command three times:
  1. first re-screen of every household, 8 schemes: every determination is new and written;
  2. the same again, rules unchanged: every subject's fingerprint (rules version digest and the facts
     it reads) is compared with its latest determination's (by PostgreSQL, which sends back only those
     that differ); nothing is evaluated or written;
  3. a rules change (the scholarship's attendance threshold 80% -> 70%, from GUICHET_SCHEMES_PATH),
     `--scheme KH-SCHOLAR`: every member is evaluated again; the determinations that now say something
     else (the verdict, or reasons that quote the new threshold) are written.
The floor is a read-only pass over the same batches (the households and their members, the same
queries the command makes): the least a re-screen can cost."""

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg
from sqlalchemy import select
from sqlalchemy.engine import make_url

import harness
from app.services.locations import national_gazetteer

VILLAGES = [row["code"] for row in national_gazetteer() if row["code"].startswith("1701") and row["level"] == "village"]
NAMES = ["sok", "dara", "vin", "pha", "ren", "thou", "kun", "mey", "ras", "bopha", "chan", "leak", "nit", "pov", "sam"]
LEVELS = ["none", "some", "a_lot", "cannot"]

HOUSEHOLD_COLUMNS = ["id", "office_id", "village_code", "address", "area_type", "idpoor_level", "idpoor_card_number",
                     "idpoor_valid_until", "registered_by", "version", "created_at", "updated_at"]
CONSENT_COLUMNS = ["id", "household_id", "purposes", "given_by", "method", "note", "recorded_at", "recorded_by"]


def person(rng: random.Random, household_id, office_id, village: str, relationship: str, birth_year: int,
           now: datetime) -> dict:
    sex = rng.choice(["female", "male"])
    given, family = rng.choice(NAMES).capitalize(), rng.choice(NAMES).capitalize()
    approximate = rng.random() < 0.2
    age = 2026 - birth_year
    severe = rng.random() < 0.06
    working = age >= 15
    status = rng.choice(["formal", "informal", "self_employed", "unemployed", "inactive", None]) if working else None
    if age >= 62 and working:
        status = rng.choice(["retired", "inactive", None])
    nssf = (status == "formal" or rng.random() < 0.1) if working else None
    school = 6 <= age <= 19
    row = {
        "id": uuid.uuid4(), "household_id": household_id, "office_id": office_id, "village_code": village,
        "given_name": given, "family_name": family,
        "search_name": f"{family} {given}".lower(), "name_key": f"{family} {given}".lower(), "family_key": family.lower(),
        "given_key": given.lower(), "sex": sex, "birth_date": None if approximate else date(birth_year, rng.randint(1, 12), rng.randint(1, 28)),
        "birth_year": birth_year, "birth_date_approximate": approximate, "relationship": relationship,
        "pregnant": sex == "female" and 16 <= age <= 45 and rng.random() < 0.08, "employment_status": status,
        "monthly_income": rng.choice([None, 0, 150_000, 400_000, 900_000, 1_500_000]) if working else None,
        "school_enrolled": (rng.random() < 0.85) if school else None,
        "school_attendance_percent": rng.choice([None, 60, 75, 80, 85, 95]) if school else None,
        "nssf_member": nssf, "nssf_contribution_months": rng.randint(0, 200) if nssf else None, "attributes": "{}",
        "version": 1, "created_at": now, "updated_at": now,
    }
    for n, domain in enumerate(("seeing", "hearing", "walking", "remembering", "self_care", "communicating")):
        row[f"disability_{domain}"] = rng.choice(["a_lot", "cannot"]) if severe and n == 0 else ("some" if rng.random() < 0.05 else "none")
    return row


def make_rows(count: int, office_id) -> tuple[list, list, list]:
    rng = random.Random(2026)
    now = datetime.now(UTC)
    households, people, consents = [], [], []
    for i in range(count):
        household_id = uuid.uuid4()
        level = rng.choice([None, None, None, 1, 2])
        village = rng.choice(VILLAGES)
        households.append((household_id, office_id, village, None, rng.choice(["rural", "rural", "urban"]),
                           level, None, date(2027, 12, 31) if level and rng.random() < 0.9 else (date(2025, 1, 1) if level else None),
                           None, 1, now, now))
        head_year = rng.randint(1940, 2004)
        members = [("head", head_year)]
        if rng.random() < 0.8:
            members.append(("spouse", head_year + rng.randint(-5, 5)))
        for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4, 5])):
            members.append(("child", rng.randint(max(head_year + 16, 2000), 2026)))
        if rng.random() < 0.2 and head_year >= 1950:
            members.append(("parent", rng.randint(1930, head_year - 15)))
        for relationship, year in members:
            people.append(person(rng, household_id, office_id, village, relationship, min(year, 2026), now))
        purposes = ["registry", "eligibility_sharing"] if rng.random() < 0.9 else ["registry"]
        consents.append((uuid.uuid4(), household_id, json.dumps(purposes), "Head", "verbal", None, now, None))
    return households, people, consents


async def bulk_insert(database_url: str, count: int) -> tuple[float, int]:
    """COPY the households, members and consents of office SR-ACH; returns (seconds, persons)."""
    url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(url)
    try:
        office_id = await connection.fetchval("SELECT id FROM office WHERE code = 'SR-ACH'")
        started = time.perf_counter()
        households, people, consents = make_rows(count, office_id)
        async with connection.transaction():
            await connection.copy_records_to_table("household", records=households, columns=HOUSEHOLD_COLUMNS)
            # The person table's columns as the migrations made them (the registry may add some).
            columns = [r["attname"] for r in await connection.fetch(
                "SELECT attname FROM pg_attribute WHERE attrelid = 'person'::regclass AND attnum > 0 AND NOT attisdropped")]
            await connection.copy_records_to_table("person", records=[tuple(p.get(c) for c in columns) for p in people],
                                                   columns=columns)
            await connection.copy_records_to_table("consent_record", records=consents, columns=CONSENT_COLUMNS)
        await connection.execute("ANALYZE")
        return time.perf_counter() - started, len(people)
    finally:
        await connection.close()


async def read_floor(database_url: str, batch_size: int) -> tuple[float, int]:
    """The same batches and reads as the command, without evaluating or writing anything."""
    from app.config import Settings
    from app.db import create_engine, create_sessionmaker
    from app.models import Person
    from app.services.rescreen import _HOUSEHOLD_COLUMNS, _PERSON_COLUMNS, households_to_rescreen
    from app.models import Household

    engine = create_engine(Settings(database_url=database_url, secret_key=harness.SECRET_KEY, pseudonym_key=harness.PSEUDONYM_KEY))
    sessionmaker = create_sessionmaker(engine)
    started = time.perf_counter()
    done = 0
    after = None
    async with sessionmaker() as session:
        while ids := await households_to_rescreen(session, office_code="SR-ACH", after=after, limit=batch_size):
            await session.execute(select(*_HOUSEHOLD_COLUMNS).where(Household.id.in_(ids)))
            rows = (await session.execute(select(*_PERSON_COLUMNS).where(Person.household_id.in_(ids))
                                          .order_by(Person.household_id, Person.created_at, Person.id))).all()
            assert rows
            done += len(ids)
            after = ids[-1]
            await session.rollback()
    await engine.dispose()
    return time.perf_counter() - started, done


def rescreen(database_url: str, *extra: str, schemes_path: str | None = None) -> tuple[float, str]:
    env = harness.server_env(database_url)
    if schemes_path:
        env["GUICHET_SCHEMES_PATH"] = schemes_path
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "app.cli", "rescreen", "--office", "SR-ACH", *extra], cwd=harness.ROOT,
                          env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return seconds, done.stdout


async def counts(database_url: str) -> dict[str, int]:
    url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(url)
    try:
        return {table: await connection.fetchval(f"SELECT count(*) FROM {table}")
                for table in ("screening", "determination", "activity_event", "audit_event")}
    finally:
        await connection.close()


def rate_of(output: str) -> str:
    match = re.search(r"re-screened (\d+) households in ([\d.]+) s \(([\d,]+) households/s\)", output)
    return f"{match.group(1)} households in {match.group(2)} s = {match.group(3)} households/s" if match else output


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    async with harness.fresh_database() as url:
        harness.migrate(url)
        await harness.seed_world(url)
        seconds, persons = await bulk_insert(url, args.households)
        print(f"PostgreSQL; {args.households:,} households, {persons:,} persons written with COPY in {seconds:.1f} s")
        floor_seconds, floor_done = await read_floor(url, args.batch_size)
        print(f"floor (read the same batches, no rules, no writes): {floor_done:,} households in {floor_seconds:.1f} s "
              f"= {floor_done / floor_seconds:,.0f} households/s")

        first_seconds, first = rescreen(url, "--batch-size", str(args.batch_size))
        after_first = await counts(url)
        print(f"1. first re-screen, 8 schemes, everything written: {rate_of(first)} (command wall time {first_seconds:.1f} s)")
        print(f"   written: {after_first['screening']:,} screenings, {after_first['determination']:,} determinations, "
              f"{after_first['activity_event']:,} activity events, {after_first['audit_event']:,} audit rows")
        print("   " + "\n   ".join(first.strip().splitlines()[1:12]))

        second_seconds, second = rescreen(url, "--batch-size", str(args.batch_size))
        after_second = await counts(url)
        print(f"2. again, rules unchanged (compare only): {rate_of(second)} (wall {second_seconds:.1f} s); "
              f"new determinations: {after_second['determination'] - after_first['determination']}")

        with tempfile.TemporaryDirectory() as schemes:
            changed = (harness.ROOT / "app/schemes/catalogue/kh-scholar.yaml").read_text().replace(
                "minimum_attendance_percent: 80", "minimum_attendance_percent: 70")
            Path(schemes, "kh-scholar.yaml").write_text(changed)
            third_seconds, third = rescreen(url, "--scheme", "KH-SCHOLAR", "--batch-size", str(args.batch_size),
                                            schemes_path=schemes)
        after_third = await counts(url)
        print(f"3. rules change (scholarship attendance 80% -> 70%), --scheme KH-SCHOLAR: {rate_of(third)} "
              f"(wall {third_seconds:.1f} s); new determinations: {after_third['determination'] - after_second['determination']:,}")
        print("   " + "\n   ".join(third.strip().splitlines()[1:]))
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    asyncio.run(main())
