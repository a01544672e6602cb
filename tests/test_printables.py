"""The printables handed to a client besides the receipt: the referral slip the client carries to the
agency, and the acknowledgement of a grievance. Each is JSON or a printable page (Accept), readable by the
record's office only, audited, and never cached; every value on the page is escaped."""

import uuid
from datetime import UTC, datetime, timedelta

from helpers import assert_problem, db_rows, household_body, register
from test_applications import KHMER_FAMILY, KHMER_GIVEN, decide, file
from test_cases import frozen, open_case
from test_grievances import lodge
from test_referrals import refer
from test_screening_api import expired_token

from app.models import AuditEvent

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
MARKUP = "<script>alert(1)</script> & co"


def assert_printable(response, media: str) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(media)
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Vary"] == "Accept, Accept-Language"
    return response.content.decode("utf-8")


async def assert_only_its_office_prints(client, world, settings, url: str, missing: str) -> None:
    assert_problem(await client.get(url), 401, "unauthenticated")
    expired = {"Authorization": f"Bearer {expired_token(settings, world.clerk_a)}"}
    assert_problem(await client.get(url, headers=expired | HTML), 401, "unauthenticated")
    for who in (world.monitor, world.partner):
        assert_problem(await client.get(url, headers=who.headers | HTML), 403, "forbidden")
    for who in (world.clerk_b, world.supervisor_b):  # another office: exactly like a missing record
        elsewhere = assert_problem(await client.get(url, headers=who.headers | HTML), 404, "not-found")
        absent = assert_problem(await client.get(missing, headers=who.headers | HTML), 404, "not-found")
        assert elsewhere["detail"] == absent["detail"]
    assert_problem(await client.get(url.replace(url.split("/")[-2], "not-an-id"), headers=world.clerk_a.headers), 422,
                   "validation")
    assert_problem(await client.get(url, headers=world.clerk_a.headers | {"Accept": "application/xml"}), 406, "not-acceptable")
    assert (await client.get(url, headers=world.admin.headers | HTML)).status_code == 200


async def test_the_referral_slip_as_json_and_as_a_printable_page(client, world, app, settings):
    body = household_body()
    body["members"][0] |= {"given_name": KHMER_GIVEN, "family_name": KHMER_FAMILY}
    household = await register(client, world.clerk_a, body)
    head, child = household["members"]
    _, case = await open_case(client, world.clerk_a, household)
    with frozen(datetime(2026, 12, 1, 2, 5, tzinfo=UTC)):  # 09:05 in Phnom Penh
        referral = await refer(client, world.clerk_a, case["id"], person_id=child["id"], due_date="2026-12-15",
                               reason=f"Wants training {MARKUP}")
        for_household = await refer(client, world.clerk_a, case["id"], agency="health_centre", service=None,
                                    due_date="2026-12-08", reason="Check-up")
    url = f"/api/v1/referrals/{referral['id']}/slip"
    as_json = await client.get(url, headers=world.clerk_a.headers)
    assert_printable(as_json, "application/json")
    slip = as_json.json()
    assert slip == {
        "reference": referral["reference"], "referral_id": referral["id"], "agency": "nea",
        "agency_name": referral["agency_name"], "service": "job_counselling", "service_name": "Job counselling",
        "client_name": f"{child['family_name']} {child['given_name']}", "reason": f"Wants training {MARKUP}",
        "issued_at": referral["issued_at"], "issued_on": "2026-12-01", "issued_by": "clerk.a", "office_code": "SR-ACH",
        "office_name": "SR-ACH office", "due_date": "2026-12-15", "status": "issued"}
    page = assert_printable(await client.get(url, headers=world.clerk_a.headers | HTML), "text/html; charset=utf-8")
    assert '<meta charset="utf-8">' in page and f"<title>Referral slip {referral['reference']}</title>" in page
    for shown in (referral["reference"], referral["agency_name"], "Job counselling", child["given_name"], "01 December 2026",
                  "15 December 2026", "clerk.a", "SR-ACH office (SR-ACH)", "Take this slip to",
                  "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"):
        assert shown in page, shown
    assert "<script>" not in page
    # A referral of the household names its head (as typed, in Khmer); no service prints as a dash.
    household_page = (await client.get(f"/api/v1/referrals/{for_household['id']}/slip",
                                       headers=world.clerk_a.headers | HTML)).text
    assert f"{KHMER_FAMILY} {KHMER_GIVEN}" in household_page and '<td id="service">—</td>' in household_page
    assert head["id"] not in household_page
    # Each reading is audited as a read of the referral, saying it was the slip.
    reads = await db_rows(app, AuditEvent, AuditEvent.entity_id == referral["id"], AuditEvent.action == "read")
    assert len(reads) == 2 and all(r.details == {"slip": True} for r in reads)
    await assert_only_its_office_prints(client, world, settings, url, f"/api/v1/referrals/{uuid.uuid4()}/slip")


async def test_a_slip_shows_a_referral_that_has_expired_as_expired(client, world, app):
    _, case = await open_case(client, world.clerk_a)
    with frozen(datetime(2026, 3, 1, 2, 0, tzinfo=UTC)):
        referral = await refer(client, world.clerk_a, case["id"], due_date="2026-03-02")
    with frozen(datetime(2026, 4, 2, 2, 0, tzinfo=UTC)):  # 31 days past due: expired when next read
        slip = (await client.get(f"/api/v1/referrals/{referral['id']}/slip", headers=world.clerk_a.headers)).json()
    assert slip["status"] == "expired"


async def test_the_grievance_acknowledgement_as_json_and_as_a_printable_page(client, world, app, settings):
    body = household_body()
    body["members"][0] |= {"given_name": KHMER_GIVEN, "family_name": KHMER_FAMILY}
    household = await register(client, world.clerk_a, body)
    _, case = await open_case(client, world.clerk_a, household)
    application = await file(client, world.clerk_a, case["id"], scheme_code="KH-HEF")
    refusal = {"decision": "rejected", "reason_code": "not_poor", "reason_text": "Not in the IDPoor list"}
    assert (await decide(client, world.supervisor_a, application, refusal)).status_code == 200
    with frozen(datetime(2026, 12, 1, 2, 5, tzinfo=UTC)):  # 09:05 in Phnom Penh
        appeal = await lodge(client, world.clerk_a, category="appeal", channel="in_person", application_id=application["id"],
                             complainant={"kind": "person", "person_id": household["members"][0]["id"]},
                             description=f"Our card lapsed {MARKUP}")
        anonymous = await lodge(client, world.clerk_a, category="staff_conduct", channel="hotline")
    url = f"/api/v1/grievances/{appeal['id']}/acknowledgement"
    as_json = await client.get(url, headers=world.clerk_a.headers)
    assert_printable(as_json, "application/json")
    assert as_json.json() == {
        "reference": appeal["reference"], "grievance_id": appeal["id"], "category": "appeal", "channel": "in_person",
        "complainant_name": f"{KHMER_FAMILY} {KHMER_GIVEN}", "description": f"Our card lapsed {MARKUP}",
        "application_reference": application["reference"], "scheme_name": "Health Equity Fund",
        "received_at": appeal["received_at"], "received_on": "2026-12-01", "received_time": "09:05", "received_by": "clerk.a",
        "office_code": "SR-ACH", "office_name": "SR-ACH office", "status": "received", "answer_due_date": "2026-12-31"}
    page = assert_printable(await client.get(url, headers=world.clerk_a.headers | HTML), "text/html; charset=utf-8")
    assert f"<title>Acknowledgement {appeal['reference']}</title>" in page
    for shown in (appeal["reference"], f"{KHMER_FAMILY} {KHMER_GIVEN}", f"{application['reference']} (Health Equity Fund)",
                  "01 December 2026, 09:05", "clerk.a (in person)", "We will answer you by 31 December 2026",
                  "SR-ACH office (SR-ACH)", "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co", "free of charge"):
        assert shown in page, shown
    assert "<script>" not in page
    # Anonymous, and no application: dashes; the answer deadline of its category (staff conduct: 30 days).
    anonymous_json = (await client.get(f"/api/v1/grievances/{anonymous['id']}/acknowledgement",
                                       headers=world.clerk_a.headers)).json()
    assert anonymous_json["complainant_name"] is None and anonymous_json["application_reference"] is None
    assert anonymous_json["answer_due_date"] == (datetime(2026, 12, 1).date() + timedelta(days=30)).isoformat()
    anonymous_page = (await client.get(f"/api/v1/grievances/{anonymous['id']}/acknowledgement",
                                       headers=world.clerk_a.headers | HTML)).text
    assert '<td id="complainant">—</td>' in anonymous_page and '<td id="appealed">—</td>' in anonymous_page
    reads = await db_rows(app, AuditEvent, AuditEvent.entity_id == appeal["id"], AuditEvent.action == "read")
    assert len(reads) == 2 and all(r.details == {"acknowledgement": True} for r in reads)
    await assert_only_its_office_prints(client, world, settings, url, f"/api/v1/grievances/{uuid.uuid4()}/acknowledgement")


async def test_the_receipt_is_not_cached_either(client, world):
    _, case = await open_case(client, world.clerk_a)
    application = await file(client, world.clerk_a, case["id"], scheme_code="KH-HEF")
    for accept in ({}, HTML):
        response = await client.get(f"/api/v1/applications/{application['id']}/receipt", headers=world.clerk_a.headers | accept)
        assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
