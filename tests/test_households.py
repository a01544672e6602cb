"""Households: registration (the contract example), search, reads, changes, members and consent."""

import copy
import json
import uuid

import pytest

from app.models import ConsentRecord, Household, Person
from helpers import (
    CONTRACT_EXAMPLE,
    assert_problem,
    db_rows,
    household_body,
    national_id,
    pointers,
    register,
    table_counts,
)

HOUSEHOLDS = "/api/v1/households"


# ---- registration ---------------------------------------------------------------------------------------


async def test_contract_example_registers_with_ids_derived_fields_etag_and_location(client, world, app):
    response = await client.post(HOUSEHOLDS, json=CONTRACT_EXAMPLE, headers=world.clerk_a.headers)

    assert response.status_code == 201, response.text
    body = response.json()
    uuid.UUID(body["id"])
    assert body["version"] == 1
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"] == f"/api/v1/households/{body['id']}"
    assert body["office_code"] == "SR-ACH"
    assert body["village_code"] == "17010101"
    assert body["location"] == {"village": "Prasat", "commune": "Char Chhuk", "district": "Angkor Chum",
                                "province": "Siem Reap", "village_km": "ប្រាសាទ", "commune_km": "ចារឈូក",
                                "district_km": "អង្គរជុំ", "province_km": "សៀមរាប"}
    assert body["area_type"] == "rural" and body["address"] == "Phum Ta Prohm"
    assert body["idpoor"] == {"level": 1, "card_number": "EQ-17-0001234", "valid_until": "2027-06-30",
                              "valid": body["idpoor"]["valid"]}
    assert body["size"] == 2
    assert body["female_headed"] is True
    head, child = body["members"]
    assert len({head["id"], child["id"]}) == 2
    assert body["head_id"] == head["id"]
    assert head["given_name"] == "Chanthou" and head["relationship"] == "head"
    assert head["household_id"] == body["id"] and head["version"] == 1
    assert head["birth_date"] == "1986-03-14" and head["birth_year"] == 1986
    assert head["national_id"] == "170123456" and head["phone"] == "+85512345678"
    assert head["disability"]["walking"] == "a_lot" and head["severe_disability"] is True
    assert head["monthly_income"] == 400000 and head["employment_status"] == "informal"
    assert child["birth_date"] is None and child["birth_year"] == 2015 and child["birth_date_approximate"] is True
    assert child["school_enrolled"] is True and child["severe_disability"] is False
    assert child["disability"] == {d: "none" for d in ("seeing", "hearing", "walking", "remembering", "self_care",
                                                      "communicating")}
    assert body["consent"]["purposes"] == ["registry", "eligibility_sharing"]
    assert body["consent"]["given_by"] == "Sok Chanthou" and body["consent"]["method"] == "verbal"
    assert body["consent"]["recorded_by"] == str(world.clerk_a.id)

    [household] = await db_rows(app, Household)
    assert str(household.id) == body["id"]
    persons = await db_rows(app, Person)
    assert {str(p.id) for p in persons} == {head["id"], child["id"]}
    assert len(await db_rows(app, ConsentRecord)) == 1


async def test_a_birth_year_alone_is_an_approximate_birth(client, world):
    body = household_body()
    body["members"][1].pop("birth_date_approximate")
    child = (await register(client, world.clerk_a, body))["members"][1]
    assert child["birth_date"] is None and child["birth_date_approximate"] is True


async def test_male_headed_household_is_not_female_headed(client, world):
    body = household_body()
    body["members"][0]["sex"] = "male"
    household = await register(client, world.clerk_a, body)
    assert household["female_headed"] is False


async def test_registered_household_reads_back_identically(client, world):
    created = await client.post(HOUSEHOLDS, json=household_body(members=3), headers=world.clerk_a.headers)
    response = await client.get(created.headers["Location"], headers=world.clerk_a.headers)
    assert response.status_code == 200
    assert response.headers["ETag"] == '"1"'
    assert response.json() == created.json()
    assert [m["id"] for m in response.json()["members"]] == [m["id"] for m in created.json()["members"]]


async def test_supervisor_registers_too(client, world):
    household = await register(client, world.supervisor_a)
    assert household["office_code"] == "SR-ACH"


async def test_admin_registers_for_the_office_named(client, world):
    household = await register(client, world.admin, household_body(village_code="17120101", office_code="SR-SSN"))
    assert household["office_code"] == "SR-SSN"


async def test_admin_must_name_an_existing_office(client, world):
    problem = assert_problem(await client.post(HOUSEHOLDS, json=household_body(), headers=world.admin.headers), 422,
                             "validation")
    assert pointers(problem) == ["#/office_code"]
    problem = assert_problem(await client.post(HOUSEHOLDS, json=household_body(office_code="XX-NONE"),
                                               headers=world.admin.headers), 422, "validation")
    assert pointers(problem) == ["#/office_code"]


async def test_clerk_cannot_register_for_another_office(client, world):
    assert_problem(await client.post(HOUSEHOLDS, json=household_body(office_code="SR-SSN"), headers=world.clerk_a.headers),
                   403, "forbidden")
    household = await register(client, world.clerk_a, household_body(office_code="SR-ACH"))
    assert household["office_code"] == "SR-ACH"


async def test_a_village_outside_the_gazetteer_or_not_a_village_is_refused(client, world, app):
    before = await table_counts(app)
    for code in ("17019999", "17010100"):
        problem = assert_problem(await client.post(HOUSEHOLDS, json=household_body(village_code=code),
                                                   headers=world.clerk_a.headers), 422, "validation")
        assert pointers(problem) == ["#/village_code"]
    assert await table_counts(app) == before


def _long(n: int) -> str:
    return "x" * n


def _edit(path, value):
    """A registration with one field set (value) or removed (value is ...)."""
    def make():
        body = household_body()
        target = body
        for key in path[:-1]:
            target = target[key]
        if value is ...:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        return body
    return make


INVALID_REGISTRATIONS = {
    # missing
    "missing village": (_edit(["village_code"], ...), "#/village_code"),
    "missing consent": (_edit(["consent"], ...), "#/consent"),
    "missing members": (_edit(["members"], ...), "#/members"),
    "missing sex": (_edit(["members", 0, "sex"], ...), "#/members/0/sex"),
    "missing given name": (_edit(["members", 1, "given_name"], ...), "#/members/1/given_name"),
    "missing birth": (_edit(["members", 1, "birth_year"], ...), "#/members/1/birth_date"),
    "blank given name": (_edit(["members", 0, "given_name"], "   "), "#/members/0/given_name"),
    # wrong type
    "members not a list": (_edit(["members"], "two"), "#/members"),
    "income not a number": (_edit(["members", 0, "monthly_income"], "a lot"), "#/members/0/monthly_income"),
    "birth date not a date": (_edit(["members", 0, "birth_date"], "14/03/1986"), "#/members/0/birth_date"),
    "pregnant not a bool": (_edit(["members", 0, "pregnant"], "maybe"), "#/members/0/pregnant"),
    "idpoor not an object": (_edit(["idpoor"], 1), "#/idpoor"),
    # too long
    "address too long": (_edit(["address"], _long(301)), "#/address"),
    "given name too long": (_edit(["members", 0, "given_name"], _long(101)), "#/members/0/given_name"),
    "family name too long": (_edit(["members", 0, "family_name"], _long(101)), "#/members/0/family_name"),
    "consent given_by too long": (_edit(["consent", "given_by"], _long(201)), "#/consent/given_by"),
    "card number too long": (_edit(["idpoor", "card_number"], _long(41)), "#/idpoor/card_number"),
    "attribute value too long": (_edit(["members", 0, "attributes"], {"note": _long(201)}),
                                 "#/members/0/attributes/note"),
    "attribute value a list": (_edit(["members", 0, "attributes"], {"note": [1]}), "#/members/0/attributes/note"),
    "national id too long": (_edit(["members", 0, "national_id"], "1" * 31), "#/members/0/national_id"),
    "phone too long": (_edit(["members", 0, "phone"], "+855" + "1" * 20), "#/members/0/phone"),
    # out of range
    "negative income": (_edit(["members", 0, "monthly_income"], -1), "#/members/0/monthly_income"),
    # Beyond 64 bits PostgreSQL's bulk write could not take it (it was a 500 there, a 201 on SQLite); a
    # JSON number that large now parses as the double it is to a browser (RFC 8259, section 6).
    "attribute integer too large": (_edit(["members", 0, "attributes"], {"count": 2**63}), "#/members/0/attributes/count"),
    "attribute integer beyond doubles": (_edit(["members", 0, "attributes"], {"count": -(2**53)}),
                                         "#/members/0/attributes/count"),
    "attendance over 100": (_edit(["members", 1, "school_attendance_percent"], 101),
                            "#/members/1/school_attendance_percent"),
    "birth year 1800": (_edit(["members", 1, "birth_year"], 1800), "#/members/1/birth_year"),
    "idpoor level 3": (_edit(["idpoor", "level"], 3), "#/idpoor/level"),
    "no members": (_edit(["members"], []), "#/members"),
    "village code of 4 digits": (_edit(["village_code"], "1701"), "#/village_code"),
    # unknown enum
    "unknown sex": (_edit(["members", 0, "sex"], "f"), "#/members/0/sex"),
    "unknown area type": (_edit(["area_type"], "suburban"), "#/area_type"),
    "unknown relationship": (_edit(["members", 1, "relationship"], "cousin"), "#/members/1/relationship"),
    "unknown disability level": (_edit(["members", 0, "disability", "walking"], "maybe"),
                                 "#/members/0/disability/walking"),
    "unknown employment": (_edit(["members", 0, "employment_status"], "farmer"), "#/members/0/employment_status"),
    "unknown consent purpose": (_edit(["consent", "purposes"], ["registry", "marketing"]), "#/consent/purposes/1"),
    "unknown consent method": (_edit(["consent", "method"], "email"), "#/consent/method"),
    "unknown field": (_edit(["colour"], "blue"), "#/colour"),
    "unknown member field": (_edit(["members", 0, "nickname"], "Thou"), "#/members/0/nickname"),
    # rules across fields
    "future birth date": (_edit(["members", 0, "birth_date"], "2999-01-01"), "#/members/0/birth_date"),
    "future birth year": (_edit(["members", 1, "birth_year"], 2199), "#/members/1/birth_year"),
    "birth year contradicts date": (_edit(["members", 0, "birth_year"], 1990), "#/members/0/birth_year"),
    "pregnant man": (_edit(["members", 1, "pregnant"], True), "#/members/1/pregnant"),
    "delivery date without pregnancy": (_edit(["members", 0, "expected_delivery_date"], "2027-01-01"),
                                        "#/members/0/expected_delivery_date"),
    "two heads": (_edit(["members", 1, "relationship"], "head"), "#/members/1/relationship"),
    "no head": (_edit(["members", 0, "relationship"], "spouse"), "#/members"),
    "no registry consent": (_edit(["consent", "purposes"], ["eligibility_sharing"]), "#/consent/purposes"),
    "card without level": (_edit(["idpoor"], {"card_number": "EQ-1"}), "#/idpoor/level"),
    "bad national id": (_edit(["members", 0, "national_id"], "12 34!"), "#/members/0/national_id"),
    "bad attribute key": (_edit(["members", 0, "attributes"], {"Bad Key": 1}), "#/members/0/attributes/Bad Key/[key]"),
}


@pytest.mark.parametrize("case", INVALID_REGISTRATIONS)
async def test_invalid_registration_is_422_pointing_at_the_field(client, world, app, case):
    make, pointer = INVALID_REGISTRATIONS[case]
    response = await client.post(HOUSEHOLDS, json=make(), headers=world.clerk_a.headers)
    problem = assert_problem(response, 422, "validation")
    assert pointer in pointers(problem), problem
    assert all(e["detail"] for e in problem["errors"])
    assert await db_rows(app, Household) == []


async def test_two_members_with_one_national_id_point_at_the_second(client, world):
    body = household_body()
    body["members"][1]["national_id"] = body["members"][0]["national_id"]
    problem = assert_problem(await client.post(HOUSEHOLDS, json=body, headers=world.clerk_a.headers), 422)
    assert pointers(problem) == ["#/members/1/national_id"]


async def test_too_many_members(client, world):
    problem = assert_problem(await client.post(HOUSEHOLDS, json=household_body(members=41), headers=world.clerk_a.headers),
                             422, "validation")
    assert pointers(problem) == ["#/members"]


async def test_malformed_json_is_a_problem(client, world, app):
    response = await client.post(HOUSEHOLDS, content=b'{"village_code": "17010101", ', headers={
        **world.clerk_a.headers, "Content-Type": "application/json"})
    # Not JSON at all is a 400 of its own type; well-formed JSON with wrong fields is the 422 above.
    assert_problem(response, 400, "malformed-json")
    assert await db_rows(app, Household) == []


async def test_a_body_orjson_refuses_is_still_read_as_before(client, world):
    """Bodies are parsed by orjson; what only the standard library takes (a UTF-8 byte-order mark, which
    some Windows clients write) is still read."""
    body = json.dumps(household_body()).encode()
    response = await client.post(HOUSEHOLDS, content=b"\xef\xbb\xbf" + body, headers={
        **world.clerk_a.headers, "Content-Type": "application/json"})
    assert response.status_code == 201, response.text


async def test_a_body_that_is_not_an_object_is_422(client, world):
    problem = assert_problem(await client.post(HOUSEHOLDS, json=[CONTRACT_EXAMPLE], headers=world.clerk_a.headers), 422)
    assert pointers(problem) == ["#/"]


# ---- who may register and read --------------------------------------------------------------------------


async def test_registration_needs_a_token_and_an_office_role(client, world):
    response = await client.post(HOUSEHOLDS, json=household_body())
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    for account in (world.monitor, world.partner):
        assert_problem(await client.post(HOUSEHOLDS, json=household_body(), headers=account.headers), 403, "forbidden")


async def test_another_offices_household_is_not_found_exactly_like_a_missing_one(client, world):
    household = await register(client, world.clerk_a)
    other = await client.get(f"{HOUSEHOLDS}/{household['id']}", headers=world.clerk_b.headers)
    missing = await client.get(f"{HOUSEHOLDS}/{uuid.uuid4()}", headers=world.clerk_b.headers)
    assert_problem(other, 404, "not-found")
    assert_problem(missing, 404, "not-found")
    strip = lambda r: {k: v for k, v in r.json().items() if k not in ("instance", "request_id")}  # noqa: E731
    assert strip(other) == strip(missing)
    assert "ETag" not in other.headers
    for path in ("", "/consent"):
        assert_problem(await client.get(f"{HOUSEHOLDS}/{household['id']}{path}", headers=world.supervisor_b.headers), 404)


async def test_admin_reads_every_office(client, world):
    household = await register(client, world.clerk_b, household_body(village_code="17120101"))
    response = await client.get(f"{HOUSEHOLDS}/{household['id']}", headers=world.admin.headers)
    assert response.status_code == 200 and response.json()["office_code"] == "SR-SSN"


async def test_monitor_and_partner_get_403_on_personal_data(client, world):
    household = await register(client, world.clerk_a)
    for account in (world.monitor, world.partner):
        for path in (HOUSEHOLDS, f"{HOUSEHOLDS}/{household['id']}", f"{HOUSEHOLDS}/{household['id']}/consent"):
            assert_problem(await client.get(path, headers=account.headers), 403, "forbidden")


async def test_a_malformed_id_is_422(client, world):
    problem = assert_problem(await client.get(f"{HOUSEHOLDS}/not-a-uuid", headers=world.clerk_a.headers), 422)
    assert pointers(problem) == ["#/path/household_id"]


# ---- search ---------------------------------------------------------------------------------------------


async def _search(client, account, **params):
    response = await client.get(HOUSEHOLDS, params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_name_search_is_case_and_accent_insensitive(client, world):
    sok = await register(client, world.clerk_a, copy.deepcopy(CONTRACT_EXAMPLE))
    await register(client, world.clerk_a)
    for query in ("chanth", "CHANTH", "Chânth", "sok chanthou", "Chanthou Sok", "sok", "DARA"):
        found = await _search(client, world.clerk_a, name=query)
        assert [h["id"] for h in found["items"]] == [sok["id"]], query
        assert found["total"] == 1
    assert (await _search(client, world.clerk_a, name="chanthy"))["total"] == 0


async def test_accented_names_are_found_without_accents(client, world):
    body = household_body()
    body["members"][0] |= {"given_name": "Sóphéap", "family_name": "Ñgin"}
    household = await register(client, world.clerk_a, body)
    for query in ("sopheap", "SOPHÉAP", "ngin soph"):
        assert [h["id"] for h in (await _search(client, world.clerk_a, name=query))["items"]] == [household["id"]]


async def test_khmer_script_names_are_found_by_khmer_text(client, world):
    body = household_body()
    body["members"][0] |= {"given_name": "ចន្ធូ", "family_name": "សុខ"}
    household = await register(client, world.clerk_a, body)
    assert [h["id"] for h in (await _search(client, world.clerk_a, name="ចន្ធូ"))["items"]] == [household["id"]]
    assert (await _search(client, world.clerk_a, name="សុខ ចន្ធូ"))["total"] == 1
    assert (await _search(client, world.clerk_a, name="ដារា"))["total"] == 0


async def test_search_summary_names_the_head(client, world):
    household = await register(client, world.clerk_a, copy.deepcopy(CONTRACT_EXAMPLE))
    [item] = (await _search(client, world.clerk_a, name="chanthou"))["items"]
    assert item == {
        "id": household["id"], "version": 1, "office_code": "SR-ACH", "village_code": "17010101",
        "village_name": "Prasat", "village_name_km": "ប្រាសាទ", "address": "Phum Ta Prohm", "idpoor_level": 1,
        "head_name": "Sok Chanthou", "head_name_latin": None, "head_national_id": "170123456",
        "size": 2, "female_headed": True, "created_at": item["created_at"],
    }


async def test_search_by_national_id_of_any_member(client, world):
    body = household_body()
    body["members"][1]["national_id"] = member_id = national_id()
    household = await register(client, world.clerk_a, body)
    await register(client, world.clerk_a)
    assert [h["id"] for h in (await _search(client, world.clerk_a, national_id=member_id))["items"]] == [household["id"]]
    assert (await _search(client, world.clerk_a, national_id="999999999"))["total"] == 0


async def test_search_by_village_or_any_ancestor_location(client, world):
    in_village = await register(client, world.clerk_a, household_body(village_code="17010101"))
    same_commune = await register(client, world.clerk_a, household_body(village_code="17010102"))
    other_commune = await register(client, world.clerk_a, household_body(village_code="17010201"))
    expected = {
        "17010101": {in_village["id"]},
        "170101": {in_village["id"], same_commune["id"]},
        "1701": {in_village["id"], same_commune["id"], other_commune["id"]},
        "17": {in_village["id"], same_commune["id"], other_commune["id"]},
        "1712": set(),
        "02": set(),
    }
    for code, ids in expected.items():
        found = await _search(client, world.clerk_a, location=code)
        assert {h["id"] for h in found["items"]} == ids, code
        assert found["total"] == len(ids)


async def test_search_by_idpoor_level(client, world):
    level1 = await register(client, world.clerk_a, household_body(idpoor={"level": 1}))
    level2 = await register(client, world.clerk_a, household_body(idpoor={"level": 2}))
    none = await register(client, world.clerk_a, household_body(idpoor=None))
    for level, household in (("1", level1), ("2", level2), ("none", none)):
        assert [h["id"] for h in (await _search(client, world.clerk_a, idpoor_level=level))["items"]] == [household["id"]]


async def test_filters_combine(client, world):
    wanted = await register(client, world.clerk_a, household_body(village_code="17010102", idpoor={"level": 2}))
    await register(client, world.clerk_a, household_body(village_code="17010102", idpoor={"level": 1}))
    await register(client, world.clerk_a, household_body(village_code="17010201", idpoor={"level": 2}))
    found = await _search(client, world.clerk_a, location="170101", idpoor_level="2")
    assert [h["id"] for h in found["items"]] == [wanted["id"]]


async def test_search_pages_are_stable_complete_and_counted(client, world):
    ids = [(await register(client, world.clerk_a))["id"] for _ in range(5)]
    pages = [await _search(client, world.clerk_a, limit=2, offset=offset) for offset in (0, 2, 4)]
    assert [p["total"] for p in pages] == [5, 5, 5]
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    assert [p["limit"] for p in pages] == [2, 2, 2] and [p["offset"] for p in pages] == [0, 2, 4]
    seen = [h["id"] for p in pages for h in p["items"]]
    assert seen == list(reversed(ids))  # newest first, every household once
    again = [h["id"] for offset in (0, 2, 4) for h in (await _search(client, world.clerk_a, limit=2, offset=offset))["items"]]
    assert again == seen
    assert (await _search(client, world.clerk_a, offset=10))["items"] == []


async def test_search_sees_own_office_only_and_admin_sees_all(client, world):
    mine = await register(client, world.clerk_a)
    theirs = await register(client, world.clerk_b, household_body(village_code="17120101"))
    assert [h["id"] for h in (await _search(client, world.clerk_a))["items"]] == [mine["id"]]
    assert [h["id"] for h in (await _search(client, world.supervisor_b))["items"]] == [theirs["id"]]
    found = await _search(client, world.admin)
    assert {h["id"] for h in found["items"]} == {mine["id"], theirs["id"]} and found["total"] == 2
    # A name or national ID of the other office finds nothing either.
    head = theirs["members"][0]
    assert (await _search(client, world.clerk_a, name=head["given_name"]))["total"] == 0
    assert (await _search(client, world.clerk_a, national_id=head["national_id"]))["total"] == 0


@pytest.mark.parametrize("params, pointer", [
    ({"limit": 201}, "#/query/limit"),
    ({"limit": 0}, "#/query/limit"),
    ({"limit": "ten"}, "#/query/limit"),
    ({"offset": -1}, "#/query/offset"),
    ({"idpoor_level": "3"}, "#/query/idpoor_level"),
    ({"location": "123"}, "#/query/location"),
    ({"name": "x" * 101}, "#/query/name"),
    ({"name": ""}, "#/query/name"),
    ({"national_id": "1" * 31}, "#/query/national_id"),
])
async def test_bad_search_parameters_are_422(client, world, params, pointer):
    problem = assert_problem(await client.get(HOUSEHOLDS, params=params, headers=world.clerk_a.headers), 422, "validation")
    assert pointers(problem) == [pointer]


async def test_a_page_of_200_is_allowed(client, world):
    assert (await _search(client, world.clerk_a, limit=200))["limit"] == 200


# ---- changing a household -------------------------------------------------------------------------------


async def test_patch_needs_if_match_and_refuses_a_stale_one(client, world, app):
    household = await register(client, world.clerk_a)
    url = f"{HOUSEHOLDS}/{household['id']}"

    problem = assert_problem(await client.patch(url, json={"address": "New"}, headers=world.clerk_a.headers), 428,
                             "precondition-required")
    assert problem["current_etag"] == '"1"'
    problem = assert_problem(await client.patch(url, json={"address": "New"},
                                                headers={**world.clerk_a.headers, "If-Match": '"7"'}), 412,
                             "precondition-failed")
    assert problem["current_etag"] == '"1"'
    [row] = await db_rows(app, Household)
    assert row.address == household["address"] and row.version == 1

    response = await client.patch(url, json={"address": "Phum Thmei"}, headers={**world.clerk_a.headers, "If-Match": '"1"'})
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"2"'
    assert response.json()["version"] == 2 and response.json()["address"] == "Phum Thmei"
    read = await client.get(url, headers=world.clerk_a.headers)
    assert read.headers["ETag"] == '"2"' and read.json()["address"] == "Phum Thmei"

    # The first writer's ETag is stale now.
    problem = assert_problem(await client.patch(url, json={"address": "Other"}, headers={**world.clerk_a.headers,
                                                                                        "If-Match": '"1"'}), 412)
    assert problem["current_etag"] == '"2"'


async def test_if_match_accepts_weak_lists_and_star(client, world):
    household = await register(client, world.clerk_a)
    url = f"{HOUSEHOLDS}/{household['id']}"
    for version, if_match in ((1, 'W/"1"'), (2, '"9", "2"'), (3, "*")):
        response = await client.patch(url, json={"address": f"v{version}"}, headers={**world.clerk_a.headers,
                                                                                   "If-Match": if_match})
        assert response.status_code == 200, (if_match, response.text)
        assert response.headers["ETag"] == f'"{version + 1}"'


@pytest.mark.parametrize("if_match", ["1", "'1'", "W/1", '"1', '"1", 2', "", '"1", *'])
async def test_an_if_match_that_is_not_an_entity_tag_is_400_saying_how_to_write_one(client, world, app, if_match):
    # An integrator who sends the version unquoted gets told the format, not "the record was changed".
    household = await register(client, world.clerk_a)
    problem = assert_problem(await client.patch(f"{HOUSEHOLDS}/{household['id']}", json={"address": "New"},
                                                headers={**world.clerk_a.headers, "If-Match": if_match}), 400, "bad-request")
    assert 'If-Match: "1"' in problem["detail"] and "double quotes" in problem["detail"]
    assert problem["current_etag"] == '"1"'
    [row] = await db_rows(app, Household)
    assert row.address == household["address"] and row.version == 1


async def test_patch_changes_idpoor_area_and_village(client, world):
    household = await register(client, world.clerk_a, household_body(idpoor={"level": 1, "card_number": "EQ-1"}))
    response = await client.patch(f"{HOUSEHOLDS}/{household['id']}",
                                  json={"idpoor": {"level": 2, "valid_until": "2030-01-31"}, "area_type": "urban",
                                        "village_code": "17010201"},
                                  headers={**world.clerk_a.headers, "If-Match": '"1"'})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["idpoor"] == {"level": 2, "card_number": None, "valid_until": "2030-01-31", "valid": True}
    assert body["area_type"] == "urban" and body["village_code"] == "17010201"
    assert body["location"]["commune"] == "Doun Peng" and body["location"]["village"] == "Rokar"
    response = await client.patch(f"{HOUSEHOLDS}/{household['id']}", json={"idpoor": None},
                                  headers={**world.clerk_a.headers, "If-Match": '"2"'})
    assert response.json()["idpoor"] == {"level": None, "card_number": None, "valid_until": None, "valid": False}


async def test_an_expired_equity_card_is_not_valid(client, world):
    household = await register(client, world.clerk_a, household_body(idpoor={"level": 1, "valid_until": "2020-12-31"}))
    assert household["idpoor"]["valid"] is False


async def test_an_empty_patch_changes_nothing(client, world):
    household = await register(client, world.clerk_a)
    response = await client.patch(f"{HOUSEHOLDS}/{household['id']}", json={},
                                  headers={**world.clerk_a.headers, "If-Match": '"1"'})
    assert response.status_code == 200 and response.headers["ETag"] == '"1"'


async def test_changing_the_head(client, world):
    body = household_body(members=3)
    body["members"][0]["sex"] = "male"
    body["members"][1] |= {"sex": "female", "relationship": "spouse", "birth_year": 1980}
    household = await register(client, world.clerk_a, body)
    old_head, spouse, _ = household["members"]
    assert household["female_headed"] is False
    response = await client.patch(f"{HOUSEHOLDS}/{household['id']}",
                                  json={"head_id": spouse["id"], "former_head_relationship": "spouse"},
                                  headers={**world.clerk_a.headers, "If-Match": '"1"'})
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["head_id"] == spouse["id"] and changed["female_headed"] is True
    relationships = {m["id"]: m["relationship"] for m in changed["members"]}
    assert relationships[old_head["id"]] == "spouse" and relationships[spouse["id"]] == "head"
    assert sum(r == "head" for r in relationships.values()) == 1


@pytest.mark.parametrize("change, pointer", [
    ({"head_id": str(uuid.uuid4())}, "#/head_id"),
    ({"former_head_relationship": "spouse"}, "#/former_head_relationship"),
    ({"area_type": None}, "#/area_type"),
    ({"village_code": None}, "#/village_code"),
    ({"village_code": "17010100"}, "#/village_code"),
    ({"village_code": "1701010"}, "#/village_code"),
    ({"area_type": "city"}, "#/area_type"),
    ({"address": "x" * 301}, "#/address"),
    ({"idpoor": {"level": 5}}, "#/idpoor/level"),
    ({"size": 3}, "#/size"),
])
async def test_invalid_household_changes_are_422(client, world, app, change, pointer):
    household = await register(client, world.clerk_a)
    before = await table_counts(app)
    response = await client.patch(f"{HOUSEHOLDS}/{household['id']}", json=change,
                                  headers={**world.clerk_a.headers, "If-Match": '"1"'})
    problem = assert_problem(response, 422, "validation")
    assert pointers(problem) == [pointer]
    assert await table_counts(app) == before
    assert (await client.get(f"{HOUSEHOLDS}/{household['id']}", headers=world.clerk_a.headers)).headers["ETag"] == '"1"'


async def test_head_of_another_household_cannot_be_made_head(client, world):
    household = await register(client, world.clerk_a)
    other = await register(client, world.clerk_a)
    problem = assert_problem(await client.patch(f"{HOUSEHOLDS}/{household['id']}",
                                                json={"head_id": other["members"][1]["id"]},
                                                headers={**world.clerk_a.headers, "If-Match": '"1"'}), 422)
    assert pointers(problem) == ["#/head_id"]


async def test_patch_of_another_offices_household_is_404(client, world):
    household = await register(client, world.clerk_a)
    for account in (world.clerk_b, world.supervisor_b):
        assert_problem(await client.patch(f"{HOUSEHOLDS}/{household['id']}", json={"address": "x"},
                                          headers={**account.headers, "If-Match": '"1"'}), 404, "not-found")
    for account in (world.monitor, world.partner):
        assert_problem(await client.patch(f"{HOUSEHOLDS}/{household['id']}", json={"address": "x"},
                                          headers={**account.headers, "If-Match": '"1"'}), 403)
    assert_problem(await client.patch(f"{HOUSEHOLDS}/{household['id']}", json={"address": "x"},
                                      headers={"If-Match": '"1"'}), 401)


# ---- members --------------------------------------------------------------------------------------------


def _member(**facts):
    return {"given_name": "Bopha", "family_name": "Rath", "sex": "female", "birth_date": "2019-05-02",
            "relationship": "grandchild"} | facts


async def test_adding_a_member(client, world, app):
    household = await register(client, world.clerk_a)
    response = await client.post(f"{HOUSEHOLDS}/{household['id']}/members", json=_member(), headers=world.clerk_a.headers)
    assert response.status_code == 201, response.text
    person = response.json()
    assert response.headers["Location"] == f"/api/v1/persons/{person['id']}"
    assert response.headers["ETag"] == '"1"'
    assert person["household_id"] == household["id"] and person["relationship"] == "grandchild"
    assert person["birth_year"] == 2019
    read = await client.get(f"{HOUSEHOLDS}/{household['id']}", headers=world.clerk_a.headers)
    assert read.json()["size"] == 3 and read.json()["members"][-1]["id"] == person["id"]
    assert read.headers["ETag"] == '"2"'  # the household changed
    [row] = await db_rows(app, Person, Person.id == uuid.UUID(person["id"]))
    assert row.office_id == world.office_ids["SR-ACH"] and row.registered_by == world.clerk_a.id


@pytest.mark.parametrize("member, pointer", [
    (_member(relationship="head"), "#/relationship"),
    (_member(birth_date="2999-01-01"), "#/birth_date"),
    (_member(sex="x"), "#/sex"),
    (_member(given_name="y" * 101), "#/given_name"),
    ({"given_name": "Bopha"}, "#/family_name"),
    (_member(confirm_new="perhaps"), "#/confirm_new"),
])
async def test_invalid_members_are_422(client, world, app, member, pointer):
    household = await register(client, world.clerk_a)
    before = await table_counts(app)
    problem = assert_problem(await client.post(f"{HOUSEHOLDS}/{household['id']}/members", json=member,
                                               headers=world.clerk_a.headers), 422, "validation")
    assert pointer in pointers(problem)
    assert await table_counts(app) == before


async def test_a_member_with_a_registered_national_id_is_409(client, world, app):
    household = await register(client, world.clerk_a)
    before = await table_counts(app)
    taken = household["members"][0]["national_id"]
    problem = assert_problem(await client.post(f"{HOUSEHOLDS}/{household['id']}/members",
                                               json=_member(national_id=taken), headers=world.clerk_a.headers),
                             409, "national-id-registered")
    assert problem["existing_person_id"] == household["members"][0]["id"]
    assert problem["field"] == "#/national_id"
    assert await table_counts(app) == before


async def test_members_of_another_offices_household_are_404(client, world):
    household = await register(client, world.clerk_a)
    assert_problem(await client.post(f"{HOUSEHOLDS}/{household['id']}/members", json=_member(),
                                     headers=world.clerk_b.headers), 404, "not-found")
    assert_problem(await client.post(f"{HOUSEHOLDS}/{uuid.uuid4()}/members", json=_member(),
                                     headers=world.clerk_a.headers), 404, "not-found")
    assert_problem(await client.post(f"{HOUSEHOLDS}/{household['id']}/members", json=_member(),
                                     headers=world.monitor.headers), 403)


# ---- consent --------------------------------------------------------------------------------------------


async def test_consent_history_keeps_every_change_newest_first(client, world):
    household = await register(client, world.clerk_a)
    url = f"{HOUSEHOLDS}/{household['id']}/consent"
    history = (await client.get(url, headers=world.clerk_a.headers)).json()
    assert [c["purposes"] for c in history] == [["registry", "eligibility_sharing"]]

    change = {"purposes": ["registry", "contact", "contact"], "given_by": "Sok Chanthou", "method": "thumbprint",
              "note": "Agreed to SMS reminders"}
    response = await client.post(url, json=change, headers=world.supervisor_a.headers)
    assert response.status_code == 201, response.text
    recorded = response.json()
    assert recorded["purposes"] == ["registry", "contact"]  # repeated purposes collapse
    assert recorded["method"] == "thumbprint" and recorded["recorded_by"] == str(world.supervisor_a.id)

    history = (await client.get(url, headers=world.clerk_a.headers)).json()
    assert [c["id"] for c in history][0] == recorded["id"] and len(history) == 2
    assert history[1]["purposes"] == ["registry", "eligibility_sharing"]
    read = await client.get(f"{HOUSEHOLDS}/{household['id']}", headers=world.clerk_a.headers)
    assert read.json()["consent"]["id"] == recorded["id"]
    assert read.headers["ETag"] == '"2"'


@pytest.mark.parametrize("consent, pointer", [
    ({"purposes": ["contact"], "given_by": "A", "method": "verbal"}, "#/purposes"),
    ({"purposes": [], "given_by": "A", "method": "verbal"}, "#/purposes"),
    ({"purposes": ["registry"], "given_by": "A", "method": "telepathy"}, "#/method"),
    ({"purposes": ["registry"], "method": "verbal"}, "#/given_by"),
    ({"purposes": ["registry"], "given_by": "A", "method": "verbal", "note": "n" * 501}, "#/note"),
])
async def test_invalid_consent_changes_are_422(client, world, app, consent, pointer):
    household = await register(client, world.clerk_a)
    before = await table_counts(app)
    problem = assert_problem(await client.post(f"{HOUSEHOLDS}/{household['id']}/consent", json=consent,
                                               headers=world.clerk_a.headers), 422, "validation")
    assert pointers(problem) == [pointer]
    assert await table_counts(app) == before


async def test_consent_of_another_office_is_404(client, world):
    household = await register(client, world.clerk_a)
    consent = {"purposes": ["registry"], "given_by": "A", "method": "verbal"}
    assert_problem(await client.post(f"{HOUSEHOLDS}/{household['id']}/consent", json=consent,
                                     headers=world.clerk_b.headers), 404)
    assert_problem(await client.post(f"{HOUSEHOLDS}/{household['id']}/consent", json=consent,
                                     headers=world.monitor.headers), 403)
    assert_problem(await client.get(f"{HOUSEHOLDS}/{uuid.uuid4()}/consent", headers=world.clerk_a.headers), 404)


@pytest.mark.parametrize("member_field, value", [
    ("monthly_income", False), ("monthly_income", "400000"), ("monthly_income", 400000.5), ("birth_year", True),
    ("school_attendance_percent", "90"), ("pregnant", 1), ("school_enrolled", "yes"), ("nssf_member", 0),
])
async def test_numbers_and_booleans_are_taken_as_json_types_not_coerced(client, world, app, member_field, value):
    """Found by fuzzing: Pydantic's lax mode read `false` as the income 0, `"90"` as 90 and `1` as true.
    The contract says integer and boolean: anything else is a 422 naming the field, and nothing is stored."""
    body = household_body()
    body["members"][0][member_field] = value
    before = await table_counts(app)
    response = await client.post(HOUSEHOLDS, json=body, headers=world.clerk_a.headers)
    assert f"#/members/0/{member_field}" in pointers(assert_problem(response, 422, "validation"))
    assert await table_counts(app) == before


async def test_an_idpoor_level_of_true_is_not_level_1(client, world):
    body = household_body() | {"idpoor": {"level": True}}
    response = await client.post(HOUSEHOLDS, json=body, headers=world.clerk_a.headers)
    assert "#/idpoor/level" in pointers(assert_problem(response, 422, "validation"))
