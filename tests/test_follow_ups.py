"""Follow-ups: the office's work queue ordered by due date, completion with a note (on time or late,
judged in Phnom Penh), cancellation; wrong users and bad input."""

import uuid
from datetime import UTC, datetime, timedelta

from helpers import assert_problem, pointers, table_counts
from test_cases import events, frozen, headers, open_case, patch, timeline_kinds

from app import clock

FOLLOW_UPS = "/api/v1/follow-ups"


async def plan(client, account, case_id: str, due: str, action: str = "Call the client back", **body) -> dict:
    response = await client.post(f"/api/v1/cases/{case_id}/follow-ups", json={"due_date": due, "action": action, **body},
                                 headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_the_work_queue(client, world, app):
    with frozen(datetime(2026, 5, 4, 2, 0, tzinfo=UTC)):
        _, first = await open_case(client, world.clerk_a)
        _, second = await open_case(client, world.clerk_a, assigned_to=str(world.supervisor_a.id))
        _, elsewhere = await open_case(client, world.clerk_b)
        friday = await plan(client, world.clerk_a, first["id"], "2026-05-08", "Check the NEA appointment happened")
        monday = await plan(client, world.clerk_a, second["id"], "2026-05-11")  # the case's clerk by default
        today = await plan(client, world.clerk_a, first["id"], "2026-05-04", "Photocopy the equity card",
                           assigned_to=str(world.supervisor_a.id))
        await plan(client, world.clerk_b, elsewhere["id"], "2026-05-05")
        assert friday["assigned_to"] == str(world.clerk_a.id) and monday["assigned_to"] == str(world.supervisor_a.id)
        assert friday["status"] == "open" and friday["overdue"] is False and friday["office_code"] == "SR-ACH"
        queue = (await client.get(FOLLOW_UPS, headers=world.clerk_a.headers)).json()
        assert [f["id"] for f in queue["items"]] == [today["id"], friday["id"], monday["id"]] and queue["total"] == 3
        due = (await client.get(FOLLOW_UPS, params={"due_before": "2026-05-08"}, headers=world.clerk_a.headers)).json()
        assert [f["id"] for f in due["items"]] == [today["id"], friday["id"]]  # due on or before that day
        mine = (await client.get(FOLLOW_UPS, params={"assigned_to": "me"}, headers=world.supervisor_a.headers)).json()
        assert [f["id"] for f in mine["items"]] == [today["id"], monday["id"]]
        assert (await client.get(FOLLOW_UPS, params={"case_id": first["id"]}, headers=world.clerk_a.headers)).json()["total"] == 2
        page = (await client.get(FOLLOW_UPS, params={"limit": 1, "offset": 2}, headers=world.clerk_a.headers)).json()
        assert [f["id"] for f in page["items"]] == [monday["id"]]
    with frozen(datetime(2026, 5, 8, 18, 0, tzinfo=UTC)):  # 01:00 on 9 May in Phnom Penh: Friday's is late
        late = (await client.get(FOLLOW_UPS, params={"overdue": "true"}, headers=world.clerk_a.headers)).json()
        assert [f["id"] for f in late["items"]] == [today["id"], friday["id"]] and all(f["overdue"] for f in late["items"])
        done = await patch(client, world.clerk_a, f"{FOLLOW_UPS}/{friday['id']}",
                           {"status": "completed", "note": "She started the course on Wednesday"})
        assert done.status_code == 200
        assert done.json()["status"] == "completed" and done.json()["completed_by"] == str(world.clerk_a.id)
        assert done.json()["note"] == "She started the course on Wednesday" and done.json()["overdue"] is False
    with frozen(datetime(2026, 5, 10, 2, 0, tzinfo=UTC)):
        on_time = await patch(client, world.supervisor_a, f"{FOLLOW_UPS}/{monday['id']}", {"status": "completed", "note": "Done"})
        assert on_time.status_code == 200
        cancelled = await patch(client, world.supervisor_a, f"{FOLLOW_UPS}/{today['id']}", {"status": "cancelled"})
        assert cancelled.json()["status"] == "cancelled"
    completed = await events(app, "follow_up.completed")
    assert [e["overdue"] for e in completed] == [True, False] and all(len(e["follow_up"]) == 32 for e in completed)
    assert "course" not in str(completed)
    assert (await client.get(FOLLOW_UPS, headers=world.clerk_a.headers)).json()["total"] == 0
    assert (await client.get(FOLLOW_UPS, params={"status": "completed"}, headers=world.clerk_a.headers)).json()["total"] == 2
    assert await timeline_kinds(client, world.clerk_a, first["id"]) == [
        "case.opened", "follow_up.created", "follow_up.created", "follow_up.completed", "follow_up.cancelled"]


async def test_follow_up_changes_and_bad_input(client, world, app):
    _, case = await open_case(client, world.clerk_a)
    url = f"/api/v1/cases/{case['id']}/follow-ups"
    tomorrow = (clock.today() + timedelta(days=1)).isoformat()
    before = await table_counts(app)
    for body, pointer in (({"action": "x"}, "#/due_date"), ({"due_date": tomorrow}, "#/action"),
                          ({"due_date": "2020-02-02", "action": "x"}, "#/due_date"),
                          ({"due_date": tomorrow, "action": "x" * 501}, "#/action"),
                          ({"due_date": tomorrow, "action": "x", "assigned_to": str(world.clerk_b.id)}, "#/assigned_to"),
                          ({"due_date": "31/12/2026", "action": "x"}, "#/due_date")):
        problem = assert_problem(await client.post(url, json=body, headers=world.clerk_a.headers), 422, "validation")
        assert pointer in pointers(problem), (body, problem)
    assert await table_counts(app) == before
    follow_up = await plan(client, world.clerk_a, case["id"], tomorrow)
    item = f"{FOLLOW_UPS}/{follow_up['id']}"
    assert_problem(await client.patch(item, json={"action": "y"}, headers=world.clerk_a.headers), 428)
    assert "#/note" in pointers(assert_problem(await patch(client, world.clerk_a, item, {"status": "completed"}), 422))
    assert_problem(await patch(client, world.clerk_a, item, {"status": "open"}), 422)
    moved = await patch(client, world.clerk_a, item, {"due_date": (clock.today() + timedelta(days=9)).isoformat(),
                                                      "action": "Visit at home", "assigned_to": str(world.supervisor_a.id)})
    assert moved.status_code == 200 and moved.json()["action"] == "Visit at home" and moved.json()["version"] == 2
    assert_problem(await patch(client, world.clerk_a, item, {"due_date": None}), 422)
    await patch(client, world.clerk_a, item, {"status": "cancelled"})
    problem = assert_problem(await patch(client, world.clerk_a, item, {"status": "completed", "note": "x"}), 409, "conflict")
    assert problem["current_status"] == "cancelled" and problem["allowed_transitions"] == []
    for params in ({"due_before": "tomorrow"}, {"status": "late"}, {"assigned_to": "him"}, {"limit": 201}):
        assert_problem(await client.get(FOLLOW_UPS, params=params, headers=world.clerk_a.headers), 422, "validation")


async def test_follow_up_wrong_users(client, world):
    _, case = await open_case(client, world.clerk_a)
    follow_up = await plan(client, world.clerk_a, case["id"], (clock.today() + timedelta(days=2)).isoformat())
    item = f"{FOLLOW_UPS}/{follow_up['id']}"
    assert_problem(await client.get(FOLLOW_UPS), 401, "unauthenticated")
    for who in (world.monitor, world.partner):
        assert_problem(await client.get(FOLLOW_UPS, headers=who.headers), 403, "forbidden")
        assert_problem(await client.get(item, headers=who.headers), 403, "forbidden")
    for who in (world.clerk_b, world.supervisor_b):
        assert_problem(await client.get(item, headers=who.headers), 404, "not-found")
        assert_problem(await client.patch(item, json={"status": "cancelled"}, headers=headers(who, etag='"1"')), 404)
        assert_problem(await client.post(f"/api/v1/cases/{case['id']}/follow-ups", json={
            "due_date": "2099-01-01", "action": "x"}, headers=who.headers), 404, "not-found")
        assert (await client.get(FOLLOW_UPS, headers=who.headers)).json()["total"] == 0
    assert_problem(await client.get(f"{FOLLOW_UPS}/{uuid.uuid4()}", headers=world.clerk_a.headers), 404)
    read = await client.get(item, headers=world.admin.headers)
    assert read.status_code == 200 and read.headers["ETag"] == '"1"'
