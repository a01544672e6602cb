"""Operations: /healthz, /readyz with the relay's state, and Prometheus metrics at /metrics (request
counts and latency by route template, pool use, outbox backlog, partner calls and circuits, database
outages), including several workers sharing their counts (prometheus_client multiprocess mode)."""

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from pydantic import SecretStr
import pytest
from prometheus_client import REGISTRY

from helpers import household_body, register
from monitoring_support import Loopback, closed_port_url
from test_schemes_http import partner_scheme, request_for, member
from partner_server import RunningPartner, create_partner_app

from app import metrics
from app.config import InstanceRole
from app.main import create_app
from app.services.relay import Relay

ROOT = Path(__file__).resolve().parent.parent
HOUSEHOLDS = "/api/v1/households"


def samples(text: str) -> dict[str, float]:
    """The exposition as {'name{labels}': value}."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    wanted = {f'{k}="{v}"' for k, v in labels.items()}
    for key, number in samples(text).items():
        metric, _, rest = key.partition("{")
        if metric == name and wanted <= set(re.findall(r'\w+="[^"]*"', rest)):
            return number
    return None


async def scrape(http: httpx.AsyncClient, **kwargs) -> str:
    response = await http.get("/metrics", **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def _with_app(settings, **changes):
    application = create_app(settings.model_copy(update=changes))
    async with application.router.lifespan_context(application):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://guichet.test") as http:
            http.application = application
            yield http


# ---- health and readiness ---------------------------------------------------------------------------------


async def test_readiness_reports_the_relay_but_central_down_never_makes_an_office_unready(client, app, settings, world):
    ready = (await client.get("/readyz")).json()
    assert ready["relay"] == {"backlog": 0, "oldest_unsent_at": None, "oldest_unsent_age_seconds": None, "parked": 0,
                              "last_success_at": None, "last_error_at": None, "last_error": None}
    await register(client, world.clerk_a)
    ready = (await client.get("/readyz")).json()
    assert ready["relay"]["backlog"] == 3 and ready["relay"]["oldest_unsent_at"] is not None  # household + 2 persons
    assert 0 <= ready["relay"]["oldest_unsent_age_seconds"] < 60

    # Central unreachable: the relay records its error; the office stays ready (it goes on serving clients).
    worker = Relay(settings.model_copy(update={"central_url": closed_port_url()}), app.state.sessionmaker)
    try:
        assert await worker.cycle() == (3, False)
    finally:
        await worker.aclose()
    response = await client.get("/readyz")
    assert response.status_code == 200 and response.json()["status"] == "ready"
    relay = response.json()["relay"]
    assert relay["backlog"] == 3 and relay["last_error"].startswith("central unreachable: ConnectError")
    assert relay["last_error_at"] is not None and relay["last_success_at"] is None

    # Central back: the backlog drains, and readiness says when it last succeeded.
    async with app.state.sessionmaker() as session, session.begin():
        from sqlalchemy import update

        from app.models import ActivityEvent
        from app.models.base import utcnow
        await session.execute(update(ActivityEvent).values(next_attempt_at=utcnow()))  # skip the backoff
    async with Loopback(app) as central:
        worker = Relay(settings.model_copy(update={"central_url": central.url}), app.state.sessionmaker)
        try:
            assert await worker.drain() == 3
        finally:
            await worker.aclose()
    relay = (await client.get("/readyz")).json()["relay"]
    assert (relay["backlog"], relay["oldest_unsent_at"], relay["parked"]) == (0, None, 0)
    assert relay["last_success_at"] is not None


async def test_a_central_instance_has_no_relay_to_report(settings, world):
    async for http in _with_app(settings, role=InstanceRole.central):
        response = await http.get("/readyz")
        assert response.status_code == 200 and "relay" not in response.json()
        text = await scrape(http)
        assert value(text, "guichet_info", role="central") == 1
        assert "guichet_outbox_backlog" not in text


# ---- metrics ------------------------------------------------------------------------------------------------


async def test_requests_are_counted_by_route_template_never_by_url(client, world):
    before = await scrape(client)
    labels = {"method": "GET", "route": "/api/v1/households/{household_id}", "status": "200"}
    count_before = value(before, "guichet_http_requests_total", **labels) or 0
    household = await register(client, world.clerk_a)
    for _ in range(3):
        assert (await client.get(f"{HOUSEHOLDS}/{household['id']}", headers=world.clerk_a.headers)).status_code == 200
    name = household["members"][0]["given_name"]
    searched = await client.get(HOUSEHOLDS, params={"name": name, "national_id": household["members"][0]["national_id"]},
                                headers=world.clerk_a.headers)
    assert searched.json()["total"] == 1
    assert (await client.get("/no/such/path")).status_code == 404
    text = await scrape(client)
    assert value(text, "guichet_http_requests_total", **labels) == count_before + 3
    assert value(text, "guichet_http_request_duration_seconds_count", **labels) == count_before + 3
    assert value(text, "guichet_http_request_duration_seconds_bucket", **labels, le="+Inf") == count_before + 3
    assert value(text, "guichet_http_requests_total", method="POST", route=HOUSEHOLDS, status="201") >= 1
    assert value(text, "guichet_http_requests_total", method="GET", route="(unmatched)", status="404") >= 1
    # No URL, query or record id in any label: only templates.
    assert name not in text and household["members"][0]["national_id"] not in text and household["id"] not in text
    routes = set(re.findall(r'route="([^"]*)"', text))
    assert routes and all(r == "(unmatched)" or (r.startswith("/") and "?" not in r) for r in routes), routes


async def test_outbox_backlog_pool_and_database_gauges(client, app, world):
    text = await scrape(client)
    assert value(text, "guichet_database_up") == 1
    assert value(text, "guichet_db_pool_size") >= 25 and value(text, "guichet_db_pool_checked_out") is not None
    await register(client, world.clerk_a)
    await register(client, world.clerk_b, household_body(village_code="17120101"))
    text = await scrape(client)
    assert value(text, "guichet_outbox_backlog", office="SR-ACH") == 3
    assert value(text, "guichet_outbox_backlog", office="SR-SSN") == 3
    assert 0 <= value(text, "guichet_outbox_oldest_unsent_age_seconds", office="SR-ACH") < 60
    assert value(text, "guichet_outbox_parked", office="SR-ACH") == 0
    # Every connection the requests took went back: this app's share of the gauge does not drift (other
    # engines of the test process, with workers of their own, may hold one at the moment of the scrape).
    # A registration wakes background work (the relay, DCI notifications) that may hold a connection for a
    # moment: the share must come back to 0, not stay up.
    for _ in range(100):
        if metrics.connections_in_use(app.state.engine) == 0:
            break
        await asyncio.sleep(0.05)
    assert metrics.connections_in_use(app.state.engine) == 0
    assert value(text, "guichet_db_pool_checked_out") >= 0


async def test_a_database_outage_is_counted_and_scrapes_still_answer(settings, tmp_path, world):
    async for http in _with_app(settings, database_url=f"sqlite+aiosqlite:///{tmp_path}/missing/dir/guichet.db"):
        before = REGISTRY.get_sample_value("guichet_database_unavailable_total", {"error": "OperationalError"}) or 0
        assert (await http.get(HOUSEHOLDS, headers=world.clerk_a.headers)).status_code == 503
        text = await scrape(http)
        assert value(text, "guichet_database_up") == 0
        # A checkout that failed to connect took no connection (though the pool fires a checkin for it).
        assert metrics.connections_in_use(http.application.state.engine) == 0
        assert value(text, "guichet_database_unavailable_total", error="OperationalError") == before + 1
        assert value(text, "guichet_http_requests_total", method="GET", route=HOUSEHOLDS, status="503") >= 1


async def test_partner_calls_errors_and_circuit_state():
    def sample(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0

    async with RunningPartner(create_partner_app(token="partner-secret")) as partner:
        adapter = partner_scheme(partner.url, code="KH-OPS-OK")
        await adapter.check(request_for([member()]))
        await adapter.aclose()
    assert sample("guichet_scheme_call_duration_seconds_count", scheme="KH-OPS-OK", outcome="ok") == 1
    assert sample("guichet_scheme_circuit_state", scheme="KH-OPS-OK") == 0

    adapter = partner_scheme(closed_port_url() + "/eligibility", code="KH-OPS-DOWN", failures=2)
    for _ in range(3):  # two failures open the circuit; the third call is refused without calling
        await adapter.check(request_for([member()]))
    await adapter.aclose()
    assert sample("guichet_scheme_call_errors_total", scheme="KH-OPS-DOWN", reason="connect") == 2
    assert sample("guichet_scheme_call_errors_total", scheme="KH-OPS-DOWN", reason="circuit_open") == 1
    assert sample("guichet_scheme_call_duration_seconds_count", scheme="KH-OPS-DOWN", outcome="error") == 2
    assert sample("guichet_scheme_circuit_state", scheme="KH-OPS-DOWN") == 2


async def test_who_may_read_the_metrics(settings, world):
    async for http in _with_app(settings, metrics_token=SecretStr("scrape-token-0123456789")):
        for headers in ({}, {"Authorization": "Bearer wrong"}, world.admin.headers):
            response = await http.get("/metrics", headers=headers)
            assert response.status_code == 401 and response.headers["content-type"] == "application/problem+json"
        assert "guichet_http_requests_total" in await scrape(http, headers={"Authorization": "Bearer scrape-token-0123456789"})
    async for http in _with_app(settings, metrics_enabled=False):
        assert (await http.get("/metrics")).status_code == 404
    async for http in _with_app(settings):
        assert (await http.get("/openapi.json")).json()["paths"].get("/metrics") is None  # not an API endpoint


@pytest.mark.slow
def test_several_workers_share_their_counts_and_log_json(tmp_path):
    """`guichet serve --workers 2`: whichever worker answers a scrape reports every worker's requests,
    and each worker logs JSON lines (spawned workers configure logging themselves)."""
    database = tmp_path / "guichet.db"
    env = {**os.environ, "GUICHET_DATABASE_URL": f"sqlite+aiosqlite:///{database}", "GUICHET_VAR_DIR": str(tmp_path / "var"),
           "GUICHET_SECRET_KEY": "k" * 40, "GUICHET_PSEUDONYM_KEY": "p" * 20, "GUICHET_LOG_LEVEL": "INFO",
           "GUICHET_RELAY_INPROCESS": "false"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # No migration: requests and scrapes are counted with or without a schema (the scrape then says the
    # database is not up), and starting two workers is slow enough.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    stderr = tmp_path / "stderr.log"
    with stderr.open("w") as err:
        server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "2"],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, stderr.read_text()
            time.sleep(0.1)
        for _ in range(30):  # a new connection each, so that both workers answer some
            assert httpx.get(f"{base}/healthz", headers={"Connection": "close"}).status_code == 200
        shared = tmp_path / "var" / "prometheus"  # made by `guichet serve` for its workers
        assert len(list(shared.glob("gauge_livesum_*.db"))) == 2
        counts = set()
        for _ in range(6):  # whichever worker answers, the count is the total
            text = httpx.get(f"{base}/metrics", headers={"Connection": "close"}).text
            counts.add(value(text, "guichet_http_requests_total", method="GET", route="/healthz", status="200"))
            assert value(text, "guichet_db_pool_size") == 6  # two workers' SQLite pools of 3, summed
        answered = [json.loads(line) for line in stderr.read_text().splitlines() if '"route": "/healthz"' in line]
        assert counts == {len(answered)} and len(answered) >= 31
    finally:
        server.terminate()
        server.wait(timeout=15)
    lines = [line for line in stderr.read_text().splitlines() if line.startswith("{")]
    access = [json.loads(line) for line in lines if '"guichet.access"' in line]
    assert len(access) >= 36 and all(entry["request_id"] and entry["route"] for entry in access)


def test_a_database_that_is_gone_or_going_is_503_not_500():
    """asyncpg reports a shutting-down or starting PostgreSQL (57P01-57P03), a lost connection (class 08)
    and too many connections (53300) as plain database errors: they are outages (503), unlike a bug."""
    from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

    from app.errors import database_unavailable

    class Orig(Exception):
        def __init__(self, sqlstate):
            self.sqlstate = sqlstate

    def error(sqlstate, cls=DBAPIError):
        return cls("SELECT 1", {}, Orig(sqlstate))

    for sqlstate in ("57P01", "57P02", "57P03", "08006", "08003", "08001", "53300"):
        assert database_unavailable(error(sqlstate)), sqlstate
    assert database_unavailable(error(None, OperationalError)) and database_unavailable(error(None, InterfaceError))
    assert database_unavailable(ConnectionRefusedError()) and database_unavailable(TimeoutError())
    for sqlstate in ("23505", "22021", "42P01", "40001", None):
        assert not database_unavailable(error(sqlstate)), sqlstate
    assert not database_unavailable(error("23505", IntegrityError)) and not database_unavailable(ValueError())


def test_the_asgi_module_leaves_the_collector_on_with_the_start_up_objects_frozen(tmp_path):
    """app.asgi turns the garbage collector off while it imports and builds the app; a server left with it
    off would never free a reference cycle."""
    env = {**os.environ, "GUICHET_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'guichet.db'}",
           "GUICHET_SECRET_KEY": "k" * 40, "GUICHET_PSEUDONYM_KEY": "p" * 20, "GUICHET_RELAY_INPROCESS": "false"}
    code = "import gc, app.asgi; print(gc.isenabled(), gc.get_freeze_count() > 10_000)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]
