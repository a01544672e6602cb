"""A registry officer's checks (issue 13, point 16): facts that cannot be true are a 422 naming the
field; unlikely ones a 409 listing warnings, registered once the clerk confirms them (audited). At
registration, on adding a member and on changes of persons and households; SQLite and PostgreSQL."""

import copy
import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import update

from app import clock
from app.models import AuditEvent, Person
from helpers import assert_problem, db_rows, household_body, pointers, register, table_counts

HOUSEHOLDS = "/api/v1/households"
PERSONS = "/api/v1/persons"


def born(age: int) -> str:
    """The birth date of someone `age` years old today (1 January of that year)."""
    return date(clock.today().year - age, 1, 1).isoformat()


def year(age: int) -> int:
    return clock.today().year - age


def days(n: int) -> str:
    return (clock.today() + timedelta(days=n)).isoformat()


def _if_match(account, version: int = 1) -> dict:
    return {**account.headers, "If-Match": f'"{version}"'}


def _woman(age: int = 40, **facts) -> dict:
    # 40: old enough to be the mother of household_body's child (born 2000-2019), young enough to be pregnant
    return {"sex": "female", "birth_date": born(age), **facts}


# ---- what cannot be true: 422 ----------------------------------------------------------------------------


async def test_a_four_year_old_pregnant_retired_head_is_refused_naming_each_field(client, world, app):
    before = await table_counts(app)
    body = household_body()
    body["members"][0] |= _woman(4, pregnant=True, employment_status="retired", school_enrolled=True)
    problem = assert_problem(await client.post(HOUSEHOLDS, json=body, headers=world.clerk_a.headers), 422, "validation")
    assert sorted(pointers(problem)) == ["#/members/0/employment_status", "#/members/0/pregnant", "#/members/0/relationship"]
    assert await table_counts(app) == before


@pytest.mark.parametrize("member, facts, pointer", [
    (0, {"birth_date": born(8)}, "#/members/0/relationship"),  # a head of 8
    (1, {"sex": "female", "birth_year": year(8), "pregnant": True}, "#/members/1/pregnant"),
    (0, _woman(64, pregnant=True), "#/members/0/pregnant"),
    (0, _woman(pregnant=True, expected_delivery_date=days(-15)), "#/members/0/expected_delivery_date"),
    (0, _woman(pregnant=True, expected_delivery_date=days(3 * 365)), "#/members/0/expected_delivery_date"),
    (0, _woman(pregnant=True, expected_delivery_date=days(301)), "#/members/0/expected_delivery_date"),
    (1, {"birth_year": year(12), "employment_status": "retired"}, "#/members/1/employment_status"),
    (1, {"birth_year": year(9), "employment_status": "formal"}, "#/members/1/employment_status"),
    (1, {"birth_year": year(3), "employment_status": "informal"}, "#/members/1/employment_status"),
    (1, {"birth_year": year(2), "employment_status": "student", "school_enrolled": False}, "#/members/1/employment_status"),
    (1, {"birth_year": year(2), "school_enrolled": True}, "#/members/1/school_enrolled"),
    (0, {"birth_date": born(25), "nssf_contribution_months": 240}, "#/members/0/nssf_contribution_months"),
])
async def test_what_cannot_be_true_is_422_naming_the_field(client, world, app, member, facts, pointer):
    before = await table_counts(app)
    body = household_body()
    body["members"][member] |= facts
    problem = assert_problem(await client.post(HOUSEHOLDS, json=body, headers=world.clerk_a.headers), 422, "validation")
    assert pointers(problem) == [pointer], problem
    body["confirm_unlikely"] = True  # nothing confirms what cannot be
    assert_problem(await client.post(HOUSEHOLDS, json=body, headers=world.clerk_a.headers), 422, "validation")
    assert await table_counts(app) == before


async def test_a_pregnancy_runs_up_to_two_weeks_past_its_due_date_and_is_known_ten_months_ahead(client, world):
    for due, status in ((days(-15), 422), (days(-14), 201), (days(0), 201), (days(300), 201), (days(301), 422)):
        body = household_body()
        body["members"][0] |= _woman(pregnant=True, expected_delivery_date=due)
        response = await client.post(HOUSEHOLDS, json=body, headers=world.clerk_a.headers)
        assert response.status_code == status, (due, response.text)


# ---- what is unlikely: 409, then confirmed -----------------------------------------------------------------


def _young_head(body):
    body["members"][0] |= {"birth_date": born(13), "employment_status": None}
    body["members"][1]["relationship"] = "sibling"


def _large(body):
    body["members"] = household_body(members=16)["members"]


def _child_as_old_as_the_head(body):
    body["members"][1]["birth_year"] = int(body["members"][0]["birth_date"][:4]) + 5


def _pregnant_girl(body):
    body["members"][1] |= {"sex": "female", "birth_year": year(13), "pregnant": True}


def _very_old(body):
    body["members"][0]["birth_date"] = "1920-05-01"


def _working_child(body):
    body["members"][1] |= {"birth_year": year(10), "employment_status": "informal"}


@pytest.mark.parametrize("edit, pointer, code", [
    (_young_head, "#/members/0/relationship", "young-head"),
    (_large, "#/members", "large-household"),
    (_child_as_old_as_the_head, "#/members/1/relationship", "parent-age-gap"),
    (_pregnant_girl, "#/members/1/pregnant", "pregnancy-age"),
    (_very_old, "#/members/0/birth_date", "very-old"),
    (_working_child, "#/members/1/employment_status", "employment-age"),
])
async def test_unlikely_facts_are_a_409_until_confirmed(client, world, app, edit, pointer, code):
    body = household_body()
    edit(body)
    before = await table_counts(app)
    problem = assert_problem(await client.post(HOUSEHOLDS, json=body, headers=world.clerk_a.headers), 409, "unlikely-facts")
    [warning] = problem["warnings"]
    assert (warning["pointer"], warning["code"]) == (pointer, code), problem
    assert warning["detail"] and "confirm_unlikely" in problem["detail"]
    assert await table_counts(app) == before
    household = await register(client, world.clerk_a, body | {"confirm_unlikely": True})
    [row] = await db_rows(app, AuditEvent, AuditEvent.action == "unlikely_confirmed")
    assert (row.entity_type, row.entity_id, row.actor_id) == ("household", household["id"], world.clerk_a.id)
    assert row.details == {"warnings": problem["warnings"]}


async def test_an_idpoor_card_already_on_another_household_of_the_office_is_unlikely(client, world, app):
    first = await register(client, world.clerk_a)
    card = first["idpoor"]["card_number"]
    body = household_body()
    body["idpoor"]["card_number"] = card
    problem = assert_problem(await client.post(HOUSEHOLDS, json=body, headers=world.clerk_a.headers), 409, "unlikely-facts")
    assert problem["warnings"] == [{"pointer": "#/idpoor/card_number", "code": "idpoor-card-shared",
                                    "detail": f"IDPoor card {card} is already on household {first['id']}"}]
    second = await register(client, world.clerk_a, body | {"confirm_unlikely": True})
    # Another office is not told what this one holds.
    elsewhere = household_body(village_code="17120101")
    elsewhere["idpoor"]["card_number"] = card
    await register(client, world.clerk_b, elsewhere)
    # Changing the card of a household: warned about when it is another household's.
    url = f"{HOUSEHOLDS}/{second['id']}"
    other = {"level": 1, "card_number": (await register(client, world.clerk_a))["idpoor"]["card_number"]}
    problem = assert_problem(await client.patch(url, json={"idpoor": other}, headers=_if_match(world.clerk_a)), 409,
                             "unlikely-facts")
    assert [w["pointer"] for w in problem["warnings"]] == ["#/idpoor/card_number"]
    response = await client.patch(url, json={"idpoor": other, "confirm_unlikely": True}, headers=_if_match(world.clerk_a))
    assert response.status_code == 200, response.text
    # A change that keeps the household's own card is no warning.
    response = await client.patch(url, json={"idpoor": other | {"level": 2}}, headers=_if_match(world.clerk_a, 2))
    assert response.status_code == 200, response.text


# ---- adding a member ---------------------------------------------------------------------------------------


async def test_adding_a_member_is_checked_like_registering_one(client, world, app):
    household = await register(client, world.clerk_a)
    url = f"{HOUSEHOLDS}/{household['id']}/members"
    head_year = int(household["members"][0]["birth_date"][:4])
    newcomer = household_body()["members"][1]
    before = await table_counts(app)
    problem = assert_problem(await client.post(url, json=newcomer | {"sex": "female", "birth_year": year(70), "pregnant": True},
                                               headers=world.clerk_a.headers), 422, "validation")
    assert pointers(problem) == ["#/pregnant"]
    parent = newcomer | {"relationship": "parent", "birth_year": head_year + 3}
    problem = assert_problem(await client.post(url, json=parent, headers=world.clerk_a.headers), 409, "unlikely-facts")
    assert [(w["pointer"], w["code"]) for w in problem["warnings"]] == [("#/relationship", "parent-age-gap")]
    assert await table_counts(app) == before
    added = (await client.post(url, json=parent | {"confirm_unlikely": True}, headers=world.clerk_a.headers))
    assert added.status_code == 201, added.text
    [row] = await db_rows(app, AuditEvent, AuditEvent.action == "unlikely_confirmed")
    assert (row.entity_type, row.entity_id) == ("person", added.json()["id"])


async def test_a_household_grows_to_forty_members_at_most(client, world, app):
    household = await register(client, world.clerk_a, household_body(members=40, confirm_unlikely=True))
    url = f"{HOUSEHOLDS}/{household['id']}/members"
    before = await table_counts(app)
    problem = assert_problem(await client.post(url, json=household_body()["members"][1] | {"confirm_unlikely": True},
                                               headers=world.clerk_a.headers), 422, "validation")
    assert pointers(problem) == ["#"]
    assert await table_counts(app) == before


async def test_a_sixteenth_member_is_unlikely(client, world):
    household = await register(client, world.clerk_a, household_body(members=15))
    url = f"{HOUSEHOLDS}/{household['id']}/members"
    problem = assert_problem(await client.post(url, json=household_body()["members"][1], headers=world.clerk_a.headers),
                             409, "unlikely-facts")
    assert [(w["pointer"], w["code"]) for w in problem["warnings"]] == [("#", "large-household")]


# ---- changing a person or a household ----------------------------------------------------------------------


async def test_a_change_is_checked_for_what_it_sets(client, world, app):
    body = household_body()
    body["members"][0] |= _woman(70)
    body["members"][1]["birth_year"] = year(12)
    household = await register(client, world.clerk_a, body)
    head, child = household["members"]
    head_url, child_url = f"{PERSONS}/{head['id']}", f"{PERSONS}/{child['id']}"
    before = await table_counts(app)
    for url, change, pointer in ((head_url, {"pregnant": True}, "#/pregnant"),
                                 (head_url, {"birth_date": born(8)}, "#/birth_date"),
                                 (child_url, {"birth_year": year(2)}, "#/birth_year"),  # enrolled at school
                                 (child_url, {"employment_status": "retired"}, "#/employment_status")):
        problem = assert_problem(await client.patch(url, json=change, headers=_if_match(world.clerk_a)), 422, "validation")
        assert pointers(problem) == [pointer], (change, problem)
    problem = assert_problem(await client.patch(child_url, json={"birth_year": year(69)}, headers=_if_match(world.clerk_a)),
                             409, "unlikely-facts")
    assert [(w["pointer"], w["code"]) for w in problem["warnings"]] == [("#/birth_year", "parent-age-gap")]
    problem = assert_problem(await client.patch(head_url, json={"birth_date": born(13)}, headers=_if_match(world.clerk_a)),
                             409, "unlikely-facts")
    # A head of 13: young, working (informal) and hardly older than the child.
    assert {(w["pointer"], w["code"]) for w in problem["warnings"]} == {
        ("#/birth_date", "young-head"), ("#/birth_date", "employment-age"), ("#/birth_date", "parent-age-gap")}
    assert await table_counts(app) == before
    response = await client.patch(child_url, json={"birth_year": year(69), "confirm_unlikely": True},
                                  headers=_if_match(world.clerk_a))
    assert response.status_code == 200 and response.json()["birth_year"] == year(69), response.text
    [row] = await db_rows(app, AuditEvent, AuditEvent.action == "unlikely_confirmed")
    assert (row.entity_type, row.entity_id) == ("person", child["id"])


async def test_a_due_date_is_checked_when_given_not_when_it_has_passed_since(client, world, app):
    body = household_body()
    body["members"][0] |= _woman()
    household = await register(client, world.clerk_a, body)
    url = f"{PERSONS}/{household['members'][0]['id']}"
    problem = assert_problem(await client.patch(url, json={"pregnant": True, "expected_delivery_date": days(-40)},
                                                headers=_if_match(world.clerk_a)), 422, "validation")
    assert pointers(problem) == ["#/expected_delivery_date"]
    response = await client.patch(url, json={"pregnant": True, "expected_delivery_date": days(20)},
                                  headers=_if_match(world.clerk_a))
    assert response.status_code == 200, response.text
    async with app.state.sessionmaker() as session, session.begin():  # months later, nobody recorded the birth
        await session.execute(update(Person).where(Person.id == uuid.UUID(household["members"][0]["id"]))
                              .values(expected_delivery_date=date.fromisoformat(days(-90))))
    response = await client.patch(url, json={"phone": "012 333 444"}, headers=_if_match(world.clerk_a, 2))
    assert response.status_code == 200, response.text


async def test_a_new_head_is_old_enough(client, world, app):
    body = household_body(members=3)
    body["members"][1]["birth_year"] = year(5)
    body["members"][2]["birth_year"] = year(13)
    household = await register(client, world.clerk_a, body)
    url = f"{HOUSEHOLDS}/{household['id']}"
    before = await table_counts(app)
    problem = assert_problem(await client.patch(url, json={"head_id": household["members"][1]["id"]},
                                                headers=_if_match(world.clerk_a)), 422, "validation")
    assert pointers(problem) == ["#/head_id"]
    problem = assert_problem(await client.patch(url, json={"head_id": household["members"][2]["id"]},
                                                headers=_if_match(world.clerk_a)), 409, "unlikely-facts")
    assert [(w["pointer"], w["code"]) for w in problem["warnings"]] == [("#/head_id", "young-head")]
    assert await table_counts(app) == before
    response = await client.patch(url, json={"head_id": household["members"][2]["id"], "confirm_unlikely": True},
                                  headers=_if_match(world.clerk_a))
    assert response.status_code == 200 and response.json()["head_id"] == household["members"][2]["id"], response.text


@pytest.mark.parametrize("value", ["yes", 1, None, [True]])
async def test_confirm_unlikely_is_true_or_false(client, world, app, value):
    household = await register(client, world.clerk_a)
    requests = (
        ("POST", HOUSEHOLDS, household_body(), world.clerk_a.headers),
        ("PATCH", f"{HOUSEHOLDS}/{household['id']}", {"address": "Phum Thmei"}, _if_match(world.clerk_a)),
        ("PATCH", f"{PERSONS}/{household['members'][0]['id']}", {"phone": "012 333 444"}, _if_match(world.clerk_a)),
        ("POST", f"{HOUSEHOLDS}/{household['id']}/members", household_body()["members"][1], world.clerk_a.headers),
    )
    before = await table_counts(app)
    for method, url, body, headers in requests:
        problem = assert_problem(await client.request(method, url, json=copy.deepcopy(body) | {"confirm_unlikely": value},
                                                      headers=headers), 422, "validation")
        assert pointers(problem) == ["#/confirm_unlikely"], (url, problem)
    assert await table_counts(app) == before
    for method, url, body, headers in requests:  # false is the default, and may be said
        response = await client.request(method, url, json=body | {"confirm_unlikely": False}, headers=headers)
        assert response.status_code < 300, (url, response.text)
