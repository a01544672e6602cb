"""The HTTP adapter against a real partner server on loopback: a normal answer, a slow one past the
timeout, a 503 then success, a malformed body, a hung connection, an open circuit, no consent, and
partners called concurrently (a screening waits for the slowest, not the sum). No test times anything:
which timeout ended a call is read from its words, concurrency from the partners' overlap."""

import asyncio
import uuid
from datetime import date
from types import SimpleNamespace

import pytest

from partner_server import HungServer, RunningPartner, create_partner_app, free_socket

from app.schemes.base import SchemeDefinitionError
from app.schemes.http import HttpAdapter
from app.schemes.registry import SchemeRegistry, load_registry
from app.schemes.yamlfile import load
from app.services.screening import build_request, run_schemes
from app.vocabulary import Outcome

TOKEN = "partner-secret"


def partner_scheme(url: str, *, code: str = "KH-YOUTH-JOBS", read: float = 0.5, overall: float = 2.0, failures: int = 3,
                   reset: float = 30.0, level: str = "person") -> HttpAdapter:
    text = f"""
code: {code}
name: Youth employment programme
kind: employment
level: {level}
agency: Reference partner agency
legal_reference: Test agreement
adapter: http
http:
  url: {url}
  needs: [person.age_years, person.employment_status, household.area_type]
  timeouts: {{connect: 0.5, read: {read}, overall: {overall}}}
  backoff_seconds: 0.01
  circuit: {{failures: {failures}, reset_seconds: {reset}}}
"""
    settings = SimpleNamespace(partner_tokens={code: TOKEN}, partner_urls={})
    return HttpAdapter.from_definition(load(text, source="test.yaml"), source="test.yaml", settings=settings)


def member(**facts):
    base = dict(id=uuid.uuid4(), birth_date=date(2000, 5, 1), birth_year=2000, birth_date_approximate=False, national_id="170999999",
                sex="male", relationship="head", pregnant=False, employment_status="unemployed", monthly_income=None,
                school_enrolled=None, school_attendance_percent=None, nssf_member=None, nssf_contribution_months=None, attributes={})
    for domain in ("seeing", "hearing", "walking", "remembering", "self_care", "communicating"):
        base[f"disability_{domain}"] = "none"
    base.update(facts)
    return SimpleNamespace(**base)


HOUSEHOLD = SimpleNamespace(id=uuid.uuid4(), village_code="17010101", area_type="rural", idpoor_level=None, idpoor_valid_until=None)
CONSENT = frozenset({"registry", "eligibility_sharing"})


def request_for(members, consent=CONSENT):
    return build_request(HOUSEHOLD, members, consent, date(2026, 11, 29))


@pytest.fixture
async def partner():
    async with RunningPartner(create_partner_app(token=TOKEN)) as running:
        yield running


async def test_normal_answer_sends_only_the_declared_facts(partner):
    adapter = partner_scheme(partner.url)
    young, old = member(), member(birth_date=date(1960, 1, 1), birth_year=1960, relationship="parent")
    request = request_for([young, old])
    determinations = await adapter.check(request)
    assert [d.outcome for d in determinations] == [Outcome.eligible, Outcome.not_eligible]
    assert determinations[0].person_id == young.id and determinations[0].rules_version == "youth-2026"
    assert determinations[0].benefit.amount == 150000
    assert [r.rule for r in determinations[1].reasons] == ["youth"]
    assert determinations[1].reasons[0].result.value == "failed"
    headers, body = partner.app.state.received[0]
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["x-request-id"] == headers["idempotency-key"] == body["transaction_id"] == request.transaction_id
    # Data minimisation: the declared facts only, opaque references, no names, IDs or birth dates.
    assert set(body["household"]["facts"]) == {"household.area_type"}
    assert all(set(s["facts"]) == {"person.age_years", "person.employment_status"} for s in body["subjects"])
    assert str(young.id) not in str(body) and "170999999" not in str(body) and "2000-05-01" not in str(body)
    assert adapter.health().circuit == "closed" and adapter.health().last_latency_ms > 0
    await adapter.aclose()


async def test_household_level_partner_scheme(partner):
    adapter = partner_scheme(partner.url, level="household")
    determinations = await adapter.check(request_for([member(), member(relationship="child")]))
    assert [(d.person_id, d.outcome) for d in determinations] == [(None, Outcome.not_eligible)]
    body = partner.app.state.received[0][1]
    assert body["level"] == "household" and body["subjects"] == [] and set(body["household"]["facts"]) == {"household.area_type"}
    await adapter.aclose()


async def test_slow_partner_past_the_timeout_is_an_error_for_this_scheme_only(partner):
    # The partner never answers and the overall deadline is two minutes away: only the read timeout can end
    # the call, and its own words say it did.
    adapter = partner_scheme(partner.url, read=0.2, overall=120)
    partner.app.state.script.append({"hang": True})
    determinations = await adapter.check(request_for([member()]))
    assert [d.outcome for d in determinations] == [Outcome.error]
    assert determinations[0].provenance["error"] == "timeout"
    assert determinations[0].reasons[0].message == ("Could not check with Reference partner agency: "
                                                    "the partner did not answer in time.")
    assert len(partner.app.state.received) == 1  # a read timeout is not retried
    await adapter.aclose()


async def test_503_then_success_is_retried_with_the_same_transaction(partner):
    adapter = partner_scheme(partner.url)
    partner.app.state.script.extend([{"status": 503}, {"status": 429, "retry_after": 0}])
    determinations = await adapter.check(request_for([member()]))
    assert [d.outcome for d in determinations] == [Outcome.eligible]
    assert determinations[0].provenance["attempts"] == 3
    ids = {(h["x-request-id"], b["transaction_id"]) for h, b in partner.app.state.received}
    assert len(partner.app.state.received) == 3 and len(ids) == 1


async def test_three_503s_give_up_after_two_retries(partner):
    adapter = partner_scheme(partner.url)
    partner.app.state.script.extend([{"status": 503}] * 3)
    determinations = await adapter.check(request_for([member()]))
    assert determinations[0].outcome is Outcome.error and determinations[0].provenance["error"] == "http_503"
    assert len(partner.app.state.received) == 3


async def test_malformed_body_and_wrong_token_are_errors(partner):
    adapter = partner_scheme(partner.url)
    partner.app.state.script.append({"malformed": True})
    determinations = await adapter.check(request_for([member()]))
    assert determinations[0].outcome is Outcome.error and determinations[0].provenance["error"] == "malformed"
    adapter.token = "wrong"
    determinations = await adapter.check(request_for([member()]))
    assert determinations[0].outcome is Outcome.error and determinations[0].provenance["error"] == "unauthorised"


async def test_hung_connection_ends_at_the_deadline():
    async with HungServer() as hung:
        # The read timeout is two minutes away: only the overall deadline can end the call, and says so.
        adapter = partner_scheme(hung.url, read=120, overall=0.3)
        determinations = await adapter.check(request_for([member()]))
        assert determinations[0].outcome is Outcome.error and determinations[0].provenance["error"] == "timeout"
        assert determinations[0].reasons[0].message.endswith("did not answer within 0.3 s.")
        await adapter.aclose()


async def test_unreachable_partner_is_retried_then_an_error():
    sock = free_socket()  # bound but not listening: connections are refused
    try:
        adapter = partner_scheme(f"http://127.0.0.1:{sock.getsockname()[1]}/eligibility")
        determinations = await adapter.check(request_for([member()]))
        assert determinations[0].outcome is Outcome.error and determinations[0].provenance["error"] == "connect"
        await adapter.aclose()
    finally:
        sock.close()


async def test_open_circuit_stops_calling_then_one_trial_closes_it(partner):
    adapter = partner_scheme(partner.url, read=0.1, failures=2, reset=0.3)
    partner.app.state.script.extend([{"status": 500}, {"status": 500}])
    for _ in range(2):
        assert (await adapter.check(request_for([member()])))[0].outcome is Outcome.error
    assert adapter.health().circuit == "open"
    calls = len(partner.app.state.received)
    short_circuited = await adapter.check(request_for([member()]))
    assert short_circuited[0].provenance["error"] == "circuit_open" and len(partner.app.state.received) == calls
    await asyncio.sleep(0.35)
    assert adapter.health().circuit == "half_open"
    assert (await adapter.check(request_for([member()])))[0].outcome is Outcome.eligible
    assert adapter.health().circuit == "closed" and adapter.health().consecutive_failures == 0


async def test_no_consent_means_no_call(partner):
    adapter = partner_scheme(partner.url)
    determinations = await adapter.check(request_for([member()], consent=frozenset({"registry"})))
    assert determinations[0].outcome is Outcome.needs_information
    assert determinations[0].missing_facts == ["consent.eligibility_sharing"]
    assert determinations[0].reasons[0].rule == "consent" and partner.app.state.received == []


async def test_partners_are_called_concurrently():
    # Each partner holds its answer until both have their request: called one after the other, the first
    # would wait for a request that never comes, and time out.
    async with RunningPartner(create_partner_app(token=TOKEN)) as one, \
            RunningPartner(create_partner_app(token=TOKEN)) as two:
        both_asked = asyncio.Barrier(2)
        one.app.state.script.append({"meet": both_asked})
        two.app.state.script.append({"meet": both_asked})
        adapters = [partner_scheme(one.url, code="KH-P1", read=10, overall=10),
                    partner_scheme(two.url, code="KH-P2", read=10, overall=10),
                    *load_registry(SimpleNamespace(schemes_path=None)).in_force(date(2026, 11, 29))]
        results = await run_schemes(adapters, request_for([member(), member(relationship="child")]))
        outcomes = {a.metadata.code: [d.outcome for d in ds] for a, ds in results}
        assert outcomes["KH-P1"] == outcomes["KH-P2"] == [Outcome.eligible, Outcome.eligible]
        assert len(results) == 10
        # Each partner call has its own transaction id.
        assert one.app.state.received[-1][1]["transaction_id"] != two.app.state.received[-1][1]["transaction_id"]


def test_http_scheme_file_errors_name_the_line():
    bad = """code: KH-X
name: X
kind: employment
agency: A
legal_reference: L
adapter: http
http:
  url: http://127.0.0.1:1/e
  needs: [person.age_years, person.shoe_size]
"""
    with pytest.raises(SchemeDefinitionError) as caught:
        HttpAdapter.from_definition(load(bad, source="x.yaml"), source="x.yaml")
    assert caught.value.line == 9 and "person.shoe_size" in str(caught.value)


async def test_screening_goes_on_when_a_partner_fails_and_health_shows_it(client, world, app):
    """Through the API: the partner's error is one scheme's `error`; the rules schemes still answer."""
    async with HungServer() as hung:
        registry = SchemeRegistry()
        for adapter in app.state.schemes:
            registry.register(adapter)
        broken = partner_scheme(hung.url, read=5, overall=0.2)
        registry.register(broken)
        original, app.state.schemes = app.state.schemes, registry
        try:
            from helpers import household_body

            household = (await client.post("/api/v1/households", json=household_body(), headers=world.clerk_a.headers)).json()
            response = await client.post(f"/api/v1/households/{household['id']}/screenings", headers=world.clerk_a.headers)
            assert response.status_code == 201, response.text
            outcomes = {d["scheme_code"]: d["outcome"] for d in response.json()["determinations"]}
            assert outcomes["KH-YOUTH-JOBS"] == "error" and outcomes["KH-HEF"] == "eligible"
            schemes = {s["code"]: s for s in (await client.get("/api/v1/schemes", headers=world.clerk_a.headers)).json()}
            health = schemes["KH-YOUTH-JOBS"]["health"]
            assert health["last_outcome"] == "error" and health["last_error"] == "timeout" and health["last_latency_ms"] >= 150
        finally:
            app.state.schemes = original
            await broken.aclose()
