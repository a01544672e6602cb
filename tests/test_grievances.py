"""Grievances and appeals: the three kinds of complainant (and what central learns of each), answer
deadlines per category (configurable), the state machine with escalation, appeals against decided
applications within the window, decided by a supervisor who did not take the decision; overdue; wrong
users and bad input."""

import uuid
from datetime import UTC, datetime, timedelta

from helpers import assert_problem, pointers, register, table_counts
from test_applications import decide, file
from test_cases import events, frozen, headers, open_case, patch, timeline_kinds

from app import clock
from app.config import DEFAULT_GRIEVANCE_SLA_DAYS
from app.vocabulary import GrievanceCategory, Role

GRIEVANCES = "/api/v1/grievances"


async def lodge(client, account, **body) -> dict:
    body = {"category": "payment", "channel": "in_person", "complainant": {"kind": "anonymous"},
            "description": "The March payment did not arrive"} | body
    response = await client.post(GRIEVANCES, json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_three_kinds_of_complainant(client, world, app):
    household = await register(client, world.clerk_a)
    head = household["members"][0]
    registered = await lodge(client, world.clerk_a, channel="phone", complainant={"kind": "person", "person_id": head["id"]})
    assert registered["reference"].startswith("SR-ACH-") and "-G00001" in registered["reference"]
    assert registered["status"] == "received" and registered["level"] == 1 and registered["overdue"] is False
    assert registered["sla_due_date"] == (clock.today() + timedelta(days=15)).isoformat()  # payment: 15 days
    assert registered["complainant"] == {"kind": "person", "person_id": head["id"], "name": None, "contact": None}
    named = await lodge(client, world.clerk_a, category="exclusion_error", channel="letter", description="Left off the list",
                        complainant={"kind": "named", "name": "Keo Sophea", "contact": "+855 12 345 678"})
    assert named["complainant"]["name"] == "Keo Sophea" and named["sla_due_date"] == (clock.today() + timedelta(days=30)).isoformat()
    anonymous = await lodge(client, world.clerk_a, category="staff_conduct", channel="hotline",
                            description="A clerk asked for money to register us")
    assert anonymous["complainant"]["kind"] == "anonymous" and anonymous["case_id"] is None
    read = await client.get(f"{GRIEVANCES}/{anonymous['id']}", headers=world.clerk_a.headers)
    assert read.status_code == 200 and read.headers["ETag"] == '"1"' and read.json() == anonymous
    opened = await events(app, "grievance.opened")
    assert [(e["category"], e["channel"], e["level"]) for e in opened] == [
        ("payment", "phone", 1), ("exclusion_error", "letter", 1), ("staff_conduct", "hotline", 1)]
    assert opened[0]["person"] and opened[0]["household"] and opened[0]["dimensions"]["sex"] == "female"
    # Someone not registered, or anonymous: the office's place only, nothing about who.
    for event in opened[1:]:
        assert "person" not in event and "household" not in event
        assert event["dimensions"] == {"province": "17", "district": "1701"}
    assert "Sophea" not in str(opened) and "money" not in str(opened)
    listed = (await client.get(GRIEVANCES, headers=world.clerk_a.headers)).json()
    assert [g["id"] for g in listed["items"]] == [registered["id"], named["id"], anonymous["id"]]  # soonest due first
    assert (await client.get(GRIEVANCES, params={"category": "staff_conduct"}, headers=world.clerk_a.headers)).json()["total"] == 1


async def test_grievance_bad_input(client, world, app):
    household = await register(client, world.clerk_a)
    person = household["members"][0]["id"]
    other_office = (await register(client, world.clerk_b))["members"][0]["id"]
    _, case_b = await open_case(client, world.clerk_b)
    good = {"category": "other", "channel": "in_person", "complainant": {"kind": "anonymous"}, "description": "x"}
    before = await table_counts(app)
    for change, pointer in (({"category": "rudeness"}, "#/category"), ({"channel": "pigeon"}, "#/channel"),
                            ({"description": ""}, "#/description"), ({"description": "x" * 4001}, "#/description"),
                            ({"complainant": {"kind": "person"}}, "#/complainant/person_id"),
                            ({"complainant": {"kind": "person", "person_id": person, "name": "X"}}, "#/complainant/name"),
                            ({"complainant": {"kind": "named", "name": "Keo"}}, "#/complainant/contact"),
                            ({"complainant": {"kind": "named", "contact": "012"}}, "#/complainant/name"),
                            ({"complainant": {"kind": "anonymous", "name": "Keo"}}, "#/complainant/kind"),
                            ({"complainant": {"kind": "ghost"}}, "#/complainant/kind"),
                            ({"complainant": {"kind": "named", "name": "K" * 101, "contact": "012"}}, "#/complainant/name"),
                            ({"category": "appeal"}, "#/application_id"),
                            ({"application_id": str(uuid.uuid4())}, "#/application_id"),
                            ({"category": "appeal", "application_id": str(uuid.uuid4())}, "#/complainant/kind")):
        problem = assert_problem(await client.post(GRIEVANCES, json=good | change, headers=world.clerk_a.headers), 422)
        assert pointer in pointers(problem), (change, problem)
    assert_problem(await client.post(GRIEVANCES, content=b'{"category": "other",', headers=world.clerk_a.headers | {
        "content-type": "application/json"}), 400, "malformed-json")
    for change in ({"complainant": {"kind": "person", "person_id": other_office}}, {"case_id": case_b["id"]},
                   {"complainant": {"kind": "person", "person_id": str(uuid.uuid4())}}):
        assert_problem(await client.post(GRIEVANCES, json=good | change, headers=world.clerk_a.headers), 404, "not-found")
    # An admin belongs to no office: the grievance must say which office answers it.
    assert "#/case_id" in pointers(assert_problem(await client.post(GRIEVANCES, json=good, headers=world.admin.headers), 422))
    assert await table_counts(app) == before
    for params in ({"status": "open"}, {"category": "x"}, {"overdue": "2"}):
        assert_problem(await client.get(GRIEVANCES, params=params, headers=world.clerk_a.headers), 422, "validation")


async def test_the_state_machine_escalation_and_deadlines(client, world, app):
    original = app.state.settings
    app.state.settings = original.model_copy(update={"grievance_sla_days": DEFAULT_GRIEVANCE_SLA_DAYS | {
        GrievanceCategory.data_correction: 5}})
    try:
        with frozen(datetime(2026, 6, 1, 2, 0, tzinfo=UTC)):
            grievance = await lodge(client, world.clerk_a, category="data_correction", description="My birth year is wrong")
            assert grievance["sla_due_date"] == "2026-06-06"  # configured: 5 days
        url = f"{GRIEVANCES}/{grievance['id']}"
        with frozen(datetime(2026, 6, 6, 18, 0, tzinfo=UTC)):  # 7 June in Phnom Penh: late
            late = (await client.get(GRIEVANCES, params={"overdue": "true"}, headers=world.clerk_a.headers)).json()
            assert [g["id"] for g in late["items"]] == [grievance["id"]] and late["items"][0]["overdue"] is True
            problem = assert_problem(await patch(client, world.clerk_a, url, {"status": "resolved", "resolution": "Fixed"}), 409)
            assert problem["allowed_transitions"] == ["in_review"]
            assert (await patch(client, world.clerk_a, url, {"status": "in_review"})).json()["status"] == "in_review"
            assert "#/resolution" in pointers(assert_problem(await patch(client, world.clerk_a, url, {"status": "resolved"}), 422))
            assert "#/upheld" in pointers(assert_problem(await patch(
                client, world.clerk_a, url, {"status": "resolved", "resolution": "Fixed", "upheld": True}), 422))
            escalated = await patch(client, world.clerk_a, url, {"status": "escalated", "note": "Needs the provincial registry"})
            assert escalated.json()["level"] == 2 and escalated.json()["sla_due_date"] == "2026-06-12"
            assert escalated.json()["overdue"] is False
        with frozen(datetime(2026, 6, 8, 2, 0, tzinfo=UTC)):
            for level in (2, 3):
                await patch(client, world.clerk_a, url, {"status": "in_review"})
                if level < 3:
                    assert (await patch(client, world.clerk_a, url, {"status": "escalated"})).json()["level"] == 3
            top = assert_problem(await patch(client, world.clerk_a, url, {"status": "escalated"}), 409, "conflict")
            assert top["level"] == 3
            resolved = await patch(client, world.clerk_a, url, {"status": "resolved",
                                                               "resolution": "The birth year was corrected to 1984."})
            body = resolved.json()
            assert body["status"] == "resolved" and body["resolution"].endswith("1984.") and body["closed_at"]
            assert body["upheld"] is None
            assert_problem(await patch(client, world.clerk_a, url, {"status": "in_review"}), 409)
    finally:
        app.state.settings = original
    changed = await events(app, "grievance.status_changed")
    assert [(e["status"], e["level"], e["overdue"]) for e in changed] == [
        ("in_review", 1, True), ("escalated", 2, True), ("in_review", 2, False), ("escalated", 3, False),
        ("in_review", 3, False), ("resolved", 3, False)]
    assert [e["days_open"] for e in changed][-1] == 7 and "1984" not in str(changed)
    rejected = await lodge(client, world.clerk_a, category="other", description="Wants a bigger office")
    await patch(client, world.clerk_a, f"{GRIEVANCES}/{rejected['id']}", {"status": "in_review"})
    done = await patch(client, world.clerk_a, f"{GRIEVANCES}/{rejected['id']}",
                       {"status": "rejected", "resolution": "Not a matter for the social protection office."})
    assert done.json()["status"] == "rejected"
    assert (await client.get(GRIEVANCES, params={"status": "rejected"}, headers=world.clerk_a.headers)).json()["total"] == 1


async def test_an_appeal_against_a_rejection(client, world, app, make_account):
    household = await register(client, world.clerk_a)
    head = household["members"][0]["id"]
    with frozen(datetime(2026, 2, 1, 2, 0, tzinfo=UTC)):
        _, case = await open_case(client, world.clerk_a, household)
        application = await file(client, world.clerk_a, case["id"], scheme_code="KH-HEF")
        appeal = {"category": "appeal", "channel": "in_person", "complainant": {"kind": "person", "person_id": head},
                  "application_id": application["id"], "description": "Our income fell in March; we are poor now"}
        problem = assert_problem(await client.post(GRIEVANCES, json=appeal, headers=world.clerk_a.headers), 409)
        assert "Only a decided application" in problem["detail"]
    with frozen(datetime(2026, 2, 2, 2, 0, tzinfo=UTC)):
        rejected = await decide(client, world.supervisor_a, application, {
            "decision": "rejected", "reason_code": "income_above_threshold", "reason_text": "Income above the threshold"})
        assert rejected.status_code == 200
        closed = await patch(client, world.clerk_a, f"/api/v1/cases/{case['id']}", {"status": "closed", "outcome": "not_eligible"})
        assert closed.status_code == 200
    stranger = (await register(client, world.clerk_a))["members"][0]["id"]
    with frozen(datetime(2026, 5, 3, 18, 0, tzinfo=UTC)):  # 4 May in Phnom Penh: 91 days after the decision
        late = assert_problem(await client.post(GRIEVANCES, json=appeal, headers=world.clerk_a.headers), 409)
        assert late["appeal_window_closed_on"] == "2026-05-03"
    with frozen(datetime(2026, 5, 3, 2, 0, tzinfo=UTC)):  # the last day
        outsider = appeal | {"complainant": {"kind": "person", "person_id": stranger}}
        assert "#/complainant/person_id" in pointers(assert_problem(
            await client.post(GRIEVANCES, json=outsider, headers=world.clerk_a.headers), 422))
        lodged = await lodge(client, world.clerk_a, **appeal)
    assert lodged["case_id"] == case["id"] and lodged["application_reference"] == application["reference"]
    assert lodged["sla_due_date"] == "2026-06-02"
    # The appeal is recorded in the closed case, which stays closed with its outcome (only a supervisor reopens).
    after = (await client.get(f"/api/v1/cases/{case['id']}", headers=world.clerk_a.headers)).json()
    assert (after["status"], after["outcome"], after["open_items"]["grievances"]) == ("closed", "not_eligible", 1)
    url = f"{GRIEVANCES}/{lodged['id']}"
    with frozen(datetime(2026, 5, 10, 2, 0, tzinfo=UTC)):
        await patch(client, world.clerk_a, url, {"status": "in_review"})
        resolution = {"status": "resolved", "upheld": True, "resolution": "Upheld: the income has fallen; apply again."}
        assert_problem(await patch(client, world.clerk_a, url, resolution), 403, "forbidden")  # a supervisor decides
        impartial = assert_problem(await patch(client, world.supervisor_a, url, resolution), 403, "forbidden")
        assert "another supervisor" in impartial["detail"]  # not the one who took the decision
        other_supervisor = await make_account(Role.supervisor)
        assert "#/upheld" in pointers(assert_problem(await patch(
            client, other_supervisor, url, {"status": "resolved", "resolution": "x"}), 422))
        upheld = await patch(client, other_supervisor, url, resolution)
        assert upheld.status_code == 200 and upheld.json()["upheld"] is True
    [opened] = await events(app, "grievance.opened")
    assert opened["category"] == "appeal" and opened["appeal_scheme"] == "KH-HEF"
    changed = await events(app, "grievance.status_changed")
    assert [(e["status"], e.get("upheld"), e["appeal_scheme"]) for e in changed] == [
        ("in_review", None, "KH-HEF"), ("resolved", True, "KH-HEF")]
    assert await timeline_kinds(client, world.clerk_a, case["id"]) == [
        "case.opened", "application.submitted", "application.decided", "case.closed", "grievance.opened",
        "grievance.status_changed", "grievance.status_changed"]
    listed = (await client.get(GRIEVANCES, params={"application_id": application["id"]}, headers=world.clerk_a.headers)).json()
    assert [g["id"] for g in listed["items"]] == [lodged["id"]]


async def test_a_grievance_about_a_closed_case_leaves_it_closed(client, world, app):
    """A clerk may not reopen a case (PATCH status open: 403), and lodging a grievance in it is no way
    round that: the grievance is recorded in the case, which keeps its status and outcome until a
    supervisor reopens it."""
    household, case = await open_case(client, world.clerk_a)
    url = f"/api/v1/cases/{case['id']}"
    await patch(client, world.clerk_a, url, {"status": "closed", "outcome": "information_given", "outcome_note": "Told"})
    assert_problem(await patch(client, world.clerk_a, url, {"status": "open"}), 403, "forbidden")
    complainant = {"kind": "person", "person_id": household["members"][0]["id"]}
    grievance = await lodge(client, world.clerk_a, category="staff_conduct", case_id=case["id"], complainant=complainant,
                            description="Nobody told me about the scholarship")
    assert grievance["case_id"] == case["id"] and grievance["status"] == "received"
    after = (await client.get(url, headers=world.clerk_a.headers)).json()
    assert (after["status"], after["outcome"], after["outcome_note"], after["closed_by"]) == (
        "closed", "information_given", "Told", str(world.clerk_a.id))
    assert after["open_items"]["grievances"] == 1 and after["version"] == 2
    assert await timeline_kinds(client, world.clerk_a, case["id"]) == ["case.opened", "case.closed", "grievance.opened"]
    # Still no new work in it from the clerk; the supervisor reopens it, and then it takes work again.
    assert_problem(await client.post(f"{url}/follow-ups", json={"due_date": "2099-01-01", "action": "Call back"},
                                     headers=world.clerk_a.headers), 409, "conflict")
    reopened = await patch(client, world.supervisor_a, url, {"status": "open"})
    assert reopened.status_code == 200 and reopened.json()["status"] == "open" and reopened.json()["outcome"] is None
    assert (await client.post(f"{url}/follow-ups", json={"due_date": "2099-01-01", "action": "Call back"},
                              headers=world.clerk_a.headers)).status_code == 201


async def test_an_appeal_nobody_in_its_office_may_decide_waits_with_an_admin(client, world, app, make_account):
    """Office A's only supervisor took the decision, so may not decide the appeal: the appeal waits with an
    admin, and the queues say so; a second supervisor in the office takes it back to the office."""
    household = await register(client, world.clerk_a)
    _, case = await open_case(client, world.clerk_a, household)
    head = household["members"][0]["id"]
    refusal = {"decision": "rejected", "reason_code": "not_poor", "reason_text": "Not in the IDPoor list"}
    complainant = {"kind": "person", "person_id": head}
    appeals = []
    for scheme, person in (("KH-HEF", {}), ("KH-DISAB", {"person_id": head, "against_screening_reason": "Asks to"})):
        application = await file(client, world.clerk_a, case["id"], scheme_code=scheme, **person)
        assert (await decide(client, world.supervisor_a, application, refusal)).status_code == 200
        appeals.append(await lodge(client, world.clerk_a, category="appeal", application_id=application["id"],
                                   complainant=complainant, description="We are poor: the card expired last month"))
    appeal, other_appeal = appeals
    complaint = await lodge(client, world.clerk_a)
    assert [g["waiting_with"] for g in (appeal, other_appeal, complaint)] == ["admin", "admin", "office"]
    url = f"{GRIEVANCES}/{appeal['id']}"
    assert (await client.get(url, headers=world.clerk_a.headers)).json()["waiting_with"] == "admin"
    for who, wanted, found in ((world.clerk_a, "admin", appeals), (world.clerk_a, "office", [complaint]),
                               (world.admin, "admin", appeals), (world.clerk_b, "admin", [])):
        listed = (await client.get(GRIEVANCES, params={"waiting_with": wanted}, headers=who.headers)).json()
        assert [g["id"] for g in listed["items"]] == [g["id"] for g in found] and listed["total"] == len(found), (who, wanted)
    assert_problem(await client.get(GRIEVANCES, params={"waiting_with": "province"}, headers=world.clerk_a.headers),
                   422, "validation")
    await patch(client, world.clerk_a, url, {"status": "in_review"})
    answer = {"status": "resolved", "upheld": False, "resolution": "The card lapsed after the decision: apply again."}
    barred = assert_problem(await patch(client, world.supervisor_a, url, answer), 403, "forbidden")
    assert barred["waiting_with"] == "admin" and "waits with an admin" in barred["detail"]
    # A second supervisor (and only an active one) takes it back to the office.
    second = await make_account(Role.supervisor)
    assert (await client.get(url, headers=world.clerk_a.headers)).json()["waiting_with"] == "office"
    etag = (await client.get(f"/api/v1/users/{second.id}", headers=world.admin.headers)).headers["ETag"]
    assert (await client.patch(f"/api/v1/users/{second.id}", json={"is_active": False},
                               headers=headers(world.admin, etag=etag))).status_code == 200
    assert (await client.get(url, headers=world.clerk_a.headers)).json()["waiting_with"] == "admin"
    decided = await patch(client, world.admin, url, answer)
    assert decided.status_code == 200 and decided.json()["upheld"] is False and decided.json()["waiting_with"] is None
    left = (await client.get(GRIEVANCES, params={"waiting_with": "admin"}, headers=world.admin.headers)).json()
    assert [g["id"] for g in left["items"]] == [other_appeal["id"]]


async def test_grievance_wrong_users(client, world):
    grievance = await lodge(client, world.clerk_a)
    url = f"{GRIEVANCES}/{grievance['id']}"
    assert_problem(await client.get(url), 401, "unauthenticated")
    for who in (world.monitor, world.partner):
        assert_problem(await client.get(url, headers=who.headers), 403, "forbidden")
        assert_problem(await client.post(GRIEVANCES, json={}, headers=who.headers), 403, "forbidden")
    for who in (world.clerk_b, world.supervisor_b):
        assert_problem(await client.get(url, headers=who.headers), 404, "not-found")
        assert_problem(await client.patch(url, json={"status": "in_review"}, headers=headers(who, etag='"1"')), 404)
        assert (await client.get(GRIEVANCES, headers=who.headers)).json()["total"] == 0
    assert_problem(await client.patch(url, json={"status": "in_review"}, headers=world.clerk_a.headers), 428)
    assert_problem(await client.patch(url, json={"status": "in_review"}, headers=headers(world.clerk_a, etag='"9"')), 412)
    assert (await client.get(url, headers=world.admin.headers)).status_code == 200
