"""A reference partner scheme: the other side of Guichet's HTTP adapter contract (docs/partner-contract.md).

It decides a made-up "youth employment programme" (KH-YOUTH-JOBS): a person aged 15 to 30 who is
unemployed is eligible. It also takes applications (POST /applications) and, when told where the
office's Guichet is (`app.state.guichet`), decides them and posts the decision back over HTTP. Its OpenAPI (GET /openapi.json, /docs) documents the contract. The tests run
it on loopback, in process, and steer it through `app.state.script` (what to do with the next
requests: fail with a status, answer slowly, send a malformed body, hang). The benchmark runs it as
a process: `python tests/partner_server.py --port 8123 --delay-ms 200 --token secret`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import time
from collections import deque
from datetime import date
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response

from app.schemes.http import (
    ApplicationSubmission,
    EligibilityRequest,
    EligibilityResponse,
    PartnerDetermination,
    PartnerReason,
    SubmissionAnswer,
)

SCHEME_CODE = "KH-YOUTH-JOBS"


def scheme_yaml(url: str, *, timeouts: str = "{connect: 1, read: 5, overall: 8}", backoff: float = 0.05,
                service_level_days: int | None = None) -> str:
    """This partner's scheme as an office declares it in a scheme file (GUICHET_SCHEMES_PATH)."""
    sla = f"service_level_days: {service_level_days}\n" if service_level_days is not None else ""
    return f"""
code: {SCHEME_CODE}
name: Youth employment programme
kind: employment
level: person
agency: Reference partner agency
legal_reference: Test agreement
{sla}adapter: http
http:
  url: {url}
  needs: [person.age_years, person.employment_status, household.area_type]
  timeouts: {timeouts}
  backoff_seconds: {backoff}
"""


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


def decision_for(submission: ApplicationSubmission) -> dict[str, Any]:
    """The partner's decision on an application, by the same rule as its eligibility answer: approved with
    the training stipend, or rejected with its reasons in writing."""
    verdict = decide(submission.subject.facts if submission.subject else {}, "applicant")
    if verdict.outcome == "eligible":
        today = date.today()
        start = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
        return {"decision": "approved", "benefit": {"type": "training_stipend", "amount": 150000, "currency": "KHR",
                                                    "frequency": "monthly", "start_date": start.isoformat()}}
    failed = [r.message for r in verdict.reasons if r.result != "passed"] or ["The programme's conditions are not met"]
    return {"decision": "rejected", "reason_code": "youth_conditions_not_met", "reason_text": "; ".join(failed) + "."}


async def call_guichet_back(app: FastAPI, submission: ApplicationSubmission) -> None:
    """Decide, then post the decision to the office's Guichet as the partner's service account: a token by
    client credentials, the application's ETag, the decision with If-Match and an Idempotency-Key."""
    guichet = app.state.guichet
    try:
        await asyncio.sleep(guichet.get("delay", 0.0))
        async with httpx.AsyncClient(base_url=guichet["base_url"], timeout=10) as http:
            token = await http.post("/api/v1/auth/token", data={
                "grant_type": "client_credentials", "client_id": guichet["client_id"], "client_secret": guichet["client_secret"]})
            auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
            current = await http.get(f"/api/v1/partner/applications/{submission.application_id}", headers=auth)
            answer = await http.post(submission.decision_path, json=decision_for(submission), headers=auth | {
                "If-Match": current.headers["ETag"], "Idempotency-Key": f"decision-{submission.transaction_id}"})
            app.state.callbacks.append((answer.status_code, answer.json()))
    except Exception as exc:  # kept for the test to see
        logging.getLogger("partner").exception("call back failed")
        app.state.callbacks.append(("error", repr(exc)))


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

    # per request: {"status": 503}, {"delay": 2.0}, {"malformed": True}, {"hang": True}, or {"meet": asyncio.Barrier}
    # (answer only when every partner sharing the barrier has its request too)
    app.state.script = deque()
    app.state.received = []  # (headers, body) of every request, for the tests
    app.state.delay = delay_seconds
    app.state.token = token
    app.state.submissions = []  # (headers, body) of every application received
    app.state.accepted = {}  # transaction_id -> our reference: a resent application is answered the same
    # {"base_url", "client_id", "client_secret", "delay"}: decide each new application and post the decision
    # back to that Guichet; None: only acknowledge.
    app.state.guichet = None
    app.state.callbacks = []  # (status, body) of each decision posted back
    app.state.tasks = set()

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
        if "meet" in step:
            await step["meet"].wait()
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

    @app.post("/applications", status_code=202, response_model=SubmissionAnswer,
              responses={401: {"description": "Missing or wrong bearer token"},
                         422: {"description": "Not an application this scheme takes; Guichet does not resend it"},
                         503: {"description": "Temporarily unavailable; Guichet retries"}})
    async def applications(request: Request, body: ApplicationSubmission,
                           authorization: str | None = Header(default=None)) -> Response:
        """Take an application (acknowledged with our reference), then decide it and post the decision to
        the office's Guichet at `decision_path`. The same transaction_id again is the same application."""
        app.state.submissions.append(({"authorization": authorization, "idempotency-key": request.headers.get("idempotency-key")},
                                      body.model_dump(mode="json")))
        step = app.state.script.popleft() if app.state.script else {}
        delay = step.get("delay", app.state.delay)
        if delay:
            await asyncio.sleep(delay)
        if "status" in step:
            return JSONResponse({"errors": [{"code": "err.request", "message": "refused"}]}, status_code=step["status"])
        if app.state.token and authorization != f"Bearer {app.state.token}":
            return JSONResponse({"errors": [{"code": "err.request.unauthorized", "message": "bad token"}]}, status_code=401)
        if step.get("malformed"):
            return Response(b'{"accepted": tru', media_type="application/json", status_code=202)
        known = body.transaction_id in app.state.accepted
        reference = app.state.accepted.setdefault(body.transaction_id, f"YJ-{len(app.state.accepted) + 1:05d}")
        if app.state.guichet is not None and not known:
            task = asyncio.create_task(call_guichet_back(app, body))
            app.state.tasks.add(task)
            task.add_done_callback(app.state.tasks.discard)
        answer = SubmissionAnswer(transaction_id=body.transaction_id, accepted=True, partner_reference=reference,
                                  message="Received; the decision follows.")
        return JSONResponse(answer.model_dump(mode="json"), status_code=202)

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
