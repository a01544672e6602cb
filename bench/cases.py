"""Case management on PostgreSQL, beside the floor of the same run: opening cases, filing applications
and reading a case's timeline.

    .venv/bin/python bench/cases.py [--concurrency 32] [--cases 1000]

Starts its own server on a fresh database (dropped afterwards). Households are registered first (not
measured). Every application of the run is filed at one office in one year, so every one of them takes
the next number of the same reference counter row: concurrent filings queue on that row for the rest
of their transaction. The figures show what that costs beside the floor (one INSERT)."""

import argparse
import asyncio
import random

import harness

SCHEMES = ["KH-HEF", "KH-FAMILY-CASH"]  # household-level: no member to choose


def household(i: int) -> dict:
    rng = random.Random(i)
    syllables = ["sok", "dar", "vin", "pha", "ren", "tho", "kun", "mey", "ras", "bop", "chan", "leak", "nit", "pov"]
    word = lambda n: "".join(rng.choice(syllables) for _ in range(n)).capitalize()  # noqa: E731
    return {
        "village_code": "17010101", "area_type": "rural",
        "idpoor": {"level": 1, "card_number": f"EQ-17-{i:07d}", "valid_until": "2030-06-30"},
        "consent": {"purposes": ["registry", "eligibility_sharing"], "given_by": "Head", "method": "verbal"},
        "members": [{"given_name": word(3), "family_name": word(2), "sex": "female", "relationship": "head",
                     "birth_date": f"{1950 + i % 40}-0{1 + i % 9}-1{i % 10}", "national_id": f"{300_000_000 + i}"},
                    {"given_name": word(3), "family_name": word(2), "sex": "male", "relationship": "child",
                     "birth_year": 2010 + i % 10}],
        "confirm_new": True,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--cases", type=int, default=1000)
    args = parser.parse_args()
    n = args.cases

    async with harness.fresh_database() as url:
        harness.migrate(url)
        world = await harness.seed_world(url, users={"clerk": ("clerk", "SR-ACH", None)})
        with harness.server(url) as (base_url, pid):
            headers = world.headers("clerk")
            households: list[str] = [""] * n
            cases: list[str] = [""] * n

            async def register(client, i):
                response = await client.post("/api/v1/households", json=household(i), headers=headers)
                households[i] = response.json()["id"]
                return response

            async def open_case(client, i):
                response = await client.post("/api/v1/cases", json={"household_id": households[i]}, headers=headers)
                cases[i] = response.json()["id"]
                return response

            async def file(client, i):
                return await client.post(f"/api/v1/cases/{cases[i % n]}/applications",
                                         json={"scheme_code": SCHEMES[i // n]}, headers=headers)

            async def timeline(client, i):
                return await client.get(f"/api/v1/cases/{cases[i % n]}/timeline", headers=headers)

            await harness.load("setup: registration", base_url, register, concurrency=args.concurrency, total=n)
            await harness.floor(base_url, concurrency=args.concurrency, total=500)  # warm-up
            before = await harness.floor(base_url, concurrency=args.concurrency, total=n)
            opened = await harness.load("open a case", base_url, open_case, concurrency=args.concurrency, total=n)
            filed = await harness.load("file an application (one counter)", base_url, file,
                                       concurrency=args.concurrency, total=2 * n)
            read = await harness.load("read a timeline (4 entries)", base_url, timeline, concurrency=args.concurrency,
                                      total=n)
            after = await harness.floor(base_url, concurrency=args.concurrency, total=n)
            rss = harness.rss_mib(pid)

    floor_rate = (before.rate + after.rate) / 2
    print(f"PostgreSQL, 1 uvicorn worker, {args.concurrency} concurrent clients, one office")
    print(before.line().replace("floor", "floor (before)", 1))
    for run in (opened, filed, read):
        print(run.line() + f"   {run.rate / floor_rate:.0%} of the floor")
    print(after.line().replace("floor", "floor (after) ", 1))
    print(f"statuses: open {opened.statuses} file {filed.statuses} timeline {read.statuses}   server RSS {rss:.0f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
