"""Guichet as a DCI client: looking a person up in an external registry at registration (sync and
async, the answer on our /registry/on-search), the token kept, signatures checked both ways, a
registry that is down never in the way; and the `dci` scheme adapter saying "already receives it"."""

import asyncio
import uuid
from contextlib import asynccontextmanager

import pytest

from app.config import DciRegistry
from app.dci.client import _clients
from app.models import DciLookup, Person
from app.schemes.dci import DciAdapter
from app.schemes.yamlfile import load
from app.vocabulary import Outcome
from dci_partner import create_registry_app
from dci_support import PartnerKeys, conform, now
from helpers import assert_problem, db_rows, household_body, register
from partner_server import RunningPartner, free_socket
from test_schemes_http import member, request_for

PERSONS = {"170555111": {"given_name": "Sophea", "surname": "Mao", "sex": "F", "birth_date": "1990-04-12", "idpoor": 2},
           "170555222": {"given_name": "Dara", "surname": "Chea", "sex": "male", "birth_date": "1975-01-30", "idpoor": 0}}


def _config(site, **overrides) -> DciRegistry:
    base = f"http://127.0.0.1:{site.port}" if site else "http://127.0.0.1:9"
    values = {"url": f"{base}/registry", "token_url": f"{base}/oauth2/client/token", "client_id": "guichet",
              "client_secret": "registry-secret", "receiver_id": "crvs.test", "timeout_seconds": 2.0,
              "jwks": site.app.state.keys.jwks if site else None} | overrides
    return DciRegistry(**values)


@asynccontextmanager
async def configured(app, settings, registries: dict, **more):
    """The app's settings with these registries, for the duration of a test."""
    app.state.settings = settings.model_copy(update={"dci_registries": registries, "dci_lookup_registry": next(iter(registries))} | more)
    _clients.clear()
    try:
        yield app.state.settings
    finally:
        app.state.settings = settings
        _clients.clear()


@pytest.fixture
async def registry():
    async with RunningPartner(create_registry_app(persons=PERSONS, enrolled={"170555111": ["KH-FAMILY-PKG"]})) as site:
        yield site


async def _look_up(client, account, national_id: str, **extra):
    return await client.post("/api/v1/registry-lookups", json={"national_id": national_id, **extra}, headers=account.headers)


async def test_a_lookup_offers_what_the_registry_knows_and_writes_nothing(client, world, app, settings, registry):
    async with configured(app, settings, {"CRVS": _config(registry)}):
        response = await _look_up(client, world.clerk_a, "170555111")
        assert response.status_code == 201, response.text
        found = response.json()
        assert found["status"] == "found" and found["registry"] == "CRVS"
        assert found["candidate"] == {"given_name": "Sophea", "family_name": "Mao", "birth_date": "1990-04-12", "sex": "female",
                                      "idpoor_level": 2}
        assert await db_rows(app, Person) == []  # only offered: the clerk confirms by registering
        missing = (await _look_up(client, world.clerk_a, "170999000")).json()
        assert missing["status"] == "not_found" and missing["candidate"] is None
        # One token for both searches; the requests carried our signature and the spec's shapes.
        assert registry.app.state.token_requests == 1
        [(_, sent), _] = registry.app.state.requests
        assert sent["header"]["sender_id"] == settings.dci_sender_id and sent["signature"]
        assert sent["message"]["search_request"][0]["search_criteria"]["query"] == {"type": "NID", "value": "170555111"}
        again = await client.get(f"/api/v1/registry-lookups/{found['id']}", headers=world.clerk_a.headers)
        assert again.status_code == 200 and again.json()["candidate"]["family_name"] == "Mao"
        assert_problem(await client.get(f"/api/v1/registry-lookups/{found['id']}", headers=world.clerk_b.headers), 404, "not-found")
        assert_problem(await client.get(f"/api/v1/registry-lookups/{uuid.uuid4()}", headers=world.clerk_a.headers), 404, "not-found")


async def test_an_expired_token_is_renewed_once(client, world, app, settings, registry):
    async with configured(app, settings, {"CRVS": _config(registry)}):
        assert (await _look_up(client, world.clerk_a, "170555222")).json()["status"] == "found"
        registry.app.state.reject_token_once = True
        assert (await _look_up(client, world.clerk_a, "170555222")).json()["status"] == "found"
        assert registry.app.state.token_requests == 2


async def test_a_registry_that_is_down_or_unsigned_never_blocks_registration(client, world, app, settings, registry):
    closed = free_socket()
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there
    down = _config(None, url=f"http://127.0.0.1:{port}/registry", token_url=None)
    async with configured(app, settings, {"DOWN": down, "CRVS": _config(registry)}):
        answer = (await _look_up(client, world.clerk_a, "170555111", registry="DOWN")).json()
        assert answer["status"] == "unavailable" and "could not answer" in answer["message"]
        registry.app.state.down = True
        assert (await _look_up(client, world.clerk_a, "170555111", registry="CRVS")).json()["status"] == "unavailable"
        registry.app.state.down = False
        registry.app.state.bad_signature = True
        forged = (await _look_up(client, world.clerk_a, "170555111", registry="CRVS")).json()
        assert forged["status"] == "unavailable" and "not signed by its keys" in forged["message"]
        await register(client, world.clerk_a)  # registration goes on
        assert len(await db_rows(app, DciLookup)) == 3


async def test_lookup_requests_are_checked(client, world, app, settings, registry):
    async with configured(app, settings, {"CRVS": _config(registry)}):
        assert_problem(await _look_up(client, world.clerk_a, "170555111", registry="NOPE"), 422, "validation")
        assert_problem(await _look_up(client, world.clerk_a, "1 7"), 422, "validation")
        assert_problem(await _look_up(client, world.clerk_a, "1" * 31), 422, "validation")
        assert_problem(await client.post("/api/v1/registry-lookups", json={}, headers=world.clerk_a.headers), 422, "validation")
        assert_problem(await client.post("/api/v1/registry-lookups", json={"national_id": 170555111}, headers=world.clerk_a.headers),
                       422, "validation")
        assert_problem(await client.post("/api/v1/registry-lookups", content=b"{", headers={
            **world.clerk_a.headers, "Content-Type": "application/json"}), 400, "malformed-json")
        assert_problem(await _look_up(client, world.monitor, "170555111"), 403, "forbidden")
        assert_problem(await client.post("/api/v1/registry-lookups", json={"national_id": "170555111"}), 401, "unauthenticated")
        assert await db_rows(app, DciLookup) == []
    assert_problem(await _look_up(client, world.clerk_a, "170555111"), 422, "validation")  # none configured


async def test_an_async_registry_answers_on_our_on_search(client, world, app, settings, registry):
    async with RunningPartner(app) as guichet:
        base = f"http://127.0.0.1:{guichet.port}"
        async with configured(app, settings, {"CRVS": _config(registry, mode="async")}, dci_public_url=base):
            response = await _look_up(client, world.clerk_a, "170555111")
            assert response.status_code == 201 and response.json()["status"] == "pending"
            path = f"/api/v1/registry-lookups/{response.json()['id']}"
            for _ in range(100):
                answer = (await client.get(path, headers=world.clerk_a.headers)).json()
                if answer["status"] != "pending":
                    break
                await asyncio.sleep(0.05)
            assert answer["status"] == "found" and answer["candidate"]["given_name"] == "Sophea"
            [acknowledged] = [body for what, body in registry.app.state.requests if what == "callback answered"]
            conform("sr", "/registry/on-search", "response", acknowledged)
            assert acknowledged["message"]["ack_status"] == "ACK"
            sent = next(body for what, body in registry.app.state.requests if what == "/registry/search")
            assert sent["header"]["sender_uri"] == base + "/dci/client/registry/on-search"
            # A callback signed by anyone else is refused and settles nothing.
            lookup = (await _look_up(client, world.clerk_a, "170555222")).json()
            [row] = [r for r in await db_rows(app, DciLookup) if str(r.id) == lookup["id"]]
            head = {"version": "1.0.0", "message_id": str(uuid.uuid4()), "message_ts": now(), "action": "on-search", "status": "succ",
                    "sender_id": "crvs.test", "receiver_id": "guichet"}
            message = {"transaction_id": row.transaction_id, "correlation_id": "C", "search_response": [
                {"reference_id": "R", "timestamp": now(), "status": "succ", "data": {"reg_records": []}}]}
            forged = await client.post("/dci/client/registry/on-search", json={
                "signature": PartnerKeys().sign(head, message), "header": head, "message": message})
            assert forged.status_code == 200 and forged.json()["message"]["error"]["code"] == "err.signature.invalid"
            stranger = await client.post("/dci/client/registry/on-search", json={"header": head | {"sender_id": "x"}, "message": message})
            assert stranger.json()["message"]["error"]["code"] == "err.sender_id.invalid"


# ---- the dci scheme adapter ------------------------------------------------------------------------------


def _scheme(settings, ask: str = "enrolled") -> DciAdapter:
    text = f"""
code: KH-FAMILY-PKG
name: Family package
kind: social_protection
level: person
agency: Ministry of Social Affairs
legal_reference: Test
adapter: dci
dci:
  registry: IBR
  ask: {ask}
  programme: KH-FAMILY-PKG
  circuit: {{failures: 2, reset_seconds: 60}}
"""
    return DciAdapter.from_definition(load(text, source="test.yaml"), source="test.yaml", settings=settings)


async def test_the_dci_adapter_says_already_receives_it(settings, registry):
    ibr = settings.model_copy(update={"dci_registries": {"IBR": _config(registry)}})
    _clients.clear()
    adapter = _scheme(ibr)
    enrolled, other, unknown = member(national_id="170555111"), member(national_id="170555222"), member(national_id=None)
    determinations = await adapter.check(request_for([enrolled, other, unknown]))
    assert [d.outcome for d in determinations] == [Outcome.eligible, Outcome.needs_information, Outcome.needs_information]
    assert determinations[0].reasons[0].rule == "enrolled" and "Already receives Family package" in determinations[0].reasons[0].message
    assert determinations[1].reasons[0].rule == "not_enrolled"
    assert determinations[2].missing_facts == ["person.national_id"]
    asked = [body for what, body in registry.app.state.requests if what == "/registry/sync/enrolled"]
    assert [b["message"]["enrolled_criteria"]["query"]["person_identifier"]["eq"] for b in asked] == ["170555111", "170555222"]
    # By search: the registry is the scheme's beneficiary list.
    searched = await _scheme(ibr, ask="search").check(request_for([enrolled, member(national_id="170999999")]))
    assert [d.outcome for d in searched] == [Outcome.eligible, Outcome.needs_information]
    # Without consent nothing is asked; a registry that is down is an error for this scheme, never "not eligible".
    before = len(registry.app.state.requests)
    silent = await adapter.check(request_for([enrolled], consent=frozenset({"registry"})))
    assert [d.outcome for d in silent] == [Outcome.needs_information] and len(registry.app.state.requests) == before
    registry.app.state.down = True
    failed = await adapter.check(request_for([enrolled, other, member(national_id="170555333")]))
    assert [d.outcome for d in failed] == [Outcome.error] * 3
    assert [d.provenance["error"] for d in failed] == ["unavailable", "unavailable", "circuit_open"]
    _clients.clear()


def test_a_dci_scheme_file_is_checked(settings):
    from app.schemes.base import SchemeDefinitionError

    ibr = settings.model_copy(update={"dci_registries": {"IBR": DciRegistry(url="http://127.0.0.1:9/registry")}})
    good = _scheme(ibr)
    assert good.metadata.adapter == "dci" and good.metadata.facts == ("person.national_id",)
    with pytest.raises(SchemeDefinitionError, match="dci.registry names a registry"):
        _scheme(settings)
    text = "code: X\nname: X\nkind: social_protection\nlevel: person\nagency: A\nlegal_reference: L\nadapter: dci\ndci:\n  registry: IBR\n  ask: guess\n"
    with pytest.raises(SchemeDefinitionError, match="dci.ask is enrolled or search"):
        DciAdapter.from_definition(load(text, source="x.yaml"), source="x.yaml", settings=ibr)


async def test_screening_shows_already_receives_it(client, world, app, settings, registry):
    ibr = settings.model_copy(update={"dci_registries": {"IBR": _config(registry)}})
    _clients.clear()
    adapter = _scheme(ibr)
    app.state.schemes.register(adapter)
    try:
        body = household_body()
        body["members"][0]["national_id"] = "170555111"
        household = await register(client, world.clerk_a, body)
        response = await client.post(f"/api/v1/households/{household['id']}/screenings", json={"schemes": ["KH-FAMILY-PKG"]},
                                     headers=world.clerk_a.headers)
        assert response.status_code == 201, response.text
        head = next(d for d in response.json()["determinations"] if d["person_id"] == household["members"][0]["id"])
        assert head["outcome"] == "eligible" and head["reasons"][0]["rule"] == "enrolled"
    finally:
        app.state.schemes._adapters.pop("KH-FAMILY-PKG", None)
        _clients.clear()

