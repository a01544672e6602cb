"""Duplicate detection at intake: national IDs, likely duplicates, the clerk's confirm_new, and
POST /persons/matches. Plus the scoring function on its own."""

import asyncio
import copy
import uuid
from datetime import date

import pytest

from app.models import AuditEvent, Person
from app.services.national_ids import LOOKUPS_PER_HOUR
from app.services.matching import LIKELY_DUPLICATE, WORTH_SHOWING, Newcomer, score
from helpers import CONTRACT_EXAMPLE, assert_problem, db_rows, household_body, national_id, pointers, register, table_counts

HOUSEHOLDS = "/api/v1/households"
MATCHES = "/api/v1/persons/matches"


def _lookalike(village_code: str = "17010102", **head) -> dict:
    """A new household whose head is Sok Chanthou of the contract example spelt another way."""
    body = household_body(members=1, village_code=village_code)
    body["members"][0] |= {"given_name": "Chanthu", "family_name": "Sokh", "sex": "female", "birth_date": "1986-03-14",
                           "national_id": None} | head
    return body


# ---- national IDs ---------------------------------------------------------------------------------------


async def test_a_registered_national_id_is_409_naming_the_person(client, world, app):
    existing = await register(client, world.clerk_a, copy.deepcopy(CONTRACT_EXAMPLE))
    before = await table_counts(app)
    body = household_body()
    body["members"][1]["national_id"] = "170123456"
    problem = assert_problem(await client.post(HOUSEHOLDS, json=body, headers=world.clerk_a.headers), 409,
                             "national-id-registered")
    assert problem["existing_person_id"] == existing["members"][0]["id"]
    assert problem["existing_household_id"] == existing["id"]
    assert problem["existing_office_code"] == "SR-ACH"
    assert problem["field"] == "#/members/1/national_id"
    assert await table_counts(app) == before


async def test_a_national_id_of_another_office_says_only_registered_elsewhere_and_is_audited_there(client, world, app):
    existing = await register(client, world.clerk_a, copy.deepcopy(CONTRACT_EXAMPLE))
    existing_person = existing["members"][0]["id"]
    theirs = await register(client, world.clerk_b, household_body(village_code="17120101"))
    requests = {  # every way a clerk gives a national ID
        "#/members/0/national_id": lambda nid: client.post(HOUSEHOLDS, json=_with_head_id(nid), headers=world.clerk_b.headers),
        "#/national_id": lambda nid: client.post(f"{HOUSEHOLDS}/{theirs['id']}/members", headers=world.clerk_b.headers,
                                                 json=household_body()["members"][1] | {"national_id": nid}),
    }
    requests["#/national_id (PATCH)"] = lambda nid: client.patch(
        f"/api/v1/persons/{theirs['members'][1]['id']}", json={"national_id": nid},
        headers={**world.clerk_b.headers, "If-Match": '"1"'})
    for pointer, send in requests.items():
        before = await table_counts(app)
        response = await send("170123456")
        problem = assert_problem(response, 409, "national-id-registered")
        assert problem["field"] == pointer.split(" ")[0]
        assert problem["existing_office_code"] is None
        assert problem["existing_person_id"] is None and problem["existing_household_id"] is None
        assert "another office" in problem["detail"] and "transfer" in problem["detail"]
        for secret in ("SR-ACH", existing["id"], existing_person, "Chanthou", "1986"):
            assert secret not in response.text
        # Nothing of the request is kept, but the lookup is: a read of office A's personal data.
        assert await table_counts(app) == before | {"audit_event": before["audit_event"] + 1}
        row = (await db_rows(app, AuditEvent, order_by=AuditEvent.id.desc()))[0]
        assert (row.action, row.entity_type, row.entity_id) == ("national_id_lookup", "person", existing_person)
        assert row.actor_id == world.clerk_b.id and row.office_id == world.office_ids["SR-ACH"]
        assert row.details == {"field": pointer.split(" ")[0], "by_office": "SR-SSN"}
    # Office A's supervisor sees who looked up their people; office B's trail shows nothing of A's.
    trail = (await client.get("/api/v1/audit", params={"action": "national_id_lookup"}, headers=world.supervisor_a.headers)).json()
    assert trail["total"] == 3 and {r["actor_username"] for r in trail["items"]} == {"clerk.b"}
    trail = (await client.get("/api/v1/audit", params={"action": "national_id_lookup"}, headers=world.supervisor_b.headers)).json()
    assert trail["total"] == 0


def _with_head_id(nid: str) -> dict:
    body = household_body(village_code="17120101")
    body["members"][0]["national_id"] = nid
    return body


async def test_national_ids_found_at_other_offices_are_limited_per_staff_member(client, world, app, make_account):
    theirs = [await register(client, world.clerk_a) for _ in range(LOOKUPS_PER_HOUR + 1)]
    ids = [h["members"][0]["national_id"] for h in theirs]
    for nid in ids[:LOOKUPS_PER_HOUR]:
        assert_problem(await client.post(HOUSEHOLDS, json=_with_head_id(nid), headers=world.clerk_b.headers), 409,
                       "national-id-registered")
    before = await table_counts(app)
    # Past the limit every national ID is refused alike, registered elsewhere or not: the answer tells nothing.
    for nid in (ids[-1], national_id()):
        response = await client.post(HOUSEHOLDS, json=_with_head_id(nid), headers=world.clerk_b.headers)
        problem = assert_problem(response, 429, "too-many-lookups")
        assert 3000 < int(response.headers["Retry-After"]) <= 3600, response.headers
        assert "SR-ACH" not in response.text and nid not in response.text
    assert await table_counts(app) == before
    # The clerk may still register people without a national ID; a colleague is not held back.
    body = household_body(village_code="17120101")
    body["members"][0]["national_id"] = None
    await register(client, world.clerk_b, body)
    colleague = await make_account(office="SR-SSN")
    assert_problem(await client.post(HOUSEHOLDS, json=_with_head_id(ids[-1]), headers=colleague.headers), 409,
                   "national-id-registered")
    lookups = await db_rows(app, AuditEvent, AuditEvent.action == "national_id_lookup")
    assert sorted(str(r.actor_id) for r in lookups) == sorted([str(world.clerk_b.id)] * LOOKUPS_PER_HOUR + [str(colleague.id)])


async def test_parallel_lookups_cannot_pass_the_limit_together(client, world, app):
    theirs = [await register(client, world.clerk_a) for _ in range(2 * LOOKUPS_PER_HOUR)]
    responses = await asyncio.gather(*(
        client.post(HOUSEHOLDS, json=_with_head_id(h["members"][0]["national_id"]), headers=world.clerk_b.headers)
        for h in theirs))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [409] * LOOKUPS_PER_HOUR + [429] * LOOKUPS_PER_HOUR, statuses
    assert len(await db_rows(app, AuditEvent, AuditEvent.action == "national_id_lookup")) == LOOKUPS_PER_HOUR


# ---- likely duplicates ----------------------------------------------------------------------------------


async def test_a_likely_duplicate_is_409_with_scored_candidates(client, world, app):
    existing = await register(client, world.clerk_a, copy.deepcopy(CONTRACT_EXAMPLE))
    before = await table_counts(app)
    problem = assert_problem(await client.post(HOUSEHOLDS, json=_lookalike(), headers=world.clerk_a.headers), 409,
                             "possible-duplicate")
    [flagged] = problem["duplicates"]
    assert flagged["member"] == "#/members/0"
    [candidate] = flagged["candidates"]
    assert candidate["person_id"] == existing["members"][0]["id"]
    assert candidate["household_id"] == existing["id"]
    assert LIKELY_DUPLICATE <= candidate["score"] < 1
    assert {"name", "birth_date", "commune", "sex"} <= set(candidate["matched_fields"])
    assert candidate["given_name"] == "Chanthou" and candidate["village_code"] == "17010101"
    assert await table_counts(app) == before


async def test_confirm_new_registers_and_audits_the_override(client, world, app):
    existing = await register(client, world.clerk_a, copy.deepcopy(CONTRACT_EXAMPLE))
    response = await client.post(HOUSEHOLDS, json=_lookalike() | {"confirm_new": True}, headers=world.clerk_a.headers)
    assert response.status_code == 201, response.text
    household = response.json()
    [override] = await db_rows(app, AuditEvent, AuditEvent.action == "dedup_override")
    assert override.entity_type == "household" and override.entity_id == household["id"]
    assert override.actor_id == world.clerk_a.id and override.request_id == response.headers["X-Request-ID"]
    [flagged] = override.details["duplicates"]
    assert flagged["member"] == "#/members/0"
    assert [c["person_id"] for c in flagged["candidates"]] == [existing["members"][0]["id"]]


async def test_an_approximate_birth_year_is_enough_for_a_likely_duplicate(client, world):
    existing = await register(client, world.clerk_a, copy.deepcopy(CONTRACT_EXAMPLE))  # Sok Dara, about 2015
    body = household_body(members=2)
    body["members"][1] |= {"given_name": "Dara", "family_name": "Sok", "birth_year": 2016, "birth_date_approximate": True}
    problem = assert_problem(await client.post(HOUSEHOLDS, json=body, headers=world.clerk_a.headers), 409,
                             "possible-duplicate")
    [flagged] = problem["duplicates"]
    assert flagged["member"] == "#/members/1"
    [candidate] = flagged["candidates"]
    assert candidate["person_id"] == existing["members"][1]["id"]
    assert "birth_year_approximate" in candidate["matched_fields"] and "village" in candidate["matched_fields"]


async def test_an_approximate_year_of_the_registered_person_is_enough_too(client, world):
    """Registration looks in the years around a newcomer's exact birth date only among people whose
    year is approximate; they must still be found."""
    body = household_body(members=1)
    body["members"][0] |= {"given_name": "Chanthou", "family_name": "Sok", "sex": "female", "birth_year": 1985,
                           "birth_date": None, "birth_date_approximate": True, "national_id": None}
    existing = await register(client, world.clerk_a, body)
    newcomer = _lookalike("17010101", given_name="Chanthou", family_name="Sok")  # born 1986-03-14, exactly
    problem = assert_problem(await client.post(HOUSEHOLDS, json=newcomer, headers=world.clerk_a.headers), 409,
                             "possible-duplicate")
    [candidate] = problem["duplicates"][0]["candidates"]
    assert candidate["person_id"] == existing["members"][0]["id"]
    assert "birth_year_approximate" in candidate["matched_fields"]


async def test_the_other_sex_is_listed_as_a_match_but_does_not_stop_a_registration(client, world):
    existing = await register(client, world.clerk_a, copy.deepcopy(CONTRACT_EXAMPLE))
    query = {"given_name": "Chanthou", "family_name": "Sok", "sex": "male", "birth_date": "1986-03-14",
             "village_code": "17010101"}
    [candidate] = (await client.post(MATCHES, json=query, headers=world.clerk_a.headers)).json()["items"]
    assert candidate["person_id"] == existing["members"][0]["id"]
    assert WORTH_SHOWING <= candidate["score"] < LIKELY_DUPLICATE and "sex" not in candidate["matched_fields"]
    await register(client, world.clerk_a, _lookalike(sex="male"))


@pytest.mark.parametrize("difference", [
    {"village_code": "17010201"},  # another commune
    {"birth_date": "1988-03-14"},  # born two years apart, both dates exact
    {"given_name": "Sreymom"},  # another person of the family
])
async def test_people_who_differ_are_not_duplicates(client, world, difference):
    await register(client, world.clerk_a, copy.deepcopy(CONTRACT_EXAMPLE))
    difference = dict(difference)  # the parameter is shared by both backends' runs
    village = difference.pop("village_code", "17010102")
    await register(client, world.clerk_a, _lookalike(village, **difference))


async def test_another_offices_people_are_never_shown_as_candidates(client, world):
    existing = await register(client, world.clerk_a, copy.deepcopy(CONTRACT_EXAMPLE))
    response = await client.post(HOUSEHOLDS, json=_lookalike(village_code="17010101") | {"office_code": "SR-SSN"},
                                 headers=world.admin.headers)
    assert response.status_code == 409, response.text  # the admin sees every office's people
    response = await client.post(HOUSEHOLDS, json=_lookalike(village_code="17010101"), headers=world.clerk_b.headers)
    assert response.status_code == 201, response.text  # a clerk of SR-SSN is not shown SR-ACH's people
    assert existing["members"][0]["id"] not in response.text


async def test_a_member_added_later_is_checked_too(client, world, app):
    existing = await register(client, world.clerk_a, copy.deepcopy(CONTRACT_EXAMPLE))
    other = await register(client, world.clerk_a, household_body(village_code="17010102"))
    member = {"given_name": "Chanthu", "family_name": "Sok", "sex": "female", "birth_date": "1986-03-14",
              "relationship": "sibling"}
    problem = assert_problem(await client.post(f"{HOUSEHOLDS}/{other['id']}/members", json=member,
                                               headers=world.clerk_a.headers), 409, "possible-duplicate")
    assert problem["duplicates"][0]["member"] == "#"
    assert problem["duplicates"][0]["candidates"][0]["person_id"] == existing["members"][0]["id"]
    response = await client.post(f"{HOUSEHOLDS}/{other['id']}/members", json=member | {"confirm_new": True},
                                 headers=world.clerk_a.headers)
    assert response.status_code == 201, response.text
    [override] = await db_rows(app, AuditEvent, AuditEvent.action == "dedup_override")
    assert override.entity_type == "person" and override.entity_id == response.json()["id"]


async def test_members_carry_their_households_village_and_are_matched_where_it_moved(client, world, app):
    """Matching finds people through the village each member carries (their household's): registering,
    adding a member and moving the household must all keep it, or a moved family would be missed."""
    existing = await register(client, world.clerk_a, copy.deepcopy(CONTRACT_EXAMPLE))
    added = await client.post(f"{HOUSEHOLDS}/{existing['id']}/members", headers=world.clerk_a.headers, json={
        "given_name": "Bopha", "family_name": "Keo", "sex": "female", "birth_year": 1990, "relationship": "sibling"})
    assert added.status_code == 201, added.text
    moved = await client.patch(f"{HOUSEHOLDS}/{existing['id']}", json={"village_code": "17010201"},
                               headers={**world.clerk_a.headers, "If-Match": '"2"'})  # the member's addition was 1 -> 2
    assert moved.status_code == 200, moved.text
    members = await db_rows(app, Person, Person.household_id == uuid.UUID(existing["id"]))
    assert len(members) == len(existing["members"]) + 1
    assert {m.village_code for m in members} == {"17010201"}
    assert {m.version for m in members} == {1}  # a household's move is not a change of its members' records
    query = {"given_name": "Chanthou", "family_name": "Sok", "sex": "female", "birth_date": "1986-03-14"}
    in_old_commune = await client.post(MATCHES, json=query | {"village_code": "17010101"}, headers=world.clerk_a.headers)
    assert in_old_commune.json()["items"] == []
    in_new_commune = await client.post(MATCHES, json=query | {"village_code": "17010202"}, headers=world.clerk_a.headers)
    [candidate] = in_new_commune.json()["items"]
    assert candidate["person_id"] == existing["members"][0]["id"] and candidate["village_code"] == "17010201"
    problem = assert_problem(await client.post(HOUSEHOLDS, json=_lookalike("17010202"), headers=world.clerk_a.headers),
                             409, "possible-duplicate")
    assert problem["duplicates"][0]["candidates"][0]["person_id"] == existing["members"][0]["id"]


# ---- POST /persons/matches ------------------------------------------------------------------------------


async def test_matches_lists_candidates_with_score_and_matched_fields(client, world, app):
    existing = await register(client, world.clerk_a, copy.deepcopy(CONTRACT_EXAMPLE))
    head = existing["members"][0]
    response = await client.post(MATCHES, json={"given_name": "chanthu", "family_name": "SOKH", "sex": "female",
                                                "birth_date": "1986-03-14", "village_code": "17010101"},
                                 headers=world.clerk_a.headers)
    assert response.status_code == 200, response.text
    [candidate] = response.json()["items"]
    assert candidate["person_id"] == head["id"] and candidate["household_id"] == existing["id"]
    assert candidate["score"] >= LIKELY_DUPLICATE
    assert set(candidate["matched_fields"]) == {"name", "birth_date", "village", "sex"}
    assert candidate["national_id"] == "170123456"
    [audit] = await db_rows(app, AuditEvent, AuditEvent.action == "match")
    assert audit.details["results"] == [head["id"]]


async def test_matches_show_weaker_candidates_than_registration_blocks_on(client, world):
    await register(client, world.clerk_a, copy.deepcopy(CONTRACT_EXAMPLE))
    query = {"given_name": "Chanthou", "family_name": "Sok", "birth_date": "1987-01-01", "village_code": "17010102"}
    [candidate] = (await client.post(MATCHES, json=query, headers=world.clerk_a.headers)).json()["items"]
    assert WORTH_SHOWING <= candidate["score"] < LIKELY_DUPLICATE
    assert candidate["matched_fields"] == ["name", "commune"]
    # A year without a date is approximate: two years either side count.
    query = {"given_name": "Chanthou", "family_name": "Sok", "birth_year": 1988, "village_code": "17010101"}
    [candidate] = (await client.post(MATCHES, json=query, headers=world.clerk_a.headers)).json()["items"]
    assert candidate["matched_fields"] == ["name", "birth_year_approximate", "village"]
    # ... and the same person registers without confirm_new.
    await register(client, world.clerk_a, _lookalike("17010102", birth_date="1987-01-01"))


async def test_matches_put_the_exact_national_id_first(client, world):
    existing = await register(client, world.clerk_a, copy.deepcopy(CONTRACT_EXAMPLE))
    query = {"given_name": "Somebody", "family_name": "Else", "village_code": "17120101", "national_id": "170123456"}
    [candidate] = (await client.post(MATCHES, json=query, headers=world.clerk_a.headers)).json()["items"]
    assert candidate["person_id"] == existing["members"][0]["id"]
    assert candidate["score"] == 1.0 and candidate["matched_fields"] == ["national_id"]


async def test_matches_never_show_another_offices_people(client, world):
    await register(client, world.clerk_a, copy.deepcopy(CONTRACT_EXAMPLE))
    query = {"given_name": "Chanthou", "family_name": "Sok", "birth_date": "1986-03-14", "village_code": "17010101",
             "national_id": "170123456"}
    response = await client.post(MATCHES, json=query, headers=world.clerk_b.headers)
    assert response.status_code == 200 and response.json() == {"items": []}
    assert len((await client.post(MATCHES, json=query, headers=world.admin.headers)).json()["items"]) == 1


async def test_matches_without_a_birth_year_find_by_national_id_only(client, world):
    await register(client, world.clerk_a, copy.deepcopy(CONTRACT_EXAMPLE))
    query = {"given_name": "Chanthou", "family_name": "Sok", "village_code": "17010101"}
    assert (await client.post(MATCHES, json=query, headers=world.clerk_a.headers)).json() == {"items": []}


@pytest.mark.parametrize("query, pointer", [
    ({"given_name": "A", "family_name": "B"}, "#/village_code"),
    ({"given_name": "A", "family_name": "B", "village_code": "1701"}, "#/village_code"),
    ({"given_name": "A", "family_name": "B", "village_code": "17010101", "sex": "f"}, "#/sex"),
    ({"given_name": "A", "family_name": "B", "village_code": "17010101", "birth_year": 1200}, "#/birth_year"),
    ({"given_name": "A" * 101, "family_name": "B", "village_code": "17010101"}, "#/given_name"),
    ({"given_name": "A", "family_name": "B", "village_code": "17010101", "birth_date": "soon"}, "#/birth_date"),
    ({"given_name": "A", "family_name": "B", "village_code": "17010101", "national_id": "no!"}, "#/national_id"),
    ({"given_name": "A", "family_name": "B", "village_code": "17010101", "extra": 1}, "#/extra"),
])
async def test_bad_match_queries_are_422(client, world, query, pointer):
    problem = assert_problem(await client.post(MATCHES, json=query, headers=world.clerk_a.headers), 422, "validation")
    assert pointer in pointers(problem)


async def test_matches_need_an_office_role(client, world):
    query = {"given_name": "A", "family_name": "B", "village_code": "17010101"}
    assert_problem(await client.post(MATCHES, json=query), 401)
    for account in (world.monitor, world.partner):
        assert_problem(await client.post(MATCHES, json=query, headers=account.headers), 403)


# ---- the score ------------------------------------------------------------------------------------------


def _person(given="Chanthou", family="Sok", sex="female", birth_date=date(1986, 3, 14), birth_year=None,
            approximate=False) -> Person:
    return Person(given_name=given, family_name=family, sex=sex, birth_date=birth_date,
                  birth_year=birth_year or birth_date.year, birth_date_approximate=approximate)


def _newcomer(given="Chanthou", family="Sok", sex="female", birth_date=date(1986, 3, 14), birth_year=None,
              approximate=False, village="17010101") -> Newcomer:
    return Newcomer(given_name=given, family_name=family, sex=sex, birth_date=birth_date,
                    birth_year=birth_year or (birth_date.year if birth_date else None), approximate=approximate,
                    village_code=village)


def test_the_same_person_scores_one():
    candidate = score(_newcomer(), _person(), "17010101")
    assert candidate.score == 1.0
    assert candidate.matched_fields == ["name", "birth_date", "village", "sex"]


@pytest.mark.parametrize("given, family", [("Chanthu", "Sokh"), ("Chantou", "Sok"), ("Sok", "Chanthou"),
                                           ("CHANTHOU", "SÓK")])
def test_spelling_variants_and_swapped_names_still_match(given, family):
    candidate = score(_newcomer(given=given, family=family), _person(), "17010101")
    assert candidate.score >= 0.95 and "name" in candidate.matched_fields


def test_parts_of_the_score():
    same_year = score(_newcomer(birth_date=None, birth_year=1986, approximate=True), _person(), "17010101")
    assert same_year.score == pytest.approx(0.6 + 0.3 * 0.8 + 0.1)
    assert "birth_year" in same_year.matched_fields
    near_year = score(_newcomer(birth_date=None, birth_year=1988, approximate=True), _person(), "17010101")
    assert near_year.score == pytest.approx(0.6 + 0.3 * 0.6 + 0.1)
    assert "birth_year_approximate" in near_year.matched_fields
    far_year = score(_newcomer(birth_date=None, birth_year=1988), _person(), "17010101")
    assert far_year.score == pytest.approx(0.7) and not {"birth_year", "birth_date"} & set(far_year.matched_fields)
    other_village = score(_newcomer(village="17010102"), _person(), "17010101")
    assert other_village.score == pytest.approx(0.6 + 0.3 + 0.06) and "commune" in other_village.matched_fields
    other_sex = score(_newcomer(sex="male"), _person(), "17010101")
    assert other_sex.score == pytest.approx(0.7) and "sex" not in other_sex.matched_fields
    unknown_sex = score(_newcomer(sex=None), _person(), "17010101")
    assert unknown_sex.score == 1.0 and "sex" not in unknown_sex.matched_fields


def test_strangers_never_look_like_duplicates():
    born_same_day_same_village = score(_newcomer(given="Vannak", family="Chea"), _person(), "17010101")
    assert born_same_day_same_village.score < LIKELY_DUPLICATE
    assert "name" not in born_same_day_same_village.matched_fields
    assert score(_newcomer(given="Vannak", family="Chea", birth_date=date(1990, 1, 1)), _person(), "17010101").score < WORTH_SHOWING
