"""Household registration throughput and latency on PostgreSQL, beside the floor of the same run.

    .venv/bin/python bench/registration.py [--concurrency 32] [--households 3000] [--workers 1]

Starts its own server on a fresh database (dropped afterwards). Each household has 4 members with
distinct names, birth years and a national ID for the head, spread over the villages of Angkor Chum,
so every registration runs the full national-ID and duplicate checks. The floor is measured before
and after the registrations and averaged."""

import argparse
import asyncio
import random

import harness
from app.services.locations import national_gazetteer

# Every village of Angkor Chum district (7 communes), the catchment of one district office.
VILLAGES = [row["code"] for row in national_gazetteer() if row["code"].startswith("1701") and row["level"] == "village"]
SYLLABLES = ["sok", "dar", "vin", "pha", "ren", "tho", "kun", "mey", "ras", "bop", "chan", "leak", "nit", "pov",
             "sam", "yun", "keo", "lim", "oud", "wat", "srey", "mom", "ly", "heng"]


def name(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(syllables)).capitalize()


def household(i: int) -> dict:
    rng = random.Random(i)
    family = name(rng, 2)
    head_year = rng.randint(1950, 1990)  # the mother of children born from 2008 (a younger one would be unlikely)
    return {
        "village_code": rng.choice(VILLAGES),
        "address": f"House {i}",
        "area_type": "rural",
        "idpoor": {"level": rng.choice([1, 2])} if rng.random() < 0.2 else None,
        "consent": {"purposes": ["registry", "eligibility_sharing"], "given_by": f"{family} head", "method": "verbal"},
        "members": [
            {"given_name": name(rng, 3), "family_name": family, "sex": "female", "relationship": "head",
             "birth_date": f"{head_year}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}", "national_id": f"B{i:09d}",
             "employment_status": "informal", "monthly_income": rng.randint(0, 2_000_000)},
            {"given_name": name(rng, 3), "family_name": family, "sex": "male", "relationship": "spouse",
             "birth_year": head_year + rng.randint(-3, 3), "birth_date_approximate": True},
            {"given_name": name(rng, 3), "family_name": family, "sex": "female", "relationship": "child",
             "birth_year": rng.randint(2008, 2016), "school_enrolled": True, "school_attendance_percent": 90},
            {"given_name": name(rng, 3), "family_name": family, "sex": "male", "relationship": "child",
             "birth_year": rng.randint(2017, 2024)},
        ],
        "confirm_new": True,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--households", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (the machine's cores: 2 here)")
    args = parser.parse_args()

    async with harness.fresh_database() as url:
        harness.migrate(url)
        world = await harness.seed_world(url)
        with harness.server(url, workers=args.workers) as (base_url, pid):
            headers = world.headers("clerk")
            offset = 10_000_000

            async def register(client, i):
                return await client.post("/api/v1/households", json=household(offset + i), headers=headers)

            # Warm up both paths (connections, caches) before measuring.
            await harness.floor(base_url, concurrency=args.concurrency, total=500)
            await harness.load("warm-up", base_url, register, concurrency=args.concurrency, total=300)
            offset = 0
            before = await harness.floor(base_url, concurrency=args.concurrency, total=args.households)
            run = await harness.load("registration (4 members)", base_url, register, concurrency=args.concurrency,
                                     total=args.households)
            after = await harness.floor(base_url, concurrency=args.concurrency, total=args.households)
            rss = harness.rss_mib(pid)

    floor_rate = (before.rate + after.rate) / 2
    print(f"PostgreSQL, {args.workers} uvicorn worker(s), {args.concurrency} concurrent clients, {args.households} requests each")
    print(before.line().replace("floor", "floor (before)", 1))
    print(run.line())
    print(after.line().replace("floor", "floor (after) ", 1))
    print(f"registration / floor rate: {run.rate / floor_rate:.0%} (goal >= 50%)   "
          f"registration p99: {run.pct(99):.1f} ms (goal < 100 ms)")
    print(f"persons registered per second: {run.rate * 4:.0f} (openIMIS on this kind of machine: 114 individuals/s)")
    print(f"statuses: {run.statuses}" + (f"   server RSS after run: {rss:.0f} MiB" if args.workers == 1 else ""))


if __name__ == "__main__":
    asyncio.run(main())
