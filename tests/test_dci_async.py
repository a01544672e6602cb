"""Async DCI: answers and notifications go to a reference partner on a real loopback port, posted by
the worker after the request (never inside it), signed, retried when the partner fails; subscribe,
notify on household changes, unsubscribe."""

import asyncio
import uuid

from app.dci import signing
from app.models import AuditEvent, DciDelivery
from dci_partner import create_partner_app, wait_for
from dci_support import by_id, conform, envelope, header, make_partner, search_message, shared_household
from helpers import db_rows, household_body, register
from partner_server import RunningPartner


async def _delivered(app) -> list[DciDelivery]:
    """The deliveries, once the worker has recorded the partner's acknowledgement (just after the partner had it)."""
    for _ in range(200):
        rows = await db_rows(app, DciDelivery)
        if rows and all(r.delivered_at is not None for r in rows):
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"not delivered: {[(r.url, r.attempts, r.last_error) for r in rows]}")


async def _partner_site(settings):
    site = RunningPartner(create_partner_app(signing.our_jwks(settings)))
    await site.__aenter__()
    site.base = f"http://127.0.0.1:{site.port}/dci"
    return site


async def test_an_async_search_is_answered_by_callback_after_the_request(client, world, app, settings):
    site = await _partner_site(settings)
    try:
        household = await register(client, world.clerk_a, shared_household(household_body()))
        partner = await make_partner(client, world.admin.headers, callback_url=site.base)
        site.app.state.hold = asyncio.Event()  # the partner will not answer until the test lets it
        message = search_message(by_id(household["members"][0]["national_id"]))
        response = await partner.send("/dci/sr/registry/search", "search", message)
        # Acknowledged while the partner still holds: the callback is not sent inside the request.
        assert response.status_code == 202, response.text
        conform("sr", "/registry/search", "response", response.json())
        ack = response.json()["message"]
        assert ack["ack_status"] == "ACK"
        site.app.state.hold.set()
        [(path, body, valid, _)] = await wait_for(site.app, "/registry/on-search")
        assert valid, "the callback's signature verifies with Guichet's published keys"
        assert body["header"]["action"] == "on-search" and body["header"]["receiver_id"] == partner.client_id
        assert body["message"]["transaction_id"] == message["transaction_id"]
        assert body["message"]["correlation_id"] == ack["correlation_id"]
        [group] = body["message"]["search_response"][0]["data"]["reg_records"]
        assert group["group_identifier"][0]["identifier_value"] == household["id"]
        [delivery] = await _delivered(app)
        assert delivery.attempts == 1
        # txn/status, asked asynchronously, answers on txn/on-status.
        status = {"transaction_id": str(uuid.uuid4()), "txnstatus_request": {
            "reference_id": "S-1", "txn_type": "search", "attribute_type": "transaction_id", "attribute_value": message["transaction_id"]}}
        assert (await partner.send("/dci/sr/registry/txn/status", "txn-status", status)).status_code == 202
        [(_, on_status, valid, _)] = await wait_for(site.app, "/registry/txn/on-status")
        assert valid and on_status["message"]["txnstatus_response"]["txn_status"]["correlation_id"] == ack["correlation_id"]
    finally:
        await site.__aexit__()


async def test_a_failing_partner_gets_the_callback_again(client, world, app, settings):
    site = await _partner_site(settings)
    try:
        partner = await make_partner(client, world.admin.headers, callback_url=site.base)
        site.app.state.fail_next = 2
        app.state.dci_worker.backoff_base = 0.0
        response = await partner.send("/dci/sr/registry/search", "search", search_message(by_id("123456789")))
        assert response.status_code == 202
        [refused_first, refused_second] = await wait_for(site.app, "/registry/on-search (refused)", 2, timeout=20)
        [(_, body, valid, _)] = await wait_for(site.app, "/registry/on-search", timeout=20)
        assert valid and body["message"]["search_response"][0]["data"]["reg_records"] == []
        # The same answer each time (the partner can deduplicate on the message id).
        assert refused_first[1]["header"]["message_id"] == refused_second[1]["header"]["message_id"] == body["header"]["message_id"]
        [delivery] = await _delivered(app)
        assert delivery.attempts == 3
    finally:
        app.state.dci_worker.backoff_base = settings.dci_backoff_base_seconds
        await site.__aexit__()


async def test_callbacks_go_only_to_the_registered_url(client, world, settings):
    partner = await make_partner(client, world.admin.headers, callback_url="http://127.0.0.1:9/dci")
    elsewhere = await partner.send("/dci/sr/registry/search", "search", search_message(by_id("1")),
                                   sender_uri="http://attacker.example/registry/on-search")
    assert elsewhere.status_code == 200
    conform("sr", "/registry/search", "response", elsewhere.json())
    assert elsewhere.json()["message"]["error"]["code"] == "err.sender_uri.invalid"
    nowhere = await make_partner(client, world.admin.headers)
    response = await nowhere.send("/dci/sr/registry/search", "search", search_message(by_id("1")))
    assert response.json()["message"]["ack_status"] == "ERR"
    replay = header("search", partner.client_id)
    message = search_message(by_id("1"))
    assert (await client.post("/dci/sr/registry/search", json=envelope(partner.keys, replay, message),
                              headers=partner.headers)).json()["message"]["ack_status"] == "ACK"
    again = await client.post("/dci/sr/registry/search", json=envelope(partner.keys, replay, message), headers=partner.headers)
    conform("sr", "/registry/search", "response", again.json())
    assert again.json()["message"]["ack_status"] == "NACK"
    assert again.json()["message"]["error"]["message"].startswith("rjct.message_id.duplicate")


async def test_subscribers_are_told_when_a_household_they_follow_changes(client, world, app, settings):
    site = await _partner_site(settings)
    try:
        followed = await register(client, world.clerk_a, shared_household(household_body()))
        private = await register(client, world.clerk_a, household_body())  # no registry_sharing consent
        partner = await make_partner(client, world.admin.headers, callback_url=site.base)
        subscription = {"transaction_id": str(uuid.uuid4()), "subscribe_request": [{
            "reference_id": "SUB-1", "timestamp": header("x", "y")["message_ts"], "subscribe_criteria": {
                "reg_event_type": "NewHouseHoldMember,IDPoorLevelChanged,HouseholdMoved",
                "filter_type": "predicate", "filter": [{"seq_num": 1, "expression1": {
                    "attribute_name": "location", "operator": "eq", "attribute_value": "1701"}}],
                "notify_record_type": "Group"}, "locale": "eng"}]}
        response = await partner.send("/dci/sr/registry/subscribe", "subscribe", subscription, api="core")
        assert response.status_code == 202
        conform("core", "/registry/subscribe", "response", response.json())
        [(_, on_subscribe, valid, _)] = await wait_for(site.app, "/registry/on-subscribe")
        assert valid
        [info] = on_subscribe["message"]["subscribe_response"][0]["subscriptions"]
        code = info["code"]
        # A new member in the followed household; the same in a household without consent.
        member = {"given_name": "Kosal", "family_name": "Pen", "sex": "male", "birth_year": 1950, "birth_date_approximate": True,
                  "relationship": "parent", "confirm_new": True, "confirm_unlikely": True}
        for household in (private, followed):
            added = await client.post(f"/api/v1/households/{household['id']}/members", json=member, headers=world.clerk_a.headers)
            assert added.status_code == 201, added.text
        [(_, notify, valid, _)] = await wait_for(site.app, "/registry/notify")
        assert valid
        [event] = notify["message"]["notify_event"]
        assert event["data"]["reg_event_type"] == "NewHouseHoldMember" and event["data"]["subscription_code"] == code
        assert event["data"]["reg_records"]["group_identifier"][0]["identifier_value"] == followed["id"]
        assert event["data"]["reg_records"]["group_size"] == 3
        audited = [r for r in await db_rows(app, AuditEvent, AuditEvent.action == "dci_read") if r.details.get("subscription") == code]
        assert [r.details["results"] for r in audited] == [[followed["id"]]]  # what was told is audited as a read
        # An IDPoor change is told too; then the client unsubscribes and hears nothing more.
        read = await client.get(f"/api/v1/households/{followed['id']}", headers=world.clerk_a.headers)
        changed = await client.patch(f"/api/v1/households/{followed['id']}", json={"idpoor": None},
                                     headers={**world.clerk_a.headers, "If-Match": read.headers["ETag"]})
        assert changed.status_code == 200, changed.text
        notified = await wait_for(site.app, "/registry/notify", 2)
        kinds = {e["data"]["reg_event_type"] for e in notified[1][1]["message"]["notify_event"]}
        assert kinds == {"IDPoorLevelChanged"}
        stop = {"transaction_id": str(uuid.uuid4()), "timestamp": header("x", "y")["message_ts"], "subscription_codes": [code]}
        assert (await partner.send("/dci/sr/registry/unsubscribe", "unsubscribe", stop, total_count=1, api="core")).status_code == 202
        [(_, gone, valid, _)] = await wait_for(site.app, "/registry/on-unsubscribe")
        assert valid and gone["message"]["status"] == "succ"
        unknown = {"transaction_id": str(uuid.uuid4()), "timestamp": header("x", "y")["message_ts"], "subscription_codes": [code]}
        await partner.send("/dci/sr/registry/unsubscribe", "unsubscribe", unknown, total_count=1, api="core")
        [_, again] = await wait_for(site.app, "/registry/on-unsubscribe", 2)
        assert again[1]["message"]["status_reason_code"] == "rjct.subscription_code.invalid"
        await client.post(f"/api/v1/households/{followed['id']}/members", json=member | {"given_name": "Vibol"},
                          headers=world.clerk_a.headers)
        await app.state.dci_worker.run_once()
        assert len([r for r in site.app.state.received if r[0] == "/registry/notify"]) == 2
    finally:
        await site.__aexit__()


async def test_subscribing_to_unknown_events_or_outside_the_scope_is_refused(client, world, settings):
    site = await _partner_site(settings)
    try:
        partner = await make_partner(client, world.admin.headers, callback_url=site.base, query_types=("idtype-value",))
        items = [{"reference_id": "A", "timestamp": header("x", "y")["message_ts"], "subscribe_criteria": {
                    "reg_event_type": "Marriage", "filter_type": "idtype-value", "filter": {"type": "NID", "value": "1"},
                    "notify_record_type": "Group"}},
                 {"reference_id": "B", "timestamp": header("x", "y")["message_ts"], "subscribe_criteria": {
                    "reg_event_type": "Death", "filter_type": "predicate", "filter": [], "notify_record_type": "Group"}}]
        response = await partner.send("/dci/sr/registry/subscribe", "subscribe", {"transaction_id": "T", "subscribe_request": items},
                                      api="core")
        assert response.status_code == 202
        [(_, body, _, _)] = await wait_for(site.app, "/registry/on-subscribe")
        answers = [(i["reference_id"], i["status"], i.get("status_reason_code")) for i in body["message"]["subscribe_response"]]
        assert answers == [("A", "rjct", "rjct.notify_types.invalid"), ("B", "rjct", "rjct.notify_details.invalid")]
        assert body["header"]["status"] == "rjct"
    finally:
        await site.__aexit__()

