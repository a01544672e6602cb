"""The screening endpoints: happy path, bad input, wrong user, other office, audit, events, preview."""

import time
import uuid

from jose import jwt
from sqlalchemy import func, select

from helpers import CONTRACT_EXAMPLE, assert_problem, household_body

from app.models import ActivityEvent, AuditEvent, Household, Person, Screening, ScreeningDetermination

SCREEN = "/api/v1/households/{}/screenings"
ALL_SCHEMES = {"KH-HEF", "KH-CTPWC", "KH-SCHOLAR", "KH-DISAB", "KH-NSSF-HC", "KH-NSSF-PEN", "KH-NEA-JOB", "KH-FAMILY-CASH"}


async def register(client, world, body=None, who=None):
    response = await client.post("/api/v1/households", json=body or household_body(), headers=(who or world.clerk_a).headers)
    assert response.status_code == 201, response.text
    return response.json()


async def counts(app, *models):
    async with app.state.sessionmaker() as session:
        return [(await session.execute(select(func.count()).select_from(m))).scalar_one() for m in models]


async def test_screening_answers_every_member_and_scheme_and_is_kept(client, world, app):
    household = await register(client, world, CONTRACT_EXAMPLE)
    response = await client.post(SCREEN.format(household["id"]), headers=world.clerk_a.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["Location"] == f"/api/v1/screenings/{body['id']}"
    assert body["household_id"] == household["id"] and body["screened_by"] == str(world.clerk_a.id)
    assert set(body["schemes"]) == ALL_SCHEMES
    # 6 person-level schemes x 2 members + 2 household-level schemes
    assert len(body["determinations"]) == 6 * 2 + 2
    by_key = {(d["scheme_code"], d["person_id"]): d for d in body["determinations"]}
    head, child = (m["id"] for m in household["members"])
    hef = by_key[("KH-HEF", None)]
    assert hef["outcome"] == "eligible" and hef["rules_version"] == "2023-10" and hef["scheme_name"] == "Health Equity Fund"
    assert {"rule": "idpoor_card", "result": "passed"}.items() <= hef["reasons"][0].items()
    assert hef["reasons"][0]["message"] == "The household holds a valid IDPoor equity card"
    disab = by_key[("KH-DISAB", head)]
    assert disab["outcome"] == "eligible" and disab["benefit"]["amount"] == 20000 and disab["benefit"]["frequency"] == "monthly"
    scholar = by_key[("KH-SCHOLAR", child)]
    assert scholar["outcome"] == "needs_information"
    assert scholar["missing_facts"] == ["person.school_attendance_percent"]
    assert by_key[("KH-NSSF-PEN", head)]["outcome"] == "not_eligible"
    assert body["counts"]["eligible"] == sum(d["outcome"] == "eligible" for d in body["determinations"])
    # Household-level verdicts first, then the members in order.
    assert [d["member_index"] for d in body["determinations"]][:2] == [None, None]

    # Kept: the record reads back the same, and the facts used are stored.
    again = await client.get(f"/api/v1/screenings/{body['id']}", headers=world.clerk_a.headers)
    assert again.status_code == 200
    assert again.json()["determinations"] == body["determinations"]
    async with app.state.sessionmaker() as session:
        screening = await session.get(Screening, uuid.UUID(body["id"]))
        assert screening.facts["household"]["household.idpoor_valid"] is True
        assert screening.facts["members"][child]["person.school_enrolled"] is True
        assert "person.national_id" not in screening.facts["members"][head]  # only what the schemes read
        events = (await session.execute(select(ActivityEvent.type, ActivityEvent.payload)
                                        .where(ActivityEvent.type.like("screening.%")))).all()
    determinations = [p for t, p in events if t == "screening.determination"]
    completed = [p for t, p in events if t == "screening.completed"]
    assert len(determinations) == 14 and len(completed) == 1
    assert completed[0]["determinations"] == 14 and completed[0]["schemes"] == 8
    person_events = [p for p in determinations if "person" in p]
    assert len(person_events) == 12 and all(p["dimensions"]["sex"] in ("female", "male") for p in person_events)
    flat = str(events)
    assert "Chanthou" not in flat and "170123456" not in flat and "1986" not in flat


async def test_screening_of_chosen_schemes_and_listing(client, world):
    household = await register(client, world)
    first = await client.post(SCREEN.format(household["id"]), json={"schemes": ["KH-HEF", "KH-NEA-JOB"]},
                              headers=world.clerk_a.headers)
    assert first.status_code == 201, first.text
    assert {d["scheme_code"] for d in first.json()["determinations"]} == {"KH-HEF", "KH-NEA-JOB"}
    second = await client.post(SCREEN.format(household["id"]), headers=world.supervisor_a.headers)
    assert second.status_code == 201
    listing = await client.get(SCREEN.format(household["id"]) + "?limit=1", headers=world.clerk_a.headers)
    assert listing.status_code == 200
    page = listing.json()
    assert page["total"] == 2 and len(page["items"]) == 1 and page["items"][0]["id"] == second.json()["id"]
    assert sum(page["items"][0]["counts"].values()) == len(second.json()["determinations"])
    rest = await client.get(SCREEN.format(household["id"]) + "?limit=1&offset=1", headers=world.clerk_a.headers)
    assert rest.json()["items"][0]["id"] == first.json()["id"]


async def test_bad_input_is_a_problem_and_changes_nothing(client, world, app):
    household = await register(client, world)
    url = SCREEN.format(household["id"])
    before = await counts(app, Screening, ScreeningDetermination, ActivityEvent)
    body = assert_problem(await client.post(url, json={"schemes": ["KH-NOPE"]}, headers=world.clerk_a.headers), 422, "validation")
    assert body["errors"][0]["pointer"] == "#/schemes/0"
    assert_problem(await client.post(url, json={"schemes": []}, headers=world.clerk_a.headers), 422, "validation")
    assert_problem(await client.post(url, json={"schemes": "KH-HEF"}, headers=world.clerk_a.headers), 422, "validation")
    assert_problem(await client.post(url, json={"schemes": ["x" * 41]}, headers=world.clerk_a.headers), 422, "validation")
    assert_problem(await client.post(url, json={"schemes": ["KH HEF"]}, headers=world.clerk_a.headers), 422, "validation")
    assert_problem(await client.post(url, json={"scheme": ["KH-HEF"]}, headers=world.clerk_a.headers), 422, "validation")
    assert_problem(await client.post(url, content=b'{"schemes": [', headers=world.clerk_a.headers | {"content-type": "application/json"}),
                   400, "malformed-json")
    assert_problem(await client.post(SCREEN.format("not-a-uuid"), headers=world.clerk_a.headers), 422, "validation")
    assert_problem(await client.post(SCREEN.format(uuid.uuid4()), headers=world.clerk_a.headers), 404, "not-found")
    assert_problem(await client.get(f"/api/v1/screenings/{uuid.uuid4()}", headers=world.clerk_a.headers), 404, "not-found")
    assert_problem(await client.get(SCREEN.format(household["id"]) + "?limit=201", headers=world.clerk_a.headers), 422)
    assert await counts(app, Screening, ScreeningDetermination, ActivityEvent) == before


def expired_token(settings, account) -> str:
    now = int(time.time())
    claims = {"sub": str(account.id), "role": "clerk", "office": "SR-ACH", "scheme": None, "iss": settings.jwt_issuer,
              "aud": settings.jwt_audience, "iat": now - 4000, "nbf": now - 4000, "exp": now - 3600}
    return jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm="HS256")


async def test_wrong_user(client, world, settings):
    household = await register(client, world)
    url = SCREEN.format(household["id"])
    assert_problem(await client.post(url), 401, "unauthenticated")
    assert_problem(await client.post(url, headers={"Authorization": "Bearer forged.token.value"}), 401, "unauthenticated")
    expired = {"Authorization": f"Bearer {expired_token(settings, world.clerk_a)}"}
    assert_problem(await client.post(url, headers=expired), 401, "unauthenticated")
    assert_problem(await client.get("/api/v1/schemes", headers=expired), 401, "unauthenticated")
    for who in (world.monitor, world.partner):
        assert_problem(await client.post(url, headers=who.headers), 403, "forbidden")
        assert_problem(await client.get(url, headers=who.headers), 403, "forbidden")
        assert_problem(await client.post("/api/v1/screenings/preview", json=CONTRACT_EXAMPLE, headers=who.headers), 403)
    made = await client.post(url, headers=world.clerk_a.headers)
    screening_id = made.json()["id"]
    # Another office: exactly like a missing record.
    for who in (world.clerk_b, world.supervisor_b):
        assert_problem(await client.post(url, headers=who.headers), 404, "not-found")
        assert_problem(await client.get(url, headers=who.headers), 404, "not-found")
        assert_problem(await client.get(f"/api/v1/screenings/{screening_id}", headers=who.headers), 404, "not-found")
    assert (await client.get(f"/api/v1/screenings/{screening_id}", headers=world.admin.headers)).status_code == 200


async def test_reads_are_audited_once_per_request(client, world, app):
    household = await register(client, world)
    made = (await client.post(SCREEN.format(household["id"]), headers=world.clerk_a.headers)).json()
    await client.get(f"/api/v1/screenings/{made['id']}", headers=world.clerk_a.headers)
    await client.get(SCREEN.format(household["id"]), headers=world.clerk_a.headers)
    async with app.state.sessionmaker() as session:
        rows = (await session.execute(select(AuditEvent.action, AuditEvent.entity_type, AuditEvent.entity_id, AuditEvent.actor_username)
                                      .where(AuditEvent.entity_type.in_(["screening", "screening_list"])).order_by(AuditEvent.id))).all()
    assert rows == [("screen", "screening", made["id"], "clerk.a"), ("read", "screening", made["id"], "clerk.a"),
                    ("read", "screening_list", household["id"], "clerk.a")]


async def test_idempotent_post_replays_without_screening_twice(client, world, app):
    household = await register(client, world)
    headers = world.clerk_a.headers | {"Idempotency-Key": "screen-1"}
    first = await client.post(SCREEN.format(household["id"]), headers=headers)
    second = await client.post(SCREEN.format(household["id"]), headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers.get("Idempotent-Replayed") == "true" and second.json()["id"] == first.json()["id"]
    assert (await counts(app, Screening)) == [1]


async def test_preview_stores_nothing_personal(client, world, app):
    before = await counts(app, Household, Person, Screening, ScreeningDetermination, ActivityEvent)
    response = await client.post("/api/v1/screenings/preview", json=CONTRACT_EXAMPLE, headers=world.clerk_a.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] is None and body["household_id"] is None and body["trigger"] == "preview"
    outcomes = {(d["scheme_code"], d["member_index"]): d["outcome"] for d in body["determinations"]}
    assert outcomes[("KH-HEF", None)] == "eligible" and outcomes[("KH-DISAB", 0)] == "eligible"
    assert outcomes[("KH-SCHOLAR", 1)] == "needs_information"
    assert all(d["person_id"] is None for d in body["determinations"])
    assert await counts(app, Household, Person, Screening, ScreeningDetermination, ActivityEvent) == before
    async with app.state.sessionmaker() as session:
        audits = (await session.execute(select(AuditEvent.action, AuditEvent.details).where(AuditEvent.action == "preview"))).all()
    assert len(audits) == 1 and "Chanthou" not in str(audits) and audits[0][1]["members"] == 2
    # The same validation as registration.
    bad = dict(CONTRACT_EXAMPLE, members=[])
    assert_problem(await client.post("/api/v1/screenings/preview", json=bad, headers=world.clerk_a.headers), 422, "validation")
    unknown = dict(CONTRACT_EXAMPLE, schemes=["KH-NOPE"])
    assert_problem(await client.post("/api/v1/screenings/preview", json=unknown, headers=world.clerk_a.headers), 422, "validation")


async def test_scheme_catalogue(client, world):
    response = await client.get("/api/v1/schemes", headers=world.monitor.headers)  # any signed-in user
    assert response.status_code == 200
    schemes = {s["code"]: s for s in response.json()}
    assert set(schemes) >= ALL_SCHEMES
    assert schemes["KH-NEA-JOB"]["kind"] == "employment" and schemes["KH-HEF"]["level"] == "household"
    assert schemes["KH-HEF"]["rules_version"] == "2023-10" and schemes["KH-HEF"]["health"] is None
    assert all(s["sources"] and s["legal_reference"] for s in schemes.values())
    detail = await client.get("/api/v1/schemes/KH-SCHOLAR", headers=world.clerk_a.headers)
    assert detail.status_code == 200
    version = detail.json()["versions"][0]
    attendance = next(r for r in version["rules"]["all"] if r["rule"] == "attendance")
    assert attendance["message"] == "Attends school at least 80% of the time" and attendance["value"] == 80
    assert any(p["name"] == "maximum_age" and p["unverified"] for p in version["parameters"])
    assert_problem(await client.get("/api/v1/schemes/KH-NOPE", headers=world.clerk_a.headers), 404, "not-found")
    assert_problem(await client.get("/api/v1/schemes"), 401, "unauthenticated")
    assert_problem(await client.get("/api/v1/schemes?lang=english", headers=world.clerk_a.headers), 422, "validation")


async def test_consent_in_force_decides_partner_sharing(client, world, app):
    """The newest consent record is the one in force: withdrawing eligibility_sharing stops the
    partner call at the next screening."""
    from partner_server import RunningPartner, create_partner_app
    from test_schemes_http import TOKEN, partner_scheme

    from app.schemes.registry import SchemeRegistry

    async with RunningPartner(create_partner_app(token=TOKEN)) as partner:
        registry = SchemeRegistry()
        youth = partner_scheme(partner.url)
        registry.register(youth)
        original, app.state.schemes = app.state.schemes, registry
        try:
            household = await register(client, world)
            url = SCREEN.format(household["id"])
            shared = (await client.post(url, headers=world.clerk_a.headers)).json()
            assert {d["outcome"] for d in shared["determinations"]} <= {"eligible", "not_eligible", "needs_information"}
            assert all("consent" not in [r["rule"] for r in d["reasons"]] for d in shared["determinations"])
            assert len(partner.app.state.received) == 1
            withdrawn = await client.post(f"/api/v1/households/{household['id']}/consent", headers=world.clerk_a.headers,
                                          json={"purposes": ["registry"], "given_by": "Head", "method": "verbal"})
            assert withdrawn.status_code == 201, withdrawn.text
            skipped = (await client.post(url, headers=world.clerk_a.headers)).json()
            assert {d["outcome"] for d in skipped["determinations"]} == {"needs_information"}
            assert all(d["missing_facts"] == ["consent.eligibility_sharing"] for d in skipped["determinations"])
            assert len(partner.app.state.received) == 1  # nothing more was sent
        finally:
            app.state.schemes = original
            await youth.aclose()
