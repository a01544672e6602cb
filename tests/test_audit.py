"""The audit trail (one row per create, update and read of personal data, with the request id;
GET /audit by office; append-only) and the activity-event outbox (every change, same transaction,
pseudonymised dimensions only)."""

import copy
import json
import uuid
from datetime import timedelta

import pytest

from app import clock
from app.events import EVENT_TYPES
from app.models import ActivityEvent, AuditEvent
from app.services.activity import pseudonym
from helpers import CONTRACT_EXAMPLE, assert_problem, db_rows, household_body, register

AUDIT = "/api/v1/audit"


async def _audit_rows(app) -> list[AuditEvent]:
    return await db_rows(app, AuditEvent, order_by=AuditEvent.id)


async def _only_new_row(app, before: int, response) -> AuditEvent:
    rows = (await _audit_rows(app))[before:]
    assert len(rows) == 1, [(r.action, r.entity_type) for r in rows]
    assert rows[0].request_id == response.headers["X-Request-ID"]
    return rows[0]


async def test_each_request_on_personal_data_leaves_exactly_one_audit_row(client, world, app):
    headers = world.clerk_a.headers
    expected = []

    async def step(response, action, entity_type, entity_id):
        assert response.status_code < 300, response.text
        row = await _only_new_row(app, len(expected), response)
        assert (row.action, row.entity_type, row.entity_id) == (action, entity_type, entity_id)
        assert row.actor_id == world.clerk_a.id and row.actor_username == "clerk.a" and row.actor_role == "clerk"
        assert row.office_id == world.office_ids["SR-ACH"]
        expected.append(row)
        return response.json()

    response = await client.post("/api/v1/households", json=household_body(), headers=headers)
    created = response.json()
    row = await _only_new_row(app, 0, response)
    assert (row.action, row.entity_type, row.entity_id) == ("create", "household", created["id"])
    assert row.details["members"] == [m["id"] for m in created["members"]]
    expected.append(row)

    household_url = f"/api/v1/households/{created['id']}"
    person_id = created["members"][0]["id"]
    await step(await client.get(household_url, headers=headers), "read", "household", created["id"])
    await step(await client.get(f"/api/v1/persons/{person_id}", headers=headers), "read", "person", person_id)
    await step(await client.get("/api/v1/households", params={"name": "x"}, headers=headers), "search", "household", None)
    await step(await client.get("/api/v1/persons", params={"name": "x"}, headers=headers), "search", "person", None)
    await step(await client.patch(household_url, json={"address": "Phum Thmei"}, headers={**headers, "If-Match": '"1"'}),
               "update", "household", created["id"])
    await step(await client.patch(f"/api/v1/persons/{person_id}", json={"phone": "012999888"},
                                  headers={**headers, "If-Match": '"1"'}), "update", "person", person_id)
    member = await client.post(f"{household_url}/members", json={
        "given_name": "Kosal", "family_name": "Pen", "sex": "male", "birth_year": 1950, "birth_date_approximate": True,
        "relationship": "other_relative"}, headers=headers)
    await step(member, "create", "person", member.json()["id"])
    await step(await client.get(f"{household_url}/consent", headers=headers), "read", "consent", created["id"])
    await step(await client.post(f"{household_url}/consent", json={"purposes": ["registry"], "given_by": "Head",
                                                                 "method": "verbal"}, headers=headers),
               "consent_change", "household", created["id"])


async def test_search_audit_records_the_results_and_reads_record_who_was_shown(client, world, app):
    household = await register(client, world.clerk_a, copy.deepcopy(CONTRACT_EXAMPLE))
    response = await client.get("/api/v1/households", params={"name": "chanth"}, headers=world.clerk_a.headers)
    [row] = [r for r in await _audit_rows(app) if r.action == "search"]
    assert row.details["results"] == [household["id"]] and row.details["total"] == 1
    assert row.details["filters"]["name"] == "chanth"
    assert row.request_id == response.headers["X-Request-ID"]
    await client.get(f"/api/v1/households/{household['id']}", headers=world.clerk_a.headers)
    [read] = [r for r in await _audit_rows(app) if r.action == "read"]
    assert read.details["members"] == [m["id"] for m in household["members"]]


async def test_failed_requests_leave_no_audit_row(client, world, app):
    household = await register(client, world.clerk_a)
    before = len(await _audit_rows(app))
    await client.get(f"/api/v1/households/{household['id']}", headers=world.clerk_b.headers)  # 404
    await client.get(f"/api/v1/households/{household['id']}", headers=world.monitor.headers)  # 403
    await client.patch(f"/api/v1/households/{household['id']}", json={"address": "x"}, headers=world.clerk_a.headers)  # 428
    assert len(await _audit_rows(app)) == before


async def test_an_incoming_request_id_is_kept_and_a_bad_one_replaced(client, world, app):
    response = await client.get("/api/v1/households", headers={**world.clerk_a.headers, "X-Request-ID": "desk-7:abc.123"})
    assert response.headers["X-Request-ID"] == "desk-7:abc.123"
    replaced = []
    for bad in ("bad id <script>", "x" * 65):
        response = await client.get("/api/v1/persons", headers={**world.clerk_a.headers, "X-Request-ID": bad})
        assert response.headers["X-Request-ID"] != bad and len(response.headers["X-Request-ID"]) == 32
        replaced.append(response.headers["X-Request-ID"])
    assert [r.request_id for r in await _audit_rows(app)] == ["desk-7:abc.123", *replaced]


# ---- GET /audit -----------------------------------------------------------------------------------------


async def test_supervisors_see_their_offices_trail_and_admins_everything(client, world):
    mine = await register(client, world.clerk_a)
    theirs = await register(client, world.clerk_b, household_body(village_code="17120101"))
    for account in (world.clerk_a, world.clerk_b):
        await client.get("/api/v1/households", headers=account.headers)

    own = (await client.get(AUDIT, headers=world.supervisor_a.headers)).json()
    assert own["total"] == 2 and {r["office_id"] for r in own["items"]} == {str(world.office_ids["SR-ACH"])}
    assert theirs["id"] not in json.dumps(own)
    assert [r["action"] for r in own["items"]] == ["search", "create"]  # newest first
    assert own["items"][1]["entity_id"] == mine["id"] and own["items"][1]["actor_username"] == "clerk.a"

    other = (await client.get(AUDIT, headers=world.supervisor_b.headers)).json()
    assert other["total"] == 2 and mine["id"] not in json.dumps(other)

    everything = (await client.get(AUDIT, params={"limit": 200}, headers=world.admin.headers)).json()
    assert everything["total"] == 4  # two registrations, two searches (reading /audit is not itself audited)
    assert {r["office_id"] for r in everything["items"]} == {str(i) for i in world.office_ids.values()}


async def test_audit_filters_and_pages(client, world):
    household = await register(client, world.clerk_a)
    for _ in range(3):
        await client.get(f"/api/v1/households/{household['id']}", headers=world.clerk_a.headers)
    reads = (await client.get(AUDIT, params={"action": "read", "entity_type": "household", "entity_id": household["id"],
                                             "limit": 2}, headers=world.supervisor_a.headers)).json()
    assert reads["total"] == 3 and len(reads["items"]) == 2
    ids = [r["id"] for r in reads["items"]]
    assert ids == sorted(ids, reverse=True)
    rest = (await client.get(AUDIT, params={"action": "read", "limit": 2, "offset": 2}, headers=world.supervisor_a.headers)).json()
    assert len(rest["items"]) == 1 and rest["items"][0]["id"] < ids[-1]
    by_actor = (await client.get(AUDIT, params={"actor_username": "clerk.a"}, headers=world.supervisor_a.headers)).json()
    assert by_actor["total"] == 4
    first = reads["items"][-1]["at"]
    since = (await client.get(AUDIT, params={"since": first, "action": "read"}, headers=world.supervisor_a.headers)).json()
    assert since["total"] == 2
    until = (await client.get(AUDIT, params={"until": first, "action": "read"}, headers=world.supervisor_a.headers)).json()
    assert until["total"] == 1


@pytest.mark.parametrize("params", [{"limit": 201}, {"since": "2026-01-01T00:00:00"}, {"action": "a" * 65},
                                    {"until": "yesterday"}, {"since": "9999-12-31T23:59:59-12:00"},
                                    {"until": "0001-01-01T00:00:00+14:00"}])
async def test_bad_audit_queries_are_422(client, world, params):
    assert_problem(await client.get(AUDIT, params=params, headers=world.admin.headers), 422, "validation")


async def test_clerks_monitors_and_partners_may_not_read_the_trail(client, world):
    for account in (world.clerk_a, world.monitor, world.partner):
        assert_problem(await client.get(AUDIT, headers=account.headers), 403, "forbidden")
    assert_problem(await client.get(AUDIT), 401)


async def test_no_endpoint_changes_the_trail(client, world):
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        response = await client.request(method, AUDIT, headers=world.admin.headers)
        assert_problem(response, 405, "method-not-allowed")
        assert response.headers["Allow"] == "GET"
        assert_problem(await client.request(method, f"{AUDIT}/1", headers=world.admin.headers), 404)


# ---- activity events ------------------------------------------------------------------------------------


async def test_every_change_writes_its_events_in_the_same_transaction(client, world, app):
    household = await register(client, world.clerk_a, household_body(members=3))
    events = await db_rows(app, ActivityEvent)
    assert sorted(e.type for e in events) == ["household.registered"] + ["person.registered"] * 3
    assert {e.office_code for e in events} == {"SR-ACH"}
    registered = next(e for e in events if e.type == "household.registered")
    assert registered.payload["size"] == 3
    assert registered.payload["dimensions"]["village"] == "17010101"
    assert registered.payload["dimensions"]["female_headed"] is True
    assert len({e.payload["person"] for e in events if e.type == "person.registered"}) == 3

    url = f"/api/v1/households/{household['id']}"
    await client.patch(url, json={"address": "x"}, headers={**world.clerk_a.headers, "If-Match": '"1"'})
    await client.patch(f"/api/v1/persons/{household['members'][0]['id']}", json={"monthly_income": 1},
                       headers={**world.clerk_a.headers, "If-Match": '"1"'})
    await client.post(f"{url}/consent", json={"purposes": ["registry"], "given_by": "H", "method": "verbal"},
                      headers=world.clerk_a.headers)
    await client.get(url, headers=world.clerk_a.headers)  # a read changes nothing: no event
    types = [e.type for e in await db_rows(app, ActivityEvent)]
    assert sorted(types) == sorted(["household.registered"] + ["person.registered"] * 3
                                   + ["household.updated", "person.updated", "consent.changed"])
    # Failed requests write none.
    await client.post("/api/v1/households", json=household_body(members=0) | {"members": []}, headers=world.clerk_a.headers)
    await client.patch(url, json={"address": "y"}, headers={**world.clerk_a.headers, "If-Match": '"1"'})
    assert len(await db_rows(app, ActivityEvent)) == len(types)


async def test_event_payloads_follow_the_contract_and_hold_no_personal_data(client, world, app):
    bodies = [copy.deepcopy(CONTRACT_EXAMPLE), household_body(members=3), household_body(village_code="17010201")]
    due = (clock.today() + timedelta(days=57)).isoformat()
    bodies[1]["members"][1] |= {"phone": "+855 12 777 888", "national_id": "AB-778899", "pregnant": True, "sex": "female",
                                "birth_year": 1996, "expected_delivery_date": due, "attributes": {"note": "Unique words"}}
    households = [await register(client, world.clerk_a, body) for body in bodies]
    await client.patch(f"/api/v1/households/{households[0]['id']}", json={"address": "Behind the market stall 9"},
                       headers={**world.clerk_a.headers, "If-Match": '"1"'})
    await client.patch(f"/api/v1/persons/{households[0]['members'][0]['id']}",
                       json={"given_name": "Chanthy", "phone": "+85599111222", "birth_date": "1986-04-15"},
                       headers={**world.clerk_a.headers, "If-Match": '"1"'})

    events = await db_rows(app, ActivityEvent)
    personal = {"Chanthy", "+85599111222", "1986-04-15", "Behind the market stall 9", "Unique words", "AB-778899",
                "+855 12 777 888", due, "EQ-17-0001234"}
    for body in bodies:
        personal |= {body.get("address") or "", body["consent"]["given_by"], body["idpoor"]["card_number"]}
        for member in body["members"]:
            personal |= {member["given_name"], member["family_name"]}
            personal |= {str(member[k]) for k in ("national_id", "phone", "birth_date") if member.get(k)}
    for household in households:
        personal |= {household["id"], *(m["id"] for m in household["members"])}
    for event in events:
        text = json.dumps(event.payload, ensure_ascii=False)
        leaked = [p for p in personal if p and p in text]
        assert not leaked, (event.type, leaked, text)
        EVENT_TYPES[(event.type, event.schema_version)].model_validate(event.payload)  # nothing undeclared
        assert set(event.payload) <= {"household", "person", "dimensions", "size", "fields", "purposes", "trigger"}
    # The pseudonyms are stable per record, and differ between records.
    person_events = [e for e in events if e.payload.get("person")]
    assert len({e.payload["person"] for e in person_events}) == sum(len(h["members"]) for h in households)
    head = households[0]["members"][0]
    assert sum(e.payload.get("person") == pseudonym("person", uuid.UUID(head["id"])) for e in events) == 2
