"""The gazetteer, offices and user accounts."""

import uuid

import pytest

from app.models import AuditEvent, Office, User
from app.services.locations import GazetteerError, parse_gazetteer
from helpers import assert_problem, db_rows, pointers, table_counts

LOCATIONS = "/api/v1/locations"
OFFICES = "/api/v1/offices"
USERS = "/api/v1/users"


# ---- locations ------------------------------------------------------------------------------------------


async def test_without_filters_the_gazetteer_lists_the_25_provinces(client, world):
    response = await client.get(LOCATIONS, headers=world.monitor.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 25 and len(body["items"]) == 25
    assert {item["level"] for item in body["items"]} == {"province"}
    assert [item["code"] for item in body["items"]] == sorted(item["code"] for item in body["items"])
    siem_reap = next(item for item in body["items"] if item["code"] == "17")
    assert siem_reap == {"code": "17", "name": "Siem Reap", "name_km": siem_reap["name_km"], "level": "province",
                         "parent_code": None}
    assert siem_reap["name_km"]


async def test_children_of_a_location(client, world):
    districts = (await client.get(LOCATIONS, params={"parent": "17"}, headers=world.clerk_a.headers)).json()
    assert districts["total"] >= 10
    assert {d["level"] for d in districts["items"]} == {"district"}
    assert all(d["parent_code"] == "17" and d["code"].startswith("17") and len(d["code"]) == 4 for d in districts["items"])
    assert "1701" in {d["code"] for d in districts["items"]}
    villages = (await client.get(LOCATIONS, params={"parent": "170101", "level": "village"},
                                 headers=world.clerk_a.headers)).json()
    assert villages["total"] >= 2 and {v["parent_code"] for v in villages["items"]} == {"170101"}
    none = (await client.get(LOCATIONS, params={"parent": "170101", "level": "district"}, headers=world.clerk_a.headers)).json()
    assert none == {"items": [], "total": 0, "limit": 100, "offset": 0}


async def test_locations_by_level_and_name(client, world):
    communes = (await client.get(LOCATIONS, params={"level": "commune", "limit": 200}, headers=world.clerk_a.headers)).json()
    assert communes["total"] > 100 and {c["level"] for c in communes["items"]} == {"commune"}
    found = (await client.get(LOCATIONS, params={"name": "siem"}, headers=world.clerk_a.headers)).json()
    assert "17" in {item["code"] for item in found["items"]}
    paged = (await client.get(LOCATIONS, params={"level": "commune", "limit": 5, "offset": 5}, headers=world.clerk_a.headers)).json()
    assert [c["code"] for c in paged["items"]] == [c["code"] for c in communes["items"][5:10]]


async def test_one_location(client, world):
    response = await client.get(f"{LOCATIONS}/17010101", headers=world.partner.headers)
    assert response.status_code == 200
    assert response.json() == {"code": "17010101", "name": "Prasat", "name_km": response.json()["name_km"],
                               "level": "village", "parent_code": "170101"}
    assert_problem(await client.get(f"{LOCATIONS}/99", headers=world.clerk_a.headers), 404, "not-found")
    assert_problem(await client.get(f"{LOCATIONS}/123456789", headers=world.clerk_a.headers), 422, "validation")
    assert_problem(await client.get(f"{LOCATIONS}/17"), 401)


@pytest.mark.parametrize("params, pointer", [
    ({"parent": "1"}, "#/query/parent"),
    ({"parent": "abc"}, "#/query/parent"),
    ({"level": "hamlet"}, "#/query/level"),
    ({"limit": 201}, "#/query/limit"),
    ({"offset": -1}, "#/query/offset"),
    ({"name": "n" * 101}, "#/query/name"),
])
async def test_bad_location_queries_are_422(client, world, params, pointer):
    problem = assert_problem(await client.get(LOCATIONS, params=params, headers=world.clerk_a.headers), 422)
    assert pointers(problem) == [pointer]


# ---- offices --------------------------------------------------------------------------------------------


async def test_every_signed_in_user_lists_the_offices(client, world):
    for account in (world.clerk_b, world.monitor, world.partner):
        body = (await client.get(OFFICES, headers=account.headers)).json()
        assert [o["code"] for o in body["items"]] == ["SR-ACH", "SR-SSN"] and body["total"] == 2
        assert body["items"][0]["location_code"] == "1701"


async def test_admin_creates_an_office(client, world, app):
    response = await client.post(OFFICES, json={"code": "BB-BAN", "name": "Banan District Office", "location_code": "0201"},
                                 headers=world.admin.headers)
    assert response.status_code == 201, response.text
    office = response.json()
    assert response.headers["Location"] == "/api/v1/offices/BB-BAN"
    assert office["code"] == "BB-BAN" and office["location_code"] == "0201"
    uuid.UUID(office["id"])
    assert "BB-BAN" in [o["code"] for o in (await client.get(OFFICES, headers=world.clerk_a.headers)).json()["items"]]
    read = await client.get(response.headers["Location"], headers=world.clerk_a.headers)
    assert read.status_code == 200 and read.json() == office
    assert_problem(await client.get(f"{OFFICES}/XX-NONE", headers=world.clerk_a.headers), 404, "not-found")
    assert_problem(await client.get(f"{OFFICES}/{'X' * 21}", headers=world.clerk_a.headers), 422)
    [audit] = await db_rows(app, AuditEvent, AuditEvent.entity_type == "office")
    assert audit.action == "create" and audit.entity_id == office["id"] and audit.actor_id == world.admin.id
    # A province may hold an office too.
    response = await client.post(OFFICES, json={"code": "BB", "name": "Battambang Provincial Office", "location_code": "02"},
                                 headers=world.admin.headers)
    assert response.status_code == 201


@pytest.mark.parametrize("body, status, pointer", [
    ({"code": "X-1", "name": "X", "location_code": "99"}, 422, "#/location_code"),
    ({"code": "X-1", "name": "X", "location_code": "170101"}, 422, "#/location_code"),  # a commune
    ({"code": "X-1", "name": "X", "location_code": "17010101"}, 422, "#/location_code"),  # a village
    ({"code": "X 1", "name": "X", "location_code": "1701"}, 422, "#/code"),
    ({"code": "X" * 21, "name": "X", "location_code": "1701"}, 422, "#/code"),
    ({"code": "X-1", "name": "N" * 201, "location_code": "1701"}, 422, "#/name"),
    ({"code": "X-1", "location_code": "1701"}, 422, "#/name"),
    ({"code": "X-1", "name": "X", "location_code": "1701", "phone": "1"}, 422, "#/phone"),
    ({"code": "SR-ACH", "name": "Again", "location_code": "1701"}, 409, None),
])
async def test_bad_offices_are_refused(client, world, app, body, status, pointer):
    before = await table_counts(app)
    problem = assert_problem(await client.post(OFFICES, json=body, headers=world.admin.headers), status)
    if pointer:
        assert pointers(problem) == [pointer]
    else:
        assert problem["type"] == "/problems/conflict" and "SR-ACH" in problem["detail"]
    assert await table_counts(app) == before


async def test_only_an_admin_creates_offices(client, world, app):
    body = {"code": "X-1", "name": "X", "location_code": "1701"}
    for account in (world.supervisor_a, world.clerk_a, world.monitor, world.partner):
        assert_problem(await client.post(OFFICES, json=body, headers=account.headers), 403, "forbidden")
    assert_problem(await client.post(OFFICES, json=body), 401)
    assert await db_rows(app, Office, Office.code == "X-1") == []


# ---- users ----------------------------------------------------------------------------------------------


def _user(**fields):
    return {"username": "clerk.new", "password": "long enough secret", "role": "clerk", "office_code": "SR-SSN"} | fields


async def test_admin_creates_a_user_who_can_sign_in(client, world, app):
    response = await client.post(USERS, json=_user(full_name="Srei Snam clerk"), headers=world.admin.headers)
    assert response.status_code == 201, response.text
    user = response.json()
    assert response.headers["Location"] == f"/api/v1/users/{user['id']}"
    assert response.headers["ETag"] == '"1"'
    assert user == {"id": user["id"], "version": 1, "username": "clerk.new", "full_name": "Srei Snam clerk",
                    "role": "clerk", "office_code": "SR-SSN", "scheme_code": None, "is_active": True,
                    "created_at": user["created_at"]}
    assert "password" not in response.text and "argon2" not in response.text
    assert (await client.get(response.headers["Location"], headers=world.admin.headers)).json() == user
    [row] = await db_rows(app, User, User.username == "clerk.new")
    assert row.password_hash.startswith("$argon2") and "long enough secret" not in row.password_hash
    token = await client.post("/api/v1/auth/token", data={"grant_type": "password", "username": "clerk.new",
                                                          "password": "long enough secret"})
    assert token.status_code == 200
    me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"})
    assert me.json()["office_code"] == "SR-SSN"
    [audit] = await db_rows(app, AuditEvent, AuditEvent.entity_type == "user")
    assert audit.entity_id == user["id"] and "long enough secret" not in str(audit.details)


async def test_accounts_of_every_role(client, world):
    for fields in ({"username": "ministry.admin", "role": "admin", "office_code": None},
                   {"username": "me.analyst", "role": "monitor", "office_code": None},
                   {"username": "hef.service", "role": "partner", "office_code": None, "scheme_code": "KH-HEF"},
                   {"username": "nea.service", "role": "partner", "office_code": None, "scheme_code": "nea"},  # an agency
                   {"username": "sup.ssn", "role": "supervisor"}):
        response = await client.post(USERS, json=_user(**fields), headers=world.admin.headers)
        assert response.status_code == 201, response.text


@pytest.mark.parametrize("fields, status, pointer", [
    ({"office_code": None}, 422, "#/office_code"),  # a clerk belongs to an office
    ({"role": "monitor"}, 422, "#/office_code"),  # a monitor does not
    ({"role": "partner", "office_code": None}, 422, "#/scheme_code"),
    ({"role": "partner", "office_code": None, "scheme_code": "KH-NOPE"}, 422, "#/scheme_code"),  # no such scheme
    ({"scheme_code": "KH-HEF"}, 422, "#/scheme_code"),
    ({"office_code": "XX-NONE"}, 422, "#/office_code"),
    ({"role": "superuser"}, 422, "#/role"),
    ({"password": "short"}, 422, "#/password"),
    ({"password": "p" * 129}, 422, "#/password"),
    ({"username": "Clerk New"}, 422, "#/username"),
    ({"username": "ab"}, 422, "#/username"),
    ({"username": "u" * 65}, 422, "#/username"),
    ({"full_name": "f" * 201}, 422, "#/full_name"),
    ({"is_admin": True}, 422, "#/is_admin"),
    ({"username": "clerk.a"}, 409, None),
])
async def test_bad_users_are_refused(client, world, app, fields, status, pointer):
    before = await table_counts(app)
    problem = assert_problem(await client.post(USERS, json=_user(**fields), headers=world.admin.headers), status)
    if pointer:
        assert pointers(problem) == [pointer]
        # Said in words, never as a regular expression or pydantic's "items after validation".
        assert not [raw for raw in ("^[", "items after", "pattern") if raw in problem["errors"][0]["detail"]], problem
    else:
        assert problem["type"] == "/problems/conflict"
    assert await table_counts(app) == before
    assert "long enough secret" not in str(problem)


async def test_users_are_listed_and_read_by_admins_only(client, world):
    body = (await client.get(USERS, headers=world.admin.headers)).json()
    usernames = [u["username"] for u in body["items"]]
    assert usernames == sorted(usernames) and {"admin", "clerk.a", "partner"} <= set(usernames)
    assert body["total"] == len(usernames)
    one = await client.get(f"{USERS}/{world.clerk_b.id}", headers=world.admin.headers)
    assert one.status_code == 200 and one.json()["office_code"] == "SR-SSN" and one.headers["ETag"] == '"1"'
    assert_problem(await client.get(f"{USERS}/{uuid.uuid4()}", headers=world.admin.headers), 404)
    for account in (world.supervisor_a, world.clerk_a, world.monitor):
        assert_problem(await client.get(USERS, headers=account.headers), 403)
        assert_problem(await client.get(f"{USERS}/{world.clerk_b.id}", headers=account.headers), 403)


async def test_changing_a_user_needs_if_match(client, world, make_account):
    account = await make_account()
    url = f"{USERS}/{account.id}"
    assert_problem(await client.patch(url, json={"full_name": "A"}, headers=world.admin.headers), 428,
                   "precondition-required")
    problem = assert_problem(await client.patch(url, json={"full_name": "A"}, headers={**world.admin.headers, "If-Match": '"5"'}),
                             412, "precondition-failed")
    assert problem["current_etag"] == '"1"'
    response = await client.patch(url, json={"full_name": "Angkor Chum clerk"}, headers={**world.admin.headers, "If-Match": '"1"'})
    assert response.status_code == 200 and response.json()["full_name"] == "Angkor Chum clerk"
    assert response.headers["ETag"] == '"2"'
    # A name change does not sign the user out.
    assert (await client.get("/api/v1/auth/me", headers=account.headers)).status_code == 200
    problem = assert_problem(await client.patch(url, json={"role": "admin"}, headers={**world.admin.headers, "If-Match": '"2"'}), 422)
    assert pointers(problem) == ["#/role"]
    assert_problem(await client.patch(url, json={"password": "short"}, headers={**world.admin.headers, "If-Match": '"2"'}), 422)
    assert_problem(await client.patch(f"{USERS}/{uuid.uuid4()}", json={"full_name": "A"},
                                      headers={**world.admin.headers, "If-Match": '"1"'}), 404)
    assert_problem(await client.patch(url, json={"is_active": False}, headers={**world.supervisor_a.headers, "If-Match": '"2"'}),
                   403)


# ---- the gazetteer reader (the CLI's `locations import`) -------------------------------------------------

HEADER = "code,name,level,parent_code\n"


@pytest.mark.parametrize("content, reason", [
    ("code,name,level\n28,Test,province\n", "f.csv: missing columns parent_code"),
    (HEADER + "28,Test,hamlet,\n", "f.csv:2: level 'hamlet' is not one of province, district, commune, village"),
    (HEADER + "280,Test,district,28\n", "f.csv:2: a district code has 4 digits, got '280'"),
    (HEADER + "28a1,Test,district,28\n", "f.csv:2: a district code has 4 digits"),
    (HEADER + "28,T,province,\n2801,T,district,25\n", "f.csv:3: parent_code of 2801 must be 28"),
    (HEADER + "28,T,province,\n2801,T,district,\n", "f.csv:3: parent_code of 2801 must be 28"),
    (HEADER + "28,T,province,17\n", "f.csv:2: a province has no parent"),
    (HEADER + "28,T,province,\n28,T,province,\n", "f.csv:3: duplicate code 28"),
    (HEADER + "28,,province,\n", "f.csv:2: name must be 1 to 120 characters"),
    (HEADER + f"28,{'n' * 121},province,\n", "f.csv:2: name must be 1 to 120 characters"),
    ("code,name,level,parent_code,name_km\n" + f"28,N,province,,{'ក' * 121}\n", "f.csv:2: name_km must be at most 120"),
    # A quote left open used to swallow the rest of the file, reported as "level ''".
    (HEADER + '28,T,province,\n2801,"Thma Koul,district,28\n2802,D,district,28\n',
     'f.csv:3: a quote (") opened on this line is never closed'),
    (HEADER + '28,T,province,\n2801,"Thma" Koul,district,28\n', "f.csv:3: not valid CSV (',' expected after '\"')"),
    ('"code,name,level,parent_code\n28,T,province,\n', 'f.csv:1: a quote (") opened on this line is never closed'),
    (HEADER + "28,T,province,\n2801,Thma Koul, East,district,28\n", "f.csv:3: more fields than the header's 4 columns"),
    (HEADER + '28,"Two\nlines",province,\n2801,D,district,28\n', "f.csv:2: a name has a line break"),
])
def test_the_gazetteer_reader_names_the_line_and_the_fault(content, reason):
    with pytest.raises(GazetteerError) as refused:
        parse_gazetteer(content, source="f.csv")
    assert str(refused.value).startswith(reason)


def test_the_gazetteer_reader_reads_a_good_file():
    rows = parse_gazetteer(HEADER.replace("\n", ",name_km\n") + " 28 , Test ,province,,តេស្ត\n2801,D,district,28,\n",
                           source="f.csv")
    assert rows == [
        {"code": "28", "name": "Test", "name_km": "តេស្ត", "level": "province", "parent_code": None, "source": "f.csv"},
        {"code": "2801", "name": "D", "name_km": None, "level": "district", "parent_code": "28", "source": "f.csv"},
    ]
