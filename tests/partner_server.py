"""A reference partner scheme: the other side of Guichet's HTTP adapter contract (docs/partner-contract.md).

It decides a made-up "youth employment programme" (KH-YOUTH-JOBS): a person aged 15 to 30 who is
unemployed is eligible. Its OpenAPI (GET /openapi.json, /docs) documents the contract. The tests run
it on loopback, in process, and steer it through `app.state.script` (what to do with the next
requests: fail with a status, answer slowly, send a malformed body, hang). The benchmark runs it as
a process: `python tests/partner_server.py --port 8123 --delay-ms 200 --token secret`."""

from __future__ import annotations

import argparse
import asyncio
import socket
import time
from collections import deque
from typing import Any

import uvicorn
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response

from app.schemes.http import EligibilityRequest, EligibilityResponse, PartnerDetermination, PartnerReason

SCHEME_CODE = "KH-YOUTH-JOBS"


def decide(subject_facts: dict[str, Any], reference_id: str) -> PartnerDetermination:
    age = subject_facts.get("person.age_years")
    status = subject_facts.get("person.employment_status")
    young = age is not None and 15 <= age <= 30
    reasons = []
    if age is not None:
        reasons.append(PartnerReason(code="youth", message="Is aged 15 to 30" if young else f"Is not aged 15 to 30 ({age})",
                                     result="passed" if young else "failed"))
    if age is not None and not young:
        return PartnerDetermination(reference_id=reference_id, outcome="not_eligible", reasons=reasons)
    if age is None or status is None:
        missing = [n for n in ("person.age_years", "person.employment_status") if subject_facts.get(n) is None]
        return PartnerDetermination(reference_id=reference_id, outcome="needs_information", missing_facts=missing,
                                    reasons=reasons + [PartnerReason(code="facts_missing", message="Record: " + ", ".join(missing))])
    reasons.append(PartnerReason(code="unemployed", message="Is unemployed" if status == "unemployed" else "Is not unemployed",
                                 result="passed" if status == "unemployed" else "failed"))
    eligible = status == "unemployed"
    return PartnerDetermination(
        reference_id=reference_id, outcome="eligible" if eligible else "not_eligible", reasons=reasons,
        benefit={"amount": 150000, "currency": "KHR", "frequency": "monthly", "description": "Training stipend"} if eligible else None,
    )


def create_partner_app(*, token: str | None = "partner-secret", delay_seconds: float = 0.0) -> FastAPI:
    app = FastAPI(
        title="Reference partner scheme",
        version="1.0",
        summary="The eligibility endpoint a partner scheme exposes to Guichet's HTTP adapter.",
        description="Request: only the facts the scheme declared it needs, with opaque references. "
                    "Answer 200 with one determination per reference. Guichet retries connection errors, 429 and "
                    "502-504 (at most twice, same transaction_id); anything else is an error for this scheme only.",
    )
    @app.middleware("http")
    async def arrival(request: Request, call_next):
        request.scope.setdefault("state", {})["arrived"] = time.perf_counter()
        return await call_next(request)

    app.state.script = deque()  # per request: {"status": 503}, {"delay": 2.0}, {"malformed": True}, {"hang": True}
    app.state.received = []  # (headers, body) of every request, for the tests
    app.state.delay = delay_seconds
    app.state.token = token

    @app.post("/eligibility", response_model=EligibilityResponse,
              responses={401: {"description": "Missing or wrong bearer token"},
                         429: {"description": "Too many requests; Retry-After says when to come back"},
                         503: {"description": "Temporarily unavailable; Guichet retries"}})
    async def eligibility(request: Request, body: EligibilityRequest,
                          authorization: str | None = Header(default=None),
                          x_request_id: str | None = Header(default=None)) -> Response:
        """Decide eligibility for each subject (or for the household, for a household-level scheme)."""
        app.state.received.append(({"authorization": authorization, "x-request-id": x_request_id,
                                    "idempotency-key": request.headers.get("idempotency-key")}, body.model_dump(mode="json")))
        step = app.state.script.popleft() if app.state.script else {}
        if step.get("hang"):
            await asyncio.sleep(3600)
        delay = step.get("delay", app.state.delay)
        if delay:  # answer `delay` after the request arrived, its own parsing included
            await asyncio.sleep(max(0.0, delay - (time.perf_counter() - request.scope["state"]["arrived"])))
        if "status" in step:
            headers = {"Retry-After": str(step["retry_after"])} if "retry_after" in step else None
            return JSONResponse({"errors": [{"code": "err.service.unavailable", "message": "try later"}]},
                                status_code=step["status"], headers=headers)
        if app.state.token and authorization != f"Bearer {app.state.token}":
            return JSONResponse({"errors": [{"code": "err.request.unauthorized", "message": "bad token"}]}, status_code=401)
        if step.get("malformed"):
            return Response(b'{"transaction_id": "' + body.transaction_id.encode() + b'", "determinations": [{"outcome": 7',
                            media_type="application/json")
        if body.level == "household":
            determinations = [PartnerDetermination(reference_id="household", outcome="not_eligible")]
        else:
            determinations = [decide(s.facts, s.reference_id) for s in body.subjects]
        answer = EligibilityResponse(transaction_id=body.transaction_id, rules_version="youth-2026",
                                     determinations=determinations)
        return JSONResponse(answer.model_dump(mode="json"))

    return app


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class RunningPartner:
    """The partner served by uvicorn on 127.0.0.1 in the current event loop."""

    def __init__(self, app: FastAPI):
        self.app = app
        self.sock = free_socket()
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/eligibility"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=0.1))
        self.task: asyncio.Task | None = None

    async def __aenter__(self) -> RunningPartner:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            await asyncio.sleep(0.005)
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.should_exit = True
        self.server.force_exit = True
        await self.task
        self.sock.close()


class HungServer:
    """Accepts connections and reads the request, then never answers."""

    def __init__(self):
        self.connections: list[asyncio.StreamWriter] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.append(writer)
        try:
            await reader.read(65536)
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass

    async def __aenter__(self) -> HungServer:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/eligibility"
        return self

    async def __aexit__(self, *exc) -> None:
        for writer in self.connections:
            writer.close()
        self.server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--token", default="partner-secret")
    args = parser.parse_args()
    uvicorn.run(create_partner_app(token=args.token, delay_seconds=args.delay_ms / 1000), host="127.0.0.1", port=args.port,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
