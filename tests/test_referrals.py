"""Referrals: issuing to an agency's service, the state machine from the office and from the agency's
partner account (bound to the agency), the client's contact only with referral_sharing consent,
overdue referrals and their lazy expiry; wrong users and bad input."""

import uuid
from datetime import UTC, datetime, timedelta

from helpers import assert_problem, household_body, pointers, register, table_counts
from test_cases import events, frozen, headers, open_case, patch, timeline_kinds

from app import clock
from app.vocabulary import Role

REFERRALS = "/api/v1/referrals"


async def refer(client, account, case_id: str, **body) -> dict:
    body = {"agency": "nea", "service": "job_counselling", "reason": "Unemployed since March; wants work in Siem Reap",
            "due_date": (clock.today() + timedelta(days=14)).isoformat()} | body
    response = await client.post(f"/api/v1/cases/{case_id}/referrals", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_issue_read_and_list(client, world, app):
    agencies = (await client.get("/api/v1/referral-agencies", headers=world.clerk_a.headers)).json()
    nea = next(a for a in agencies if a["code"] == "nea")
    assert nea["name"].startswith("National Employment Agency") and "vocational_training" in nea["services"]
    household, case = await open_case(client, world.clerk_a)
    head = household["members"][0]["id"]
    referral = await refer(client, world.clerk_a, case["id"], person_id=head)
    assert referral["reference"].startswith("SR-ACH-") and "-R0000" in referral["reference"]
    assert referral["status"] == "issued" and referral["agency_name"] == nea["name"] and referral["service_name"] == "Job counselling"
    assert referral["person_id"] == head and referral["overdue"] is False and referral["issued_by"] == str(world.clerk_a.id)
    read = await client.get(f"{REFERRALS}/{referral['id']}", headers=world.clerk_a.headers)
    assert read.status_code == 200 and read.headers["ETag"] == '"1"' and read.json() == referral
    health = await refer(client, world.clerk_a, case["id"], agency="health_centre", service="antenatal_care",
                         due_date=(clock.today() + timedelta(days=3)).isoformat())
    listed = (await client.get(REFERRALS, headers=world.clerk_a.headers)).json()
    assert [r["id"] for r in listed["items"]] == [health["id"], referral["id"]]  # soonest due first
    assert (await client.get(REFERRALS, params={"agency": "nea"}, headers=world.clerk_a.headers)).json()["total"] == 1
    assert (await client.get(REFERRALS, params={"case_id": case["id"]}, headers=world.clerk_a.headers)).json()["total"] == 2
    [issued, _] = await events(app, "referral.issued")
    assert issued["agency"] == "nea" and issued["service"] == "job_counselling" and issued["dimensions"]["sex"] == "female"
    assert "Siem Reap" not in str(issued)  # the reason stays here
    assert await timeline_kinds(client, world.clerk_a, case["id"]) == ["case.opened", "referral.issued", "referral.issued"]


async def test_referral_bad_input(client, world, app):
    household, case = await open_case(client, world.clerk_a)
    url = f"/api/v1/cases/{case['id']}/referrals"
    good = {"agency": "nea", "reason": "Job search", "due_date": (clock.today() + timedelta(days=7)).isoformat()}
    stranger = (await register(client, world.clerk_a))["members"][0]["id"]
    before = await table_counts(app)
    for change, pointer in (({"agency": "ministry_of_magic"}, "#/agency"), ({"agency": "NEA"}, "#/agency"),
                            ({"service": "astrology"}, "#/service"), ({"reason": ""}, "#/reason"),
                            ({"reason": "x" * 1001}, "#/reason"), ({"due_date": "2020-01-01"}, "#/due_date"),
                            ({"due_date": (clock.today() + timedelta(days=400)).isoformat()}, "#/due_date"),
                            ({"due_date": "soon"}, "#/due_date"), ({"person_id": stranger}, "#/person_id"),
                            ({"status": "accepted"}, "#/status")):
        problem = assert_problem(await client.post(url, json=good | change, headers=world.clerk_a.headers), 422, "validation")
        assert pointer in pointers(problem), (change, problem)
    problem = assert_problem(await client.post(url, json={"reason": "x"}, headers=world.clerk_a.headers), 422)
    assert {"#/agency", "#/due_date"} <= set(pointers(problem))
    assert await table_counts(app) == before
    for params in ({"status": "lost"}, {"overdue": "perhaps"}, {"agency": "A B"}, {"limit": 0}):
        assert_problem(await client.get(REFERRALS, params=params, headers=world.clerk_a.headers), 422, "validation")


async def test_the_state_machine_from_the_office(client, world, app):
    _, case = await open_case(client, world.clerk_a)
    referral = await refer(client, world.clerk_a, case["id"])
    url = f"{REFERRALS}/{referral['id']}"
    assert_problem(await client.patch(url, json={"status": "accepted"}, headers=world.clerk_a.headers), 428)
    problem = assert_problem(await patch(client, world.clerk_a, url, {"status": "completed"}), 409, "conflict")
    assert problem["allowed_transitions"] == ["accepted", "declined", "expired"]
    assert "#/note" in pointers(assert_problem(await patch(client, world.clerk_a, url, {"note": "Phoned them"}), 422))
    accepted = await patch(client, world.clerk_a, url, {"status": "accepted", "note": "NEA called: appointment on Monday"})
    assert accepted.status_code == 200 and accepted.json()["accepted_at"] and accepted.json()["status"] == "accepted"
    redated = await patch(client, world.clerk_a, url, {"due_date": (clock.today() + timedelta(days=30)).isoformat()})
    assert redated.json()["due_date"] == (clock.today() + timedelta(days=30)).isoformat()
    completed = await patch(client, world.clerk_a, url, {"status": "completed", "note": "Placed in a hotel job"})
    assert completed.json()["status"] == "completed" and completed.json()["outcome_note"] == "Placed in a hotel job"
    assert completed.json()["closed_at"] is not None
    for change in ({"status": "declined"}, {"due_date": (clock.today() + timedelta(days=5)).isoformat()}):
        problem = assert_problem(await patch(client, world.clerk_a, url, change), 409, "conflict")
        assert problem["allowed_transitions"] == []
    declined = await refer(client, world.clerk_a, case["id"], agency="mosvy", service="social_work")
    assert (await patch(client, world.clerk_a, f"{REFERRALS}/{declined['id']}", {"status": "declined"})).json()["status"] == "declined"
    changed = await events(app, "referral.status_changed")
    assert [(e["status"], e["agency"], e["overdue"], e["days_open"]) for e in changed] == [
        ("accepted", "nea", False, 0), ("completed", "nea", False, 0), ("declined", "mosvy", False, 0)]
    assert await timeline_kinds(client, world.clerk_a, case["id"]) == [
        "case.opened", "referral.issued", "referral.status_changed", "referral.redated", "referral.status_changed",
        "referral.issued", "referral.status_changed"]


async def test_the_agency_answers_through_its_partner_account(client, world, make_account):
    shared_body = household_body()
    shared_body["consent"]["purposes"] = ["registry", "referral_sharing"]
    shared, case = await open_case(client, world.clerk_a, await register(client, world.clerk_a, shared_body))
    private, private_case = await open_case(client, world.clerk_a)
    to_nea = await refer(client, world.clerk_a, case["id"], person_id=shared["members"][0]["id"])
    private_nea = await refer(client, world.clerk_a, private_case["id"])
    to_health = await refer(client, world.clerk_a, case["id"], agency="health_centre", service="consultation")
    # The NEA's scheme account acts for the NEA (listed among its partners); "health_centre" by its code.
    nea = await make_account(Role.partner, office=None, scheme="KH-NEA-JOB")
    health = await make_account(Role.partner, office=None, scheme="HEALTH_CENTRE")
    listed = (await client.get("/api/v1/partner/referrals", headers=nea.headers)).json()
    assert {r["id"] for r in listed["items"]} == {to_nea["id"], private_nea["id"]} and listed["total"] == 2
    by_id = {r["id"]: r for r in listed["items"]}
    head = shared["members"][0]
    assert by_id[to_nea["id"]]["client"] == {"name": f"{head['family_name']} {head['given_name']}", "phone": head["phone"]}
    assert by_id[private_nea["id"]]["client"] is None  # no referral_sharing consent: the slip only
    assert by_id[to_nea["id"]]["reason"] == to_nea["reason"] and by_id[to_nea["id"]]["office_code"] == "SR-ACH"
    url = f"/api/v1/partner/referrals/{to_nea['id']}"
    for outsider in (health, world.partner):
        assert_problem(await client.get(url, headers=outsider.headers), 404, "not-found")
        assert_problem(await client.patch(url, json={"status": "accepted"}, headers=headers(outsider, etag="*")), 404)
    assert (await client.get(f"/api/v1/partner/referrals/{to_health['id']}", headers=health.headers)).status_code == 200
    etag = (await client.get(url, headers=nea.headers)).headers["ETag"]
    assert_problem(await client.patch(url, json={"status": "accepted"}, headers=nea.headers), 428)
    assert_problem(await client.patch(url, json={"status": "expired"}, headers=headers(nea, etag=etag)), 422, "validation")
    accepted = await client.patch(url, json={"status": "accepted", "note": "Seen on 2 December"}, headers=headers(nea, etag=etag))
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    done = await client.patch(url, json={"status": "completed", "note": "Enrolled in welding course"},
                              headers=headers(nea, etag=accepted.headers["ETag"]))
    assert done.json()["status"] == "completed"
    office_view = (await client.get(f"{REFERRALS}/{to_nea['id']}", headers=world.clerk_a.headers)).json()
    assert office_view["status"] == "completed" and office_view["outcome_note"] == "Enrolled in welding course"
    timeline = (await client.get(f"/api/v1/cases/{case['id']}/timeline", headers=world.clerk_a.headers)).json()["items"]
    assert [e["actor"] for e in timeline if e["kind"] == "referral.status_changed"] == [nea.username, nea.username]
    # Office staff are not partners; partners are not office staff.
    assert_problem(await client.get("/api/v1/partner/referrals", headers=world.clerk_a.headers), 403, "forbidden")
    assert_problem(await client.get(REFERRALS, headers=nea.headers), 403, "forbidden")


async def test_overdue_referrals_and_their_lazy_expiry(client, world, app):
    day = datetime(2026, 1, 28, 2, 0, tzinfo=UTC)  # 28 January, 09:00 in Phnom Penh
    with frozen(day):
        _, case = await open_case(client, world.clerk_a)
        soon = await refer(client, world.clerk_a, case["id"], due_date="2026-01-31")
        later = await refer(client, world.clerk_a, case["id"], due_date="2026-02-20", agency="idpoor", service="assessment")
    with frozen(day + timedelta(days=3, hours=15)):  # 17:00 UTC on 31 January: 1 February in Phnom Penh
        overdue = (await client.get(REFERRALS, params={"overdue": "true"}, headers=world.clerk_a.headers)).json()
        assert [r["id"] for r in overdue["items"]] == [soon["id"]] and overdue["items"][0]["status"] == "issued"
        assert (await client.get(REFERRALS, params={"overdue": "false"}, headers=world.clerk_a.headers)).json()["total"] == 1
    # 30 days after its due date (GUICHET_REFERRAL_EXPIRY_DAYS) a referral still open expires, when next looked at.
    with frozen(datetime(2026, 3, 2, 17, 0, tzinfo=UTC)):  # 3 March in Phnom Penh
        listed = (await client.get(REFERRALS, headers=world.clerk_a.headers)).json()["items"]
        assert {r["id"]: r["status"] for r in listed} == {soon["id"]: "expired", later["id"]: "issued"}
        assert [r["overdue"] for r in listed] == [False, True]  # expired is closed; the other is late
        await client.get(f"{REFERRALS}/{soon['id']}", headers=world.clerk_a.headers)
        await client.get(f"/api/v1/cases/{case['id']}", headers=world.clerk_a.headers)
        expired = [e for e in await events(app, "referral.status_changed") if e["status"] == "expired"]
        assert len(expired) == 1 and expired[0]["overdue"] is True and expired[0]["days_open"] == 34
        problem = assert_problem(await patch(client, world.clerk_a, f"{REFERRALS}/{soon['id']}", {"status": "accepted"}), 409)
        assert problem["current_status"] == "expired"
        timeline = (await client.get(f"/api/v1/cases/{case['id']}/timeline", headers=world.clerk_a.headers)).json()["items"]
        [expiry] = [e for e in timeline if e["kind"] == "referral.status_changed"]
        assert expiry["actor"] is None and expiry["details"]["status"] == "expired"
    # Closing the case expires what is due, so it does not have to wait for a read.
    with frozen(datetime(2026, 3, 21, 2, 0, tzinfo=UTC)):  # 29 days after its due date (20 February): not yet
        blocked = assert_problem(await patch(client, world.clerk_a, f"/api/v1/cases/{case['id']}",
                                             {"status": "closed", "outcome": "referred"}), 409)
        assert [i["id"] for i in blocked["open_items"]] == [later["id"]]
    with frozen(datetime(2026, 4, 1, 2, 0, tzinfo=UTC)):
        closed = await patch(client, world.clerk_a, f"/api/v1/cases/{case['id']}", {"status": "closed", "outcome": "referred"})
        assert closed.status_code == 200, closed.text


async def test_referral_wrong_users(client, world):
    _, case = await open_case(client, world.clerk_a)
    referral = await refer(client, world.clerk_a, case["id"])
    url = f"{REFERRALS}/{referral['id']}"
    assert_problem(await client.get(url), 401, "unauthenticated")
    for who in (world.monitor, world.partner):
        assert_problem(await client.get(url, headers=who.headers), 403, "forbidden")
        assert_problem(await client.post(f"/api/v1/cases/{case['id']}/referrals", json={}, headers=who.headers), 403)
    for who in (world.clerk_b, world.supervisor_b):
        assert_problem(await client.get(url, headers=who.headers), 404, "not-found")
        assert_problem(await client.patch(url, json={"status": "accepted"}, headers=headers(who, etag='"1"')), 404)
        assert_problem(await client.post(f"/api/v1/cases/{case['id']}/referrals", headers=who.headers, json={
            "agency": "nea", "reason": "x", "due_date": clock.today().isoformat()}), 404, "not-found")
        assert (await client.get(REFERRALS, headers=who.headers)).json()["total"] == 0
    assert_problem(await client.get(f"{REFERRALS}/{uuid.uuid4()}", headers=world.clerk_a.headers), 404)
