"""Applications to a scheme reached over HTTP: sent to the partner (the reference partner on loopback)
with minimised facts after the application is committed; a failure flags the submission and the clerk
sends it again; no consent, no sending; the partner decides through the partner API, bound to its
scheme (another scheme's application is 404)."""

import uuid

import pytest

from helpers import assert_problem, db_rows, household_body, pointers, register
from partner_server import RunningPartner, create_partner_app
from test_applications import APPLICATIONS, decide, file, screen
from test_cases import events, headers, open_case, timeline_kinds
from test_schemes_http import TOKEN, partner_scheme

from app.models import AuditEvent
from app.schemes.registry import SchemeRegistry
from app.vocabulary import Role

YOUTH = "KH-YOUTH-JOBS"


@pytest.fixture
async def partner(app):
    """The reference partner on loopback, among the office's schemes."""
    async with RunningPartner(create_partner_app(token=TOKEN)) as running:
        registry = SchemeRegistry()
        for adapter in app.state.schemes:
            registry.register(adapter)
        youth = partner_scheme(running.url)
        registry.register(youth)
        original, app.state.schemes = app.state.schemes, registry
        try:
            yield running
        finally:
            app.state.schemes = original
            await youth.aclose()


def young_jobseeker(**overrides) -> dict:
    body = household_body(**overrides)
    body["members"][0] |= {"birth_date": "2003-05-01", "employment_status": "unemployed"}
    body["members"][1]["relationship"] = "sibling"  # a child of hers would be unlikely (confirm_unlikely)
    return body


async def youth_application(client, world, body: dict | None = None) -> tuple[dict, dict, dict]:
    household = await register(client, world.clerk_a, body or young_jobseeker())
    _, case = await open_case(client, world.clerk_a, household, person_id=household["members"][0]["id"])
    application = await file(client, world.clerk_a, case["id"], scheme_code=YOUTH)
    return household, case, application


async def read(client, account, application: dict) -> dict:
    return (await client.get(f"{APPLICATIONS}/{application['id']}", headers=account.headers)).json()


async def test_sent_with_minimised_facts_then_decided_by_the_partner(client, world, app, partner, make_account):
    household = await register(client, world.clerk_a, young_jobseeker())
    screening = await screen(client, world.clerk_a, household["id"])
    assert {d["outcome"] for d in screening["determinations"] if d["scheme_code"] == YOUTH} >= {"eligible"}
    _, case = await open_case(client, world.clerk_a, household, person_id=household["members"][0]["id"])
    filed = await file(client, world.clerk_a, case["id"], scheme_code=YOUTH)
    # The answer leaves before the sending: pending; then sent, with the partner's reference.
    assert filed["route"] == "partner" and filed["submission"]["state"] == "pending" and filed["screening_outcome"] == "eligible"
    now = await read(client, world.clerk_a, filed)
    assert now["status"] == "submitted" and now["submission"]["state"] == "sent" and now["submission"]["attempts"] == 1
    assert now["submission"]["partner_reference"] == "YJ-00001" and now["version"] == 2
    [(sent_headers, sent)] = partner.app.state.submissions
    assert sent_headers["authorization"] == f"Bearer {TOKEN}" and sent_headers["idempotency-key"] == uuid.UUID(filed["id"]).hex
    assert sent["transaction_id"] == uuid.UUID(filed["id"]).hex and sent["application_id"] == filed["id"]
    assert sent["reference"] == filed["reference"] and sent["decision_path"] == f"/api/v1/partner/applications/{filed['id']}/decision"
    # Only the facts the scheme declared: no name, no national ID, no birth date.
    assert set(sent["subject"]["facts"]) == {"person.age_years", "person.employment_status"}
    assert sent["household"]["facts"] == {"household.area_type": "rural"}
    head = household["members"][0]
    for secret in (head["given_name"], head["national_id"], "2003-05-01", household["id"], head["id"]):
        assert secret not in str(sent)
    shared = await db_rows(app, AuditEvent, AuditEvent.action == "share")
    assert [a.entity_id for a in shared] == [filed["id"]] and "person.age_years" in shared[0].details["facts"]
    receipt = (await client.get(f"{APPLICATIONS}/{filed['id']}/receipt", headers=world.clerk_a.headers)).json()
    assert "sent to Reference partner agency, which decides" in receipt["what_happens_next"][0]
    # The partner account bound to the scheme decides; nobody else does.
    youth_partner = await make_account(Role.partner, office=None, scheme=YOUTH)
    url = f"/api/v1/partner/applications/{filed['id']}"
    for other in (world.partner,):  # bound to KH-HEF
        assert_problem(await client.get(url, headers=other.headers), 404, "not-found")
        assert_problem(await client.post(f"{url}/decision", json={"decision": "approved"}, headers=headers(other, etag="*")),
                       404, "not-found")
    seen = await client.get(url, headers=youth_partner.headers)
    assert seen.status_code == 200 and seen.json()["reference"] == filed["reference"] and seen.headers["ETag"] == '"2"'
    assert set(seen.json()) == {"id", "version", "reference", "scheme_code", "status", "submitted_on", "decision_due_date",
                                "partner_reference", "decided_at"}  # nothing about the person
    assert_problem(await client.post(f"{url}/decision", json={"decision": "approved"}, headers=youth_partner.headers), 428)
    assert "#/reason_text" in pointers(assert_problem(await client.post(
        f"{url}/decision", json={"decision": "rejected", "reason_code": "x"}, headers=headers(youth_partner, etag='"2"')), 422))
    assert_problem(await decide(client, world.supervisor_a, filed, {"decision": "approved"}), 409, "conflict")
    approved = await client.post(f"{url}/decision", headers=headers(youth_partner, etag='"2"', key="d1"), json={
        "decision": "approved", "benefit": {"type": "training_stipend", "amount": 150000, "frequency": "monthly",
                                            "start_date": "2027-01-01"}})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved" and approved.headers["ETag"] == '"3"'
    decided = await read(client, world.clerk_a, filed)
    assert decided["decision"]["decided_by_kind"] == "partner" and decided["decision"]["decided_by"] == str(youth_partner.id)
    [event] = await events(app, "application.decided")
    assert event["decided_by"] == "partner" and event["scheme"] == YOUTH and event["benefit"]["amount"] == 150000
    listed = (await client.get("/api/v1/partner/applications", headers=youth_partner.headers)).json()
    assert [a["id"] for a in listed["items"]] == [filed["id"]]
    assert (await client.get("/api/v1/partner/applications", headers=world.partner.headers)).json()["total"] == 0
    assert await timeline_kinds(client, world.clerk_a, case["id"]) == [
        "screening.completed", "case.opened", "application.submitted", "application.sent", "application.decided"]


async def test_a_partner_decides_only_applications_sent_to_it(client, world, make_account):
    household = await register(client, world.clerk_a)
    _, case = await open_case(client, world.clerk_a, household)
    hef = await file(client, world.clerk_a, case["id"], scheme_code="KH-HEF")
    url = f"/api/v1/partner/applications/{hef['id']}/decision"
    # Another scheme's application, and its own scheme's decided at the office (never sent to it, left out of
    # its list): not found, like one that does not exist.
    youth_partner = await make_account(Role.partner, office=None, scheme=YOUTH)
    missing = f"/api/v1/partner/applications/{uuid.uuid4()}"
    for who in (youth_partner, world.partner):
        assert (await client.get("/api/v1/partner/applications", headers=who.headers)).json()["total"] == 0
        for path in (url.removesuffix("/decision"), missing):
            assert_problem(await client.get(path, headers=who.headers), 404, "not-found")
        for path in (url, f"{missing}/decision"):
            assert_problem(await client.post(path, json={"decision": "approved"}, headers=headers(who, etag="*")),
                           404, "not-found")
    assert (await client.get(f"/api/v1/applications/{hef['id']}", headers=world.clerk_a.headers)).json()["status"] == "submitted"
    for who in (world.clerk_a, world.supervisor_a, world.admin, world.monitor):
        assert_problem(await client.post(url, json={"decision": "approved"}, headers=headers(who, etag="*")), 403, "forbidden")


async def test_a_failed_submission_is_flagged_and_sent_again(client, world, partner):
    partner.app.state.script.extend([{"status": 503}] * 3)
    _, case, filed = await youth_application(client, world)
    failed = await read(client, world.clerk_a, filed)
    assert failed["status"] == "submitted" and failed["submission"]["state"] == "failed"
    assert "HTTP 503" in failed["submission"]["error"] and failed["submission"]["attempts"] == 1
    flagged = (await client.get(APPLICATIONS, params={"submission": "failed"}, headers=world.clerk_a.headers)).json()
    assert [a["id"] for a in flagged["items"]] == [filed["id"]]
    timeline = (await client.get(f"/api/v1/cases/{case['id']}/timeline", headers=world.clerk_a.headers)).json()["items"]
    assert timeline[-1]["kind"] == "application.submission_failed" and timeline[-1]["details"]["retryable"] is True
    again = await client.post(f"{APPLICATIONS}/{filed['id']}/submission", headers=headers(world.clerk_a, key="resend-1"))
    assert again.status_code == 202 and again.json()["submission"]["state"] == "pending"
    sent = await read(client, world.clerk_a, filed)
    assert sent["submission"]["state"] == "sent" and sent["submission"]["attempts"] == 2 and sent["submission"]["error"] is None
    # Every attempt was the same transaction: the partner can tell a resend from a new application.
    assert len({body["transaction_id"] for _, body in partner.app.state.submissions}) == 1
    assert_problem(await client.post(f"{APPLICATIONS}/{filed['id']}/submission", headers=world.clerk_a.headers), 409)


async def test_no_consent_to_share_no_sending(client, world, partner):
    body = young_jobseeker()
    body["consent"]["purposes"] = ["registry"]
    household, _, filed = await youth_application(client, world, body)
    held = await read(client, world.clerk_a, filed)
    assert held["submission"]["state"] == "failed" and "eligibility_sharing" in held["submission"]["error"]
    assert partner.app.state.submissions == []
    consent = await client.post(f"/api/v1/households/{household['id']}/consent", headers=world.clerk_a.headers,
                                json={"purposes": ["registry", "eligibility_sharing"], "given_by": "Head", "method": "verbal"})
    assert consent.status_code == 201
    await client.post(f"{APPLICATIONS}/{filed['id']}/submission", headers=world.clerk_a.headers)
    assert (await read(client, world.clerk_a, filed))["submission"]["state"] == "sent"


async def test_a_partner_refusal_is_not_resent_by_itself_and_a_garbled_answer_is_retryable(client, world, partner):
    partner.app.state.script.append({"status": 422})
    _, case, filed = await youth_application(client, world)
    refused = await read(client, world.clerk_a, filed)
    assert refused["submission"]["state"] == "failed" and "refused the application (HTTP 422)" in refused["submission"]["error"]
    partner.app.state.script.append({"malformed": True})
    await client.post(f"{APPLICATIONS}/{filed['id']}/submission", headers=world.clerk_a.headers)
    garbled = await read(client, world.clerk_a, filed)
    assert garbled["submission"]["state"] == "failed" and "not in the agreed format" in garbled["submission"]["error"]
    timeline = (await client.get(f"/api/v1/cases/{case['id']}/timeline", headers=world.clerk_a.headers)).json()["items"]
    assert [e["details"]["retryable"] for e in timeline if e["kind"] == "application.submission_failed"] == [False, True]
    # The application itself is safe all along, and can be withdrawn.
    assert garbled["status"] == "submitted"
