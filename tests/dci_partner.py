"""The other side of Guichet's DCI APIs, served on loopback by the tests.

- `create_partner_app`: a reference DCI partner (an SP-MIS that queries Guichet's Social Registry): it
  receives Guichet's async answers and notifications on /dci/registry/on-search, /txn/on-status,
  /on-subscribe, /on-unsubscribe and /notify, checks each one's signature with Guichet's published keys
  and the spec's schemas, records it and acknowledges it. `app.state.fail_next` makes it answer 503 that
  many times; `app.state.hold` (an asyncio.Event) makes it wait before answering.
- `create_registry_app`: a stand-in external registry (a civil registry or the IDPoor database) that
  Guichet queries as a client: token endpoint, sync and async search by national ID, IBR `enrolled`; it
  signs its answers with its own key and checks the bearer token it issued."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from typing import Any

import httpx
from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse

from app.security import InvalidSignature, verify_jws
from dci_support import PartnerKeys, conform, now

ON_PATHS = {"/registry/on-search": ("sr", "/registry/on-search"), "/registry/txn/on-status": ("sr", "/registry/txn/on-status"),
            "/registry/on-subscribe": ("core", "/registry/on-subscribe"), "/registry/on-unsubscribe": ("core", "/registry/on-unsubscribe"),
            "/registry/notify": ("core", "/registry/notify")}


def _ack(status: str = "ACK", correlation_id: str = "", code: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"ack_status": status, "timestamp": now(), "correlation_id": correlation_id or str(uuid.uuid4())}
    if code:
        message["error"] = {"code": code, "message": code}
    return {"message": message}


def signature_valid(body: dict[str, Any], jwks: dict[str, Any]) -> bool:
    import json

    try:
        signed = json.loads(verify_jws(body.get("signature") or "", jwks))
    except (InvalidSignature, ValueError):
        return False
    return signed == {"header": body.get("header"), "message": body.get("message")}


def create_partner_app(guichet_jwks: dict[str, Any]) -> FastAPI:
    app = FastAPI(title="Reference DCI partner")
    app.state.received = []  # (path, body, signature valid, monotonic arrival)
    app.state.arrived = asyncio.Condition()
    app.state.fail_next = 0
    app.state.hold = None

    async def receive(request: Request) -> JSONResponse:
        path = request.url.path.removeprefix("/dci")
        body = await request.json()
        if app.state.hold is not None:
            await app.state.hold.wait()
        if app.state.fail_next > 0:
            app.state.fail_next -= 1
            async with app.state.arrived:
                app.state.received.append((path + " (refused)", body, None, time.monotonic()))
                app.state.arrived.notify_all()
            return JSONResponse({"errors": [{"code": "err.service.unavailable", "message": "try later"}]}, status_code=503)
        valid = signature_valid(body, guichet_jwks)
        api, spec_path = ON_PATHS[path]
        conform(api, spec_path, "request", body)
        async with app.state.arrived:
            app.state.received.append((path, body, valid, time.monotonic()))
            app.state.arrived.notify_all()
        answer = _ack("ACK" if valid else "ERR", code=None if valid else "err.signature.invalid")
        conform(api, spec_path, "response", answer)
        return JSONResponse(answer)

    for path in ON_PATHS:
        app.add_api_route("/dci" + path, receive, methods=["POST"])
    return app


async def wait_for(app: FastAPI, path: str, count: int = 1, timeout: float = 10.0) -> list[tuple]:
    """The first `count` deliveries to `path` (waiting for them: the worker sends them after the request)."""
    async def enough():
        async with app.state.arrived:
            await app.state.arrived.wait_for(lambda: len([r for r in app.state.received if r[0] == path]) >= count)

    await asyncio.wait_for(enough(), timeout)
    return [r for r in app.state.received if r[0] == path][:count]


# ---- a stand-in external registry -------------------------------------------------------------------------


def create_registry_app(*, persons: dict[str, dict[str, Any]], enrolled: dict[str, list[str]] | None = None,
                        client_id: str = "guichet", client_secret: str = "registry-secret", sender_id: str = "crvs.test",
                        token_lifetime: int = 600) -> FastAPI:
    """`persons`: national ID -> {given_name, surname, sex, birth_date, idpoor}. `enrolled`: national ID -> programmes."""
    app = FastAPI(title="Stand-in external registry")
    app.state.keys = PartnerKeys("RS256")
    app.state.tokens = set()
    app.state.token_requests = 0
    app.state.requests = []
    app.state.down = False
    app.state.reject_token_once = False
    app.state.bad_signature = False
    app.state.guichet = None  # Guichet's base URL, for async answers
    app.state.sender_id = sender_id

    def signed(header: dict[str, Any], message: Any) -> dict[str, Any]:
        signature = app.state.keys.sign(header, message)
        if app.state.bad_signature:
            signature = PartnerKeys("RS256").sign(header, message)
        return {"signature": signature, "header": header, "message": message}

    def authorised(request: Request) -> bool:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if app.state.reject_token_once and token in app.state.tokens:
            app.state.reject_token_once = False
            app.state.tokens.discard(token)
        return token in app.state.tokens

    @app.post("/oauth2/client/token")
    async def token(grant_type: str = Form(), client_id_: str = Form(alias="client_id"), client_secret_: str = Form(alias="client_secret")):
        app.state.token_requests += 1
        if grant_type != "client_credentials" or client_id_ != client_id or client_secret_ != client_secret:
            return JSONResponse({"errors": [{"code": "err.request.unauthorized", "message": "no"}]}, status_code=401)
        value = secrets.token_urlsafe(16)
        app.state.tokens.add(value)
        return {"access_token": value, "token_type": "bearer", "expires_in": str(token_lifetime)}

    def group(national_id: str) -> dict[str, Any]:
        person = persons[national_id]
        member = {"@type": "Member", "member_identifier": [{"identifier_type": "NID", "identifier_value": national_id}],
                  "demographic_info": {"identifier": [{"identifier_type": "NID", "identifier_value": national_id}],
                                       "name": {"given_name": person["given_name"], "surname": person["surname"]},
                                       "sex": person["sex"], "birth_date": person["birth_date"]}}
        return {"@type": "Group", "group_identifier": [{"identifier_type": "HOUSEHOLD_ID", "identifier_value": "G-" + national_id}],
                "poverty_score": person.get("idpoor", 0), "group_size": 1, "group_head_info": member, "member_list": [member]}

    def answer(message: dict[str, Any]) -> dict[str, Any]:
        items = []
        for item in message["search_request"]:
            value = str(item["search_criteria"]["query"]["value"])
            found = [group(value)] if value in persons else []
            items.append({"reference_id": item["reference_id"], "timestamp": now(), "status": "succ",
                          "data": {"version": "1.0.0", "reg_records": found},
                          "pagination": {"page_size": 10, "page_number": 1, "total_count": len(found)}, "locale": "eng"})
        return {"transaction_id": message["transaction_id"], "correlation_id": str(uuid.uuid4()), "search_response": items}

    def callback_header(action: str, receiver: str) -> dict[str, Any]:
        return {"version": "1.0.0", "message_id": str(uuid.uuid4()), "message_ts": now(), "action": action, "status": "succ",
                "total_count": 1, "completed_count": 1, "sender_id": app.state.sender_id, "receiver_id": receiver,
                "is_msg_encrypted": False}

    @app.post("/registry/sync/search")
    async def sync_search(request: Request):
        body = await request.json()
        app.state.requests.append(("/registry/sync/search", body))
        conform("sr", "/registry/sync/search", "request", body)
        if app.state.down:
            return JSONResponse({"errors": [{"code": "err.service.unavailable", "message": "down"}]}, status_code=503)
        if not authorised(request):
            return JSONResponse({"errors": [{"code": "err.request.unauthorized", "message": "token"}]}, status_code=401)
        reply = signed(callback_header("on-search", body["header"]["sender_id"]), answer(body["message"]))
        conform("sr", "/registry/sync/search", "response", reply)
        return reply

    async def call_back(url: str, reply: dict[str, Any]) -> None:
        await asyncio.sleep(0.05)
        async with httpx.AsyncClient() as http:
            response = await http.post(url, json=reply)
            app.state.requests.append(("callback answered", response.json()))

    @app.post("/registry/search")
    async def search(request: Request):
        body = await request.json()
        app.state.requests.append(("/registry/search", body))
        conform("sr", "/registry/search", "request", body)
        if not authorised(request):
            return JSONResponse({"errors": [{"code": "err.request.unauthorized", "message": "token"}]}, status_code=401)
        reply = signed(callback_header("on-search", body["header"]["sender_id"]), answer(body["message"]))
        conform("sr", "/registry/on-search", "request", reply)
        asyncio.get_running_loop().create_task(call_back(body["header"]["sender_uri"], reply))
        ack = _ack("ACK")
        conform("sr", "/registry/search", "response", ack)
        return JSONResponse(ack, status_code=202)

    @app.post("/registry/sync/enrolled")
    async def sync_enrolled(request: Request):
        body = await request.json()
        app.state.requests.append(("/registry/sync/enrolled", body))
        conform("ibr", "/registry/sync/enrolled", "request", body)
        if app.state.down:
            return JSONResponse({"errors": [{"code": "err.service.unavailable", "message": "down"}]}, status_code=503)
        if not authorised(request):
            return JSONResponse({"errors": [{"code": "err.request.unauthorized", "message": "token"}]}, status_code=401)
        query = body["message"]["enrolled_criteria"]["query"]
        national_id = str(query["person_identifier"]["eq"])
        programme = (query.get("programme_identifier.programme.programme_identifier") or {}).get("eq")
        programmes = [p for p in (enrolled or {}).get(national_id, []) if programme in (None, p)]
        message = {"transaction_id": body["message"]["transaction_id"], "correlation_id": str(uuid.uuid4()),
                   "enrolled_response": [{"reference_id": body["message"]["transaction_id"], "timestamp": now(), "status": "succ",
                                          "enrolled_status": "yes" if programmes else "no"}]}
        conform("ibr", "/registry/sync/enrolled", "response", message)
        return signed(callback_header("on-search", body["header"]["sender_id"]), message)

    return app
