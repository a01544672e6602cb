"""What triggered an activity event (a client at the window, a batch re-screen, a partner, the office's
own housekeeping), and central counting service to clients only from the window: a re-screen has its
own indicators and inflates neither screenings nor clients served."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from helpers import register
from monitoring_support import Loopback, at, event, person_dims, pseudonym, relay_token, sample
from test_applications import decide, file
from test_applications_partner import partner, youth_application  # noqa: F401 (a fixture)
from test_cases import events, frozen, headers, open_case
from test_monitoring_indicators import post, table, values
from test_referrals import refer
from test_relay import relay_settings

from app import clock
from app.models import ActivityEvent
from app.services.relay import Relay
from app.services.rescreen import rescreen
from app.vocabulary import Role


@pytest.fixture
def k1(settings, monkeypatch):
    monkeypatch.setattr(settings, "small_cell_k", 1)


async def this_quarter(client, world, indicator: str) -> int:
    today = clock.today().isoformat()
    body = await values(client, world, indicator, frm=today, to=today, period="quarter")
    return sum(row["value"] for row in body["rows"])


async def test_a_rescreen_is_counted_apart_from_service_at_the_window(client, app, settings, world, k1):
    """The office's day: three households registered last year, one screened at the window today, then
    `guichet rescreen`, and the relay to central. Central's service indicators see one screening and its
    household's members; the re-screen's screenings and determinations have indicators of their own."""
    households = [await register(client, world.clerk_a) for _ in range(3)]
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(update(ActivityEvent).values(occurred_at=clock.now() - timedelta(days=400)))
    screened = await client.post(f"/api/v1/households/{households[0]['id']}/screenings", headers=world.clerk_a.headers)
    assert screened.status_code == 201, screened.text
    determinations = screened.json()["determinations"]
    run = await rescreen(app.state.sessionmaker, app.state.schemes, office_code="SR-ACH", scheme_codes=None)
    assert run.screenings_written == 2  # the household screened a moment ago is up to date
    triggers = {(e["type"], e["trigger"]) for e in await events(app, "screening.completed", "screening.determination")}
    assert triggers == {("screening.completed", "window"), ("screening.determination", "window"),
                        ("screening.completed", "rescreen"), ("screening.determination", "rescreen")}

    async with Loopback(app) as central:
        worker = Relay(relay_settings(settings, central.url), app.state.sessionmaker)
        try:
            assert await worker.drain() > 0
        finally:
            await worker.aclose()

    assert await this_quarter(client, world, "screenings") == 1
    assert await this_quarter(client, world, "determinations") == len(determinations)
    assert await this_quarter(client, world, "eligible_determinations") == sum(d["outcome"] == "eligible" for d in determinations)
    assert await this_quarter(client, world, "clients_served") == len(households[0]["members"])
    assert await this_quarter(client, world, "households_reached") == 1
    assert await this_quarter(client, world, "rescreens") == 2
    assert await this_quarter(client, world, "rescreen_determinations") == run.determinations_written


async def test_central_validates_the_trigger_and_takes_a_missing_one_as_the_window(client, app, settings, world, k1):
    """An office of the previous version relays events without a trigger after central upgraded: they
    count as they always did. A trigger outside the contract's set is refused, naming it."""
    day = at("2026-02-10")
    old = sample("screening.completed", at=day)  # no trigger: as an older office sends it
    assert "trigger" not in old["payload"]
    person = pseudonym()
    rescreened = sample("screening.determination", at=day, person=person, trigger="rescreen")
    by_partner = sample("referral.status_changed", at=day, person=pseudonym(), trigger="partner")
    await post(client, app, settings, [old, rescreened, by_partner])
    bad = event("person.registered", {"person": pseudonym(), "dimensions": person_dims(), "trigger": "robot"}, validate=False)
    answer = await client.post("/api/v1/monitoring/events", json={"events": [bad]},
                               headers=await relay_token(app, settings, "SR-ACH"))
    [rejected] = answer.json()["rejected"]
    assert rejected["problem"].startswith("payload.trigger:") and "window" in rejected["problem"]

    assert table(await values(client, world, "screenings")) == {("2026-02",): 1}
    assert table(await values(client, world, "rescreen_determinations", group_by="outcome"), "outcome") == {
        ("2026-02", "eligible"): 1}
    assert table(await values(client, world, "determinations")) == {}
    # The old event's household was served; the re-screened person and the partner's client were not.
    assert table(await values(client, world, "households_reached")) == {("2026-02",): 1}
    assert table(await values(client, world, "clients_served")) == {}
    assert table(await values(client, world, "referrals_completed")) == {("2026-02",): 1}  # an outcome, whoever recorded it


async def test_the_office_says_who_changed_what(client, world, app, partner, make_account):  # noqa: F811
    """A clerk's change is the window's; a partner's through the partner API is the partner's; a referral
    expiring by itself is the office's housekeeping (system)."""
    day = datetime(2026, 1, 28, 2, 0, tzinfo=UTC)
    with frozen(day):
        _, case = await open_case(client, world.clerk_a)
        to_nea = await refer(client, world.clerk_a, case["id"], due_date="2026-01-31")
        lapsing = await refer(client, world.clerk_a, case["id"], due_date="2026-02-01", agency="idpoor", service="assessment")
        nea = await make_account(Role.partner, office=None, scheme="KH-NEA-JOB")
        url = f"/api/v1/partner/referrals/{to_nea['id']}"
        etag = (await client.get(url, headers=nea.headers)).headers["ETag"]
        accepted = await client.patch(url, json={"status": "accepted"}, headers=headers(nea, etag=etag))
        assert accepted.status_code == 200, accepted.text
    with frozen(day + timedelta(days=60)):  # past the due date by more than GUICHET_REFERRAL_EXPIRY_DAYS
        await client.get(f"/api/v1/referrals/{lapsing['id']}", headers=world.clerk_a.headers)
    referrals = {(e["type"], e.get("status"), e["trigger"]) for e in await events(app, "referral.issued", "referral.status_changed")}
    assert referrals == {("referral.issued", None, "window"), ("referral.status_changed", "accepted", "partner"),
                         ("referral.status_changed", "expired", "system")}

    _, _, by_partner = await youth_application(client, world)
    youth = await make_account(Role.partner, office=None, scheme=by_partner["scheme_code"])
    url = f"/api/v1/partner/applications/{by_partner['id']}"
    etag = (await client.get(url, headers=youth.headers)).headers["ETag"]
    decision = await client.post(f"{url}/decision", json={"decision": "approved"}, headers=headers(youth, etag=etag))
    assert decision.status_code == 200, decision.text
    _, office_case = await open_case(client, world.clerk_a)
    at_office = await file(client, world.clerk_a, office_case["id"], scheme_code="KH-HEF")
    assert (await decide(client, world.supervisor_a, at_office, {"decision": "approved"})).status_code == 200
    assert {(e["scheme"], e["trigger"]) for e in await events(app, "application.decided")} == {
        (by_partner["scheme_code"], "partner"), ("KH-HEF", "window")}
