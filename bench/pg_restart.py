"""PostgreSQL stopped and started again under load: requests fail fast with 503 problem+json while it is
away, the service recovers by itself, and every registration that was answered 201 is in the database.

    .venv/bin/python bench/pg_restart.py [--concurrency 16] [--before 5] [--outage 3] [--after 10]
                                         [--mode stop-start|restart]

Starts its own server (one uvicorn worker) on a fresh database, registers households (half the
requests) and searches them (the other half) with steady concurrency, and after --before seconds
stops the local cluster (`pg_ctlcluster --skip-systemctl-redirect <version> main stop --mode=fast`),
waits --outage seconds and starts it again (or `restart` in one step). Readiness is polled
throughout. Afterwards every household id the client got a 201 for is looked up in the database.

The cluster is shared with whoever else uses it (other test runs fail while it is down): keep the
outage to a few seconds. It is started again whatever happens (`pg_isready -h 127.0.0.1` after)."""

import argparse
import asyncio
import os
import random
import re
import statistics
import subprocess
import time
import uuid
from dataclasses import dataclass, field

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import harness
from registration import household

HANG_SECONDS = 10.0  # a request slower than this during the outage "hung" (the pool and connect timeouts are 5 s)


def cluster(action: str) -> float:
    """Run pg_ctlcluster on the local cluster; returns the seconds it took."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    mode = ["--mode=fast"] if action in ("stop", "restart") else []
    started = time.perf_counter()
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *mode, version, "main", action], check=True,
                   capture_output=True, timeout=120)
    return time.perf_counter() - started


def postgres_ready() -> bool:
    return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"], timeout=10).returncode == 0


def ensure_running() -> None:
    if not postgres_ready():
        cluster("start")


@dataclass
class Call:
    kind: str
    sent: float
    done: float
    status: int | None
    problem_type: str | None = None
    retry_after: str | None = None
    household_id: str | None = None
    error: str | None = None

    @property
    def seconds(self) -> float:
        return self.done - self.sent


@dataclass
class Outage:
    calls: list[Call] = field(default_factory=list)
    readiness: list[tuple[float, int | None]] = field(default_factory=list)
    down_at: float = 0.0  # the stop was issued
    up_at: float = 0.0  # the start (or restart) command returned: PostgreSQL accepts connections
    stop_seconds: float = 0.0
    start_seconds: float = 0.0
    acknowledged: int = 0
    found: int = 0
    rows: int = 0
    metrics: str = ""

    # ---- what it shows ----

    def failed(self) -> list[Call]:
        return [c for c in self.calls if c.status not in (200, 201)]

    def wrong_failures(self) -> list[Call]:
        """Failures that are not a 503 problem+json of type service-unavailable with Retry-After."""
        return [c for c in self.failed() if not (c.status == 503 and c.problem_type == "/problems/service-unavailable"
                                                  and c.retry_after)]

    def recovery_seconds(self) -> float | None:
        """From PostgreSQL accepting connections again to the first request sent after that answering 2xx."""
        ok = [c.done for c in self.calls if c.sent >= self.up_at and c.status in (200, 201)]
        return min(ok) - self.up_at if ok else None

    def last_failure_after_up(self) -> float | None:
        late = [c.done - self.up_at for c in self.failed() if c.done >= self.up_at]
        return max(late) if late else None

    def readiness_change(self, after: float, status: int) -> float | None:
        return next((t - after for t, s in self.readiness if t >= after and s == status), None)

    def report(self) -> list[str]:
        failed = self.failed()
        slow_failures = sorted(c.seconds for c in failed)
        statuses: dict[str, int] = {}
        for c in self.calls:
            key = str(c.status) if c.status else c.error or "?"
            statuses[key] = statuses.get(key, 0) + 1
        lines = [
            f"outage: stop took {self.stop_seconds:.2f} s, PostgreSQL down for {self.up_at - self.down_at:.2f} s "
            f"(start took {self.start_seconds:.2f} s)",
            f"requests: {len(self.calls)}  statuses: {dict(sorted(statuses.items()))}",
        ]
        if failed:
            lines.append(f"failed requests: {len(failed)}, answered in p50 {statistics.median(slow_failures) * 1000:.0f} ms, "
                         f"max {slow_failures[-1] * 1000:.0f} ms (hung: {sum(s > HANG_SECONDS for s in slow_failures)})")
        lines.append(f"failures that are not 503 problem+json with Retry-After: {len(self.wrong_failures())}")
        lines.append(f"slowest request of the whole run: {max(c.seconds for c in self.calls) * 1000:.0f} ms")
        recovery = self.recovery_seconds()
        lines.append(f"recovered: first success {recovery * 1000:.0f} ms after PostgreSQL was back; " if recovery is not None
                     else "NOT RECOVERED: no success after PostgreSQL was back; ")
        last = self.last_failure_after_up()
        lines[-1] += f"last failure {last * 1000:.0f} ms after" if last is not None else "no failure after it was back"
        not_ready = self.readiness_change(self.down_at, 503)
        ready = self.readiness_change(self.up_at, 200)
        lines.append(f"/readyz: 503 {not_ready * 1000:.0f} ms after the stop, " if not_ready is not None else "/readyz: never 503, ")
        lines[-1] += f"200 again {ready * 1000:.0f} ms after the start" if ready is not None else "never ready again"
        lines.append(f"writes: {self.acknowledged} answered 201, {self.found} of them in the database "
                     f"(lost: {self.acknowledged - self.found}); {self.rows} rows in all "
                     f"({self.rows - self.found} committed though the client got no 201)")
        causes = re.findall(r'^guichet_database_unavailable_total\{error="([^"]+)"\} (\S+)$', self.metrics, re.M)
        lines.append("503s by cause (server metrics): " + (", ".join(f"{e} {float(n):.0f}" for e, n in causes) or "none"))
        pool = [line for line in self.metrics.splitlines() if line.startswith("guichet_db_pool_checked_out ")]
        if pool:
            lines.append(f"pool connections checked out after the run: {float(pool[0].split()[1]):.0f}")
        return lines


async def run(*, concurrency: int = 16, before: float = 5.0, outage: float = 3.0, after: float = 10.0,
              mode: str = "stop-start", verbose: bool = True) -> Outage:
    result = Outage()
    ensure_running()
    async with harness.fresh_database() as url:
        harness.migrate(url)
        world = await harness.seed_world(url)
        with harness.server(url, GUICHET_LOG_LEVEL="ERROR") as (base_url, _pid):
            headers = world.headers("clerk")
            stop = asyncio.Event()
            counter = iter(range(10**9))
            run_id = random.randrange(10**6)

            async def register(client: httpx.AsyncClient) -> httpx.Response:
                return await client.post("/api/v1/households", json=household(run_id * 10**5 + next(counter)), headers=headers)

            async def search(client: httpx.AsyncClient) -> httpx.Response:
                return await client.get("/api/v1/households", params={"name": random.choice(["sok", "dar", "chan", "mey"]),
                                                                      "limit": 10}, headers=headers)

            async def worker(client: httpx.AsyncClient, n: int) -> None:
                rng = random.Random(n)
                while not stop.is_set():
                    kind = "register" if rng.random() < 0.5 else "search"
                    sent = time.perf_counter()
                    try:
                        response = await (register if kind == "register" else search)(client)
                    except httpx.HTTPError as exc:
                        result.calls.append(Call(kind, sent, time.perf_counter(), None, error=type(exc).__name__))
                        await asyncio.sleep(0.05)
                        continue
                    call = Call(kind, sent, time.perf_counter(), response.status_code)
                    if response.status_code == 201:
                        call.household_id = response.json()["id"]
                    elif response.status_code >= 400:
                        if response.headers.get("content-type", "").startswith("application/problem+json"):
                            call.problem_type = response.json().get("type")
                        call.retry_after = response.headers.get("retry-after")
                    result.calls.append(call)
                    if response.status_code == 503:
                        await asyncio.sleep(0.05)  # a client honouring Retry-After would wait longer; keep the pressure

            async def probe(client: httpx.AsyncClient) -> None:
                while not stop.is_set():
                    try:
                        status = (await client.get("/readyz")).status_code
                    except httpx.HTTPError:
                        status = None
                    result.readiness.append((time.perf_counter(), status))
                    await asyncio.sleep(0.1)

            limits = httpx.Limits(max_connections=concurrency + 2)
            async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
                tasks = [asyncio.create_task(worker(client, n)) for n in range(concurrency)]
                tasks.append(asyncio.create_task(probe(client)))
                try:
                    await asyncio.sleep(before)
                    result.down_at = time.perf_counter()
                    if mode == "restart":
                        result.stop_seconds = await asyncio.to_thread(cluster, "restart")
                    else:
                        result.stop_seconds = await asyncio.to_thread(cluster, "stop")
                        await asyncio.sleep(outage)
                        result.start_seconds = await asyncio.to_thread(cluster, "start")
                    result.up_at = time.perf_counter()
                    await asyncio.sleep(after)
                finally:
                    stop.set()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    await asyncio.to_thread(ensure_running)
                result.metrics = (await client.get("/metrics")).text
        acknowledged = [uuid.UUID(c.household_id) for c in result.calls if c.household_id]
        result.acknowledged = len(acknowledged)
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                result.found = (await connection.execute(text("SELECT count(*) FROM household WHERE id = ANY(:ids)"),
                                                         {"ids": acknowledged})).scalar_one()
                result.rows = (await connection.execute(text("SELECT count(*) FROM household"))).scalar_one()
        finally:
            await engine.dispose()
    if verbose:
        for line in result.report():
            print(line)
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--before", type=float, default=5.0, help="Seconds of load before the outage.")
    parser.add_argument("--outage", type=float, default=3.0, help="Seconds PostgreSQL stays stopped (stop-start).")
    parser.add_argument("--after", type=float, default=10.0, help="Seconds of load after PostgreSQL is back.")
    parser.add_argument("--mode", choices=["stop-start", "restart"], default="stop-start")
    args = parser.parse_args()
    print(f"PostgreSQL {args.mode} under load: 1 uvicorn worker, {args.concurrency} clients (registrations and searches)")
    try:
        await run(concurrency=args.concurrency, before=args.before, outage=args.outage, after=args.after, mode=args.mode)
    finally:
        ensure_running()
        print("pg_isready:", "accepting connections" if postgres_ready() else "NOT RUNNING")


if __name__ == "__main__":
    asyncio.run(main())
