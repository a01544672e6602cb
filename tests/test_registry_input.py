"""What the registry takes as typed: numbers as the client wrote them, names that can be found and
printed, dates written as dates (issue 13, points 9, 10 and 11). On SQLite and PostgreSQL."""

import json

import pytest

from app.models import Person
from helpers import assert_problem, db_rows, household_body, pointers, register, table_counts
from test_cases import open_case

HOUSEHOLDS = "/api/v1/households"


async def _send(client, method: str, path: str, account, body: dict, **headers):
    """The body as ASCII JSON (escaped: the characters are seen as the server reads them)."""
    return await client.request(method, path, content=json.dumps(body),
                                headers={**account.headers, "Content-Type": "application/json", **headers})


async def _post_raw(client, account, body: dict, marker: str, number: str):
    """POST a body in which the JSON value "marker" is replaced by a number written as given."""
    raw = json.dumps(body).replace(f'"{marker}"', number)
    return await client.post(HOUSEHOLDS, content=raw, headers={**account.headers, "Content-Type": "application/json"})


# ---- numbers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["18446744073709551616", "1000000000000000000000000000000", "-9223372036854775809",
                                    "1e30", "12345678901234567890.5"])
async def test_an_attribute_beyond_2_to_the_53_is_422_however_written(client, world, app, number):
    before = await table_counts(app)
    body = household_body()
    body["members"][0]["attributes"] = {"x": "NUMBER"}
    problem = assert_problem(await _post_raw(client, world.clerk_a, body, "NUMBER", number), 422, "validation")
    assert pointers(problem) == ["#/members/0/attributes/x"], problem
    assert "9,007,199,254,740,991" in problem["errors"][0]["detail"]
    assert await table_counts(app) == before


async def test_an_integer_beyond_64_bits_is_validated_as_the_integer_sent_and_others_kept_exactly(client, world, app):
    # Read as a float, 2**64 was "not a valid integer"; it is an integer, too large for the field.
    body = household_body()
    body["members"][0]["monthly_income"] = "INCOME"
    problem = assert_problem(await _post_raw(client, world.clerk_a, body, "INCOME", "18446744073709551616"), 422)
    [error] = problem["errors"]
    assert error["pointer"] == "#/members/0/monthly_income" and error["code"] == "less_than_equal", error
    body = household_body()
    body["members"][0]["attributes"] = {"most": "MOST", "least": "LEAST"}
    body["members"][0]["national_id"] = "12345678901234567890123"  # a long digit run inside a string stays a string
    raw = json.dumps(body).replace('"MOST"', "9007199254740991").replace('"LEAST"', "-9007199254740991")
    response = await client.post(HOUSEHOLDS, content=raw, headers={**world.clerk_a.headers, "Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    assert response.json()["members"][0]["attributes"] == {"most": 2**53 - 1, "least": -(2**53 - 1)}
    [person] = await db_rows(app, Person, Person.national_id == "12345678901234567890123")
    assert person.attributes == {"most": 2**53 - 1, "least": -(2**53 - 1)}
    assert all(type(v) is int for v in person.attributes.values())



# ---- names -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["\u200b", "\u202e", "!!!", "123", "-", "\u200b\u200d", "\u17e1\u17e2",  # Khmer digits
                                  "\u202eSok", "So\u202ek", "Sok\u2066", "So\u0007k"])
async def test_a_name_needs_a_letter_and_no_control_or_bidirectional_character(client, world, app, name):
    before = await table_counts(app)
    for edit, pointer in ((lambda b: b["members"][0].update(given_name=name), "#/members/0/given_name"),
                          (lambda b: b["members"][1].update(family_name=name), "#/members/1/family_name"),
                          (lambda b: b["consent"].update(given_by=name), "#/consent/given_by")):
        body = household_body()
        edit(body)
        problem = assert_problem(await _send(client, "POST", HOUSEHOLDS, world.clerk_a, body), 422, "validation")
        assert pointer in pointers(problem), problem
    household = await register(client, world.clerk_a)
    before = await table_counts(app)
    member = household_body()["members"][1] | {"given_name": name}
    problem = assert_problem(await _send(client, "POST", f"{HOUSEHOLDS}/{household['id']}/members", world.clerk_a, member),
                             422, "validation")
    assert pointers(problem) == ["#/given_name"]
    problem = assert_problem(await _send(client, "PATCH", f"/api/v1/persons/{household['members'][0]['id']}", world.clerk_a,
                                         {"family_name": name}, **{"If-Match": '"1"'}), 422, "validation")
    assert pointers(problem) == ["#/family_name"]
    assert await table_counts(app) == before


async def test_zero_width_characters_are_dropped_from_names_so_that_they_are_found(client, world, app):
    body = household_body()
    body["members"][0] |= {"given_name": "Chan\u200bthou\u00ad", "family_name": " Sok\u200c \n  Vanna\ufeff "}
    body["members"][1] |= {"given_name": "\u179f\u17bb\u200b\u1781"}  # Khmer, with the zero-width space Khmer text uses
    household = await register(client, world.clerk_a, body)
    head, child = household["members"]
    assert (head["given_name"], head["family_name"], child["given_name"]) == ("Chanthou", "Sok Vanna", "\u179f\u17bb\u1781")
    found = (await client.get(HOUSEHOLDS, params={"name": "sok vanna chanthou"}, headers=world.clerk_a.headers)).json()
    assert [h["id"] for h in found["items"]] == [household["id"]]
    found = (await client.get("/api/v1/persons", params={"name": "\u179f\u17bb\u1781"}, headers=world.clerk_a.headers)).json()
    # សុខ finds the child registered in Khmer, and the head whose Latin family name is its romanisation (Sok).
    assert sorted(p["id"] for p in found["items"]) == sorted([child["id"], head["id"]])


async def test_other_printed_names_and_free_text_refuse_bidirectional_characters(client, world, app):
    household, case = await open_case(client, world.clerk_a)
    before = await table_counts(app)
    refused = [
        (HOUSEHOLDS, world.clerk_a, household_body(address="Phum \u202eTa Prohm"), "#/address"),
        ("/api/v1/cases", world.clerk_a, {"household_id": household["id"], "summary": "Needs \u2067help"}, "#/summary"),
        (f"/api/v1/cases/{case['id']}/notes", world.clerk_a, {"text": "Called\u202e back"}, "#/text"),
        ("/api/v1/grievances", world.clerk_a, {"category": "payment", "channel": "in_person", "description": "Late",
                                               "complainant": {"kind": "named", "name": "...", "contact": "012 345 678"}},
         "#/complainant/name"),
        ("/api/v1/offices", world.admin, {"code": "XX-ONE", "name": "\u202e\u200b", "location_code": "1701"}, "#/name"),
        ("/api/v1/users", world.admin, {"username": "clerk.x", "password": "a long enough password", "role": "clerk",
                                        "office_code": "SR-ACH", "full_name": "!!!"}, "#/full_name"),
    ]
    for path, account, body, pointer in refused:
        problem = assert_problem(await client.post(path, json=body, headers=account.headers), 422, "validation")
        assert pointer in pointers(problem), (path, problem)
    assert await table_counts(app) == before


def test_a_gazetteer_place_needs_a_letter_in_its_name():
    from app.services.locations import GazetteerError, parse_gazetteer

    good = "code,name,level,parent_code,name_km\n17,Siem Reap,province,,\u179f\u17c0\u1798\u179a\u17b6\u1794\n"
    assert parse_gazetteer(good, source="t")[0]["name_km"] == "\u179f\u17c0\u1798\u179a\u17b6\u1794"
    # A village may be named by a number alone (the national gazetteer has ៣៥, "35").
    numbered = "code,name,level,parent_code,name_km\n17,35,province,,\u17e3\u17e5\n"
    assert parse_gazetteer(numbered, source="t")[0]["name_km"] == "\u17e3\u17e5"
    for name, name_km in (("!!!", ""), ("Siem\u202eReap", ""), ("Siem Reap", "\u200b"), ("-", "")):
        with pytest.raises(GazetteerError, match="t:2: name"):
            parse_gazetteer(f"code,name,level,parent_code,name_km\n17,{name},province,,{name_km}\n", source="t")


# ---- dates -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "86400", "-86400", "2026-01-31T00:00:00", "2026-01-31T00:00:00Z"])
async def test_date_query_parameters_are_iso_dates_only(client, world, value):
    problem = assert_problem(await client.get("/api/v1/follow-ups", params={"due_before": value},
                                              headers=world.clerk_a.headers), 422, "validation")
    assert pointers(problem) == ["#/query/due_before"]
    problem = assert_problem(await client.get("/api/v1/monitoring/indicators", headers=world.monitor.headers,
                                              params={"indicator": "registrations", "from": value, "to": "2026-12-31"}),
                             422, "validation")
    assert pointers(problem) == ["#/query/from"]


async def test_dates_in_bodies_are_iso_dates_only(client, world, app):
    household, case = await open_case(client, world.clerk_a)
    before = await table_counts(app)
    for value in (0, 86400, "0", "2026-01-31T00:00:00"):
        body = household_body()
        body["members"][0]["birth_date"] = value
        problem = assert_problem(await client.post(HOUSEHOLDS, json=body, headers=world.clerk_a.headers), 422)
        assert pointers(problem) == ["#/members/0/birth_date"], problem
        problem = assert_problem(await client.post(f"/api/v1/cases/{case['id']}/follow-ups", headers=world.clerk_a.headers,
                                                   json={"due_date": value, "action": "Call back"}), 422)
        assert pointers(problem) == ["#/due_date"], problem
    assert await table_counts(app) == before
