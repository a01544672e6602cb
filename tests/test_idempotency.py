"""Idempotent POSTs: replay, a reused key, a key in flight, keys per caller, expiry, and a failed
request that frees its key."""

import hashlib
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import unit_of_work
from app.models import ActivityEvent, AuditEvent, Household, IdempotencyKey, Office, User
from app.models.base import utcnow
from app.unit_of_work import prune_idempotency_keys
from helpers import assert_problem, db_rows, household_body, pointers, register, table_counts

HOUSEHOLDS = "/api/v1/households"


def _keyed(account, key: str) -> dict[str, str]:
    return {**account.headers, "Idempotency-Key": key}


async def _count(app, model) -> int:
    async with app.state.sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def test_the_same_key_and_body_replay_the_first_response_without_doing_it_again(client, world, app):
    body = household_body()
    first = await client.post(HOUSEHOLDS, json=body, headers=_keyed(world.clerk_a, "reg-0001"))
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    counts = await table_counts(app)

    again = await client.post(HOUSEHOLDS, json=body, headers=_keyed(world.clerk_a, "reg-0001"))
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert again.headers["ETag"] == first.headers["ETag"] and again.headers["Location"] == first.headers["Location"]
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert await table_counts(app) == counts  # no second household, audit row, event or key
    assert await _count(app, Household) == 1
    assert await _count(app, AuditEvent) == 1 and await _count(app, ActivityEvent) == 1 + len(body["members"])


async def test_the_same_key_with_another_body_is_422(client, world, app):
    await client.post(HOUSEHOLDS, json=household_body(), headers=_keyed(world.clerk_a, "reg-0002"))
    counts = await table_counts(app)
    problem = assert_problem(await client.post(HOUSEHOLDS, json=household_body(), headers=_keyed(world.clerk_a, "reg-0002")),
                             422, "idempotency-key-reused")
    assert problem["detail"]
    # ... and with the same body on another endpoint.
    assert_problem(await client.post(f"{HOUSEHOLDS}/{(await db_rows(app, Household))[0].id}/consent",
                                     json={"purposes": ["registry"], "given_by": "A", "method": "verbal"},
                                     headers=_keyed(world.clerk_a, "reg-0002")), 422, "idempotency-key-reused")
    assert await table_counts(app) == counts


async def test_a_key_still_in_flight_is_409(client, world, app):
    body = json.dumps(household_body()).encode()
    digest = hashlib.sha256(b"POST " + HOUSEHOLDS.encode() + b"\n" + body).hexdigest()
    async with app.state.sessionmaker() as session, session.begin():
        session.add(IdempotencyKey(principal=str(world.clerk_a.id), key="reg-0003", method="POST", path=HOUSEHOLDS,
                                   request_hash=digest, locked_until=utcnow() + timedelta(seconds=30)))
    headers = {**_keyed(world.clerk_a, "reg-0003"), "Content-Type": "application/json"}
    response = await client.post(HOUSEHOLDS, content=body, headers=headers)
    assert_problem(response, 409, "idempotency-key-in-use")
    assert int(response.headers["Retry-After"]) >= 1
    assert await _count(app, Household) == 0
    # A request that died holding the key leaves it locked only until its lock runs out.
    async with app.state.sessionmaker() as session, session.begin():
        key = (await session.execute(select(IdempotencyKey))).scalar_one()
        key.locked_until = utcnow() - timedelta(seconds=1)
    response = await client.post(HOUSEHOLDS, content=body, headers=headers)
    assert response.status_code == 201, response.text
    replay = await client.post(HOUSEHOLDS, content=body, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.content == response.content


async def test_keys_belong_to_their_caller(client, world, app):
    mine = await client.post(HOUSEHOLDS, json=household_body(), headers=_keyed(world.clerk_a, "shared-key"))
    theirs = await client.post(HOUSEHOLDS, json=household_body(), headers=_keyed(world.supervisor_a, "shared-key"))
    other_office = await client.post(HOUSEHOLDS, json=household_body(village_code="17120101"),
                                     headers=_keyed(world.clerk_b, "shared-key"))
    assert [r.status_code for r in (mine, theirs, other_office)] == [201, 201, 201]
    assert "Idempotent-Replayed" not in theirs.headers
    assert len({r.json()["id"] for r in (mine, theirs, other_office)}) == 3
    assert await _count(app, IdempotencyKey) == 3


async def test_a_failed_request_frees_its_key(client, world, app):
    existing = await register(client, world.clerk_a)
    body = household_body()
    body["members"][0]["national_id"] = existing["members"][0]["national_id"]
    counts = await table_counts(app)
    for _ in range(2):  # the retry runs again (and fails again) rather than replaying
        response = await client.post(HOUSEHOLDS, json=body, headers=_keyed(world.clerk_a, "reg-0004"))
        assert_problem(response, 409, "national-id-registered")
        assert "Idempotent-Replayed" not in response.headers
        assert await table_counts(app) == counts
    assert_problem(await client.post(HOUSEHOLDS, json=household_body(village_code="17010100"),
                                     headers=_keyed(world.clerk_a, "reg-0005")), 422, "validation")
    assert_problem(await client.post(HOUSEHOLDS, json={"members": []}, headers=_keyed(world.clerk_a, "reg-0006")), 422)
    assert_problem(await client.post(HOUSEHOLDS, json=household_body(), headers=_keyed(world.monitor, "reg-0007")), 403)
    assert await table_counts(app) == counts
    # The freed key can be used for the corrected request.
    body["members"][0]["national_id"] = "555000111"
    assert (await client.post(HOUSEHOLDS, json=body, headers=_keyed(world.clerk_a, "reg-0004"))).status_code == 201


async def test_keys_expire_after_a_day(client, world, app):
    first = await client.post(HOUSEHOLDS, json=household_body(), headers=_keyed(world.clerk_a, "reg-0008"))
    assert first.status_code == 201
    async with app.state.sessionmaker() as session, session.begin():
        key = (await session.execute(select(IdempotencyKey))).scalar_one()
        key.created_at = utcnow() - timedelta(hours=24, minutes=1)
    second = await client.post(HOUSEHOLDS, json=household_body(), headers=_keyed(world.clerk_a, "reg-0008"))
    assert second.status_code == 201 and "Idempotent-Replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    async with app.state.sessionmaker() as session, session.begin():
        key = (await session.execute(select(IdempotencyKey))).scalar_one()
        key.created_at = utcnow() - timedelta(hours=25)
    assert await prune_idempotency_keys(app.state.sessionmaker) == 1
    assert await _count(app, IdempotencyKey) == 0


async def test_expired_keys_and_the_responses_they_hold_are_dropped_by_later_claims(client, world, app, monkeypatch):
    old = await client.post(HOUSEHOLDS, json=household_body(), headers=_keyed(world.clerk_b, "old-key"))
    assert old.status_code == 201
    async with app.state.sessionmaker() as session, session.begin():
        (await session.execute(select(IdempotencyKey))).scalar_one().created_at = utcnow() - timedelta(hours=25)
    monkeypatch.setattr(unit_of_work, "_next_prune", None)  # a prune is due
    await client.post(HOUSEHOLDS, json=household_body(), headers=_keyed(world.clerk_a, "new-key"))
    assert [k.key for k in await db_rows(app, IdempotencyKey)] == ["new-key"]


@pytest.mark.parametrize("key, status, slug", [("k" * 256, 422, "validation"), ("   ", 400, "bad-request")])
async def test_bad_keys(client, world, app, key, status, slug):
    problem = assert_problem(await client.post(HOUSEHOLDS, json=household_body(), headers=_keyed(world.clerk_a, key)),
                             status, slug)
    if status == 422:
        assert pointers(problem) == ["#/header/Idempotency-Key"]
    assert await _count(app, Household) == 0


async def test_a_key_of_255_characters_is_fine(client, world):
    assert (await client.post(HOUSEHOLDS, json=household_body(), headers=_keyed(world.clerk_a, "k" * 255))).status_code == 201


async def test_every_registry_post_replays(client, world, app):
    household = await register(client, world.clerk_a)
    member = {"given_name": "Kosal", "family_name": "Pen", "sex": "male", "birth_year": 1950,
              "birth_date_approximate": True, "relationship": "other_relative"}
    consent = {"purposes": ["registry"], "given_by": "Head", "method": "verbal"}
    user = {"username": "clerk.replay", "password": "long enough secret", "role": "clerk", "office_code": "SR-ACH"}
    office = {"code": "BB-BAN", "name": "Banan", "location_code": "0201"}
    for account, path, body in ((world.clerk_a, f"{HOUSEHOLDS}/{household['id']}/members", member),
                                (world.clerk_a, f"{HOUSEHOLDS}/{household['id']}/consent", consent),
                                (world.admin, "/api/v1/users", user),
                                (world.admin, "/api/v1/offices", office)):
        first = await client.post(path, json=body, headers=_keyed(account, f"key-for-{path}"))
        assert first.status_code == 201, first.text
        counts = await table_counts(app)
        again = await client.post(path, json=body, headers=_keyed(account, f"key-for-{path}"))
        assert (again.status_code, again.content, again.headers["Idempotent-Replayed"]) == (201, first.content, "true")
        assert await table_counts(app) == counts, path
    assert len(await db_rows(app, User, User.username == "clerk.replay")) == 1
    assert len(await db_rows(app, Office, Office.code == "BB-BAN")) == 1
