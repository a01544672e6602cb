"""POST /api/v1/monitoring/events: validation against the versioned contract, once-only storage by
event id, personal data refused, an office's relay limited to its own office."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from app.models import MonitoringEvent, MonitoringOfficeSync
from app.services.monitoring import ingest, rollups
from helpers import assert_problem
from monitoring_support import event, household_registered, person_dims, person_registered, pseudonym, relay_token

URL = "/api/v1/monitoring/events"


async def stored(app) -> int:
    async with app.state.sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(MonitoringEvent))).scalar_one()


async def rollup_rows(app) -> int:
    async with app.state.sessionmaker() as session:
        return sum([(await session.execute(select(func.count()).select_from(table))).scalar_one()
                    for table in rollups.ROLLUP_TABLES.values()])


async def test_a_batch_is_stored_once_and_a_resend_counts_as_duplicates(client, app, settings):
    headers = await relay_token(app, settings, "SR-ACH")
    batch = [household_registered(), person_registered(), person_registered(sex="male")]
    response = await client.post(URL, json={"events": batch}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 3, "duplicates": 0, "rejected": []}
    assert await stored(app) == 3
    rows_before = await rollup_rows(app)

    again = await client.post(URL, json={"events": batch + [person_registered()]}, headers=headers)
    assert again.json() == {"accepted": 1, "duplicates": 3, "rejected": []}
    assert await stored(app) == 4
    # The same event twice in one batch is one event.
    twin = person_registered()
    twice = await client.post(URL, json={"events": [twin, twin]}, headers=headers)
    assert twice.json() == {"accepted": 1, "duplicates": 1, "rejected": []}
    assert rows_before > 0
    async with app.state.sessionmaker() as session:
        sync = await session.get(MonitoringOfficeSync, "SR-ACH")
    assert (sync.events_received, sync.duplicates_received, sync.rejected_received) == (5, 4, 0)


async def test_each_invalid_event_is_rejected_with_its_reason_and_the_others_are_stored(client, app, settings):
    headers = await relay_token(app, settings, "SR-ACH")
    good = person_registered()
    personal = event("person.registered", {"person": pseudonym(), "dimensions": person_dims(), "national_id": "170123456"},
                     validate=False)
    named = event("person.registered", {"person": pseudonym(), "dimensions": {**person_dims(), "given_name": "Chanthou"}},
                  validate=False)
    unknown_type = event("household.teleported", {"dimensions": person_dims()}, validate=False)
    unknown_version = event("person.registered", {"dimensions": person_dims()}, version=7, validate=False)
    other_office = person_registered(office="SR-SSN")
    bad_enum = event("person.registered", {"dimensions": {**person_dims(), "sex": "unknown"}}, validate=False)
    missing_dims = event("household.registered", {"size": 2}, validate=False)
    future = person_registered(at=datetime.now(UTC) + timedelta(days=3))
    naive = {**person_registered(), "occurred_at": "2026-11-01T10:00:00"}
    not_uuid = {**person_registered(), "id": "x" * 36}
    extra_envelope = {**person_registered(), "name": "Sok"}
    batch = [good, personal, named, unknown_type, unknown_version, other_office, bad_enum, missing_dims, future, naive,
             not_uuid, extra_envelope, "not an object"]
    response = await client.post(URL, json={"events": batch}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 1 and body["duplicates"] == 0
    problems = {r["index"]: r["problem"] for r in body["rejected"]}
    assert sorted(problems) == list(range(1, len(batch)))
    assert "national_id is personal data" in problems[1]
    assert "given_name is personal data" in problems[2]
    assert problems[3] == "unknown event type or schema version: household.teleported v1"
    assert problems[4] == "unknown event type or schema version: person.registered v7"
    assert "office_code SR-SSN is not this relay's office (SR-ACH)" == problems[5]
    assert "payload.dimensions.sex" in problems[6]
    assert "payload.dimensions" in problems[7] and "required" in problems[7].lower()
    assert problems[8] == "occurred_at is in the future"
    assert problems[9] == "occurred_at must carry a time zone offset"
    assert "id" in problems[10]
    assert "name" in problems[11]
    assert problems[12] == "an event must be a JSON object"
    assert {r["id"] for r in body["rejected"] if r["index"] == 1} == {personal["id"]}
    # Refused, not stored: only the good event is there, and no personal value anywhere.
    async with app.state.sessionmaker() as session:
        rows = (await session.execute(select(MonitoringEvent))).scalars().all()
    assert [str(r.id) for r in rows] == [good["id"]]
    assert "170123456" not in str(rows[0].payload) and "Chanthou" not in str(rows[0].payload)


async def test_bad_batches_are_refused_whole_and_change_nothing(client, app, settings):
    headers = await relay_token(app, settings, "SR-ACH")
    oversized = await client.post(URL, json={"events": [person_registered() for _ in range(1001)]}, headers=headers)
    body = assert_problem(oversized, 422, "validation")
    assert body["errors"][0]["pointer"] == "#/events"
    assert_problem(await client.post(URL, json={"events": []}, headers=headers), 422, "validation")
    assert_problem(await client.post(URL, json={}, headers=headers), 422, "validation")
    assert_problem(await client.post(URL, json={"events": "all of them"}, headers=headers), 422, "validation")
    assert_problem(await client.post(URL, json={"events": [person_registered()], "office": "SR-ACH"}, headers=headers),
                   422, "validation")
    malformed = await client.post(URL, content=b'{"events": [', headers={**headers, "Content-Type": "application/json"})
    assert_problem(malformed, 400, "malformed-json")
    padded = [{**person_registered(), "padding": "x" * 2000} for _ in range(600)]  # over 1 MiB
    assert_problem(await client.post(URL, json={"events": padded}, headers=headers), 413, "payload-too-large")
    assert await stored(app) == 0 and await rollup_rows(app) == 0


async def test_only_an_office_relay_may_post_events(client, app, settings, world):
    batch = {"events": [person_registered()]}
    assert_problem(await client.post(URL, json=batch), 401, "unauthenticated")
    assert_problem(await client.post(URL, json=batch, headers={"Authorization": "Bearer nonsense"}), 401, "unauthenticated")
    for account in (world.admin, world.monitor, world.clerk_a, world.supervisor_a, world.partner):
        assert_problem(await client.post(URL, json=batch, headers=account.headers), 403, "forbidden")
    expired = _expired_relay_token(settings)
    assert_problem(await client.post(URL, json=batch, headers=expired), 401, "unauthenticated")
    assert await stored(app) == 0


async def test_a_relay_gets_its_token_with_client_credentials(client, app):
    from app.services.relay import relay_account

    async with app.state.sessionmaker() as session, session.begin():
        user, secret = await relay_account(session, "SR-SSN", new_secret=True)
    response = await client.post("/api/v1/auth/token", data={"grant_type": "client_credentials", "client_id": user.username,
                                                             "client_secret": secret})
    assert response.status_code == 200, response.text
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    me = (await client.get("/api/v1/auth/me", headers=headers)).json()
    assert (me["role"], me["office_code"]) == ("relay", "SR-SSN")
    ok = await client.post(URL, json={"events": [person_registered(office="SR-SSN")]}, headers=headers)
    assert ok.json()["accepted"] == 1
    # A person's password grant is not for service accounts, and a rotated secret stops the old one.
    assert_problem(await client.post("/api/v1/auth/token", data={"grant_type": "password", "username": user.username,
                                                                 "password": secret}), 401, "invalid-credentials")
    async with app.state.sessionmaker() as session, session.begin():
        await relay_account(session, "SR-SSN", new_secret=True)
    assert_problem(await client.post(URL, json={"events": [person_registered(office="SR-SSN")]}, headers=headers), 401)


def _expired_relay_token(settings) -> dict[str, str]:
    from jose import jwt

    now = datetime.now(UTC) - timedelta(hours=2)
    claims = {"sub": str(uuid.uuid4()), "role": "relay", "office": "SR-ACH", "scheme": None, "iss": settings.jwt_issuer,
              "aud": settings.jwt_audience, "iat": int(now.timestamp()), "nbf": int(now.timestamp()),
              "exp": int((now + timedelta(minutes=5)).timestamp()), "jti": "x"}
    return {"Authorization": "Bearer " + jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm="HS256")}


def test_the_quick_envelope_check_agrees_with_the_model(monkeypatch):
    """Envelopes in the form relays send skip building the envelope model; any other form goes to the
    model. Either way the verdict and the values are the same."""
    now = datetime.now(UTC)
    good = person_registered(at=datetime(2026, 3, 1, 2, 30, 15, 250000, tzinfo=UTC))
    variants = [
        good,
        {**good, "occurred_at": "2026-03-01T09:30:15.25+07:00"},
        {**good, "occurred_at": "2026-03-01T02:30:15Z"},
        {**good, "occurred_at": "2026-03-01T02:30:15"},  # no offset
        {**good, "occurred_at": "2026-03-01 02:30:15+00:00"},
        {**good, "occurred_at": "2026-03-01T24:00:00+00:00"},
        {**good, "occurred_at": "2026-02-30T10:00:00+00:00"},
        {**good, "occurred_at": "2026-03-01T10:00:60+00:00"},
        {**good, "occurred_at": "٢٠٢٦-03-01T10:00:00+00:00"},
        {**good, "occurred_at": 1772332215},
        {**good, "id": good["id"].upper()},
        {**good, "id": "{" + good["id"] + "}"},
        {**good, "id": good["id"].replace("-", "")},
        {**good, "id": "-" * 36},
        {**good, "schema_version": True},
        {**good, "schema_version": "1"},
        {**good, "schema_version": 1.0},
        {**good, "schema_version": 0},
        {**good, "type": "x" * 61},
        {**good, "office_code": "SR-ACH" + " " * 15},
        {**good, "payload": []},
        {**good, "extra": 1},
        {k: v for k, v in good.items() if k != "office_code"},
    ]
    assert [ingest.plain_envelope(raw) is not None for raw in variants[:3]] == [True, True, True]
    quick = [ingest.check_event(raw, "SR-ACH", now) for raw in variants]
    monkeypatch.setattr(ingest, "plain_envelope", lambda raw: None)
    model = [ingest.check_event(raw, "SR-ACH", now) for raw in variants]
    assert quick == model
    assert not isinstance(quick[0], str) and not isinstance(quick[1], str) and quick[0].occurred_at == quick[1].occurred_at
