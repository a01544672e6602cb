"""Applications decided at the office: filing (and the latest screening's say), the state machine, a
supervisor's decisions with written reasons, overdue across time zones and month ends, the receipt
as JSON and as a printable page, reference numbers under concurrency; wrong users and bad input."""

import asyncio
import re
import uuid
from datetime import UTC, datetime

from helpers import CONTRACT_EXAMPLE, assert_problem, db_rows, household_body, pointers, register, table_counts
from test_cases import events, frozen, headers, open_case, patch, timeline_kinds

from app import clock
from app.models import AuditEvent

APPLICATIONS = "/api/v1/applications"
REFERENCE = re.compile(r"^SR-ACH-\d{4}-A\d{5}$")


async def screen(client, account, household_id: str) -> dict:
    response = await client.post(f"/api/v1/households/{household_id}/screenings", headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def file(client, account, case_id: str, **body) -> dict:
    response = await client.post(f"/api/v1/cases/{case_id}/applications", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def decide(client, account, application: dict, body: dict):
    url = f"{APPLICATIONS}/{application['id']}"
    etag = (await client.get(url, headers=account.headers)).headers["ETag"]
    return await client.post(f"{url}/decision", json=body, headers=headers(account, etag=etag))


async def test_file_read_and_list_an_application(client, world, app):
    household = await register(client, world.clerk_a)
    screening = await screen(client, world.clerk_a, household["id"])
    _, case = await open_case(client, world.clerk_a, household)
    head = household["members"][0]["id"]
    hef = await file(client, world.clerk_a, case["id"], scheme_code="KH-HEF")
    assert REFERENCE.match(hef["reference"]) and hef["status"] == "submitted" and hef["route"] == "office"
    assert hef["person_id"] is None and hef["scheme_name"] == "Health Equity Fund" and hef["submission"] is None
    assert hef["screening_id"] == screening["id"] and hef["screening_outcome"] == "eligible" and hef["against_screening"] is False
    assert hef["service_level_days"] == 30 and hef["decision"] is None and hef["overdue"] is False
    disab = await file(client, world.clerk_a, case["id"], scheme_code="KH-DISAB", person_id=head)
    assert disab["person_id"] == head and disab["service_level_days"] == 45
    assert int(disab["reference"][-5:]) == int(hef["reference"][-5:]) + 1
    read = await client.get(f"{APPLICATIONS}/{hef['id']}", headers=world.clerk_a.headers)
    assert read.status_code == 200 and read.headers["ETag"] == '"1"' and read.json() == hef
    listed = (await client.get(APPLICATIONS, params={"case_id": case["id"]}, headers=world.clerk_a.headers)).json()
    assert listed["total"] == 2 and [a["id"] for a in listed["items"]] == [disab["id"], hef["id"]]
    assert (await client.get(APPLICATIONS, params={"scheme_code": "KH-DISAB"}, headers=world.clerk_a.headers)).json()["total"] == 1
    assert (await client.get(APPLICATIONS, params={"status": "approved"}, headers=world.clerk_a.headers)).json()["total"] == 0
    submitted = await events(app, "application.submitted")
    assert [(e["scheme"], e["against_screening"]) for e in submitted] == [("KH-HEF", False), ("KH-DISAB", False)]
    assert "sex" not in submitted[0]["dimensions"] and submitted[1]["dimensions"]["sex"] == "female"
    assert await timeline_kinds(client, world.clerk_a, case["id"]) == [
        "screening.completed", "case.opened", "application.submitted", "application.submitted"]


async def test_filing_against_a_not_eligible_screening_needs_a_reason(client, world, app):
    household = await register(client, world.clerk_a, CONTRACT_EXAMPLE)  # the head is not eligible for the NSSF pension
    head = household["members"][0]["id"]
    _, case = await open_case(client, world.clerk_a, household, person_id=head)
    url = f"/api/v1/cases/{case['id']}/applications"
    # Never screened: nothing to go against.
    unscreened = await file(client, world.clerk_a, case["id"], scheme_code="KH-NSSF-HC")
    assert unscreened["screening_outcome"] is None and unscreened["against_screening"] is False
    await screen(client, world.clerk_a, household["id"])
    before = await table_counts(app)
    problem = assert_problem(await client.post(url, json={"scheme_code": "KH-NSSF-PEN"}, headers=world.clerk_a.headers),
                             422, "validation")
    assert pointers(problem) == ["#/against_screening_reason"] and problem["failed_reasons"]
    assert "not eligible for" in problem["detail"] and problem["failed_reasons"][0] in problem["detail"]
    assert await table_counts(app) == before  # no application, and no reference number used up
    filed = await file(client, world.clerk_a, case["id"], scheme_code="KH-NSSF-PEN",
                       against_screening_reason="Has 20 years of contributions on paper; the registry lacks them")
    assert filed["person_id"] == head and filed["against_screening"] is True and filed["screening_outcome"] == "not_eligible"
    assert filed["screening_override_reason"].startswith("Has 20 years")
    assert int(filed["reference"][-5:]) == int(unscreened["reference"][-5:]) + 1
    assert [e["against_screening"] for e in await events(app, "application.submitted")] == [False, True]
    timeline = (await client.get(f"/api/v1/cases/{case['id']}/timeline", headers=world.clerk_a.headers)).json()["items"]
    assert [e["details"].get("against_screening") for e in timeline if e["kind"] == "application.submitted"] == [False, True]


async def test_who_and_what_an_application_is_for(client, world):
    household = await register(client, world.clerk_a)
    _, case = await open_case(client, world.clerk_a, household)
    url = f"/api/v1/cases/{case['id']}/applications"
    stranger = (await register(client, world.clerk_a))["members"][0]["id"]
    for body, pointer in (({"scheme_code": "KH-DISAB"}, "#/person_id"),  # a person-level scheme needs the person
                          ({"scheme_code": "KH-HEF", "person_id": household["members"][0]["id"]}, "#/person_id"),
                          ({"scheme_code": "KH-DISAB", "person_id": stranger}, "#/person_id"),
                          ({"scheme_code": "KH-NOPE"}, "#/scheme_code"), ({"scheme_code": "KH HEF"}, "#/scheme_code"),
                          ({"scheme_code": "x" * 41}, "#/scheme_code"), ({}, "#/scheme_code"),
                          ({"scheme_code": "KH-HEF", "against_screening_reason": "x" * 1001}, "#/against_screening_reason"),
                          ({"scheme_code": "KH-HEF", "status": "approved"}, "#/status")):
        problem = assert_problem(await client.post(url, json=body, headers=world.clerk_a.headers), 422, "validation")
        assert pointer in pointers(problem), (body, problem)
    first = await file(client, world.clerk_a, case["id"], scheme_code="KH-HEF")
    duplicate = assert_problem(await client.post(url, json={"scheme_code": "KH-HEF"}, headers=world.clerk_a.headers), 409)
    assert duplicate["existing_application"] == first["id"] and first["reference"] in duplicate["detail"]
    assert_problem(await client.post(f"/api/v1/cases/{uuid.uuid4()}/applications", json={"scheme_code": "KH-HEF"},
                                     headers=world.clerk_a.headers), 404, "not-found")


async def test_the_state_machine(client, world, app):
    household = await register(client, world.clerk_a)
    _, case = await open_case(client, world.clerk_a, household)
    application = await file(client, world.clerk_a, case["id"], scheme_code="KH-HEF")
    url = f"{APPLICATIONS}/{application['id']}"
    assert_problem(await client.patch(url, json={"status": "withdrawn"}, headers=world.clerk_a.headers), 428)
    assert_problem(await client.patch(url, json={"status": "withdrawn"}, headers=headers(world.clerk_a, etag='"5"')), 412)
    # submitted -> pending_information (saying what is needed) -> submitted
    assert "#/note" in pointers(assert_problem(await patch(client, world.clerk_a, url, {"status": "pending_information"}), 422))
    waiting = await patch(client, world.clerk_a, url, {"status": "pending_information", "note": "Bring the equity card"})
    assert waiting.status_code == 200 and waiting.json()["status"] == "pending_information"
    # No decision while information is pending: 409 names what may follow.
    problem = assert_problem(await decide(client, world.supervisor_a, application, {"decision": "approved"}), 409, "conflict")
    assert problem["allowed_transitions"] == ["submitted", "withdrawn"] and problem["current_status"] == "pending_information"
    back = await patch(client, world.clerk_a, url, {"status": "submitted", "note": "Card seen"})
    assert back.json()["status"] == "submitted"
    # The office's PATCH does not decide; a clerk cannot decide at all.
    assert "#/status" in pointers(assert_problem(await patch(client, world.clerk_a, url, {"status": "approved"}), 422))
    assert_problem(await decide(client, world.clerk_a, application, {"decision": "approved"}), 403, "forbidden")
    # Decisions need If-Match.
    body = {"decision": "approved", "benefit": {"type": "health_coverage", "frequency": "yearly", "start_date": "2027-01-01"}}
    assert_problem(await client.post(f"{url}/decision", json=body, headers=world.supervisor_a.headers), 428)
    assert_problem(await client.post(f"{url}/decision", json=body, headers=headers(world.supervisor_a, etag='"1"')), 412)
    approved = await decide(client, world.supervisor_a, application, body)
    assert approved.status_code == 200, approved.text
    decision = approved.json()["decision"]
    assert approved.json()["status"] == "approved" and decision["decided_by_kind"] == "supervisor"
    assert decision["decided_by"] == str(world.supervisor_a.id) and decision["days_to_decision"] == 0
    assert decision["within_service_level"] is True and decision["benefit"]["start_date"] == "2027-01-01"
    assert decision["benefit"]["currency"] == "KHR"
    # Final: nothing may follow.
    for attempt in (decide(client, world.supervisor_a, application, {"decision": "rejected", "reason_code": "x", "reason_text": "y"}),
                    patch(client, world.clerk_a, url, {"status": "withdrawn"})):
        problem = assert_problem(await attempt, 409, "conflict")
        assert problem["allowed_transitions"] == [] and "final" in problem["detail"]
    decided = await events(app, "application.decided")
    assert decided == [{"type": "application.decided", **decided[0]}] and decided[0]["decision"] == "approved"
    assert decided[0]["benefit"] == {"type": "health_coverage", "currency": "KHR", "frequency": "yearly"}
    assert decided[0]["decided_by"] == "supervisor" and decided[0]["within_service_level"] is True
    # The applicant withdraws another one.
    other = await file(client, world.clerk_a, case["id"], scheme_code="KH-FAMILY-CASH")
    withdrawn = await patch(client, world.clerk_a, f"{APPLICATIONS}/{other['id']}", {"status": "withdrawn", "note": "Moving away"})
    assert withdrawn.json()["status"] == "withdrawn" and withdrawn.json()["decision"]["decided_by_kind"] == "applicant"
    assert [e["decided_by"] for e in await events(app, "application.decided")] == ["supervisor", "applicant"]


async def test_a_rejection_carries_written_reasons(client, world, app):
    household = await register(client, world.clerk_a)
    _, case = await open_case(client, world.clerk_a, household)
    application = await file(client, world.clerk_a, case["id"], scheme_code="KH-HEF")
    before = await table_counts(app)
    for body, pointer in (({"decision": "rejected"}, "#/reason_code"),
                          ({"decision": "rejected", "reason_code": "income_above_threshold"}, "#/reason_text"),
                          ({"decision": "rejected", "reason_text": "Too rich"}, "#/reason_code"),
                          ({"decision": "rejected", "reason_code": "Income Above", "reason_text": "x"}, "#/reason_code"),
                          ({"decision": "rejected", "reason_code": "x", "reason_text": "x" * 2001}, "#/reason_text"),
                          ({"decision": "rejected", "reason_code": "x", "reason_text": "y", "benefit": {"type": "cash"}}, "#/benefit"),
                          ({"decision": "maybe"}, "#/decision"), ({"decision": "approved", "benefit": {"amount": -1, "type": "c"}},
                                                                  "#/benefit/amount"),
                          ({"decision": "approved", "benefit": {"type": "cash", "frequency": "weekly"}}, "#/benefit/frequency")):
        problem = assert_problem(await decide(client, world.supervisor_a, application, body), 422, "validation")
        assert pointer in pointers(problem), (body, problem)
    assert await table_counts(app) == before | {"audit_event": before["audit_event"] + 9}  # the ETag reads only
    rejected = await decide(client, world.supervisor_a, application, {
        "decision": "rejected", "reason_code": "income_above_threshold",
        "reason_text": "The household's income per person (620,000 KHR) is above the 400,000 KHR threshold."})
    assert rejected.status_code == 200
    assert rejected.json()["decision"]["reason_text"].startswith("The household's income")
    [event] = await events(app, "application.decided")
    assert event["decision"] == "rejected" and event["reason_code"] == "income_above_threshold"
    assert "620,000" not in str(event)  # free text never travels to central


async def test_overdue_across_time_zones_and_month_ends(client, world, app):
    """Filed at 00:30 on 1 January in Phnom Penh (17:30 UTC on 31 December): 30 days of service level
    end on 31 January there. At 23:30 UTC on 31 January it is already 1 February in Phnom Penh."""
    household = await register(client, world.clerk_a)
    with frozen(datetime(2026, 12, 31, 17, 30, tzinfo=UTC)):
        _, case = await open_case(client, world.clerk_a, household)
        application = await file(client, world.clerk_a, case["id"], scheme_code="KH-HEF")
    assert application["decision_due_date"] == "2027-01-31" and application["reference"].startswith("SR-ACH-2027-A")
    url = f"{APPLICATIONS}/{application['id']}"

    async def overdue_now() -> tuple[bool, int, bool]:
        one = (await client.get(url, headers=world.clerk_a.headers)).json()["overdue"]
        listed = (await client.get(APPLICATIONS, params={"overdue": "true"}, headers=world.clerk_a.headers)).json()["total"]
        case_overdue = (await client.get(f"/api/v1/cases/{case['id']}", headers=world.clerk_a.headers)).json()["overdue"]
        return one, listed, case_overdue

    with frozen(datetime(2027, 1, 31, 16, 59, tzinfo=UTC)):  # 23:59 on 31 January in Phnom Penh
        assert await overdue_now() == (False, 0, False)
    with frozen(datetime(2027, 1, 31, 23, 30, tzinfo=UTC)):  # 06:30 on 1 February in Phnom Penh
        assert await overdue_now() == (True, 1, True)
        try:  # the same instant is still 31 January in Mexico City: not overdue there
            clock.set_timezone("America/Mexico_City")
            assert await overdue_now() == (False, 0, False)
        finally:
            clock.set_timezone("Asia/Phnom_Penh")
        decided = await decide(client, world.supervisor_a, application, {"decision": "approved"})
    decision = decided.json()["decision"]
    assert decision["days_to_decision"] == 31 and decision["within_service_level"] is False
    assert decided.json()["overdue"] is False  # decided: no longer waiting
    [event] = await events(app, "application.decided")
    assert event["days_to_decision"] == 31 and event["within_service_level"] is False
    # A leap year's February: 7 days from 25 February 2028 is 3 March.
    with frozen(datetime(2028, 2, 25, 3, 0, tzinfo=UTC)):
        nea = await file(client, world.clerk_a, case["id"], scheme_code="KH-NEA-JOB", person_id=household["members"][0]["id"])
    assert nea["decision_due_date"] == "2028-03-03" and nea["reference"].startswith("SR-ACH-2028-A00001")


KHMER_GIVEN, KHMER_FAMILY = "ចាន់ធូ", "សុខ"


async def test_the_receipt_as_json_and_as_a_printable_page(client, world, app):
    body = household_body()
    body["members"][0] |= {"given_name": KHMER_GIVEN, "family_name": KHMER_FAMILY}
    body["members"][1] |= {"given_name": "<b>Dara</b> & co", "family_name": "Sok"}
    household = await register(client, world.clerk_a, body)
    _, case = await open_case(client, world.clerk_a, household)
    with frozen(datetime(2026, 12, 1, 2, 5, tzinfo=UTC)):  # 09:05 in Phnom Penh
        hef = await file(client, world.clerk_a, case["id"], scheme_code="KH-HEF")
        child = await file(client, world.clerk_a, case["id"], scheme_code="KH-SCHOLAR", person_id=household["members"][1]["id"])
    url = f"{APPLICATIONS}/{hef['id']}/receipt"
    as_json = await client.get(url, headers=world.clerk_a.headers)
    assert as_json.status_code == 200 and as_json.headers["content-type"] == "application/json"
    receipt = as_json.json()
    assert receipt["reference"] == hef["reference"] and receipt["scheme_name"] == "Health Equity Fund"
    assert receipt["applicant_name"] == f"{KHMER_FAMILY} {KHMER_GIVEN}"  # the head, for a household scheme
    assert receipt["office_code"] == "SR-ACH" and receipt["office_name"] == "SR-ACH office" and receipt["received_by"] == "clerk.a"
    assert receipt["submitted_on"] == "2026-12-01" and receipt["submitted_time"] == "09:05"
    assert receipt["decision_due_date"] == "2026-12-31" and receipt["appeal_window_days"] == 90
    steps = " ".join(receipt["what_happens_next"])
    assert "A supervisor at SR-ACH office decides" in steps and "31 December 2026" in steps
    assert "reasons in writing" in steps and "appeal" in steps and hef["reference"] in steps
    page = await client.get(url, headers=world.clerk_a.headers | {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    text = page.content.decode("utf-8")
    assert '<meta charset="utf-8">' in text and f"<title>Receipt {hef['reference']}</title>" in text
    for shown in (hef["reference"], "Health Equity Fund (KH-HEF)", f"{KHMER_FAMILY} {KHMER_GIVEN}", "01 December 2026, 09:05",
                  "SR-ACH office (SR-ACH)", "31 December 2026", "only proof of application", "clerk.a"):
        assert shown in text, shown
    assert page.headers["Vary"] == "Accept, Accept-Language"
    # Everything is escaped: a name typed with markup prints as text.
    child_page = (await client.get(f"{APPLICATIONS}/{child['id']}/receipt", headers=world.clerk_a.headers | {"Accept": "text/html"})).text
    assert "&lt;b&gt;Dara&lt;/b&gt; &amp; co" in child_page and "<b>Dara</b>" not in child_page
    # Neither JSON nor HTML: 406; JSON preferred: JSON.
    assert_problem(await client.get(url, headers=world.clerk_a.headers | {"Accept": "application/xml"}), 406, "not-acceptable")
    preferred = await client.get(url, headers=world.clerk_a.headers | {"Accept": "text/html;q=0.5, application/json"})
    assert preferred.headers["content-type"] == "application/json"
    # Another office cannot print it; reading it is audited.
    assert_problem(await client.get(url, headers=world.clerk_b.headers | {"Accept": "text/html"}), 404, "not-found")
    reads = await db_rows(app, AuditEvent, AuditEvent.entity_id == hef["id"], AuditEvent.action == "read")
    assert len(reads) == 3 and all(r.details.get("receipt") for r in reads)


async def test_wrong_users_and_other_offices(client, world):
    household = await register(client, world.clerk_a)
    _, case = await open_case(client, world.clerk_a, household)
    application = await file(client, world.clerk_a, case["id"], scheme_code="KH-HEF")
    url = f"{APPLICATIONS}/{application['id']}"
    assert_problem(await client.get(url), 401, "unauthenticated")
    for who in (world.monitor, world.partner):
        assert_problem(await client.get(url, headers=who.headers), 403, "forbidden")
        assert_problem(await client.get(APPLICATIONS, headers=who.headers), 403, "forbidden")
        assert_problem(await client.post(f"/api/v1/cases/{case['id']}/applications", json={"scheme_code": "KH-HEF"},
                                         headers=who.headers), 403, "forbidden")
    for who in (world.clerk_b, world.supervisor_b):
        assert_problem(await client.get(url, headers=who.headers), 404, "not-found")
        assert_problem(await client.get(f"{url}/receipt", headers=who.headers), 404, "not-found")
        assert_problem(await client.patch(url, json={"status": "withdrawn"}, headers=headers(who, etag='"1"')), 404)
        assert_problem(await client.post(f"{url}/submission", headers=who.headers), 404, "not-found")
        assert_problem(await client.post(f"/api/v1/cases/{case['id']}/applications", json={"scheme_code": "KH-HEF"},
                                         headers=who.headers), 404, "not-found")
        assert (await client.get(APPLICATIONS, headers=who.headers)).json()["total"] == 0
    assert_problem(await client.post(f"{url}/decision", json={"decision": "approved"},
                                     headers=headers(world.supervisor_b, etag='"1"')), 404, "not-found")
    # Office staff are not partners; an office-decided application has nothing to send.
    assert_problem(await client.get(f"/api/v1/partner/applications/{application['id']}", headers=world.clerk_a.headers), 403)
    assert_problem(await client.post(f"{url}/submission", headers=world.clerk_a.headers), 409, "conflict")
    assert (await client.get(url, headers=world.admin.headers)).status_code == 200


async def test_reference_numbers_are_unique_under_concurrency(client, world):
    households = [await register(client, world.clerk_a) for _ in range(8)]
    cases = [(await open_case(client, world.clerk_a, h))[1] for h in households]
    responses = await asyncio.gather(*(
        client.post(f"/api/v1/cases/{c['id']}/applications", json={"scheme_code": "KH-HEF"}, headers=world.clerk_a.headers)
        for c in cases))
    assert [r.status_code for r in responses] == [201] * 8
    numbers = sorted(int(r.json()["reference"][-5:]) for r in responses)
    assert numbers == list(range(1, 9))
    # An idempotent retry replays the first answer and takes no number.
    h = headers(world.clerk_a, key="file-hef-once")
    _, case = await open_case(client, world.clerk_a)
    first = await client.post(f"/api/v1/cases/{case['id']}/applications", json={"scheme_code": "KH-HEF"}, headers=h)
    again = await client.post(f"/api/v1/cases/{case['id']}/applications", json={"scheme_code": "KH-HEF"}, headers=h)
    assert first.json()["reference"] == again.json()["reference"] and again.headers["Idempotent-Replayed"] == "true"
    assert first.json()["reference"].endswith("A00009")


async def test_contract_example_household_end_to_end_is_pseudonymised(client, world, app):
    household = await register(client, world.clerk_a, CONTRACT_EXAMPLE)
    _, case = await open_case(client, world.clerk_a, household)
    application = await file(client, world.clerk_a, case["id"], scheme_code="KH-DISAB", person_id=household["members"][0]["id"])
    await decide(client, world.supervisor_a, application, {
        "decision": "approved", "benefit": {"type": "disability_allowance", "amount": 20000, "frequency": "monthly"}})
    flat = str(await events(app, "case.opened", "application.submitted", "application.decided"))
    for secret in ("Chanthou", "170123456", "1986", household["id"], application["id"], application["reference"]):
        assert secret not in flat


async def test_a_partner_outage_does_not_replace_the_verdict_an_application_is_checked_against(client, world, app):
    """A screening made while a partner is down records `error` for its scheme; the verdict in force for
    filing stays the partner's last answer (here: not eligible, so filing needs a reason)."""
    from partner_server import RunningPartner, create_partner_app
    from test_schemes_http import TOKEN, partner_scheme

    from app.schemes.registry import SchemeRegistry

    async with RunningPartner(create_partner_app(token=TOKEN)) as partner:
        registry = SchemeRegistry()
        youth = partner_scheme(partner.url, failures=100)
        registry.register(youth)
        original, app.state.schemes = app.state.schemes, registry
        try:
            household = await register(client, world.clerk_a, CONTRACT_EXAMPLE)  # the head is 40: not in the programme
            head = household["members"][0]["id"]
            answered = await screen(client, world.clerk_a, household["id"])
            assert [d["outcome"] for d in answered["determinations"] if d["person_id"] == head] == ["not_eligible"]
            partner.app.state.script.extend({"status": 503} for _ in range(3))  # the call and both retries
            outage = await screen(client, world.clerk_a, household["id"])
            assert {d["outcome"] for d in outage["determinations"]} == {"error"}
            _, case = await open_case(client, world.clerk_a, household, person_id=head)
            url = f"/api/v1/cases/{case['id']}/applications"
            problem = assert_problem(await client.post(url, json={"scheme_code": "KH-YOUTH-JOBS"}, headers=world.clerk_a.headers),
                                     422, "validation")
            assert pointers(problem) == ["#/against_screening_reason"] and problem["screening_id"] == answered["id"]
            filed = await file(client, world.clerk_a, case["id"], scheme_code="KH-YOUTH-JOBS",
                               against_screening_reason="Lost his job last week; the partner's records are older")
            assert filed["screening_id"] == answered["id"] and filed["screening_outcome"] == "not_eligible"
        finally:
            app.state.schemes = original
            await youth.aclose()
