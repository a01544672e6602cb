"""Personal data is never kept by a browser or a proxy: every answer of the API, errors and tokens
included, carries `Cache-Control: no-store` (an office's computers are shared)."""

from helpers import household_body
from test_role_matrix import V1, seed


async def test_every_api_answer_carries_no_store(app, client, world, make_account):
    ids = await seed(client, world, make_account, app)
    clerk, supervisor = world.clerk_a.headers, world.supervisor_a.headers
    token = await client.post(f"{V1}/auth/token", data={"grant_type": "password", "username": "clerk.a",
                                                        "password": "correct horse battery"})
    reads = [
        ("token", token),
        *[(path, await client.get(f"{V1}/{path}", headers=clerk)) for path in (
            f"households/{ids['household_id']}", "households?name=So", f"households/{ids['household_id']}/consent",
            f"persons/{ids['person_id']}", f"cases/{ids['case_id']}", f"cases/{ids['case_id']}/timeline",
            f"applications/{ids['application_id']}", f"applications/{ids['application_id']}/receipt",
            f"referrals/{ids['referral_id']}", f"follow-ups/{ids['follow_up_id']}", f"grievances/{ids['grievance_id']}",
            f"screenings/{ids['screening_id']}", "schemes", "auth/me")],
        ("receipt as a page", await client.get(f"{V1}/applications/{ids['application_id']}/receipt",
                                               headers=clerk | {"Accept": "text/html"})),
        ("audit", await client.get(f"{V1}/audit", headers=supervisor)),
        ("partner", await client.get(f"{V1}/partner/applications", headers=world.partner.headers)),
    ]
    for what, response in reads:
        assert response.status_code == 200, (what, response.text)
    # Errors too: this 409 names the person already registered with the national ID.
    again = household_body()
    again["members"][0]["national_id"] = (await client.get(f"{V1}/persons/{ids['person_id']}", headers=clerk)).json()["national_id"]
    errors = [("409", await client.post(f"{V1}/households", json=again, headers=clerk)),
              ("404", await client.get(f"{V1}/households/{ids['screening_id']}", headers=clerk)),
              ("401", await client.get(f"{V1}/households"))]
    assert [r.status_code for _, r in errors] == [409, 404, 401]
    for what, response in reads + errors:
        assert response.headers["Cache-Control"] == "no-store", what
