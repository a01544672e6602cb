"""The one-at-a-time rules of case management under concurrent requests (asyncio.gather through the
app; each request its own transaction). A client has one open case; a subject one open application to a
scheme; a closed case takes no new work, and a case closes only when nothing in it is open. SQLite runs
one writer at a time anyway; on PostgreSQL these requests really overlap, and the loser must get the
409 it gets when the requests come one after another."""

import asyncio
import uuid
from datetime import timedelta

from helpers import assert_problem, db_rows, register
from test_cases import CASES, headers, open_case, patch

from app import clock
from app.models import Application, Case, FollowUp, Referral

PARALLEL = 20
LATER = "2099-01-01"


def conflicts(responses) -> list[dict]:
    return [assert_problem(r, 409, "conflict") for r in responses if r.status_code != 201]


async def test_parallel_openings_for_one_client_make_one_case(client, world, app):
    household = await register(client, world.clerk_a)
    member = household["members"][1]["id"]
    # Ten for the household and ten for one member: two clients, one case each.
    bodies = [{"household_id": household["id"]} | ({"person_id": member} if i % 2 else {}) for i in range(PARALLEL)]
    responses = await asyncio.gather(*(client.post(CASES, json=b, headers=world.clerk_a.headers) for b in bodies))
    assert sorted(r.status_code for r in responses) == [201] * 2 + [409] * (PARALLEL - 2)
    winners = {r.json()["person_id"]: r.json()["id"] for r in responses if r.status_code == 201}
    assert set(winners) == {None, member}
    for body, response in zip(bodies, responses):
        if response.status_code == 409:
            problem = assert_problem(response, 409, "conflict")
            assert problem["existing_case"] == winners[body.get("person_id")], problem
            assert "already has an open case" in problem["detail"]
    assert len(await db_rows(app, Case, Case.household_id == uuid.UUID(household["id"]))) == 2


async def test_parallel_filings_for_one_subject_make_one_application(client, world, app):
    household, case = await open_case(client, world.clerk_a)
    head = household["members"][0]["id"]
    _, own_case = await open_case(client, world.clerk_a, household, person_id=head)
    # The same person and scheme, filed in the household's case and in the person's own case at once.
    urls = [f"{CASES}/{(case if i % 2 else own_case)['id']}/applications" for i in range(PARALLEL)]
    body = {"scheme_code": "KH-DISAB", "person_id": head, "against_screening_reason": "The client asks to apply"}
    responses = await asyncio.gather(*(client.post(url, json=body, headers=world.clerk_a.headers) for url in urls))
    assert sorted(r.status_code for r in responses) == [201] + [409] * (PARALLEL - 1)
    [winner] = [r.json() for r in responses if r.status_code == 201]
    for problem in conflicts(responses):
        assert problem["existing_application"] == winner["id"] and problem["existing_reference"] == winner["reference"]
    filed = await db_rows(app, Application, Application.household_id == uuid.UUID(household["id"]))
    assert [str(a.id) for a in filed] == [winner["id"]]


async def _close_while_adding(client, world, app, kind: str, body: dict, model) -> None:
    """PATCH status closed in the middle of parallel POSTs of work into the case: either the case closes
    and every POST is refused as the case is closed, or the close is refused naming what the POSTs made."""
    _, case = await open_case(client, world.clerk_a)
    url = f"{CASES}/{case['id']}"
    close = client.patch(url, json={"status": "closed", "outcome": "information_given"},
                         headers=headers(world.clerk_a, etag='"1"'))
    adds = [client.post(f"{url}/{kind}", json=body, headers=world.clerk_a.headers) for _ in range(PARALLEL)]
    closed, *added = await asyncio.gather(close, *adds)
    made = {r.json()["id"] for r in added if r.status_code == 201}
    open_inside = {str(row.id) for row in await db_rows(app, model, model.case_id == uuid.UUID(case["id"]))}
    assert open_inside == made
    status = (await client.get(url, headers=world.clerk_a.headers)).json()["status"]
    if closed.status_code == 200:
        assert status == "closed" and not made, f"a closed case with {len(made)} open {kind}"
        for response in added:
            problem = assert_problem(response, 409, "conflict")
            assert problem["current_status"] == "closed" and "The case is closed" in problem["detail"]
    else:
        problem = assert_problem(closed, 409, "conflict")
        assert status == "open" and made and len(made) == PARALLEL
        assert {item["id"] for item in problem["open_items"]} <= made and problem["open_items"]


async def test_closing_while_follow_ups_are_added(client, world, app):
    await _close_while_adding(client, world, app, "follow-ups", {"due_date": LATER, "action": "Call back"}, FollowUp)


async def test_closing_while_referrals_are_issued(client, world, app):
    body = {"agency": "nea", "reason": "Job search", "due_date": (clock.today() + timedelta(days=7)).isoformat()}
    await _close_while_adding(client, world, app, "referrals", body, Referral)


async def test_reopening_while_a_new_case_is_opened(client, world, app):
    household, case = await open_case(client, world.clerk_a)
    url = f"{CASES}/{case['id']}"
    assert (await patch(client, world.clerk_a, url, {"status": "closed", "outcome": "no_contact"})).status_code == 200
    etag = (await client.get(url, headers=world.supervisor_a.headers)).headers["ETag"]
    reopen = client.patch(url, json={"status": "open"}, headers=headers(world.supervisor_a, etag=etag))
    openings = [client.post(CASES, json={"household_id": household["id"]}, headers=world.clerk_a.headers)
                for _ in range(PARALLEL)]
    reopened, *opened = await asyncio.gather(reopen, *openings)
    open_cases = [c for c in await db_rows(app, Case, Case.household_id == uuid.UUID(household["id"])) if c.status != "closed"]
    assert len(open_cases) == 1
    winner = str(open_cases[0].id)
    if reopened.status_code == 200:
        assert winner == case["id"] and all(r.status_code == 409 for r in opened)
    else:
        assert assert_problem(reopened, 409, "conflict")["existing_case"] == winner
        assert sorted(r.status_code for r in opened) == [201] + [409] * (PARALLEL - 1)
    for problem in conflicts(opened):
        assert problem["existing_case"] == winner


async def test_parallel_decisions_on_any_version_decide_once(client, world, app):
    """If-Match: * (a partner that does not read first) skips the version check: the state machine alone
    refuses the second decision, at the same moment as one after another."""
    _, case = await open_case(client, world.clerk_a)
    application = (await client.post(f"{CASES}/{case['id']}/applications", json={"scheme_code": "KH-HEF"},
                                     headers=world.clerk_a.headers)).json()
    url = f"/api/v1/applications/{application['id']}/decision"
    decisions = [{"decision": "approved"} if i % 2 else
                 {"decision": "rejected", "reason_code": "not_poor", "reason_text": "Not in the IDPoor list"}
                 for i in range(PARALLEL)]
    responses = await asyncio.gather(*(client.post(url, json=d, headers=headers(world.supervisor_a, etag="*"))
                                       for d in decisions))
    assert sorted(r.status_code for r in responses) == [200] + [409] * (PARALLEL - 1)
    [winner] = [r.json() for r in responses if r.status_code == 200]
    for response in responses:
        if response.status_code == 409:
            problem = assert_problem(response, 409, "conflict")
            assert problem["current_status"] == winner["status"] and problem["allowed_transitions"] == []
    [row] = await db_rows(app, Application, Application.id == uuid.UUID(application["id"]))
    assert (row.status, row.version) == (winner["status"], 2)


async def test_parallel_completions_of_a_follow_up_complete_it_once(client, world, app):
    _, case = await open_case(client, world.clerk_a)
    follow_up = (await client.post(f"{CASES}/{case['id']}/follow-ups", json={"due_date": LATER, "action": "Call back"},
                                   headers=world.clerk_a.headers)).json()
    url = f"/api/v1/follow-ups/{follow_up['id']}"
    changes = [{"status": "completed", "note": f"Called ({i})"} if i % 2 else {"status": "cancelled"} for i in range(PARALLEL)]
    responses = await asyncio.gather(*(client.patch(url, json=c, headers=headers(world.clerk_a, etag="*")) for c in changes))
    assert sorted(r.status_code for r in responses) == [200] + [409] * (PARALLEL - 1)
    [winner] = [r.json() for r in responses if r.status_code == 200]
    for response in responses:
        if response.status_code == 409:
            assert assert_problem(response, 409, "conflict")["current_status"] == winner["status"]
