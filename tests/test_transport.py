"""The transport, over real sockets to uvicorn on loopback: a request's body is read whole before anything
of the application runs, so a client that sends half a body holds a socket and nothing else (no database
connection, no SQLite write lock); the read timeout ends it with a 408; a client that leaves mid-body is
logged and counted as its own doing (499), not as a server error."""

import asyncio
import json
import uuid
from contextlib import asynccontextmanager

import httpx
from sqlalchemy import event, text

from helpers import db_rows
from monitoring_support import Loopback
from test_logs import captured_logs
from test_operations import value

from app.main import create_app
from app.models import IdempotencyKey
from app.vocabulary import Role

SUBMISSION = "/api/v1/applications/{}/submission"
HALF_SENT = 25


@asynccontextmanager
async def serving(settings, **changes):
    """The app with its own engine (the production pool size unless changed) on the test database,
    served by uvicorn on a loopback port; yields the app and the uvicorn server."""
    application = create_app(settings.model_copy(update={"relay_inprocess": False, "db_pool_size": 10, **changes}))
    async with application.router.lifespan_context(application):
        async with Loopback(application) as loopback:
            yield application, loopback


async def half_sent(url: str, path: str, token: str, **headers: str):
    """A POST that announces 100 bytes and sends one: `{`."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Authorization: Bearer {token}",
             "Content-Type: application/json", "Content-Length: 100", *(f"{k}: {v}" for k, v in headers.items())]
    writer.write(("\r\n".join(lines) + "\r\n\r\n{").encode())
    await writer.drain()
    return reader, writer


async def in_flight(loopback: Loopback, count: int) -> None:
    """Until the server has begun `count` requests (their headers read, their tasks started)."""
    async with asyncio.timeout(30):  # a guard against waiting forever, not a measure
        while len(loopback.server.server_state.tasks) < count:
            await asyncio.sleep(0.01)


def checkouts(application) -> list[int]:
    """A list that grows by one at each database connection the app's pool hands out."""
    taken: list[int] = []
    event.listen(application.state.engine.sync_engine.pool, "checkout", lambda *_: taken.append(1))
    return taken


async def test_half_sent_bodies_from_the_least_privileged_role_leave_other_clerks_searching(
        client, app, settings, world, make_account, backend):
    relay = await make_account(Role.relay, "SR-ACH")  # may post central's events, nothing in an office
    async with serving(settings, body_read_timeout_seconds=600) as (served, loopback):
        sockets = [await half_sent(loopback.url, SUBMISSION.format(uuid.uuid4()), relay.token, **{"Idempotency-Key": f"k{i}"})
                   for i in range(HALF_SENT)]
        await in_flight(loopback, HALF_SENT)
        # The pool holds 10 connections and 10 more in overflow: 25 requests holding one each would leave
        # none (PostgreSQL), and one holding SQLite's write lock would stop every other (GETs audit).
        async with httpx.AsyncClient(base_url=loopback.url, timeout=60) as http:
            searches = await asyncio.gather(*(http.get("/api/v1/households", params={"name": "Sok"}, headers=clerk.headers)
                                              for clerk in (world.clerk_a, world.clerk_b, world.supervisor_a)))
        assert [s.status_code for s in searches] == [200, 200, 200], [s.text for s in searches]
        assert len(loopback.server.server_state.tasks) >= HALF_SENT  # the half-sent requests still wait
        if backend == "postgres":
            async with app.state.sessionmaker() as session:
                waiting = (await session.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state LIKE 'idle in transaction%'"))).scalar_one()
            assert waiting == 0
        for _, writer in sockets:
            writer.close()
    assert await db_rows(app, IdempotencyKey) == []  # not one key was claimed


async def test_the_read_timeout_ends_half_sent_bodies_with_a_408_without_touching_the_database(
        client, app, settings, world, make_account):
    relay = await make_account(Role.relay, "SR-ACH")
    async with serving(settings, body_read_timeout_seconds=0.5) as (served, loopback):
        taken = checkouts(served)
        sockets = [await half_sent(loopback.url, SUBMISSION.format(uuid.uuid4()), relay.token, **{"Idempotency-Key": f"k{i}"})
                   for i in range(HALF_SENT)]
        async with asyncio.timeout(60):  # a guard: without a read timeout the server would never answer
            answers = await asyncio.gather(*(reader.read() for reader, _ in sockets))  # to the end: the server closes
        for _, writer in sockets:
            writer.close()
        assert taken == []  # not even the caller's lookup ran
    for raw in answers:
        head, _, body = raw.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode().split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in header_lines)
        assert status_line.startswith("HTTP/1.1 408 "), raw
        assert headers["content-type"] == "application/problem+json" and headers["connection"] == "close"
        assert headers["cache-control"] == "no-store"
        problem = json.loads(body)
        assert problem["type"] == "/problems/request-timeout" and problem["status"] == 408
        assert "did not arrive within 0.5 seconds" in problem["detail"]
        assert problem["request_id"] == headers["x-request-id"]
    assert await db_rows(app, IdempotencyKey) == []


async def test_a_client_leaving_mid_body_is_logged_and_counted_as_its_doing(client, settings, world):
    with captured_logs() as logs:
        async with serving(settings) as (served, loopback):
            async with httpx.AsyncClient(base_url=loopback.url) as http:
                before = (await http.get("/metrics")).text
                reader, writer = await half_sent(loopback.url, "/api/v1/households", world.clerk_a.token)
                await in_flight(loopback, 1)
                writer.close()
                await writer.wait_closed()
                async with asyncio.timeout(30):  # a guard against waiting forever
                    while loopback.server.server_state.tasks:
                        await asyncio.sleep(0.01)
                after = (await http.get("/metrics")).text
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert not [line for line in lines if line["level"] in ("ERROR", "CRITICAL") or "exc" in line]
    [access] = [line for line in lines if line["logger"] == "guichet.access" and line.get("method") == "POST"]
    assert access["status"] == 499 and access["route"] == "/api/v1/households"
    labels = {"method": "POST", "route": "/api/v1/households"}
    assert (value(after, "guichet_http_requests_total", **labels, status="499") or 0) == \
        (value(before, "guichet_http_requests_total", **labels, status="499") or 0) + 1
    assert value(after, "guichet_http_requests_total", **labels, status="500") == \
        value(before, "guichet_http_requests_total", **labels, status="500")
