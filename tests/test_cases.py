"""Cases: opening, the work list and its filters, assigning, waiting, closing (only when nothing inside
is open), reopening, notes and their confidentiality, the timeline; wrong users, bad input, 412/428.

The helpers at the top are shared by the other case-management test modules."""

import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from helpers import assert_problem, db_rows, pointers, register, table_counts
from test_screening_api import expired_token

from app import clock
from app.models import ActivityEvent, AuditEvent, CaseEvent

CASES = "/api/v1/cases"


# ---- shared helpers ---------------------------------------------------------------------------------------


def headers(account, *, etag: str | None = None, key: str | None = None) -> dict[str, str]:
    h = dict(account.headers)
    if etag is not None:
        h["If-Match"] = etag
    if key is not None:
        h["Idempotency-Key"] = key
    return h


@contextmanager
def frozen(moment: datetime):
    """app.clock's now and today at one instant; today is judged in the offices' time zone."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clock, "now", lambda: moment)
        patch.setattr(clock, "today", lambda: moment.astimezone(clock.timezone()).date())
        yield


async def open_case(client, account, household: dict | None = None, **body) -> tuple[dict, dict]:
    household = household or await register(client, account)
    response = await client.post(CASES, json={"household_id": household["id"], **body}, headers=account.headers)
    assert response.status_code == 201, response.text
    return household, response.json()


async def patch(client, account, url: str, body: dict) -> "httpx.Response":  # noqa: F821
    """PATCH with the current ETag, read first."""
    etag = (await client.get(url, headers=account.headers)).headers["ETag"]
    return await client.patch(url, json=body, headers=headers(account, etag=etag))


async def events(app, *types: str) -> list[dict]:
    rows = await db_rows(app, ActivityEvent, ActivityEvent.type.in_(types), order_by=ActivityEvent.occurred_at)
    return [{"type": r.type, **r.payload} for r in rows]


async def timeline_kinds(client, account, case_id: str) -> list[str]:
    response = await client.get(f"{CASES}/{case_id}/timeline", headers=account.headers)
    assert response.status_code == 200, response.text
    return [e["kind"] for e in response.json()["items"]]


# ---- cases ------------------------------------------------------------------------------------------------


async def test_open_a_case_read_it_and_find_it(client, world, app):
    household, case = await open_case(client, world.clerk_a, summary="Lost her job; asks about cash support")
    head = household["members"][0]
    assert case["status"] == "open" and case["household_id"] == household["id"] and case["person_id"] is None
    assert case["assigned_to"] == str(world.clerk_a.id) and case["opened_by"] == str(world.clerk_a.id)
    assert case["client_name"] == f"{head['family_name']} {head['given_name']}" and case["office_code"] == "SR-ACH"
    assert case["open_items"] == {"applications": 0, "referrals": 0, "follow_ups": 0, "grievances": 0}
    assert case["overdue"] is False and case["version"] == 1
    read = await client.get(f"{CASES}/{case['id']}", headers=world.clerk_a.headers)
    assert read.status_code == 200 and read.headers["ETag"] == '"1"' and read.json() == case
    # One open case per client: a second is refused, naming the first; a case about one member is another client.
    again = assert_problem(await client.post(CASES, json={"household_id": household["id"]}, headers=world.clerk_a.headers), 409)
    assert again["existing_case"] == case["id"]
    _, for_child = await open_case(client, world.supervisor_a, household, person_id=household["members"][1]["id"])
    assert for_child["assigned_to"] == str(world.supervisor_a.id)
    # The work list and its filters.
    _, other = await open_case(client, world.clerk_a, assigned_to=str(world.supervisor_a.id))
    listed = (await client.get(CASES, headers=world.clerk_a.headers)).json()
    assert listed["total"] == 3 and [c["id"] for c in listed["items"]] == [other["id"], for_child["id"], case["id"]]
    mine = (await client.get(CASES, params={"assigned_to": "me"}, headers=world.supervisor_a.headers)).json()
    assert {c["id"] for c in mine["items"]} == {for_child["id"], other["id"]}
    by_household = (await client.get(CASES, params={"household_id": household["id"]}, headers=world.clerk_a.headers)).json()
    assert by_household["total"] == 2
    page = (await client.get(CASES, params={"limit": 1, "offset": 1}, headers=world.clerk_a.headers)).json()
    assert page["total"] == 3 and [c["id"] for c in page["items"]] == [for_child["id"]]
    assert (await client.get(CASES, params={"status": "closed"}, headers=world.clerk_a.headers)).json()["total"] == 0
    # Events and audit: the opening (household dimensions, pseudonymised) and the reads.
    opened = await events(app, "case.opened")
    assert len(opened) == 3 and all(len(e["case"]) == 32 for e in opened)
    assert "sex" not in opened[0]["dimensions"] and opened[1]["dimensions"]["sex"] == "male"  # the child's case
    assert household["id"] not in str(opened) and head["family_name"] not in str(opened)
    audit = await db_rows(app, AuditEvent, AuditEvent.entity_type == "case", order_by=AuditEvent.id)
    assert [a.action for a in audit][:2] == ["create", "read"] and audit[-1].action == "search"


async def test_case_bad_input_changes_nothing(client, world, app):
    household = await register(client, world.clerk_a)
    before = await table_counts(app)
    h = world.clerk_a.headers
    for body, pointer in (({}, "#/household_id"), ({"household_id": "nope"}, "#/household_id"),
                          ({"household_id": household["id"], "summary": "x" * 501}, "#/summary"),
                          ({"household_id": household["id"], "colour": "red"}, "#/colour"),
                          ({"household_id": household["id"], "person_id": str(uuid.uuid4())}, "#/person_id"),
                          ({"household_id": household["id"], "assigned_to": str(world.clerk_b.id)}, "#/assigned_to"),
                          ({"household_id": household["id"], "assigned_to": str(world.monitor.id)}, "#/assigned_to")):
        problem = assert_problem(await client.post(CASES, json=body, headers=h), 422, "validation")
        assert pointer in pointers(problem), (body, problem)
    assert_problem(await client.post(CASES, content=b'{"household_id": ', headers=h | {"content-type": "application/json"}),
                   400, "malformed-json")
    assert_problem(await client.post(CASES, json={"household_id": str(uuid.uuid4())}, headers=h), 404, "not-found")
    for params in ({"status": "pending"}, {"assigned_to": "you"}, {"limit": 201}, {"overdue": "maybe"}):
        assert_problem(await client.get(CASES, params=params, headers=h), 422, "validation")
    assert await table_counts(app) == before


async def test_case_wrong_users(client, world, settings):
    household, case = await open_case(client, world.clerk_a)
    url = f"{CASES}/{case['id']}"
    assert_problem(await client.get(url), 401, "unauthenticated")
    assert_problem(await client.get(url, headers={"Authorization": "Bearer x.y.z"}), 401, "unauthenticated")
    for who in (world.monitor, world.partner):
        assert_problem(await client.get(url, headers=who.headers), 403, "forbidden")
        assert_problem(await client.post(CASES, json={"household_id": household["id"]}, headers=who.headers), 403, "forbidden")
    # Another office: exactly like a missing case, for every route of it.
    for who in (world.clerk_b, world.supervisor_b):
        assert_problem(await client.get(url, headers=who.headers), 404, "not-found")
        assert_problem(await client.get(f"{url}/timeline", headers=who.headers), 404, "not-found")
        assert_problem(await client.get(f"{url}/notes", headers=who.headers), 404, "not-found")
        assert_problem(await client.post(f"{url}/notes", json={"text": "x"}, headers=who.headers), 404, "not-found")
        assert_problem(await client.patch(url, json={"status": "waiting"}, headers=headers(who, etag='"1"')), 404, "not-found")
        assert_problem(await client.post(CASES, json={"household_id": household["id"]}, headers=who.headers), 404, "not-found")
        assert (await client.get(CASES, headers=who.headers)).json()["total"] == 0
    assert (await client.get(url, headers=world.admin.headers)).status_code == 200
    expired = {"Authorization": f"Bearer {expired_token(settings, world.clerk_a)}"}
    assert_problem(await client.get(url, headers=expired), 401, "unauthenticated")


async def test_assign_wait_close_and_reopen(client, world, app):
    household, case = await open_case(client, world.clerk_a)
    url = f"{CASES}/{case['id']}"
    assert_problem(await client.patch(url, json={"status": "waiting"}, headers=world.clerk_a.headers), 428, "precondition-required")
    assert_problem(await client.patch(url, json={"status": "waiting"}, headers=headers(world.clerk_a, etag='"7"')),
                   412, "precondition-failed")
    waiting = await client.patch(url, json={"status": "waiting", "assigned_to": str(world.supervisor_a.id)},
                                 headers=headers(world.clerk_a, etag='"1"'))
    assert waiting.status_code == 200 and waiting.headers["ETag"] == '"2"'
    assert waiting.json()["status"] == "waiting" and waiting.json()["assigned_to"] == str(world.supervisor_a.id)
    # Illegal transitions name the allowed ones.
    problem = assert_problem(await patch(client, world.clerk_a, url, {"status": "waiting"}), 409, "conflict")
    assert problem["allowed_transitions"] == ["closed", "open"] and problem["current_status"] == "waiting"
    # Closing needs an outcome (and an outcome needs closing).
    assert "#/outcome" in pointers(assert_problem(await patch(client, world.clerk_a, url, {"status": "closed"}), 422))
    assert "#/outcome" in pointers(assert_problem(await patch(client, world.clerk_a, url, {"outcome": "enrolled"}), 422))
    assert_problem(await patch(client, world.clerk_a, url, {"status": "closed", "outcome": "happy"}), 422, "validation")
    closed = await patch(client, world.clerk_a, url, {"status": "closed", "outcome": "information_given",
                                                      "outcome_note": "Told about HEF"})
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert body["status"] == "closed" and body["outcome"] == "information_given" and body["closed_by"] == str(world.clerk_a.id)
    # A closed case takes no work, and only a supervisor reopens it.
    assert_problem(await patch(client, world.clerk_a, url, {"summary": "more"}), 409, "conflict")
    assert_problem(await client.post(f"{url}/follow-ups", json={"due_date": "2099-01-01", "action": "x"},
                                     headers=world.clerk_a.headers), 409, "conflict")
    assert_problem(await patch(client, world.clerk_a, url, {"status": "open"}), 403, "forbidden")
    reopened = await patch(client, world.supervisor_a, url, {"status": "open"})
    assert reopened.status_code == 200 and reopened.json()["status"] == "open" and reopened.json()["outcome"] is None
    assert await timeline_kinds(client, world.clerk_a, case["id"]) == [
        "case.opened", "case.assigned", "case.waiting", "case.closed", "case.reopened"]
    closed_events = await events(app, "case.closed")
    assert [(e["outcome"], e["days_open"]) for e in closed_events] == [("information_given", 0)]


async def test_a_case_reopens_only_while_its_client_has_no_other_open_case(client, world, app):
    household, case = await open_case(client, world.clerk_a)
    url = f"{CASES}/{case['id']}"
    await patch(client, world.clerk_a, url, {"status": "closed", "outcome": "no_contact"})
    _, newer = await open_case(client, world.clerk_a, household)  # the client came back: a new case
    before = await table_counts(app)
    problem = assert_problem(await client.patch(url, json={"status": "open"}, headers=headers(world.supervisor_a, etag='"2"')),
                             409, "conflict")
    assert problem["existing_case"] == newer["id"] and "already has an open case" in problem["detail"]
    assert await table_counts(app) == before
    assert (await client.get(url, headers=world.clerk_a.headers)).json()["status"] == "closed"
    await patch(client, world.clerk_a, f"{CASES}/{newer['id']}", {"status": "closed", "outcome": "information_given"})
    assert (await patch(client, world.supervisor_a, url, {"status": "open"})).json()["status"] == "open"


async def test_a_case_closes_only_when_nothing_inside_is_open(client, world, app):
    household, case = await open_case(client, world.clerk_a)
    url = f"{CASES}/{case['id']}"
    application = (await client.post(f"{url}/applications", json={"scheme_code": "KH-HEF"}, headers=world.clerk_a.headers)).json()
    follow_up = (await client.post(f"{url}/follow-ups", json={"due_date": "2099-01-01", "action": "Call back"},
                                   headers=world.clerk_a.headers)).json()
    before = await table_counts(app)
    problem = assert_problem(await client.patch(url, json={"status": "closed", "outcome": "enrolled"},
                                                headers=headers(world.clerk_a, etag='"1"')), 409, "conflict")
    assert {(i["type"], i["id"]) for i in problem["open_items"]} == {("application", application["id"]),
                                                                      ("follow_up", follow_up["id"])}
    assert application["reference"] in problem["detail"] and "follow-up" in problem["detail"]
    assert await table_counts(app) == before
    case_now = (await client.get(url, headers=world.clerk_a.headers)).json()
    assert case_now["open_items"] == {"applications": 1, "referrals": 0, "follow_ups": 1, "grievances": 0}
    await patch(client, world.clerk_a, f"/api/v1/follow-ups/{follow_up['id']}", {"status": "cancelled"})
    await patch(client, world.clerk_a, f"/api/v1/applications/{application['id']}", {"status": "withdrawn", "note": "Moved"})
    closed = await patch(client, world.clerk_a, url, {"status": "closed", "outcome": "withdrawn"})
    assert closed.status_code == 200, closed.text


async def test_overdue_cases(client, world):
    start = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    with frozen(start):
        _, late = await open_case(client, world.clerk_a)
        _, fine = await open_case(client, world.clerk_a)
        for case, due in ((late, "2026-03-05"), (fine, "2026-03-20")):
            response = await client.post(f"{CASES}/{case['id']}/follow-ups", json={"due_date": due, "action": "Visit"},
                                         headers=world.clerk_a.headers)
            assert response.status_code == 201, response.text
    with frozen(start + timedelta(days=4)):  # 6 March in Phnom Penh
        overdue = (await client.get(CASES, params={"overdue": "true"}, headers=world.clerk_a.headers)).json()
        assert [c["id"] for c in overdue["items"]] == [late["id"]] and overdue["items"][0]["overdue"] is True
        on_time = (await client.get(CASES, params={"overdue": "false"}, headers=world.clerk_a.headers)).json()
        assert [c["id"] for c in on_time["items"]] == [fine["id"]]


# ---- notes ------------------------------------------------------------------------------------------------


async def test_confidential_notes_are_for_supervisors_only(client, world, app):
    _, case = await open_case(client, world.clerk_a)
    url = f"{CASES}/{case['id']}"
    plain = await client.post(f"{url}/notes", json={"text": "Brought the equity card"}, headers=world.clerk_a.headers)
    assert plain.status_code == 201 and plain.json()["text"] == "Brought the equity card"
    secret_text = "Reports violence at home; do not call the husband"
    secret = await client.post(f"{url}/notes", json={"text": secret_text, "confidential": True}, headers=world.clerk_a.headers)
    assert secret.status_code == 201
    # Even its author, a clerk, gets it back withheld.
    assert secret.json()["confidential"] is True and secret.json()["text"] is None and secret.json()["withheld"] is True
    for who, visible in ((world.clerk_a, False), (world.supervisor_a, True), (world.admin, True)):
        notes = (await client.get(f"{url}/notes", headers=who.headers)).json()
        assert [n["text"] for n in notes] == ["Brought the equity card", secret_text if visible else None]
        timeline = await client.get(f"{url}/timeline", headers=who.headers)
        assert (secret_text in timeline.text) is visible
        notes_in_timeline = [e for e in timeline.json()["items"] if e["kind"] == "note.added"]
        assert [e["details"]["withheld"] for e in notes_in_timeline] == [False, not visible]
    # The timeline row itself never holds the text; the audit row says only that it was confidential.
    rows = await db_rows(app, CaseEvent, CaseEvent.kind == "note.added")
    assert secret_text not in str([r.details for r in rows])
    audit = await db_rows(app, AuditEvent, AuditEvent.entity_type == "case_note", AuditEvent.action == "create",
                          order_by=AuditEvent.id)
    assert [a.details["confidential"] for a in audit] == [False, True] and secret_text not in str([a.details for a in audit])
    for body, pointer in (({"text": ""}, "#/text"), ({"text": "x" * 4001}, "#/text"), ({"text": "x", "confidential": "maybe"},
                                                                                        "#/confidential")):
        assert pointer in pointers(assert_problem(await client.post(f"{url}/notes", json=body, headers=world.clerk_a.headers), 422))


async def test_idempotent_case_opening(client, world, app):
    household = await register(client, world.clerk_a)
    h = headers(world.clerk_a, key="open-case-1")
    first = await client.post(CASES, json={"household_id": household["id"]}, headers=h)
    replay = await client.post(CASES, json={"household_id": household["id"]}, headers=h)
    assert first.status_code == replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert_problem(await client.post(CASES, json={"household_id": household["id"], "summary": "x"}, headers=h), 422,
                   "idempotency-key-reused")
    async with app.state.sessionmaker() as session:
        opened = (await session.execute(select(ActivityEvent).where(ActivityEvent.type == "case.opened"))).scalars().all()
    assert len(opened) == 1


@pytest.mark.parametrize("path", ["/api/v1/cases", "/api/v1/applications", "/api/v1/referrals", "/api/v1/follow-ups",
                                  "/api/v1/grievances"])
async def test_no_case_management_page_holds_more_than_200(client, world, path):
    problem = assert_problem(await client.get(path, params={"limit": 201}, headers=world.clerk_a.headers), 422, "validation")
    assert pointers(problem) == ["#/query/limit"]
    page = await client.get(path, params={"limit": 200}, headers=world.clerk_a.headers)
    assert page.status_code == 200 and page.json()["limit"] == 200
