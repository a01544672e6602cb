"""Shared plumbing for the benchmarks: a fresh PostgreSQL database, a real uvicorn server on a free
loopback port, a closed-loop load generator, and figures printed beside a floor from the same run.

Every benchmark compares against the floor (POST /api/v1/_bench/floor: the same app, middleware and
unit of work, one INSERT, no auth) measured in the same run, so a noisy machine still gives an
honest ratio."""

import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
SECRET_KEY = "bench-secret-key-" + "x" * 40
PSEUDONYM_KEY = "bench-pseudonym-key"


def admin_url() -> str:
    return os.environ.get("GUICHET_BENCH_POSTGRES_URL") or os.environ.get("GUICHET_TEST_POSTGRES_URL") or DEFAULT_ADMIN_URL


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def create_database(prefix: str = "guichet_bench") -> str:
    admin = make_url(admin_url())
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    return admin.set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str) -> None:
    engine = create_async_engine(make_url(admin_url()), isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    await engine.dispose()


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "GUICHET_DATABASE_URL": database_url,
        "GUICHET_SECRET_KEY": SECRET_KEY,
        "GUICHET_PSEUDONYM_KEY": PSEUDONYM_KEY,
        "GUICHET_BENCH_ENDPOINTS": "true",
        "GUICHET_LOG_LEVEL": "WARNING",
        "GUICHET_RELAY_INPROCESS": "false",
    })
    env.update(extra)
    return env


def migrate(database_url: str) -> float:
    """Migrate with the real CLI; returns the seconds it took."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "app.cli", "db", "upgrade"], cwd=ROOT, env=server_env(database_url),
                   check=True, capture_output=True)
    return time.perf_counter() - started


@dataclass
class World:
    """Offices and users made directly in the database; tokens minted with the app's own signer."""

    office_code: str
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}


async def seed_world(database_url: str, *, users: dict[str, tuple[str, str | None, str | None]] | None = None) -> World:
    """Gazetteer, offices SR-ACH and SR-SSN, and users (username -> (role, office, scheme))."""
    from app.config import Settings
    from app.db import create_engine, create_sessionmaker
    from app.models import Office, User
    from app.security import hash_password, issue_token
    from app.services import locations

    users = users or {"clerk": ("clerk", "SR-ACH", None), "admin": ("admin", None, None)}
    settings = Settings(database_url=database_url, secret_key=SECRET_KEY, pseudonym_key=PSEUDONYM_KEY,
                        var_dir=ROOT / "var" / "bench")
    engine = create_engine(settings)
    world = World(office_code="SR-ACH")
    async with create_sessionmaker(engine)() as session, session.begin():
        await locations.load_national_gazetteer(session)
        offices = {code: Office(code=code, name=code, location_code=loc) for code, loc in (("SR-ACH", "1701"), ("SR-SSN", "1712"))}
        session.add_all(offices.values())
        await session.flush()
        password_hash = await hash_password(secrets.token_urlsafe(12))
        created = []
        for username, (role, office, scheme) in users.items():
            user = User(username=username, password_hash=password_hash, role=role, scheme_code=scheme,
                        office_id=offices[office].id if office else None, tokens_valid_after=datetime(2020, 1, 1, tzinfo=UTC))
            session.add(user)
            created.append((username, user, office))
        await session.flush()
        for username, user, office in created:
            world.tokens[username] = issue_token(settings, subject=user.id, role=user.role, office=office,
                                                 scheme=user.scheme_code)[0]
    await engine.dispose()
    return world


@contextmanager
def server(database_url: str, *, workers: int = 1, **env: str):
    """A real uvicorn server (its own process) on a free port; yields (base_url, pid)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.asgi:app", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers), "--no-access-log", "--log-level", "warning"],
        cwd=ROOT, env=server_env(database_url, **env),
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base_url, process)
        yield base_url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_until_up(base_url: str, process: subprocess.Popen, timeout: float = 20) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=0.5).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("server did not come up")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Run:
    name: str
    latencies_ms: list[float]
    server_ms: list[float]
    seconds: float
    errors: int
    statuses: dict[int | str, int]  # HTTP status, or the client error's kind

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def pct(self, p: float, values: list[float] | None = None) -> float:
        values = sorted(values if values is not None else self.latencies_ms)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]

    def line(self) -> str:
        return (f"{self.name:<34} {self.rate:9.1f}/s  p50 {self.pct(50):7.2f} ms  p99 {self.pct(99):7.2f} ms  "
                f"server p50 {self.pct(50, self.server_ms):6.2f} ms  errors {self.errors}"
                + "".join(f" ({kind} {n})" for kind, n in self.statuses.items() if isinstance(kind, str)))


Request = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


async def load(name: str, base_url: str, request: Request, *, concurrency: int, total: int,
               expect: tuple[int, ...] = (200, 201)) -> Run:
    """Closed loop: `concurrency` clients each send their next request when the last one answers,
    until `total` requests are done. request(client, i) sends request number i."""
    counter = iter(range(total))
    latencies: list[float] = []
    server: list[float] = []
    statuses: dict[int | str, int] = {}
    errors = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        for i in counter:
            sent = time.perf_counter()
            try:
                response = await request(client, i)
            except httpx.HTTPError as exc:  # counted among the statuses by kind, so that a run says what failed
                errors += 1
                statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
                continue
            latencies.append((time.perf_counter() - sent) * 1000)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code not in expect:
                errors += 1
            timing = response.headers.get("server-timing", "")
            if "dur=" in timing:
                server.append(float(timing.split("dur=")[1].split(",")[0]))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return Run(name, latencies, server, seconds, errors, statuses)


async def floor(base_url: str, *, concurrency: int, total: int) -> Run:
    return await load("floor (1 INSERT, no auth)", base_url,
                      lambda client, i: client.post("/api/v1/_bench/floor"), concurrency=concurrency, total=total)


@asynccontextmanager
async def fresh_database(keep: bool = False):
    url = await create_database()
    try:
        yield url
    finally:
        if not keep:
            await drop_database(url)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
