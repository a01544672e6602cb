"""Concurrent requests through the ASGI app (asyncio.gather), on SQLite and PostgreSQL."""

import asyncio

from sqlalchemy import func, select

from app.models import Household, IdempotencyKey, Person
from helpers import assert_problem, household_body, national_id, register

HOUSEHOLDS = "/api/v1/households"


async def _count(app, model) -> int:
    async with app.state.sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def test_twenty_concurrent_posts_with_one_key_make_one_household(client, world, app):
    body = household_body(members=4)
    headers = {**world.clerk_a.headers, "Idempotency-Key": "one-visit-one-household"}
    responses = await asyncio.gather(*(client.post(HOUSEHOLDS, json=body, headers=headers) for _ in range(20)))

    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, statuses
    created = [r for r in responses if r.status_code == 201]
    assert created, statuses
    assert len({r.content for r in created}) == 1  # the replays are the first answer, byte for byte
    assert sum("Idempotent-Replayed" not in r.headers for r in created) == 1
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "idempotency-key-in-use")
    assert await _count(app, Household) == 1
    assert await _count(app, Person) == 4
    assert await _count(app, IdempotencyKey) == 1
    # Once the first has finished, every retry replays it.
    late = await client.post(HOUSEHOLDS, json=body, headers=headers)
    assert late.status_code == 201 and late.content == created[0].content


async def test_concurrent_registrations_of_one_national_id_make_one_household(client, world, app):
    shared = national_id()
    bodies = [household_body() for _ in range(10)]
    for body in bodies:
        body["members"][0]["national_id"] = shared
    responses = await asyncio.gather(*(client.post(HOUSEHOLDS, json=b, headers=world.clerk_a.headers) for b in bodies))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 9, statuses
    winner = next(r.json() for r in responses if r.status_code == 201)
    for response in responses:
        if response.status_code == 409:
            # Each that lost the race is told who holds the ID, as it would be a moment later.
            problem = assert_problem(response, 409, "national-id-registered")
            assert problem["existing_person_id"] == winner["members"][0]["id"], problem
            assert problem["field"] == "#/members/0/national_id"
    assert await _count(app, Household) == 1


async def test_concurrent_patches_with_one_etag_let_one_win(client, world, app):
    household = await register(client, world.clerk_a)
    url = f"{HOUSEHOLDS}/{household['id']}"
    responses = await asyncio.gather(*(
        client.patch(url, json={"address": f"Address {i}"}, headers={**world.clerk_a.headers, "If-Match": '"1"'})
        for i in range(10)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * 9, statuses
    winner = next(r for r in responses if r.status_code == 200)
    current = await client.get(url, headers=world.clerk_a.headers)
    assert current.headers["ETag"] == '"2"' and current.json()["address"] == winner.json()["address"]


async def test_concurrent_distinct_registrations_all_succeed(client, world, app):
    responses = await asyncio.gather(*(client.post(HOUSEHOLDS, json=household_body(), headers=world.clerk_a.headers)
                                       for _ in range(12)))
    assert [r.status_code for r in responses] == [201] * 12
    assert await _count(app, Household) == 12
