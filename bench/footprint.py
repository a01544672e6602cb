"""Footprint of one API worker, on SQLite and on PostgreSQL: an empty database migrated to head, the
time from starting the server to its first answer, and its resident memory when warm.

    .venv/bin/python bench/footprint.py [--rounds 3] [--warm-requests 600] [--backends sqlite,postgresql]
                                        [--no-floor] [--no-compile]

First the app's and the migrations' bytecode is written (`compileall`), as the image does (Dockerfile)
and as any install not run with PYTHONDONTWRITEBYTECODE ends up with: without it every start compiles
the app's ~90 modules again, about 0.1–0.2 s here (--no-compile measures that case). For each
database: `guichet db upgrade` on an empty database (wall time of the command, Python start included);
`uvicorn app.asgi:app` (one worker) started and polled every 5 ms until /healthz answers, then until
an authenticated search (a database round trip) answers (also: the CPU time the worker used until
then, which a busy machine does not inflate); then a warm-up mix (household registrations, name
searches, reads, duplicate matching, screenings) at 4 clients, after which the worker's VmRSS is read
from /proc. Beside it, the floor of the same run: bench/floor_app.py (the fixed stack — uvicorn, FastAPI,
SQLAlchemy async, the same driver — with one route running SELECT 1), started, answered and warmed the
same way, and a second time importing the libraries the app needs to serve (+libs: what is above it is the
app's own code and data). Each figure is the median of --rounds fresh runs. openIMIS, side by side
on this kind of machine (2026-12-07): 247 MB a worker, 5.4 s to first answer (31 s to migrate an empty database,
measured earlier)."""

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx

import harness

sys.path.insert(0, str(harness.ROOT))

from app.services import synthetic  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (load-independent, unlike wall time)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def private_mib(pid: int) -> float:
    """Memory only this process holds (USS): what each extra worker adds; RSS also counts shared libraries."""
    kib = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(("Private_Clean:", "Private_Dirty:")):
            kib += int(line.split()[1])
    return kib / 1024


def start_worker(app: str, cwd: Path, database_url: str, **env: str) -> tuple[str, subprocess.Popen]:
    """One uvicorn worker serving `app` on a free loopback port."""
    port = harness.free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--no-access-log", "--log-level", "warning"],
        cwd=cwd, env=harness.server_env(database_url, **env),
    )
    return f"http://127.0.0.1:{port}", process


def first_answer(base_url: str, process: subprocess.Popen, path: str, headers: dict[str, str] | None = None,
                 timeout: float = 30) -> float:
    """Seconds until `path` answers 200, polling every 5 ms."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(base_url + path, headers=headers, timeout=1).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.005)
    raise RuntimeError(f"{path} did not answer")


async def warm(base_url: str, headers: dict[str, str], area: synthetic.Area, requests: int, seed: int) -> harness.Run:
    """A clerk's mix (its errors: the requests that did not answer as expected)."""
    bodies = [synthetic.registration_body(h) | {"confirm_new": True}
              for h in synthetic.generate_range(area, seed=seed, start=0, stop=requests // 4, as_of=date.today())]
    registered: list[str] = []
    rng = random.Random(seed)

    async def one(client: httpx.AsyncClient, i: int) -> httpx.Response:
        kind = i % 4
        if kind == 0:
            response = await client.post("/api/v1/households", json=bodies[i // 4], headers=headers)
            if response.status_code == 201:
                registered.append(response.json()["id"])
            return response
        if kind == 1 or not registered:
            name = bodies[rng.randrange(len(bodies))]["members"][0]["given_name"][:4]
            return await client.get("/api/v1/persons", params={"name": name}, headers=headers)
        household = rng.choice(registered)
        if kind == 2:
            head = bodies[rng.randrange(len(bodies))]["members"][0]
            match = {k: head[k] for k in ("given_name", "family_name", "sex")} | {
                "birth_year": head.get("birth_year") or int(head["birth_date"][:4]), "village_code": bodies[0]["village_code"]}
            await client.get(f"/api/v1/households/{household}", headers=headers)
            return await client.post("/api/v1/persons/matches", json=match, headers=headers)
        return await client.post(f"/api/v1/households/{household}/screenings", headers=headers)

    run = await harness.load("warm-up", base_url, one, concurrency=4, total=requests)
    if run.errors:
        print(f"  warm-up statuses: {run.statuses}")
    return run


def migrate_seconds(database_url: str) -> float:
    return harness.migrate(database_url)


async def measure(backend: str, warm_requests: int, seed: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        if backend == "sqlite":
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'guichet.db'}"
        else:
            url = await harness.create_database("guichet_footprint")
        try:
            migrated = migrate_seconds(url)
            world = await harness.seed_world(url)
            from app.config import Settings
            from app.db import create_engine, create_sessionmaker

            engine = create_engine(Settings(database_url=url, secret_key=harness.SECRET_KEY,
                                            pseudonym_key=harness.PSEUDONYM_KEY))
            async with create_sessionmaker(engine)() as session:
                area = await synthetic.resolve_area(session, world.office_code)
            await engine.dispose()
            started = time.perf_counter()
            base_url, process = start_worker("app.asgi:app", harness.ROOT, url)
            try:
                alive = first_answer(base_url, process, "/healthz")
                served = first_answer(base_url, process, "/api/v1/households", headers=world.headers("clerk"))
                after_start = time.perf_counter() - started
                cpu = cpu_seconds(process.pid)
                cold = harness.rss_mib(process.pid)
                run = await warm(base_url, world.headers("clerk"), area, warm_requests, seed)
                warm_rss = harness.rss_mib(process.pid)
                warm_private = private_mib(process.pid)
                threads = int(next(l for l in Path(f"/proc/{process.pid}/status").read_text().splitlines()
                                   if l.startswith("Threads:")).split()[1])
            finally:
                process.terminate()
                process.wait(timeout=10)
        finally:
            if backend != "sqlite":
                await harness.drop_database(url)
    return {"migrate": migrated, "alive": alive, "first_search": after_start, "cpu": cpu, "cold_rss": cold,
            "warm_rss": warm_rss, "warm_private": warm_private, "threads": threads, "errors": run.errors, "rate": run.rate}


async def measure_floor(backend: str, warm_requests: int, libraries: bool = False) -> dict[str, float]:
    """bench/floor_app.py started the same way: first answer (a query), then RSS after as many requests.
    With `libraries`, the floor also imports the libraries the app needs to serve."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'floor.db'}" if backend == "sqlite" else \
            await harness.create_database("guichet_footprint")
        base_url, process = start_worker("floor_app:app", Path(__file__).parent, url,
                                         **({"GUICHET_FLOOR_LIBRARIES": "1"} if libraries else {}))
        try:
            alive = first_answer(base_url, process, "/ping")
            cpu = cpu_seconds(process.pid)
            cold = harness.rss_mib(process.pid)
            run = await harness.load("floor", base_url, lambda client, i: client.get("/ping"), concurrency=4,
                                     total=warm_requests)
            warm_rss, warm_private = harness.rss_mib(process.pid), private_mib(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=10)
            if backend != "sqlite":
                await harness.drop_database(url)
    return {"migrate": float("nan"), "alive": alive, "first_search": alive, "cpu": cpu, "cold_rss": cold,
            "warm_rss": warm_rss, "warm_private": warm_private, "threads": float("nan"), "errors": run.errors,
            "rate": run.rate}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warm-requests", type=int, default=600)
    parser.add_argument("--backends", default="sqlite,postgresql", help="Comma-separated: sqlite, postgresql.")
    parser.add_argument("--no-floor", action="store_true", help="Skip the floor (quicker, for comparing changes).")
    parser.add_argument("--no-compile", action="store_true", help="Do not write the app's bytecode first.")
    args = parser.parse_args()
    if not args.no_compile:
        subprocess.run([sys.executable, "-m", "compileall", "-q", "app", "migrations"], cwd=harness.ROOT, check=True)
    print(f"bytecode {'not written' if args.no_compile else 'written'} first; one uvicorn worker; "
          f"median of {args.rounds} fresh runs; load average {os.getloadavg()[0]:.1f} at start")
    print(f"{'':<10}{'migrate empty DB':>18}{'first /healthz':>16}{'first search':>14}{'(CPU used)':>12}"
          f"{'RSS started':>13}{'RSS warm':>10}{'(private)':>11}{'threads':>9}{'errors':>8}{'warm-up rate':>14}")
    for backend in args.backends.split(","):
        runs = [await measure(backend, args.warm_requests, seed) for seed in range(args.rounds)]
        m = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        libs: dict[str, float] = {}
        for label, libraries in (("  floor", False), ("  +libs", True)):
            if args.no_floor:
                floors = [dict.fromkeys(runs[0], float("nan"))]
            else:
                floors = [await measure_floor(backend, args.warm_requests, libraries) for _ in range(args.rounds)]
            f = libs = {k: statistics.median(r[k] for r in floors) for k in floors[0]}
            print(f"{label:<10}{'':>18}{f['alive']:>14.2f} s{f['first_search']:>12.2f} s{f['cpu']:>10.2f} s"
                  f"{f['cold_rss']:>9.0f} MiB{f['warm_rss']:>6.0f} MiB{f['warm_private']:>7.0f} MiB{'':>9}{f['errors']:>8.0f}"
                  f"{f['rate']:>12.0f}/s")
        print(f"{backend:<10}{m['migrate']:>16.2f} s{m['alive']:>14.2f} s{m['first_search']:>12.2f} s{m['cpu']:>10.2f} s"
              f"{m['cold_rss']:>9.0f} MiB{m['warm_rss']:>6.0f} MiB{m['warm_private']:>7.0f} MiB{m['threads']:>9.0f}{m['errors']:>8.0f}"
              f"{m['rate']:>12.0f}/s")
        # The goal of issue 13: the app's own share, what the warm worker holds above the stack and its libraries.
        print(f"{'  share':<10}{'(the app above +libs)':>44}{'':>24}{m['cold_rss'] - libs['cold_rss']:>9.0f} MiB"
              f"{m['warm_rss'] - libs['warm_rss']:>6.0f} MiB{m['warm_private'] - libs['warm_private']:>7.0f} MiB")
    print("floor: bench/floor_app.py, the same stack (uvicorn, FastAPI, SQLAlchemy async, same driver) with one route "
          "running SELECT 1; its first answer is its first query. +libs: the same, importing the libraries the app "
          "needs to serve (python-jose with its cryptography backend, httpx, pydantic-settings, prometheus-client, "
          "PyYAML, argon2, orjson, python-multipart)")
    print("goals: migrate < 5 s, first answer < 1 s, warm worker's private memory < 100 MiB, its share above +libs "
          "<= 20 MiB "
          "(openIMIS side by side, 2026-12-07: 5.4 s to first answer, 247 MB a worker; 31 s to migrate, measured earlier)")


if __name__ == "__main__":
    asyncio.run(main())
