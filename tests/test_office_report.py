"""The office report: a supervisor reads their own office's indicators, this month against the last,
computed at the office from its own outbox; another office's events never count; who may read it."""

import uuid
from datetime import datetime

import pytest

from app.models import ActivityEvent
from helpers import assert_problem
from monitoring_support import at, decided, person_registered, pseudonym, sample

URL = "/api/v1/office-report"


async def outbox(app, events):
    """Events as the office's services write them into its outbox (activity_event)."""
    async with app.state.sessionmaker() as session, session.begin():
        session.add_all([ActivityEvent(id=uuid.UUID(e["id"]), type=e["type"], schema_version=e["schema_version"],
                                       occurred_at=datetime.fromisoformat(e["occurred_at"]), office_code=e["office_code"],
                                       payload=e["payload"]) for e in events])


def item(body, name):
    return next(i for i in body["items"] if i["indicator"] == name)


async def test_a_supervisor_reads_this_month_against_the_last(client, app, world):
    someone = pseudonym()
    await outbox(app, [
        *[person_registered(at=at("2026-10-05")) for _ in range(3)],
        *[person_registered(sex="male", at=at("2026-11-02")) for _ in range(2)],
        person_registered(at=at("2026-11-30", hour=23)),  # the office's last day of November (UTC: the 30th, 16:00)
        person_registered(at=at("2026-12-01", hour=1)),  # December in Phnom Penh, still 30 November in UTC
        person_registered(person=someone, at=at("2026-11-03")),
        sample("screening.determination", person=someone, at=at("2026-11-20")),  # the same client, counted once
        decided("approved", at=at("2026-11-10"), days=4), decided("approved", at=at("2026-11-11"), days=8),
        decided("rejected", at=at("2026-11-12"), days=30),
        *[person_registered(office="SR-SSN", at=at("2026-11-04")) for _ in range(5)],  # another office's
    ])
    response = await client.get(URL, params={"month": "2026-11"}, headers=world.supervisor_a.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["office_code"], body["month"], body["previous_month"]) == ("SR-ACH", "2026-11", "2026-10")
    assert item(body, "persons_registered")["rows"] == [{"this_month": 4, "last_month": 3}]
    assert item(body, "applications_approved")["rows"] == [{"this_month": 2, "last_month": None}]
    assert item(body, "approval_rate")["rows"] == [{"this_month": 0.6667, "last_month": None}]
    assert item(body, "median_days_to_decision")["rows"] == [{"this_month": 8.0, "last_month": None}]
    assert item(body, "clients_served")["rows"][0]["this_month"] == 4 + 3  # 4 registered + 3 decided, once each
    by_sex = (await client.get(URL, params={"month": "2026-11", "breakdown": "sex"}, headers=world.supervisor_a.headers)).json()
    assert item(by_sex, "persons_registered")["rows"] == [{"sex": "female", "this_month": 2, "last_month": 3},
                                                           {"sex": "male", "this_month": 2, "last_month": None}]
    assert item(by_sex, "screenings")["rows"] == []  # counted by household: no sex breakdown
    other = (await client.get(URL, params={"month": "2026-11"}, headers=world.supervisor_b.headers)).json()
    assert item(other, "persons_registered")["rows"] == [{"this_month": 5, "last_month": None}]


@pytest.mark.parametrize("params, pointer", [({"month": "2026-13"}, "#/query/month"), ({"month": "Nov"}, "#/query/month"),
                                             ({"breakdown": "province"}, "#/query/breakdown")])
async def test_bad_questions_get_a_422(client, world, params, pointer):
    body = assert_problem(await client.get(URL, params=params, headers=world.supervisor_a.headers), 422, "validation")
    assert pointer in [e["pointer"] for e in body["errors"]]


async def test_only_supervisors_of_an_office_read_it(client, world):
    assert (await client.get(URL, headers=world.supervisor_a.headers)).status_code == 200
    for account in (world.clerk_a, world.monitor, world.partner):
        assert_problem(await client.get(URL, headers=account.headers), 403, "forbidden")
    assert_problem(await client.get(URL, headers=world.admin.headers), 403, "forbidden")  # admin: no office of its own
    assert_problem(await client.get(URL), 401, "unauthenticated")
