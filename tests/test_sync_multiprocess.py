"""One central and two office instances as real servers on loopback, each with its own database and
keys, the offices' relays as their own processes. Offices register households and screen them; central
is stopped while they keep working; relays are SIGKILLed mid-batch, again and again; events are
replayed by hand. After each stage central's indicators equal the offices' own truth: nothing lost,
nothing counted twice.

With GUICHET_TEST_POSTGRES_URL set, central and office A run on PostgreSQL (FOR UPDATE SKIP LOCKED)
and office B on SQLite; without it, all three on SQLite."""

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.models import ActivityEvent
from app.services import locations, offices, users
from app.services.relay import envelope, relay_account
from app.vocabulary import Role
from conftest import POSTGRES_ADMIN_URL, create_postgres_database, drop_postgres_database, migrate
from helpers import household_body

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
OFFICES = {"SR-ACH": ("1701", "17010101"), "SR-SSN": ("1712", "17120101")}
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    """A `guichet ...` child process with its log in a file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path):
        self.name, self.args, self.env = name, args, env
        self.log = logs / f"{name}.log"
        self.popen: subprocess.Popen | None = None

    def start(self) -> "Process":
        handle = self.log.open("a")
        self.popen = subprocess.Popen([sys.executable, "-m", "app.cli", *self.args], cwd=ROOT, env={**os.environ, **self.env},
                                      stdout=handle, stderr=subprocess.STDOUT)
        handle.close()
        return self

    def kill(self, signum=signal.SIGKILL) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.send_signal(signum)
            self.popen.wait(timeout=15)

    def tail(self) -> str:
        return f"--- {self.name}\n" + "\n".join(self.log.read_text().splitlines()[-15:]) if self.log.exists() else ""


class SlowLink:
    """A TCP proxy between the relays and central that holds central's answers back a while (so that a
    relay can be killed after central stored a batch but before the relay heard so) and that, with
    central stopped, refuses connections like a dead link."""

    def __init__(self, upstream_port: int, delay: float):
        self.upstream_port, self.delay = upstream_port, delay

    async def start(self) -> "SlowLink":
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def _handle(self, reader, writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return

        async def pipe(src, dst, delay):
            try:
                while data := await src.read(65536):
                    if delay:
                        await asyncio.sleep(delay)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, 0), pipe(up_reader, writer, self.delay))

    async def stop(self) -> None:
        self.server.close()


async def prepare_office(url: str, code: str, var: Path) -> None:
    await migrate(url)
    engine = create_engine(Settings(database_url=url, var_dir=var))
    async with create_sessionmaker(engine)() as session, session.begin():
        await locations.load_national_gazetteer(session)
        await offices.create_office(session, None, code=code, name=code, location_code=OFFICES[code][0])
        for role in (Role.clerk, Role.supervisor):
            await users.create_user(session, None, username=f"{role}.{code.lower()}", password=PASSWORD, role=role,
                                    office_code=code)
    await engine.dispose()


async def prepare_central(url: str, var: Path) -> None:
    await migrate(url)
    engine = create_engine(Settings(database_url=url, var_dir=var))
    async with create_sessionmaker(engine)() as session, session.begin():
        await locations.load_national_gazetteer(session)
        await users.create_user(session, None, username="monitor", password=PASSWORD, role=Role.monitor)
    await engine.dispose()


async def register_offices(url: str, var: Path) -> dict[str, dict[str, str]]:
    engine = create_engine(Settings(database_url=url, var_dir=var))
    credentials = {}
    async with create_sessionmaker(engine)() as session, session.begin():
        for code, (location, _) in OFFICES.items():
            await offices.create_office(session, None, code=code, name=code, location_code=location)
            user, secret = await relay_account(session, code, new_secret=True)
            credentials[code] = {"GUICHET_RELAY_CLIENT_ID": user.username, "GUICHET_RELAY_CLIENT_SECRET": secret}
    await engine.dispose()
    return credentials


async def token(http: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await http.post("/api/v1/auth/token", data={"grant_type": "password", "username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def wait_until_up(url: str, process: Process, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=2) as http:
        while time.monotonic() < deadline:
            assert process.popen.poll() is None, process.tail()
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{process.name} did not start\n{process.tail()}")


async def outbox_rows(url: str, *, sent: bool, limit: int) -> list:
    engine = create_engine(Settings(database_url=url, var_dir=Path("/tmp")))
    table = ActivityEvent.__table__
    try:
        async with engine.connect() as connection:
            condition = table.c.sent_at.is_not(None) if sent else table.c.sent_at.is_(None)
            return (await connection.execute(select(table).where(condition).limit(limit))).all()
    finally:
        await engine.dispose()


async def scalar_rows(url: str, sql: str) -> list[tuple]:
    engine = create_engine(Settings(database_url=url, var_dir=Path("/tmp")))
    try:
        async with engine.connect() as connection:
            return [tuple(r) for r in await connection.execute(text(sql))]
    finally:
        await engine.dispose()


class Office:
    def __init__(self, code: str, url: str, env: dict[str, str], logs: Path):
        self.code, self.db = code, url
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.server = Process(f"office-{code}", ["serve", "--port", str(self.port)], env, logs)
        self.relays: list[Process] = []
        self.env, self.logs = env, logs

    def start_relay(self) -> Process:
        relay = Process(f"relay-{self.code}-{len(self.relays)}", ["relay"], self.env, self.logs).start()
        self.relays.append(relay)
        return relay

    @property
    def relay(self) -> Process:
        return self.relays[-1]

    async def work(self, households: int, screenings: int) -> None:
        """Clerks register households and screen some of them, four at a time."""
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as http:
            clerk = await token(http, f"clerk.{self.code.lower()}")
            gate = asyncio.Semaphore(4)

            async def one(i: int) -> None:
                async with gate:
                    body = household_body(members=1 + i % 4, village_code=OFFICES[self.code][1])
                    response = await http.post("/api/v1/households", json=body, headers=clerk)
                    assert response.status_code == 201, response.text
                    if i < screenings:
                        screened = await http.post(f"/api/v1/households/{response.json()['id']}/screenings", json={},
                                                   headers=clerk)
                        assert screened.status_code == 201, screened.text

            await asyncio.gather(*(one(i) for i in range(households)))

    async def status(self) -> dict:
        async with httpx.AsyncClient(base_url=self.base, timeout=10) as http:
            supervisor = await token(http, f"supervisor.{self.code.lower()}")
            body = (await http.get("/api/v1/sync/status", headers=supervisor)).json()
        return next(o for o in body["offices"] if o["office_code"] == self.code)

    async def in_flight(self) -> bool:
        """A relay holds a claim on some events (it is mid-batch)."""
        rows = await scalar_rows(self.db, "SELECT count(*) FROM activity_event WHERE sent_at IS NULL "
                                          "AND parked_at IS NULL AND claimed_until IS NOT NULL")
        return rows[0][0] > 0

    async def truth(self) -> dict:
        """What the office's own records say, independently of the events."""
        persons = await scalar_rows(self.db, "SELECT sex, count(*) FROM person GROUP BY sex")
        eligible = await scalar_rows(self.db, "SELECT scheme_code, count(*) FROM determination WHERE outcome = 'eligible' "
                                              "GROUP BY scheme_code")
        return {
            "households": (await scalar_rows(self.db, "SELECT count(*) FROM household"))[0][0],
            "persons": dict(persons),
            "screenings": (await scalar_rows(self.db, "SELECT count(*) FROM screening"))[0][0],
            "eligible": dict(eligible),
            "events": {str(uuid.UUID(str(r[0]))) for r in await scalar_rows(self.db, "SELECT id FROM activity_event "
                                                                                   "WHERE parked_at IS NULL")},
        }


async def wait_drained(*offices: Office, seconds: float = 40) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        statuses = [await o.status() for o in offices]
        if all(s["backlog"] == 0 for s in statuses):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not drained: {statuses}\n" + "\n".join(r.tail() for o in offices for r in o.relays[-1:]))


async def central_view(base: str) -> dict:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        monitor = await token(http, "monitor")

        async def cells(indicator: str, group_by: str) -> dict:
            response = await http.get("/api/v1/monitoring/indicators", headers=monitor, params={
                "indicator": indicator, "from": "2026-01-01", "to": "2026-12-31", "period": "quarter", "group_by": group_by})
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["suppressed"] == 0
            names = group_by.split(",")
            out: Counter = Counter()
            for row in body["rows"]:  # summed over quarters: the test may straddle one
                out[tuple(row[n] for n in names)] += row["value"]
            return out

        view = {"households": await cells("households_registered", "office"),
                "persons": await cells("persons_registered", "office,sex"),
                "clients": await cells("clients_served", "office"),
                "screenings": await cells("screenings", "office"),
                "eligible": await cells("eligible_determinations", "office,scheme")}
        view["offices"] = {o["office_code"]: o for o in (await http.get("/api/v1/monitoring/offices", headers=monitor)).json()["items"]}
        return view


async def assert_central_equals_truth(central_base: str, central_db: str, offices: list[Office]) -> dict:
    view = await central_view(central_base)
    stored = Counter(str(uuid.UUID(str(r[0]))) for r in await scalar_rows(central_db, "SELECT id FROM monitoring_event"))
    assert all(n == 1 for n in stored.values())
    every_event: set[str] = set()
    for office in offices:
        truth = await office.truth()
        every_event |= truth["events"]
        code = office.code
        assert view["households"][(code,)] == truth["households"], code
        assert {sex: n for (c, sex), n in view["persons"].items() if c == code} == truth["persons"], code
        assert view["screenings"].get((code,), 0) == truth["screenings"], code
        assert {scheme: n for (c, scheme), n in view["eligible"].items() if c == code} == truth["eligible"], code
        # Unique persons: every person here was registered in this test, whatever else happened to them.
        assert view["clients"][(code,)] == sum(truth["persons"].values()), code
        assert view["offices"][code]["events_received"] == len(truth["events"]), code
    assert set(stored) == every_event  # nothing lost, nothing extra
    return view


async def test_offices_report_to_central_through_outages_kills_and_replays(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    postgres = POSTGRES_ADMIN_URL is not None
    urls = {
        "central": await create_postgres_database() if postgres else f"sqlite+aiosqlite:///{tmp_path / 'central.db'}",
        "SR-ACH": await create_postgres_database() if postgres else f"sqlite+aiosqlite:///{tmp_path / 'ach.db'}",
        "SR-SSN": f"sqlite+aiosqlite:///{tmp_path / 'ssn.db'}",
    }
    processes: list[Process] = []
    link: SlowLink | None = None
    try:
        # One after the other: Alembic's context is process-global.
        await prepare_central(urls["central"], tmp_path / "central")
        for code in OFFICES:
            await prepare_office(urls[code], code, tmp_path / code)
        central_port = free_port()
        central_base = f"http://127.0.0.1:{central_port}"
        central_env = {"GUICHET_ROLE": "central", "GUICHET_DATABASE_URL": urls["central"],
                       "GUICHET_VAR_DIR": str(tmp_path / "central"), "GUICHET_SECRET_KEY": "central-" + "k" * 40,
                       "GUICHET_SMALL_CELL_K": "1", "GUICHET_LOG_LEVEL": "WARNING"}
        # Each office registered at central with its relay's client credentials (what `guichet offices
        # create` does and prints at central; that command is run in test_sync.py).
        credentials = await register_offices(urls["central"], tmp_path / "central")
        central = Process("central", ["serve", "--port", str(central_port)], central_env, logs)
        processes.append(central.start())
        link = await SlowLink(central_port, delay=0.1).start()
        offices_: list[Office] = []
        for code in OFFICES:
            env = {"GUICHET_ROLE": "office", "GUICHET_DATABASE_URL": urls[code], "GUICHET_VAR_DIR": str(tmp_path / code),
                   "GUICHET_SECRET_KEY": f"{code}-" + "s" * 40, "GUICHET_PSEUDONYM_KEY": f"{code}-pseudonyms",
                   "GUICHET_CENTRAL_URL": link.url, "GUICHET_RELAY_INPROCESS": "false", **credentials[code],
                   "GUICHET_RELAY_BATCH_SIZE": "25", "GUICHET_RELAY_LEASE_SECONDS": "2", "GUICHET_RELAY_POLL_SECONDS": "0.1",
                   "GUICHET_RELAY_BACKOFF_BASE_SECONDS": "0.2", "GUICHET_RELAY_BACKOFF_MAX_SECONDS": "1",
                   "GUICHET_RELAY_PROBE_MAX_SECONDS": "1",
                   "GUICHET_LOG_LEVEL": "WARNING"}
            office = Office(code, urls[code], env, logs)
            processes.append(office.server.start())
            offices_.append(office)
        await asyncio.gather(wait_until_up(central_base, central),
                             *(wait_until_up(o.base, o.server) for o in offices_))
        for office in offices_:
            processes.append(office.start_relay())

        # 1. Both offices work; central keeps up.
        await asyncio.gather(*(o.work(households=6, screenings=2) for o in offices_))
        await wait_drained(*offices_)
        await assert_central_equals_truth(central_base, urls["central"], offices_)

        # 2. Central goes down; the offices keep working, and a relay is killed while it waits.
        central.kill(signal.SIGTERM)
        await asyncio.gather(*(o.work(households=6, screenings=1) for o in offices_))
        await asyncio.sleep(0.5)
        for office in offices_:
            status = await office.status()
            assert status["backlog"] > 0 and status["last_error"].startswith("central unreachable"), status
        offices_[0].relay.kill()
        processes.append(offices_[0].start_relay())

        # 3. Central comes back; each relay is SIGKILLed mid-batch twice more and restarted.
        processes.append(central.start())
        await wait_until_up(central_base, central)
        kills = 0
        for _ in range(2):
            for office in offices_:
                deadline = time.monotonic() + 10
                while not await office.in_flight() and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                await asyncio.sleep(random.uniform(0, 0.2))  # before, during or after central's answer
                office.relay.kill()
                kills += 1
                processes.append(office.start_relay())
            await asyncio.gather(*(o.work(households=2, screenings=0) for o in offices_))
        assert kills == 4

        # 4. Replays by hand: an operator re-queues office A's sent events; another posts a batch of
        # office B's events straight to central with B's credentials. And a bad event at B is parked.
        replay = subprocess.run([sys.executable, "-m", "app.cli", "relay", "replay", "--office", "SR-ACH"], cwd=ROOT,
                                env={**os.environ, **offices_[0].env}, capture_output=True, text=True, timeout=60)
        assert replay.returncode == 0 and replay.stdout.endswith("events will be sent again\n"), replay.stderr
        async with httpx.AsyncClient(base_url=central_base) as http:
            grant = await http.post("/api/v1/auth/token", data={
                "grant_type": "client_credentials", "client_id": credentials["SR-SSN"]["GUICHET_RELAY_CLIENT_ID"],
                "client_secret": credentials["SR-SSN"]["GUICHET_RELAY_CLIENT_SECRET"]})
            relay_b = {"Authorization": f"Bearer {grant.json()['access_token']}"}
            by_hand = [envelope(row) for row in await outbox_rows(urls["SR-SSN"], sent=True, limit=50)]
            answer = (await http.post("/api/v1/monitoring/events", json={"events": by_hand}, headers=relay_b)).json()
            assert answer == {"accepted": 0, "duplicates": len(by_hand), "rejected": []}
        engine = create_engine(Settings(database_url=urls["SR-SSN"], var_dir=tmp_path))
        async with create_sessionmaker(engine)() as session, session.begin():
            session.add(ActivityEvent(type="household.teleported", office_code="SR-SSN", payload={"dimensions": {}}))
        await engine.dispose()

        await wait_drained(*offices_)
        view = await assert_central_equals_truth(central_base, urls["central"], offices_)
        assert view["offices"]["SR-ACH"]["duplicates_received"] > 0  # the replay, at least
        assert view["offices"]["SR-SSN"]["duplicates_received"] >= len(by_hand)
        parked = await offices_[1].status()
        assert parked["parked"] == 1 and parked["backlog"] == 0
    finally:
        for process in reversed(processes):
            process.kill(signal.SIGKILL)
        if link:
            await link.stop()
        if postgres:
            for name in ("central", "SR-ACH"):
                await drop_postgres_database(urls[name])
