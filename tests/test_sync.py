"""Instance roles, the sync status an operator reads, the in-process relay of a standalone instance,
and the operators' commands (`guichet offices create` at central, `guichet relay`)."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from app.config import InstanceRole, Settings
from app.main import create_app
from app.models import ActivityEvent, MonitoringEvent
from helpers import assert_problem, household_body
from monitoring_support import Loopback, bound_socket

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("role, absent, present", [
    (InstanceRole.central, ["/api/v1/households", "/api/v1/persons", "/api/v1/sync/status"],
     ["/api/v1/monitoring/indicators/catalog", "/api/v1/offices"]),
    (InstanceRole.office, ["/api/v1/monitoring/indicators/catalog", "/api/v1/monitoring/offices"],
     ["/api/v1/households", "/api/v1/sync/status"]),
])
async def test_an_instance_serves_the_routes_of_its_role(app, settings, world, role, absent, present):
    other = create_app(settings.model_copy(update={"role": role}))
    other.state.engine, other.state.sessionmaker = app.state.engine, app.state.sessionmaker  # same database, no lifespan
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://x") as http:
        for path in absent:
            assert_problem(await http.get(path, headers=world.admin.headers), 404, "not-found")
        assert_problem(await http.post("/api/v1/monitoring/events", json={"events": []}), 404 if role is InstanceRole.office else 401)
        for path in present:
            assert (await http.get(path, headers=world.admin.headers)).status_code == 200, path


async def test_sync_status_is_for_supervisors_of_the_office_and_admins(client, world):
    path = "/api/v1/sync/status"
    assert_problem(await client.get(path), 401, "unauthenticated")
    for account in (world.clerk_a, world.monitor, world.partner):
        assert_problem(await client.get(path, headers=account.headers), 403, "forbidden")
    mine = (await client.get(path, headers=world.supervisor_b.headers)).json()
    assert [o["office_code"] for o in mine["offices"]] == ["SR-SSN"]
    every = (await client.get(path, headers=world.admin.headers)).json()
    assert {"SR-ACH", "SR-SSN"} <= {o["office_code"] for o in every["offices"]}
    assert every["relay_in_process"] is True and every["central_url"] is None  # the test instance: standalone, no relay
    parked = "/api/v1/sync/parked"
    assert_problem(await client.get(parked), 401, "unauthenticated")
    assert_problem(await client.get(parked, headers=world.clerk_b.headers), 403, "forbidden")
    assert_problem(await client.get(parked, headers=world.admin.headers, params={"limit": 0}), 422, "validation")
    assert_problem(await client.get(parked, headers=world.admin.headers, params={"limit": "many"}), 422, "validation")
    assert_problem(await client.get(parked, headers=world.admin.headers, params={"office": "SR ACH"}), 422, "validation")
    assert (await client.get(parked, headers=world.admin.headers, params={"office": "SR-ACH"})).json()["total"] == 0


async def test_a_standalone_instance_relays_to_its_own_central_routes_over_http(client, app, settings, world):
    """The default (`make run`): the in-process relay posts the outbox to the instance's own
    /monitoring/events over HTTP, so the real mechanism runs everywhere."""
    sock, url = bound_socket()
    standalone = create_app(settings.model_copy(update={"central_url": url, "relay_poll_seconds": 0.05}))
    assert standalone.state.settings.relay_in_process
    async with standalone.router.lifespan_context(standalone), Loopback(standalone, sock=sock):  # the relay starts here
        async with httpx.AsyncClient(base_url=url) as http:
            response = await http.post("/api/v1/households", json=household_body(members=3), headers=world.clerk_a.headers)
            assert response.status_code == 201
            for _ in range(200):
                status = (await http.get("/api/v1/sync/status", headers=world.supervisor_a.headers)).json()
                if status["offices"][0]["events_sent"] == 4 and status["offices"][0]["backlog"] == 0:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(status)
            assert status["central_url"] == url and status["relay_in_process"] is True
            indicators = await http.get("/api/v1/monitoring/indicators", headers=world.monitor.headers, params={
                "indicator": "persons_registered", "from": "2026-01-01", "to": "2026-12-31", "period": "quarter"})
            assert indicators.json()["rows"][0]["suppressed"] is True  # 3 persons, under k = 5
    async with app.state.sessionmaker() as session:
        outbox = (await session.execute(select(ActivityEvent.id))).scalars().all()
        central = (await session.execute(select(MonitoringEvent.id))).scalars().all()
    assert sorted(outbox) == sorted(central) and len(central) == 4


def guichet(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=60)
    return process.returncode, out.strip(), err.strip()


async def test_operators_commands(tmp_path):
    """Central set up as docs/operations.md says: `guichet db upgrade` (which brings the national
    gazetteer), then `guichet offices create` printing the relay's credentials. (`guichet relay --once`
    is run by the multi-process test; here: the error paths and the other commands.)"""
    url = f"sqlite+aiosqlite:///{tmp_path / 'central.db'}"
    central = {"GUICHET_ROLE": "central", "GUICHET_VAR_DIR": str(tmp_path), "GUICHET_DATABASE_URL": url}
    office = {**central, "GUICHET_ROLE": "office"}
    code, out, err = finished(guichet("db", "upgrade", env=central))
    assert code == 0 and "national gazetteer: 16465 locations added" in out, err
    running = {
        "create": guichet("offices", "create", "--code", "BB-BAN", "--name", "Banan", "--location", "0201", env=central),
        "missing": guichet("offices", "credentials", "--code", "NOPE", env=central),
        "no_url": guichet("relay", "--once", env=office),
        "rebuild": guichet("monitoring", "rebuild", env=central),
    }
    done = {name: finished(process) for name, process in running.items()}
    code, out, err = done["create"]
    assert code == 0, err
    lines = dict(line.strip().split("=", 1) for line in out.splitlines() if "=" in line)
    assert lines["GUICHET_RELAY_CLIENT_ID"] == "relay.bb-ban" and len(lines["GUICHET_RELAY_CLIENT_SECRET"]) >= 40
    assert done["missing"] == (1, "", "error: no office NOPE")
    assert done["no_url"] == (1, "", "error: GUICHET_CENTRAL_URL is not set")
    assert done["rebuild"][:2] == (0, "rebuilt the rollups from 0 events")
