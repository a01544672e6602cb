"""The relay against central served on loopback: it delivers the outbox, survives being killed (the
lease), backs off when central is away, parks what central refuses without blocking the rest, and
renews its token. The central routes here are the test app's own (a standalone instance)."""

import asyncio
import contextlib
import json
import logging
import uuid
from datetime import timedelta

import pytest
from pydantic import SecretStr
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select, update

from app.config import InstanceRole, Settings
from app.models import ActivityEvent, MonitoringEvent, RelayStatus, User
from app.models.base import utcnow
from app.services import relay as relay_service
from app.services.relay import Relay, backoff, claim
from helpers import household_body
from monitoring_support import Loopback, bound_socket, closed_port_url, person_dims, pseudonym

SSN_VILLAGE = "17120101"


@pytest.fixture
def k1(settings, monkeypatch):
    monkeypatch.setattr(settings, "small_cell_k", 1)


def relay_settings(settings, url, **changes):
    return settings.model_copy(update={"central_url": url, "relay_backoff_base_seconds": 2.0, "relay_lease_seconds": 30.0,
                                       **changes})


async def register(client, account, n, *, members=2, village="17010101"):
    for _ in range(n):
        response = await client.post("/api/v1/households", json=household_body(members=members, village_code=village),
                                     headers=account.headers)
        assert response.status_code == 201, response.text


async def outbox(app, **where):
    async with app.state.sessionmaker() as session:
        query = select(ActivityEvent)
        for column, value in where.items():
            column = getattr(ActivityEvent, column)
            query = query.where(column.is_(None) if value is None else column.is_not(None) if value is ... else column == value)
        return (await session.execute(query)).scalars().all()


async def central_ids(app) -> list[str]:
    async with app.state.sessionmaker() as session:
        return sorted(str(i) for i in (await session.execute(select(MonitoringEvent.id))).scalars())


def add_outbox(app_session, *, event_type="person.registered", office="SR-ACH", payload=None, version=1):
    event = ActivityEvent(type=event_type, schema_version=version, office_code=office,
                          payload=payload or {"person": pseudonym(), "dimensions": person_dims()})
    app_session.add(event)
    return event


async def indicator(client, world, name, **params):
    response = await client.get("/api/v1/monitoring/indicators", headers=world.monitor.headers,
                                params={"indicator": name, "from": "2026-01-01", "to": "2026-12-31", "period": "quarter", **params})
    assert response.status_code == 200, response.text
    return {tuple(v for k, v in row.items() if k not in ("period_start", "value", "suppressed")): row["value"]
            for row in response.json()["rows"]}


async def test_the_relay_delivers_the_outbox_and_central_equals_the_offices_truth(client, app, settings, world, k1):
    await register(client, world.clerk_a, 3)
    await register(client, world.clerk_b, 2, members=3, village=SSN_VILLAGE)
    events = await outbox(app)
    assert len(events) == 3 * 3 + 2 * 4
    async with Loopback(app) as central:
        worker = Relay(relay_settings(settings, central.url), app.state.sessionmaker)
        try:
            assert await worker.drain() == len(events)
            assert await worker.drain() == 0
        finally:
            await worker.aclose()
    assert await outbox(app, sent_at=None) == []
    assert await central_ids(app) == sorted(str(e.id) for e in events)
    by_office = await indicator(client, world, "households_registered", group_by="office")
    assert by_office == {("2026-Q4", "SR-ACH"): 3, ("2026-Q4", "SR-SSN"): 2}
    assert await indicator(client, world, "persons_registered", group_by="office") == {
        ("2026-Q4", "SR-ACH"): 6, ("2026-Q4", "SR-SSN"): 6}
    status = (await client.get("/api/v1/sync/status", headers=world.supervisor_a.headers)).json()
    assert [o["office_code"] for o in status["offices"]] == ["SR-ACH"]
    mine = status["offices"][0]
    assert (mine["backlog"], mine["parked"], mine["events_sent"], mine["oldest_unsent_at"]) == (0, 0, 9, None)
    assert mine["last_success_at"] is not None and mine["last_error"] is None


async def test_a_relay_killed_after_its_claim_or_its_post_loses_nothing_and_counts_nothing_twice(client, app, settings, world, k1):
    await register(client, world.clerk_a, 4)
    async with Loopback(app) as central:
        config = relay_settings(settings, central.url, relay_batch_size=5)
        worker = Relay(config, app.state.sessionmaker)
        try:
            # Killed right after claiming: the claim holds a lease; nobody else takes those events.
            async with app.state.sessionmaker() as session, session.begin():
                lost = await claim(session, limit=5, lease=timedelta(seconds=30))
            assert len(lost) == 5
            async with app.state.sessionmaker() as session, session.begin():
                others = await claim(session, limit=100, lease=timedelta(seconds=30))
            assert {e.id for e in others}.isdisjoint({e.id for e in lost}) and len(others) == 7
            # Killed after central stored a batch but before marking it sent.
            outcome = relay_service.BatchResult([], [], [])
            await worker._send("SR-ACH", others, outcome)
            assert len(outcome.sent) == 7 and await outbox(app, sent_at=...) == []
            # The leases run out; everything is claimed and sent again.
            async with app.state.sessionmaker() as session, session.begin():
                await session.execute(update(ActivityEvent).values(claimed_until=utcnow() - timedelta(seconds=1)))
            assert await worker.drain() == 12
        finally:
            await worker.aclose()
    assert len(await outbox(app, sent_at=...)) == 12
    assert len(await central_ids(app)) == 12
    assert await indicator(client, world, "persons_registered") == {("2026-Q4",): 8}
    offices = (await client.get("/api/v1/monitoring/offices", headers=world.monitor.headers)).json()["items"]
    assert {o["office_code"]: o["duplicates_received"] for o in offices}["SR-ACH"] == 7


async def test_refused_events_are_parked_with_centrals_reason_and_never_block_the_others(client, app, settings, world):
    async with app.state.sessionmaker() as session, session.begin():
        first = add_outbox(session)
        unknown = add_outbox(session, event_type="household.teleported")
        personal = add_outbox(session, payload={"person": pseudonym(), "dimensions": person_dims(), "phone": "+85512345678"})
        last = add_outbox(session)
    async with Loopback(app) as central:
        worker = Relay(relay_settings(settings, central.url), app.state.sessionmaker)
        try:
            assert await worker.drain() == 4
        finally:
            await worker.aclose()
    assert {str(e.id) for e in await outbox(app, sent_at=...)} == {str(first.id), str(last.id)}
    parked = (await client.get("/api/v1/sync/parked", headers=world.supervisor_a.headers)).json()
    assert parked["total"] == 2
    reasons = {item["id"]: item["park_reason"] for item in parked["items"]}
    assert reasons[str(unknown.id)] == "central refused it: unknown event type or schema version: household.teleported v1"
    assert "payload.phone is personal data" in reasons[str(personal.id)]
    status = (await client.get("/api/v1/sync/status", headers=world.admin.headers)).json()
    ach = next(o for o in status["offices"] if o["office_code"] == "SR-ACH")
    assert (ach["parked"], ach["backlog"], ach["events_sent"]) == (2, 0, 2)
    # Another office's supervisor sees none of it.
    assert (await client.get("/api/v1/sync/parked", headers=world.supervisor_b.headers)).json()["total"] == 0
    # Requeued after a fix at central (here: no fix, so they are parked again).
    async with app.state.sessionmaker() as session, session.begin():
        assert await relay_service.replay(session, office_code="SR-ACH", since=None, until=None, parked=True) == 2
    assert len(await outbox(app, parked_at=None, sent_at=None)) == 2


async def test_an_unreachable_central_means_waiting_not_loss(client, app, settings, world):
    await register(client, world.clerk_a, 1)
    worker = Relay(relay_settings(settings, closed_port_url()), app.state.sessionmaker)
    try:
        handled, reachable = await worker.cycle()
        assert (handled, reachable) == (3, False)
        # Not the events' fault: they are due again at once, for whenever the relay next tries central.
        assert await worker.cycle() == (3, False)
    finally:
        await worker.aclose()
    events = await outbox(app, sent_at=None)
    assert len(events) == 3 and all(e.attempts == 2 and e.claimed_until is None and e.parked_at is None for e in events)
    assert all(e.next_attempt_at <= utcnow() for e in events)
    async with app.state.sessionmaker() as session:
        status = await session.get(RelayStatus, "SR-ACH")
    assert status.last_error.startswith("central unreachable: ConnectError") and status.last_success_at is None
    assert status.events_sent == 0
    body = (await client.get("/api/v1/sync/status", headers=world.supervisor_a.headers)).json()["offices"][0]
    assert body["backlog"] == 3 and body["oldest_unsent_at"] is not None and body["last_error"].startswith("central unreachable")


@contextlib.asynccontextmanager
async def relay_running(worker: Relay):
    """The relay's own loop (`guichet relay`, or in the server) as a task, stopped on leaving."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield
    finally:
        stop.set()
        await task
        await worker.aclose()


async def until(condition, what: str, *, seconds: float = 60.0):
    """Wait for `await condition()`. The limit only keeps a broken relay from hanging the suite; what the
    tests assert is the relay's own schedule, not how long this took."""
    for _ in range(int(seconds / 0.01)):
        if await condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"gave up waiting for {what}")


def failed_attempts(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "guichet.relay" and r.msg.startswith("relay attempt %d failed")]


async def test_central_back_after_an_outage_gets_the_backlog_at_the_next_probe(client, app, settings, world, caplog):
    """Central down (nothing listens on its port), then back on the same port. Meanwhile the relay probes
    at intervals that grow but never exceed RELAY_PROBE_MAX_SECONDS, its events keep their place (no
    backoff of their own), and the first probe after central's return sends the whole backlog."""
    caplog.set_level(logging.INFO, logger="guichet.relay")
    await register(client, world.clerk_a, 5)
    sock, url = bound_socket()  # central's address, where nothing answers yet
    cap = 0.2
    worker = Relay(relay_settings(settings, url, relay_backoff_base_seconds=0.01, relay_probe_max_seconds=cap,
                                  relay_poll_seconds=0.05), app.state.sessionmaker)

    async def attempted_nine_times() -> bool:
        async with app.state.sessionmaker() as session:
            return (await session.execute(select(func.max(ActivityEvent.attempts)))).scalar_one() >= 9

    async def drained() -> bool:
        return not await outbox(app, sent_at=None)

    async with relay_running(worker):
        await until(attempted_nine_times, "nine failed attempts")
        waiting = await outbox(app, sent_at=None)
        resting = [e for e in waiting if e.claimed_until is None]  # all but the probe's event, if one is out
        assert len(waiting) == 15 and len(resting) >= 14 and all(e.parked_at is None for e in waiting)
        assert all(e.next_attempt_at <= utcnow() for e in resting)  # due: they wait for the relay, not a backoff of their own
        async with Loopback(app, sock=sock):
            failed_while_down = len(failed_attempts(caplog))
            await until(drained, "the backlog to drain")
            failed_after_return = len(failed_attempts(caplog)) - failed_while_down
    assert failed_after_return <= 1  # at most a probe already on its way as central came back
    delays = [r.args[2] for r in failed_attempts(caplog)]
    assert len(delays) >= 8 and all(0 < d <= cap for d in delays)
    assert max(delays[6:]) > cap / 2  # it did grow to the cap (equal jitter: at least half of it)
    assert await central_ids(app) == sorted(str(e.id) for e in waiting)


async def test_a_probe_of_a_central_behind_a_proxy_answering_503_carries_one_event(client, app, settings, world):
    async with app.state.sessionmaker() as session, session.begin():
        for _ in range(6):
            add_outbox(session)
    faulty, sizes = faulty_central(set(), status_for_all=503)

    async def six_attempts() -> bool:
        return len(sizes) >= 6

    async with Loopback(faulty) as central:
        worker = Relay(relay_settings(settings, central.url, relay_backoff_base_seconds=0.01, relay_probe_max_seconds=0.05,
                                      relay_poll_seconds=0.05), app.state.sessionmaker)
        async with relay_running(worker):
            await until(six_attempts, "six attempts")
    assert sizes[0] == 6 and set(sizes[1:]) == {1}  # one whole batch, then one event per probe
    assert all(e.next_attempt_at <= utcnow() for e in await outbox(app, sent_at=None))


async def test_with_the_default_settings_central_is_probed_at_least_every_10_seconds(settings):
    defaults = {name: Settings.model_fields[name].default for name in ("relay_backoff_base_seconds", "relay_probe_max_seconds")}
    worker = Relay(settings.model_copy(update={"central_url": "http://central.invalid", **defaults}), None)
    await worker.aclose()
    delays = [worker.next_probe(failures) for failures in range(1, 200) for _ in range(5)]
    assert max(delays) <= 10.0 and max(delays) > 5.0 and min(delays) >= 0.5


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    for attempts in range(1, 12):
        step = min(300, 2 ** (attempts - 1))
        samples = [backoff(attempts, 1.0, 300.0) for _ in range(50)]
        assert all(step / 2 <= s <= step for s in samples)
    assert len({round(backoff(5, 1.0, 300.0), 6) for _ in range(20)}) > 1  # jittered


def faulty_central(poison: set[str], *, status_for_all: int | None = None) -> tuple[FastAPI, list[int]]:
    """A central that breaks (500) on a batch holding a poison event, or answers one status to everything."""
    app = FastAPI()
    sizes: list[int] = []

    @app.post("/api/v1/monitoring/events")
    async def events(request: Request):
        batch = json.loads(await request.body())["events"]
        sizes.append(len(batch))
        if status_for_all:
            return JSONResponse({"title": "down", "detail": "maintenance"}, status_code=status_for_all)
        if any(e["id"] in poison for e in batch):
            return JSONResponse({"title": "Internal error"}, status_code=500)
        return {"accepted": len(batch), "duplicates": 0, "rejected": []}

    return app, sizes


async def test_an_event_that_breaks_central_is_isolated_and_the_rest_go_through(client, app, settings, world):
    async with app.state.sessionmaker() as session, session.begin():
        events = [add_outbox(session) for _ in range(16)]
    poison = {str(events[5].id)}
    faulty, sizes = faulty_central(poison)
    async with Loopback(faulty) as central:
        worker = Relay(relay_settings(settings, central.url), app.state.sessionmaker)
        try:
            handled, _ = await worker.cycle()
        finally:
            await worker.aclose()
    assert handled == 16
    assert sizes[0] == 16 and len(sizes) <= 1 + 2 * 4  # halved down to the one event, log2(16) levels
    waiting = await outbox(app, sent_at=None)
    assert [str(e.id) for e in waiting] == list(poison)
    assert waiting[0].parked_at is None and waiting[0].next_attempt_at > utcnow()  # retried later, not parked


async def test_central_down_for_maintenance_backs_the_whole_relay_off(client, app, settings, world):
    async with app.state.sessionmaker() as session, session.begin():
        for _ in range(3):
            add_outbox(session)
    faulty, sizes = faulty_central(set(), status_for_all=503)
    async with Loopback(faulty) as central:
        worker = Relay(relay_settings(settings, central.url), app.state.sessionmaker)
        try:
            assert await worker.cycle() == (3, False)
        finally:
            await worker.aclose()
    assert sizes == [3]  # no halving for an unavailable central
    async with app.state.sessionmaker() as session:
        status = await session.get(RelayStatus, "SR-ACH")
    assert status.last_error == "central answered HTTP 503: maintenance"
    assert len(await outbox(app, sent_at=None, parked_at=None)) == 3


async def test_a_revoked_token_is_renewed_once(client, app, settings, world):
    async with Loopback(app) as central:
        worker = Relay(relay_settings(settings, central.url), app.state.sessionmaker)
        try:
            async with app.state.sessionmaker() as session, session.begin():
                add_outbox(session)
            assert await worker.drain() == 1
            async with app.state.sessionmaker() as session, session.begin():
                await session.execute(update(User).where(User.username == "relay.sr-ach")
                                      .values(tokens_valid_after=utcnow() + timedelta(seconds=1)))
                add_outbox(session)
            await asyncio.sleep(1.1)  # a token issued within the same second would still be revoked
            assert await worker.drain() == 1
        finally:
            await worker.aclose()
    assert len(await outbox(app, sent_at=...)) == 2


async def test_an_office_relay_uses_its_client_credentials_and_only_its_office(client, app, settings, world):
    async with app.state.sessionmaker() as session, session.begin():
        user, secret = await relay_service.relay_account(session, "SR-ACH", new_secret=True)
        mine = add_outbox(session)
        foreign = add_outbox(session, office="SR-SSN")
    async with Loopback(app) as central:
        office = relay_settings(settings, central.url, role=InstanceRole.office, relay_client_id=user.username,
                                relay_client_secret=SecretStr(secret))
        worker = Relay(office, app.state.sessionmaker)
        try:
            assert await worker.drain() == 2
        finally:
            await worker.aclose()
        sent = await outbox(app, sent_at=...)
        assert [str(e.id) for e in sent] == [str(mine.id)]
        refused = (await outbox(app, parked_at=...))[0]
        assert refused.id == foreign.id
        assert refused.park_reason == "central refused it: office_code SR-SSN is not this relay's office (SR-ACH)"
        # Wrong secret, or none at all: nothing is lost, the error says why.
        async with app.state.sessionmaker() as session, session.begin():
            add_outbox(session)
        for changes, error in ((dict(relay_client_secret=SecretStr("wrong-secret")), "central refused the relay's credentials: HTTP 401"),
                               (dict(relay_client_id=None), "GUICHET_RELAY_CLIENT_ID and GUICHET_RELAY_CLIENT_SECRET are not set")):
            worker = Relay(office.model_copy(update=changes), app.state.sessionmaker)
            try:
                assert await worker.cycle() == (1, False)
            finally:
                await worker.aclose()
            async with app.state.sessionmaker() as session:
                assert (await session.get(RelayStatus, "SR-ACH")).last_error.startswith(error)
            async with app.state.sessionmaker() as session, session.begin():
                await session.execute(update(ActivityEvent).values(next_attempt_at=utcnow()))
    assert len(await outbox(app, sent_at=None, parked_at=None)) == 1


async def test_two_relays_never_claim_the_same_event(app, client, backend):
    async with app.state.sessionmaker() as session, session.begin():
        for _ in range(10):
            add_outbox(session)
    lease = timedelta(seconds=30)
    if backend == "postgres":
        # Both claims are in flight at once: the second skips the rows the first has locked.
        first_session, second_session = app.state.sessionmaker(), app.state.sessionmaker()
        async with first_session, second_session:
            await first_session.begin()
            first = await claim(first_session, limit=6, lease=lease)
            await second_session.begin()
            second = await claim(second_session, limit=6, lease=lease)
            await first_session.commit()
            await second_session.commit()
        assert len(first) == 6 and len(second) == 4
    else:
        # SQLite has one writer: the claims run one after the other, and the lease keeps them apart.
        first, second = await asyncio.gather(*(_claim(app, lease) for _ in range(2)))
        assert sorted((len(first), len(second))) == [4, 6]
    assert {e.id for e in first}.isdisjoint({e.id for e in second})


async def _claim(app, lease):
    async with app.state.sessionmaker() as session, session.begin():
        return await claim(session, limit=6, lease=lease)


async def test_replaying_sent_events_makes_them_duplicates_at_central(client, app, settings, world, k1):
    await register(client, world.clerk_a, 2)
    async with Loopback(app) as central:
        worker = Relay(relay_settings(settings, central.url), app.state.sessionmaker)
        try:
            assert await worker.drain() == 6
            async with app.state.sessionmaker() as session, session.begin():
                assert await relay_service.replay(session, office_code="SR-ACH", since=utcnow() - timedelta(hours=1),
                                                  until=None, parked=False) == 6
                assert await relay_service.replay(session, office_code="SR-SSN", since=None, until=None, parked=False) == 0
            assert await worker.drain() == 6
        finally:
            await worker.aclose()
    assert await indicator(client, world, "households_registered") == {("2026-Q4",): 2}
    async with app.state.sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(MonitoringEvent))).scalar_one() == 6


def test_event_ids_travel_as_uuids():
    row = type("Row", (), {"id": uuid.uuid4(), "type": "t", "schema_version": 1, "occurred_at": utcnow(), "office_code": "X",
                           "payload": {}})
    assert uuid.UUID(relay_service.envelope(row)["id"]) == row.id
