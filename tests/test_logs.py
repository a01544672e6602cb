"""Structured logs: one JSON object per line with the request id, which also travels to partner schemes
and to central with the relay's posts; and no personal data in any log line, whatever the libraries
underneath log at DEBUG."""

import asyncio
import io
import json
import logging
import sys
from contextlib import contextmanager

import httpx
import uvicorn
from pydantic import SecretStr

from helpers import household_body
from monitoring_support import bound_socket
from partner_server import RunningPartner, create_partner_app, scheme_yaml

from app.context import request_id_var
from app.logs import DataLoggerFilter, JsonFormatter, configure_logging, traceback_without_messages
from app.main import create_app

TOKEN = "partner-secret"
TEST_CLIENT = "test-client"
# Every library that might log what passes through it, at its most talkative.
CHATTY = ("sqlalchemy.engine", "sqlalchemy.pool", "sqlalchemy.orm", "aiosqlite", "asyncpg", "httpx", "httpcore",
          "uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "guichet", "multipart", "python_multipart")

# Made-up, distinctive values: none of them can turn up in a log line by chance.
GIVEN, FAMILY = "Zephyrinthou", "Quillvaxa"
KHMER_GIVEN, KHMER_FAMILY = "វណ្ណារិទ្ធិ", "ឧកញ៉ាសុវណ្ណ"
NATIONAL_ID = "987650123"
PHONE = "+855 97 635 2418"
ADDRESS = "Phum Xyloquist"
BIRTH_DATE = "1979-02-23"
PERSONAL = [GIVEN, FAMILY, KHMER_GIVEN, KHMER_FAMILY, NATIONAL_ID, PHONE, "976352418", ADDRESS, BIRTH_DATE,
            GIVEN.lower(), FAMILY.lower()]


@contextmanager
def captured_logs():
    """The app's own logging set-up (JSON at the root logger) writing into a buffer, every library at DEBUG;
    everything put back afterwards."""
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    saved = {name: (lg.level, lg.handlers[:], lg.propagate, lg.disabled)
             for name in CHATTY for lg in [logging.getLogger(name)]}
    buffer = io.StringIO()
    configure_logging("DEBUG", stream=buffer)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.handlers[:], level = saved_root
        root.setLevel(level)
        for name, (level, handlers, propagate, disabled) in saved.items():
            lg = logging.getLogger(name)
            lg.setLevel(level)
            lg.handlers[:] = handlers
            lg.propagate, lg.disabled = propagate, disabled


def distinctive_household() -> dict:
    body = household_body(members=2)
    body["address"] = ADDRESS
    body["consent"]["given_by"] = f"{GIVEN} {FAMILY}"
    head, child = body["members"]
    head.update(given_name=GIVEN, family_name=FAMILY, national_id=NATIONAL_ID, phone=PHONE, birth_date=BIRTH_DATE,
                employment_status="unemployed")
    head.pop("birth_year", None)
    child.update(given_name=KHMER_GIVEN, family_name=KHMER_FAMILY)
    return body


async def until(predicate, what, seconds: float = 30.0):
    deadline = asyncio.get_running_loop().time() + seconds
    while not (result := await predicate()):
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what() if callable(what) else what}"
        await asyncio.sleep(0.05)
    return result


async def test_no_personal_data_in_any_log_line_and_the_request_id_travels(client, settings, world, tmp_path):
    async with RunningPartner(create_partner_app(token=TOKEN)) as partner:
        schemes = tmp_path / "schemes"
        schemes.mkdir()
        (schemes / "youth.yaml").write_text(scheme_yaml(partner.url))
        sock, url = bound_socket()
        # This instance relays its events to its own central routes (standalone), over HTTP.
        office = create_app(settings.model_copy(update={
            "schemes_path": str(schemes), "partner_tokens": {"KH-YOUTH-JOBS": SecretStr(TOKEN)},
            "central_url": url, "relay_inprocess": True, "relay_poll_seconds": 0.05,
            # Short: the events of a relay cycle that fails (on a busy machine, say) wait for their lease
            # to run out before they are sent again.
            "relay_lease_seconds": 4.0}))
        with captured_logs() as logs:
            server = uvicorn.Server(uvicorn.Config(office, log_config=None, log_level="debug", access_log=True,
                                                   lifespan="on", timeout_graceful_shutdown=1))
            task = asyncio.create_task(server.serve(sockets=[sock]))
            try:
                await until(lambda: asyncio.sleep(0, server.started or task.done()), "the server")
                if task.done():
                    task.result()  # start-up failed: say why
                # The test's own client logs its URLs (httpx at INFO), queries and all: its lines are told
                # apart by this id, which only the test's task carries. The server's tasks have their own.
                client_id = request_id_var.set(TEST_CLIENT)
                try:
                    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
                        await walk_through(http, world, partner)
                finally:
                    request_id_var.reset(client_id)
            finally:
                server.should_exit = True
                await task
                sock.close()
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    lines = [line for line in lines if not (line["request_id"] == TEST_CLIENT and line["logger"].startswith("http"))]
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    assert all(set(line) >= {"ts", "level", "logger", "msg", "request_id"} for line in lines)

    # The capture saw what each library logs: otherwise the absence below would prove nothing.
    by_logger = {line["logger"] for line in lines}
    assert {"guichet.access", "sqlalchemy.engine.Engine", "httpx", "uvicorn.error"} <= by_logger, by_logger
    assert any("INSERT INTO person" in line["msg"] for line in lines)
    assert any(line.get("route") == "/api/v1/households" and line.get("status") == 201
               and line["request_id"] == "ops-register" for line in lines)
    # The request id on the partner's call (its own log line here; the partner received it too, see walk_through).
    assert any(line["logger"] == "httpx" and "/eligibility" in line["msg"] and line["request_id"] == "ops-screen"
               for line in lines)
    # The relay's post and central's access line carry the same id.
    relayed = {line["request_id"] for line in lines if line.get("route") == "/api/v1/monitoring/events"}
    assert relayed and all(r.startswith("relay-") for r in relayed)
    assert relayed & {line["request_id"] for line in lines if line["logger"] == "httpx" and "monitoring/events" in line["msg"]}

    for value in PERSONAL:
        assert value not in text, f"{value!r} is in the logs: " + next(line for line in text.splitlines() if value in line)


async def walk_through(http: httpx.AsyncClient, world, partner) -> None:
    clerk = world.clerk_a.headers
    response = await http.post("/api/v1/households", json=distinctive_household(), headers=clerk | {"X-Request-ID": "ops-register"})
    assert response.status_code == 201, response.text
    household = response.json()
    head = household["members"][0]
    for path, params in (("/api/v1/households", {"name": GIVEN[:7]}), ("/api/v1/households", {"national_id": NATIONAL_ID}),
                         ("/api/v1/persons", {"name": FAMILY}), ("/api/v1/persons", {"name": KHMER_GIVEN})):
        found = await http.get(path, params=params, headers=clerk)
        assert found.status_code == 200 and found.json()["total"] == 1, (path, params, found.text)
    assert (await http.get(f"/api/v1/persons/{head['id']}", headers=clerk)).status_code == 200
    # Refusals that name the data: a registered national ID, an invalid phone, the same person again.
    again = distinctive_household()
    assert (await http.post("/api/v1/households", json=again, headers=clerk)).status_code == 409
    again["members"][0].update(national_id=None, phone=f"+855 {GIVEN}")
    assert (await http.post("/api/v1/households", json=again, headers=clerk)).status_code == 422
    etag = (await http.get(f"/api/v1/households/{household['id']}", headers=clerk)).headers["ETag"]
    response = await http.patch(f"/api/v1/households/{household['id']}", json={"address": f"{ADDRESS} II"},
                                headers=clerk | {"If-Match": etag})
    assert response.status_code == 200, response.text

    response = await http.post(f"/api/v1/households/{household['id']}/screenings", headers=clerk | {"X-Request-ID": "ops-screen"})
    assert response.status_code == 201, response.text
    assert {h["x-request-id"] for h, _ in partner.app.state.received} == {"ops-screen"}

    response = await http.post("/api/v1/cases", headers=clerk, json={
        "household_id": household["id"], "person_id": head["id"], "summary": f"{GIVEN} {FAMILY} asks about health cover"})
    assert response.status_code == 201, response.text
    case = response.json()
    response = await http.post(f"/api/v1/cases/{case['id']}/notes", headers=clerk,
                               json={"text": f"Call {GIVEN} back on {PHONE}", "confidential": True})
    assert response.status_code == 201, response.text
    response = await http.post(f"/api/v1/cases/{case['id']}/applications", headers=clerk, json={"scheme_code": "KH-HEF"})
    assert response.status_code == 201, response.text

    last = {}

    async def relayed():
        last.update((await http.get("/api/v1/sync/status", headers=world.supervisor_a.headers)).json())
        office = last["offices"][0] if last["offices"] else {}
        return office.get("backlog") == 0 and office.get("events_sent", 0) > 0

    await until(relayed, lambda: f"the relay to send everything (last status: {last})")


# ---- the guards themselves ----------------------------------------------------------------------------------


def test_a_traceback_keeps_its_frames_and_classes_but_not_the_messages():
    def fail():
        try:
            raise KeyError(f"person {GIVEN} {NATIONAL_ID}")
        except KeyError as exc:
            raise ValueError(f"Failing row contains ({FAMILY}, {PHONE})") from exc

    try:
        fail()
    except ValueError:
        record = logging.LogRecord("guichet.errors", logging.ERROR, __file__, 1, "unhandled error", None, sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert entry["exc_type"] == "ValueError" and entry["msg"] == "unhandled error"
    assert "KeyError (message withheld)" in entry["exc"] and "ValueError (message withheld)" in entry["exc"]
    assert "direct cause" in entry["exc"] and ", in fail" in entry["exc"]
    for value in (GIVEN, NATIONAL_ID, FAMILY, PHONE):
        assert value not in entry["exc"]
    # An exception group's members are named too.
    try:
        raise ExceptionGroup("group", [OSError(GIVEN)])
    except ExceptionGroup:
        text = traceback_without_messages(sys.exc_info())
    assert "OSError (message withheld)" in text and GIVEN not in text


def test_libraries_that_log_data_below_info_are_silenced_whatever_the_level():
    keep = DataLoggerFilter()

    def record(name, level):
        return logging.LogRecord(name, level, __file__, 1, "executing %s", (GIVEN,), None)

    assert not keep.filter(record("aiosqlite", logging.DEBUG))
    assert not keep.filter(record("sqlalchemy.engine.Engine", logging.DEBUG))  # result rows
    assert keep.filter(record("sqlalchemy.engine.Engine", logging.INFO))  # statements, parameters hidden
    assert keep.filter(record("httpx", logging.DEBUG)) and keep.filter(record("guichet.relay", logging.DEBUG))
