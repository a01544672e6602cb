"""Eligibility screening latency and throughput on PostgreSQL, beside the floor of the same run.

    .venv/bin/python bench/screening.py [--concurrency 16] [--screenings 2000] [--partner-delay-ms 200] [--partners-only]

Starts its own server on a fresh database (dropped afterwards) and registers 6-member households.
Part 1: screenings of a 6-member household across the 8 rules schemes of the catalogue (38
determinations each, stored with their facts, events and audit), beside the floor (one INSERT).
Part 2: the same with a partner scheme reached over HTTP (the reference partner server,
tests/partner_server.py, answering in 200 ms): the screening must take 200 ms + at most 20 ms,
because partners are called concurrently with everything else; then two such partners at once.
Server-side times come from the Server-Timing header."""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

import harness
from app.services.locations import national_gazetteer

VILLAGES = [row["code"] for row in national_gazetteer() if row["code"].startswith("1701") and row["level"] == "village"]

PARTNER_SCHEME = """\
code: {code}
name: Youth employment programme ({code})
kind: employment
level: person
agency: Reference partner agency
legal_reference: Benchmark agreement
adapter: http
http:
  url: {url}
  needs: [person.age_years, person.employment_status]
  timeouts: {{connect: 1, read: 2, overall: 3}}
"""


def six_member_household(i: int) -> dict:
    """A three-generation household that touches every scheme: pension age, disability, pregnancy,
    a baby, a schoolchild, a job seeker."""
    return {
        "village_code": VILLAGES[i % len(VILLAGES)], "address": f"House {i}", "area_type": "rural" if i % 3 else "urban",
        "idpoor": {"level": 1 + i % 2, "valid_until": "2027-12-31"} if i % 4 else None,
        "consent": {"purposes": ["registry", "eligibility_sharing"], "given_by": "Head", "method": "verbal"},
        "members": [
            {"given_name": f"Grandpa{i}", "family_name": f"Fam{i}", "sex": "male", "relationship": "head",
             "birth_year": 1950 + i % 15, "birth_date_approximate": True, "employment_status": "retired",
             "nssf_member": bool(i % 2), "nssf_contribution_months": 40, "national_id": f"S{i:09d}"},
            {"given_name": f"Grandma{i}", "family_name": f"Fam{i}", "sex": "female", "relationship": "spouse",
             "birth_date": "1958-04-04", "employment_status": "inactive", "disability": {"seeing": "a_lot"}},
            {"given_name": f"Son{i}", "family_name": f"Fam{i}", "sex": "male", "relationship": "child",
             "birth_date": "1990-06-06", "employment_status": "formal", "monthly_income": 1_200_000, "nssf_member": True,
             "nssf_contribution_months": 90},
            {"given_name": f"Daughter{i}", "family_name": f"Fam{i}", "sex": "female", "relationship": "other_relative",
             "birth_date": "2001-07-07", "employment_status": "unemployed", "pregnant": True, "monthly_income": 0},
            {"given_name": f"Pupil{i}", "family_name": f"Fam{i}", "sex": "male", "relationship": "grandchild",
             "birth_date": "2016-01-20", "school_enrolled": True, "school_attendance_percent": 70 + i % 30},
            {"given_name": f"Baby{i}", "family_name": f"Fam{i}", "sex": "female", "relationship": "grandchild",
             "birth_date": "2025-08-08"},
        ],
        "confirm_new": True,
    }


def partner_process(port: int, delay_ms: float) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(harness.ROOT)
    return subprocess.Popen([sys.executable, str(harness.ROOT / "tests" / "partner_server.py"), "--port", str(port),
                             "--delay-ms", str(delay_ms), "--token", "bench-partner-token"], cwd=harness.ROOT, env=env)


def wait_for_partner(url: str) -> None:
    for _ in range(200):
        try:
            httpx.get(url.replace("/eligibility", "/openapi.json"), timeout=0.5)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("partner did not come up")


async def register(base_url: str, headers: dict, count: int) -> list[str]:
    ids: list[str] = []

    async def one(client, i):
        response = await client.post("/api/v1/households", json=six_member_household(i), headers=headers)
        ids.append(response.json()["id"])
        return response

    run = await harness.load("register", base_url, one, concurrency=8, total=count)
    assert run.errors == 0, run.statuses
    return ids


async def screenings(name: str, base_url: str, headers: dict, ids: list[str], *, concurrency: int, total: int) -> harness.Run:
    """Each run also keeps, per screening, the server's time minus the slowest partner call's own
    latency (from the determinations' provenance): what the fan-out adds on top of the partners."""
    overheads: list[float] = []

    async def screen(client, i):
        response = await client.post(f"/api/v1/households/{ids[i % len(ids)]}/screenings", headers=headers)
        partner = [d["provenance"].get("latency_ms") for d in response.json().get("determinations", [])
                   if d["provenance"].get("latency_ms") is not None]
        timing = response.headers.get("server-timing", "")
        if partner and "dur=" in timing:
            overheads.append(float(timing.split("dur=")[1]) - max(partner))
        return response

    run = await harness.load(name, base_url, screen, concurrency=concurrency, total=total)
    run.overheads = overheads
    return run


async def partners(args, url: str, headers: dict, ids: list[str]) -> list[harness.Run]:
    """Part 2: the same screenings with one, then two partner schemes over HTTP (each its own server)."""
    partner_port = harness.free_port()
    partner_url = f"http://127.0.0.1:{partner_port}/eligibility"
    partner = partner_process(partner_port, args.partner_delay_ms)
    try:
        wait_for_partner(partner_url)
        with tempfile.TemporaryDirectory() as schemes_dir:
            (Path(schemes_dir) / "kh-youth-jobs.yaml").write_text(PARTNER_SCHEME.format(code="KH-YOUTH-JOBS", url=partner_url))
            env = {"GUICHET_SCHEMES_PATH": schemes_dir,
                   "GUICHET_PARTNER_TOKENS": '{"KH-YOUTH-JOBS": "bench-partner-token", "KH-YOUTH-JOBS-2": "bench-partner-token"}'}
            with harness.server(url, **env) as (base_url, _):
                await screenings("warm-up", base_url, headers, ids, concurrency=4, total=40)
                one_partner = await screenings("+ 1 partner, 1 client", base_url, headers, ids, concurrency=1, total=100)
                one_partner_4 = await screenings("+ 1 partner, 4 clients", base_url, headers, ids, concurrency=4, total=200)
            (Path(schemes_dir) / "kh-youth-jobs-2.yaml").write_text(PARTNER_SCHEME.format(code="KH-YOUTH-JOBS-2", url=partner_url))
            with harness.server(url, **env) as (base_url, _):
                await screenings("warm-up", base_url, headers, ids, concurrency=4, total=40)
                two_partners = await screenings("+ 2 partners at once, 1 client", base_url, headers, ids,
                                                concurrency=1, total=100)
    finally:
        partner.terminate()
        partner.wait(timeout=10)
    return [one_partner, one_partner_4, two_partners]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--screenings", type=int, default=2000)
    parser.add_argument("--households", type=int, default=200)
    parser.add_argument("--partner-delay-ms", type=float, default=200.0)
    parser.add_argument("--partners-only", action="store_true", help="Only the part with partner schemes.")
    args = parser.parse_args()

    async with harness.fresh_database() as url:
        harness.migrate(url)
        world = await harness.seed_world(url)
        headers = world.headers("clerk")
        with harness.server(url) as (base_url, pid):
            ids = await register(base_url, headers, args.households)
            sample = (await httpx.AsyncClient(base_url=base_url).post(
                f"/api/v1/households/{ids[0]}/screenings", headers=headers)).json()
            if not args.partners_only:
                await harness.floor(base_url, concurrency=args.concurrency, total=500)
                await screenings("warm-up", base_url, headers, ids, concurrency=args.concurrency, total=300)
                before = await harness.floor(base_url, concurrency=args.concurrency, total=args.screenings)
                rules = await screenings("screening (6 members, 8 schemes)", base_url, headers, ids,
                                         concurrency=args.concurrency, total=args.screenings)
                single = await screenings("same, one client at a time", base_url, headers, ids, concurrency=1, total=300)
                after = await harness.floor(base_url, concurrency=args.concurrency, total=args.screenings)
                rss = harness.rss_mib(pid)
        partner_runs = await partners(args, url, headers, ids)

    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs "
          "(the machine is shared; a busy machine inflates every figure, the floor's too)")
    if not args.partners_only:
        floor_rate = (before.rate + after.rate) / 2
        determinations = len(sample["determinations"])
        print(f"PostgreSQL, 1 uvicorn worker; household of 6 members, {len(sample['schemes'])} rules schemes, "
              f"{determinations} determinations per screening (each stored with its reasons, plus {determinations + 1} "
              f"activity events and an audit row)")
        print(before.line().replace("floor", "floor (before)", 1))
        print(rules.line())
        print(single.line())
        print(after.line().replace("floor", "floor (after) ", 1))
        print(f"screening / floor rate: {rules.rate / floor_rate:.0%}   screening server-side p50: "
              f"{rules.pct(50, rules.server_ms):.2f} ms at {args.concurrency} clients, "
              f"{single.pct(50, single.server_ms):.2f} ms alone (goal < 15 ms)")
        print(f"server RSS after run: {rss:.0f} MiB   statuses: {rules.statuses}")
        print()
    print(f"With partner schemes over HTTP answering in {args.partner_delay_ms:.0f} ms (reference partner server, "
          "its own process), besides the 8 rules schemes:")
    for run in partner_runs:
        print(run.line())
    budget = args.partner_delay_ms + 20
    for run in partner_runs:
        print(f"  {run.name}: on top of the partner call's own latency, the screening adds "
              f"p50 {run.pct(50, run.overheads):.1f} ms, p99 {run.pct(99, run.overheads):.1f} ms")
    for run in partner_runs:
        print(f"  {run.name}: server-side p50 {run.pct(50, run.server_ms):.1f} ms, p99 {run.pct(99, run.server_ms):.1f} ms "
              f"(budget {budget:.0f} ms: p50 {'within' if run.pct(50, run.server_ms) <= budget else 'OVER'}, "
              f"p99 {'within' if run.pct(99, run.server_ms) <= budget else 'OVER'})")


if __name__ == "__main__":
    asyncio.run(main())
