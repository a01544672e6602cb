"""Guichet as a DCI Social Registry: tokens and keys, the envelope and its codes, the three query
types, scopes (offices, consent, fields), locale and pagination, txn status and IBR's enrolled.
Every request sent and answer received is validated against the spec (dci_support.conform)."""

import json
import uuid

from app.config import Environment
from app.dci import signing
from app.models import AuditEvent, DciMessage
from dci_support import (
    PartnerKeys,
    by_id,
    conform,
    consent,
    envelope,
    header,
    make_partner,
    search_item,
    search_message,
    shared_household,
)
from helpers import assert_problem, db_rows, household_body, register, table_counts

SYNC = "/dci/sr/registry/sync/search"


async def _registered(client, account, *, shared: bool = True, **overrides) -> dict:
    body = household_body(**overrides)
    return await register(client, account, shared_household(body) if shared else body)


def _records(response) -> list[dict]:
    assert response.status_code == 200, response.text
    body = response.json()
    conform("sr", "/registry/sync/search", "response", body)
    item = body["message"]["search_response"][0]
    assert item["status"] == "succ", item
    return item["data"]["reg_records"]


def _item(response) -> dict:
    assert response.status_code == 200, response.text
    body = response.json()
    conform("sr", "/registry/sync/search", "response", body)
    return body["message"]["search_response"][0]


def _nid(household: dict) -> str:
    return household["members"][0]["national_id"]


# ---- tokens and keys ----------------------------------------------------------------------------------


async def test_a_client_gets_a_token_and_user_tokens_are_refused(client, world, app, settings):
    partner = await make_partner(client, world.admin.headers)
    response = await client.post("/oauth2/client/token", data={"grant_type": "client_credentials",
                                                               "client_id": partner.client_id, "client_secret": partner.secret})
    assert response.status_code == 200
    answer = response.json()
    conform("authz", "/oauth2/client/token", "response", answer, status="200")
    assert answer["token_type"] == "bearer" and answer["expires_in"] == str(settings.dci_token_minutes * 60)
    # A DCI token is no user's token, and a user's token is no DCI client's.
    assert_problem(await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {answer['access_token']}"}), 401)
    message = search_message(by_id("1"))
    for headers in ({}, world.admin.headers, world.clerk_a.headers, {"Authorization": "Bearer not.a.token"}):
        problem = assert_problem(await client.post(SYNC, json=envelope(partner.keys, header("search", partner.client_id), message),
                                                   headers=headers), 401, "unauthenticated")
        assert problem["errors"][0]["code"] == "err.request.unauthorized"


async def test_wrong_credentials_and_grants_are_refused(client, world):
    partner = await make_partner(client, world.admin.headers)
    wrong = await client.post("/oauth2/client/token", data={"grant_type": "client_credentials", "client_id": partner.client_id,
                                                            "client_secret": "nope"})
    assert_problem(wrong, 401, "invalid-credentials")
    unknown = await client.post("/oauth2/client/token", data={"grant_type": "client_credentials", "client_id": "nobody",
                                                              "client_secret": "nope"})
    assert_problem(unknown, 401, "invalid-credentials")
    grant = await client.post("/oauth2/client/token", data={"grant_type": "password", "client_id": partner.client_id,
                                                            "client_secret": partner.secret})
    assert assert_problem(grant, 400, "bad-request")["error"] == "unsupported_grant_type"
    assert_problem(await client.post("/oauth2/client/token", data={"grant_type": "client_credentials"}), 422, "validation")
    assert_problem(await client.post("/oauth2/client/token", data={"grant_type": "client_credentials", "client_id": "x" * 65,
                                                                   "client_secret": "y"}), 422, "validation")


async def test_a_deactivated_client_or_a_new_secret_revokes_its_tokens(client, world):
    partner = await make_partner(client, world.admin.headers)
    path = f"/api/v1/dci/clients/{partner.record['id']}"
    read = await client.get(path, headers=world.admin.headers)
    renewed = await client.patch(path, json={"new_secret": True}, headers={**world.admin.headers, "If-Match": read.headers["ETag"]})
    assert renewed.status_code == 200 and renewed.json()["client_secret"]
    response = await partner.send(SYNC, "search", search_message(by_id("1")))
    assert_problem(response, 401, "unauthenticated")
    partner.secret = renewed.json()["client_secret"]
    await partner.authenticate()
    assert (await partner.send(SYNC, "search", search_message(by_id("1")))).status_code == 200
    off = await client.patch(path, json={"is_active": False}, headers={**world.admin.headers, "If-Match": renewed.headers["ETag"]})
    assert off.status_code == 200
    assert_problem(await partner.send(SYNC, "search", search_message(by_id("1"))), 401, "unauthenticated")
    refused = await client.post("/oauth2/client/token", data={"grant_type": "client_credentials", "client_id": partner.client_id,
                                                              "client_secret": partner.secret})
    assert_problem(refused, 401, "invalid-credentials")


async def test_jwks_publishes_the_key_every_answer_is_signed_with(client, world, app):
    household = await _registered(client, world.clerk_a)
    partner = await make_partner(client, world.admin.headers)
    keys = await client.get("/.well-known/jwks.json")
    assert keys.status_code == 200
    conform("jwks", "/.well-known/jwks.json", "response", keys.json(), status="200", method="get")
    assert [k["alg"] for k in keys.json()["keys"]] == ["ES256"] and not any("d" in k for k in keys.json()["keys"])
    body = (await partner.send(SYNC, "search", search_message(by_id(_nid(household))))).json()
    assert signing.verify(body, keys.json(), required=True)
    body["message"]["search_response"][0]["data"]["reg_records"] = []  # tampered with on the way
    assert not _verifies(body, keys.json())


def _verifies(body, jwks) -> bool:
    try:
        return signing.verify(body, jwks, required=True)
    except Exception:
        return False


# ---- search: the three query types ------------------------------------------------------------------


async def test_search_by_national_id_finds_the_household_with_its_members(client, world, app):
    household = await _registered(client, world.clerk_a)
    await _registered(client, world.clerk_a)  # another household, not asked for
    partner = await make_partner(client, world.admin.headers)
    message = search_message(by_id(_nid(household)))
    response = await partner.send(SYNC, "search", message)
    body = response.json()
    assert body["header"]["status"] == "succ" and body["header"]["action"] == "on-search"
    assert body["header"]["receiver_id"] == partner.client_id and body["header"]["completed_count"] == 1
    assert body["message"]["transaction_id"] == message["transaction_id"] and body["message"]["correlation_id"]
    [group] = _records(response)
    assert group["@type"] == "Group" and group["group_identifier"][0]["identifier_value"] == household["id"]
    assert group["group_size"] == 2 and group["poverty_score"] == 1
    assert group["place"]["geocode"] == "17010101" and group["place"]["address"].endswith("Siem Reap")
    head = group["group_head_info"]
    assert head["demographic_info"]["name"]["given_name"] == household["members"][0]["given_name"]
    assert {i["identifier_value"] for i in head["member_identifier"]} == {household["members"][0]["id"], _nid(household)}
    assert [m["relationship_head"] for m in group["member_list"]] == ["head", "child"]
    assert head["is_disabled"] is True  # walking: a lot of difficulty
    # The read is audited: who (the client), which records.
    [row] = await db_rows(app, AuditEvent, AuditEvent.action == "dci_read")
    assert row.actor_username == f"dci:{partner.client_id}" and row.actor_role == "dci_client"
    assert row.details["results"] == [household["id"]] and row.office_id == world.office_ids["SR-ACH"]
    # Nothing matched: succ with an empty list, never a missing item.
    assert _records(await partner.send(SYNC, "search", search_message(by_id("999999999")))) == []


async def test_predicate_and_expression_queries(client, world):
    poor = await _registered(client, world.clerk_a)
    richer = await _registered(client, world.clerk_a, idpoor=None, members=3)
    partner = await make_partner(client, world.admin.headers)
    predicate = [{"seq_num": 1, "expression1": {"attribute_name": "poverty_score", "operator": "ge", "attribute_value": 1},
                  "condition": "and", "expression2": {"attribute_name": "group_size", "operator": "le", "attribute_value": 2}}]
    found = _records(await partner.send(SYNC, "search", search_message(search_item("predicate", predicate))))
    assert [g["group_identifier"][0]["identifier_value"] for g in found] == [poor["id"]]
    either = [{"seq_num": 1, "expression1": {"attribute_name": "poverty_score", "operator": "eq", "attribute_value": 0},
               "condition": "or", "expression2": {"attribute_name": "location", "operator": "eq", "attribute_value": "1701"}}]
    found = _records(await partner.send(SYNC, "search", search_message(search_item("predicate", either))))
    assert {g["group_identifier"][0]["identifier_value"] for g in found} == {poor["id"], richer["id"]}
    negated = [{"seq_num": 1, "expression1": {"attribute_name": "location", "operator": "eq", "attribute_value": "17"},
                "condition": "not", "expression2": {"attribute_name": "poverty_score", "operator": "eq", "attribute_value": 1}}]
    found = _records(await partner.send(SYNC, "search", search_message(search_item("predicate", negated))))
    assert [g["group_identifier"][0]["identifier_value"] for g in found] == [richer["id"]]
    expression = {"type": "ns:org:QueryType:NoSql", "value": {"expression": {"collection": "Group", "query": {
        "$and": [{"poverty_score": {"$lt": 1}}, {"group_size": {"$gte": 3}}, {"$not": {"sex": "other"}}]}}}}
    found = _records(await partner.send(SYNC, "search", search_message(search_item("expression", expression))))
    assert [g["group_identifier"][0]["identifier_value"] for g in found] == [richer["id"]]
    # A member attribute in a Group search: households with such a member.
    by_member = {"type": "NoSql", "value": {"expression": {"collection": "Group", "query": {"NID": _nid(poor)}}}}
    found = _records(await partner.send(SYNC, "search", search_message(search_item("expression", by_member))))
    assert [g["group_identifier"][0]["identifier_value"] for g in found] == [poor["id"]]


async def test_members_locales_and_pages(client, world):
    households = [await _registered(client, world.clerk_a) for _ in range(3)]
    partner = await make_partner(client, world.admin.headers)
    member = _records(await partner.send(SYNC, "search", search_message(by_id(_nid(households[0]), entity="Member"))))
    assert [m["@type"] for m in member] == ["Member"]
    assert member[0]["member_identifier"][0]["identifier_value"] == households[0]["members"][0]["id"]
    khmer = _item(await partner.send(SYNC, "search", search_message(by_id(_nid(households[0]), locale="khm"))))
    assert khmer["locale"] == "khm"
    [group] = khmer["data"]["reg_records"]
    assert group["group_type"] == "គ្រួសារ" and "សៀមរាប" in group["place"]["address"]
    [french] = _records(await partner.send(SYNC, "search", search_message(by_id(_nid(households[0]), locale="fra"))))
    assert french["group_type"] == "Ménage" and french["poverty_score_type"].startswith("Niveau IDPoor")
    other = _item(await partner.send(SYNC, "search", search_message(by_id(_nid(households[0]), locale="spa"))))
    assert other["locale"] == "eng"
    everyone = [{"seq_num": 1, "expression1": {"attribute_name": "location", "operator": "eq", "attribute_value": "17"}}]
    pages = []
    for number in (1, 2, 3):
        item = _item(await partner.send(SYNC, "search", search_message(search_item(
            "predicate", everyone, page_size=2, page_number=number, sort=[{"attribute_name": "registration_date", "sort_order": "asc"}]))))
        assert item["pagination"] == {"page_size": 2, "page_number": number, "total_count": 3}
        pages.append([g["group_identifier"][0]["identifier_value"] for g in item["data"]["reg_records"]])
    assert pages == [[households[0]["id"], households[1]["id"]], [households[2]["id"]], []]


# ---- scopes: offices, consent, fields -----------------------------------------------------------------


def _queries(household: dict) -> dict[str, dict]:
    """One query of each type that finds this household (and not others of the test)."""
    nid = _nid(household)
    return {"idtype-value": search_item("idtype-value", {"type": "UIN", "value": nid}),
            "predicate": search_item("predicate", [{"seq_num": 1, "expression1": {
                "attribute_name": "national_id", "operator": "eq", "attribute_value": nid}}]),
            "expression": search_item("expression", {"type": "NoSql", "value": {"expression": {
                "collection": "Group", "query": {"national_id": {"$eq": nid}}}}})}


async def test_another_offices_households_are_never_found(client, world):
    theirs = await _registered(client, world.clerk_b)
    ours = await _registered(client, world.clerk_a)
    partner = await make_partner(client, world.admin.headers, offices=["SR-ACH"])
    for query_type, item in _queries(theirs).items():
        assert _records(await partner.send(SYNC, "search", search_message(item))) == [], query_type
    for query_type, item in _queries(ours).items():
        assert len(_records(await partner.send(SYNC, "search", search_message(item)))) == 1, query_type
    both = await make_partner(client, world.admin.headers, offices=["SR-ACH", "SR-SSN"])
    for query_type, item in _queries(theirs).items():
        assert len(_records(await both.send(SYNC, "search", search_message(item)))) == 1, query_type


async def test_only_households_whose_consent_covers_sharing_are_found(client, world):
    household = await _registered(client, world.clerk_a, shared=False)
    partner = await make_partner(client, world.admin.headers)
    for query_type, item in _queries(household).items():
        assert _records(await partner.send(SYNC, "search", search_message(item))) == [], query_type
    path = f"/api/v1/households/{household['id']}/consent"
    given = await client.post(path, json=consent(["registry", "registry_sharing"]), headers=world.clerk_a.headers)
    assert given.status_code == 201, given.text
    for query_type, item in _queries(household).items():
        assert len(_records(await partner.send(SYNC, "search", search_message(item)))) == 1, query_type
    withdrawn = await client.post(path, json=consent(["registry", "eligibility_sharing"]), headers=world.clerk_a.headers)
    assert withdrawn.status_code == 201
    for query_type, item in _queries(household).items():
        assert _records(await partner.send(SYNC, "search", search_message(item))) == [], query_type


async def test_fields_outside_the_scope_never_leave_and_cannot_be_searched_on(client, world):
    household = await _registered(client, world.clerk_a)
    narrow = await make_partner(client, world.admin.headers, fields=["group_identifier", "poverty_score", "member_identifier"])
    for query_type, item in _queries(household).items():
        [group] = _records(await narrow.send(SYNC, "search", search_message(item)))
        text = json.dumps(group, ensure_ascii=False)
        assert set(group) == {"@type", "group_identifier", "group_type", "poverty_score", "poverty_score_type"}, query_type
        for secret in (household["members"][0]["given_name"], household["members"][0]["family_name"], "1701", "+855"):
            assert secret not in text, (query_type, secret)
    by_sex = {"idtype-value": None,
              "predicate": search_item("predicate", [{"seq_num": 1, "expression1": {
                  "attribute_name": "sex", "operator": "eq", "attribute_value": "female"}}]),
              "expression": search_item("expression", {"type": "NoSql", "value": {"expression": {
                  "collection": "Group", "query": {"birth_date": {"$lt": "2000-01-01"}}}}})}
    for query_type, item in by_sex.items():
        if item is None:  # an identifier outside the scope
            no_ids = await make_partner(client, world.admin.headers, fields=["poverty_score"])
            item, partner = _queries(household)["idtype-value"], no_ids
        else:
            partner = narrow
        refused = _item(await partner.send(SYNC, "search", search_message(item)))
        assert refused["status"] == "rjct" and refused["status_reason_code"] == "rjct.search_criteria.invalid", query_type
        assert "scope" in refused["status_reason_message"]
    members = await make_partner(client, world.admin.headers, fields=["member_list", "name"])
    [group] = _records(await members.send(SYNC, "search", search_message(search_item("predicate", [{
        "seq_num": 1, "expression1": {"attribute_name": "given_name", "operator": "eq",
                                      "attribute_value": household["members"][0]["given_name"]}}]))))
    assert [set(m) for m in group["member_list"]] == [{"@type", "demographic_info"}] * 2
    assert set(group["member_list"][0]["demographic_info"]) == {"@type", "name"}
    nameless = await make_partner(client, world.admin.headers, fields=["member_list", "sex", "member_identifier"])
    [group] = _records(await nameless.send(SYNC, "search", search_message(_queries(household)["idtype-value"])))
    assert [set(m["demographic_info"]) for m in group["member_list"]] == [{"@type", "sex", "identifier"}] * 2
    assert household["members"][0]["given_name"] not in json.dumps(group)


async def test_query_types_outside_the_scope_are_refused(client, world):
    household = await _registered(client, world.clerk_a)
    partner = await make_partner(client, world.admin.headers, query_types=("idtype-value",))
    for query_type, item in _queries(household).items():
        answer = _item(await partner.send(SYNC, "search", search_message(item)))
        if query_type == "idtype-value":
            assert answer["status"] == "succ"
        else:
            assert (answer["status"], answer["status_reason_code"]) == ("rjct", "rjct.search_criteria.invalid"), query_type


# ---- the envelope: replays, signatures, codes ---------------------------------------------------------


async def test_a_replayed_message_id_is_refused(client, world):
    household = await _registered(client, world.clerk_a)
    partner = await make_partner(client, world.admin.headers)
    head = header("search", partner.client_id)
    message = search_message(by_id(_nid(household)))
    first = await client.post(SYNC, json=envelope(partner.keys, head, message), headers=partner.headers)
    assert _records(first)
    again = await client.post(SYNC, json=envelope(partner.keys, head, message), headers=partner.headers)
    assert again.status_code == 200
    body = again.json()
    conform("sr", "/registry/sync/search", "response", body)
    assert (body["header"]["status"], body["header"]["status_reason_code"]) == ("rjct", "rjct.message_id.duplicate")
    assert "message" not in body and signing.verify(body, (await client.get("/.well-known/jwks.json")).json(), required=True)


async def test_bad_signatures_are_refused_and_change_nothing(client, world, app):
    household = await _registered(client, world.clerk_a)
    partner = await make_partner(client, world.admin.headers)
    message = search_message(by_id(_nid(household)))
    head = header("search", partner.client_id)
    before = await table_counts(app)
    forged = {
        "another key": PartnerKeys().sign(head, message),
        "another message": partner.keys.sign(head, search_message(by_id("1"))),
        "another header": partner.keys.sign(head | {"message_id": str(uuid.uuid4())}, message),
        "not a JWS": "Signature: namespace=\"spdci\", kidId=\"x\", algorithm=\"ed25519\"",
        "truncated": partner.keys.sign(head, message)[:-10],
    }
    for name, signature in forged.items():
        response = await client.post(SYNC, json={"signature": signature, "header": head, "message": message}, headers=partner.headers)
        problem = assert_problem(response, 401, "unauthenticated")
        assert problem["errors"][0]["code"] == "err.signature.invalid", name
    missing = await client.post(SYNC, json={"header": head, "message": message}, headers=partner.headers)
    assert assert_problem(missing, 401)["errors"][0]["code"] == "err.signature.missing"
    assert await table_counts(app) == before  # no message id, no audit row
    # The same on the async endpoint: an ERR acknowledgement.
    asynchronous = await make_partner(client, world.admin.headers, callback_url="http://127.0.0.1:9/dci")
    response = await client.post("/dci/sr/registry/search", json={
        "signature": PartnerKeys().sign(head | {"sender_id": asynchronous.client_id}, message),
        "header": head | {"sender_id": asynchronous.client_id}, "message": message}, headers=asynchronous.headers)
    assert response.status_code == 200
    conform("sr", "/registry/search", "response", response.json())
    assert response.json()["message"]["ack_status"] == "ERR"
    assert response.json()["message"]["error"]["code"] == "err.signature.invalid"


async def test_an_unsigned_partner_is_taken_when_so_configured_and_rs256_keys_work(client, world):
    household = await _registered(client, world.clerk_a)
    unsigned = await make_partner(client, world.admin.headers, signed=False)
    assert _records(await unsigned.send(SYNC, "search", search_message(by_id(_nid(household))), sign=False))
    rsa = await make_partner(client, world.admin.headers, algorithm="RS256")
    assert _records(await rsa.send(SYNC, "search", search_message(by_id(_nid(household)))))


async def test_envelope_faults_have_their_codes(client, world, app):
    household = await _registered(client, world.clerk_a)
    partner = await make_partner(client, world.admin.headers)
    message = search_message(by_id(_nid(household)))

    async def post(head, body=message):
        return await client.post(SYNC, json=envelope(partner.keys, head, body), headers=partner.headers)

    async def header_code(head, body=message):
        response = await post(head, body)
        assert response.status_code == 200, response.text
        conform("sr", "/registry/sync/search", "response", response.json())
        return response.json()["header"]["status"], response.json()["header"].get("status_reason_code")

    assert await header_code(header("search", partner.client_id, total_count=2)) == ("rjct", "rjct.total_count.invalid")
    assert await header_code(header("subscribe", partner.client_id)) == ("rjct", "rjct.action.invalid")
    assert await header_code(header("search", partner.client_id, version="2.0.0")) == ("rjct", "rjct.version.invalid")
    assert await header_code(header("search", partner.client_id, message_ts="yesterday")) == ("rjct", "rjct.message_ts.invalid")
    # Lenient where the spec's own samples are: a string total_count, another spelling of the encryption flag.
    lenient = header("search", partner.client_id, total_count="1")
    del lenient["is_msg_encrypted"]
    lenient["is_encrypted"] = False
    assert (await post(lenient)).json()["header"]["status"] == "succ"
    for head, code in ((header("search", "someone-else"), "err.sender_id.invalid"),
                       (header("search", partner.client_id, receiver_id="another-registry"), "err.receiver_id.invalid"),
                       (header("search", partner.client_id, is_msg_encrypted=True), "err.encryption.invalid")):
        assert assert_problem(await post(head), 400, "bad-request")["errors"][0]["code"] == code
    malformed = await client.post(SYNC, content=b"{not json", headers={**partner.headers, "Content-Type": "application/json"})
    assert assert_problem(malformed, 400, "malformed-json")["errors"][0]["code"] == "err.request.bad"
    assert assert_problem(await client.post(SYNC, json=[1, 2], headers=partner.headers), 400)["errors"][0]["code"] == "err.request.bad"
    assert_problem(await post(header("search", partner.client_id), {"transaction_id": "T"}), 400, "bad-request")


async def test_each_item_of_a_batch_is_answered_on_its_own(client, world):
    household = await _registered(client, world.clerk_a)
    partner = await make_partner(client, world.admin.headers)
    good = by_id(_nid(household), reference_id="R-good")
    items = [
        good,
        by_id(_nid(household), reference_id="R-good"),
        search_item("predicate", [{"seq_num": 1, "expression1": {"attribute_name": "__class__", "operator": "eq",
                                                                   "attribute_value": 1}}], reference_id="R-attr"),
        search_item("expression", {"type": "NoSql", "value": {"expression": {"collection": "Group", "query": {
            "$where": "function() { return true }"}}}}, reference_id="R-where"),
        search_item("expression", {"type": "NoSql", "value": {"expression": {"collection": "Group", "query": {
            "poverty_score": {"$regex": ".*"}}}}}, reference_id="R-regex"),
        search_item("idtype-value", {"type": "NID", "value": "1"}, page_size=1000, reference_id="R-page"),
        search_item("idtype-value", {"type": "NID", "value": "1"}, sort=[{"attribute_name": "password_hash"}], reference_id="R-sort"),
        search_item("idtype-value", {"type": "SSN", "value": "1"}, reference_id="R-type"),
        search_item("predicate", [{"seq_num": 1, "expression1": {"attribute_name": "group_identifier", "operator": "eq",
                                                                   "attribute_value": "not-a-uuid"}}], reference_id="R-uuid"),
        search_item("predicate", [{"seq_num": 1, "expression1": {"attribute_name": "poverty_score", "operator": "lt",
                                                                   "attribute_value": "a lot"}}], reference_id="R-value"),
        {"reference_id": "R-time", "timestamp": "noon", "search_criteria": good["search_criteria"]},
        {"timestamp": good["timestamp"], "search_criteria": good["search_criteria"]},
    ]
    response = await partner.send(SYNC, "search", search_message(*items), valid=False)
    body = response.json()
    conform("sr", "/registry/sync/search", "response", body)
    answers = [(i["reference_id"], i["status"], i.get("status_reason_code")) for i in body["message"]["search_response"]]
    assert answers == [
        ("R-good", "succ", None), ("R-good", "rjct", "rjct.reference_id.duplicate"), ("R-attr", "rjct", "rjct.search_criteria.invalid"),
        ("R-where", "rjct", "rjct.search_criteria.invalid"), ("R-regex", "rjct", "rjct.search_criteria.invalid"),
        ("R-page", "rjct", "rjct.pagination.invalid"), ("R-sort", "rjct", "rjct.sort.invalid"),
        ("R-type", "rjct", "rjct.search_criteria.invalid"), ("R-uuid", "rjct", "rjct.search_criteria.invalid"),
        ("R-value", "rjct", "rjct.search_criteria.invalid"), ("R-time", "rjct", "rjct.timestamp.invalid"),
        ("", "rjct", "rjct.reference_id.invalid")]
    assert body["header"]["status"] == "succ" and body["header"]["completed_count"] == 1 and body["header"]["total_count"] == 12


async def test_txn_status_answers_what_was_answered(client, world, app):
    household = await _registered(client, world.clerk_a)
    partner = await make_partner(client, world.admin.headers)
    message = search_message(by_id(_nid(household), reference_id="R-1"))
    searched = (await partner.send(SYNC, "search", message)).json()["message"]
    path = "/dci/sr/registry/sync/txn/status"
    for attribute_type, value in (("transaction_id", message["transaction_id"]), ("correlation_id", searched["correlation_id"]),
                                  ("reference_id_list", ["R-1"])):
        status = {"transaction_id": str(uuid.uuid4()), "txnstatus_request": {
            "reference_id": "S-1", "txn_type": "search", "attribute_type": attribute_type, "attribute_value": value}}
        response = await partner.send(path, "txn-status", status)
        body = response.json()
        conform("sr", "/registry/sync/txn/status", "response", body)
        assert body["header"]["status"] == "succ" and body["header"]["action"] == "txn-on-status", attribute_type
        assert body["message"]["correlation_id"] == searched["correlation_id"]
        assert body["message"]["txnstatus_response"]["txn_status"]["search_response"] == searched["search_response"]
    other = await make_partner(client, world.admin.headers)  # another client never sees it
    unknown = {"transaction_id": "T-x", "txnstatus_request": {"reference_id": "S-2", "txn_type": "search",
                                                              "attribute_type": "transaction_id", "attribute_value": message["transaction_id"]}}
    body = (await other.send(path, "txn-status", unknown)).json()
    conform("sr", "/registry/sync/txn/status", "response", body)
    assert body["header"]["status"] == "rjct" and "message" not in body


# ---- IBR: enrolled -------------------------------------------------------------------------------------


async def _approve(client, world, household: dict, scheme: str = "KH-DISAB") -> None:
    case = await client.post("/api/v1/cases", json={"household_id": household["id"]}, headers=world.clerk_a.headers)
    application = await client.post(f"/api/v1/cases/{case.json()['id']}/applications", json={
        "scheme_code": scheme, "person_id": household["members"][0]["id"], "against_screening_reason": "Asked to apply"},
        headers=world.clerk_a.headers)
    assert application.status_code == 201, application.text
    decided = await client.post(f"/api/v1/applications/{application.json()['id']}/decision", json={"decision": "approved"},
                                headers={**world.supervisor_a.headers, "If-Match": application.headers["ETag"]})
    assert decided.status_code == 200, decided.text


async def test_enrolled_says_which_programmes_a_person_receives(client, world):
    enrolled = await _registered(client, world.clerk_a)
    await _approve(client, world, enrolled)
    not_enrolled = await _registered(client, world.clerk_a)
    elsewhere = await _registered(client, world.clerk_b)
    partner = await make_partner(client, world.admin.headers)
    path = "/dci/ibr/registry/sync/enrolled"

    async def ask(national_id: str, programme: str | None = None, action: str = "search") -> dict:
        query = {"person_identifier": {"eq": national_id}}
        if programme:
            query["programme_identifier.programme.programme_identifier"] = {"eq": programme}
        message = {"transaction_id": str(uuid.uuid4()), "enrolled_criteria": {
            "query_type": "expression", "response_entity": "Member", "query": query}}
        response = await partner.send(path, action, message, total_count=1, api="ibr", valid=action == "search")
        assert response.status_code == 200, response.text
        body = response.json()
        conform("ibr", "/registry/sync/enrolled", "response", body["message"], schema="EnrolledResponse")
        return body["message"]["enrolled_response"][0]

    yes = await ask(_nid(enrolled))
    assert yes["enrolled_status"] == "yes" and [p["programme_identifier"] for p in yes["programmes"]] == ["KH-DISAB"]
    assert (await ask(_nid(enrolled), "KH-DISAB", action="enrolled"))["enrolled_status"] == "yes"
    assert (await ask(_nid(enrolled), "KH-HEF"))["enrolled_status"] == "no"
    assert (await ask(_nid(not_enrolled)))["enrolled_status"] == "no"
    assert (await ask(_nid(elsewhere)))["enrolled_status"] == "no"
    by_id_query = {"transaction_id": "T-2", "enrolled_criteria": {"query_type": "idtype-value", "query": {
        "type": "NID", "value": _nid(enrolled)}}}
    response = await partner.send(path, "search", by_id_query, total_count=1, api="ibr")
    assert response.json()["message"]["enrolled_response"][0]["enrolled_status"] == "yes"


async def test_a_failed_request_leaves_no_message_id(client, world, app):
    partner = await make_partner(client, world.admin.headers)
    head = header("search", partner.client_id)
    message = search_message(by_id("1"))
    response = await client.post(SYNC, json={"signature": PartnerKeys().sign(head, message), "header": head, "message": message},
                                 headers=partner.headers)
    assert response.status_code == 401
    assert await db_rows(app, DciMessage) == []
    # ...so the same message, properly signed, is taken.
    assert (await client.post(SYNC, json=envelope(partner.keys, head, message), headers=partner.headers)).json()["header"]["status"] == "succ"
    rows = await db_rows(app, DciMessage)
    assert [r.message_id for r in rows] == [head["message_id"]]


async def test_in_production_without_a_signing_key_only_dci_stops(client, world, app, settings):
    app.state.settings = settings.model_copy(update={"env": Environment.production, "dci_signing_key": None})
    try:
        assert_problem(await client.get("/.well-known/jwks.json"), 503, "service-unavailable")
        assert (await client.get("/api/v1/auth/me", headers=world.clerk_a.headers)).status_code == 200
    finally:
        app.state.settings = settings
