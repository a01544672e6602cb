"""The HTTP adapter: a partner scheme that decides eligibility itself, behind its own API.

The partner receives only the facts its scheme file declares under `http.needs` (data minimisation),
and opaque references instead of record ids; nothing at all when the household has not consented to
`eligibility_sharing`. Calls carry a bearer token from configuration (GUICHET_PARTNER_TOKENS), run
under connect/read/write timeouts and an overall deadline, are retried at most twice on connection
errors, 429 and 502-504 with the same transaction id (the partner can deduplicate), and go through a
circuit breaker per scheme. Whatever goes wrong gives `error` determinations for this scheme only:
the screening goes on. The contract is in docs/partner-contract.md."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app import metrics
from app.context import request_id_var
from app.i18n import _
from app.schemes.base import (
    Benefit,
    CheckRequest,
    Determination,
    Reason,
    ReasonResult,
    SchemeHealth,
    SchemeLevel,
    SchemeMetadata,
    SchemeVersion,
    SubmissionRequest,
    SubmissionResult,
)
from app.schemes.breaker import CircuitBreaker
from app.schemes.facts import fact_spec, is_person_fact, jsonable
from app.schemes.definition import DefinitionFile, parse_metadata, parse_version_info
from app.schemes.yamlfile import LDict, LList
from app.vocabulary import BenefitFrequency, ConsentPurpose, Outcome

logger = logging.getLogger("guichet.schemes.http")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRIES = 2
ALWAYS_IN_FORCE = SchemeVersion("partner", datetime(2000, 1, 1).date())


# ---- the wire format (documented in docs/partner-contract.md and the reference partner's OpenAPI) -----


class PartnerSubject(BaseModel):
    reference_id: str = Field(max_length=64, description="Opaque; new for every screening. Echo it back.")
    facts: dict[str, Any] = Field(description="Only the person facts the scheme declared it needs.")


class PartnerHousehold(BaseModel):
    facts: dict[str, Any] = Field(description="Only the household facts the scheme declared it needs.")


class EligibilityRequest(BaseModel):
    scheme_code: str
    transaction_id: str = Field(description="The same on every retry of one check: deduplicate on it.")
    as_of: str = Field(description="The check date (YYYY-MM-DD).")
    purpose: Literal["eligibility"] = "eligibility"
    consent: dict[str, Any]
    level: SchemeLevel
    household: PartnerHousehold
    subjects: list[PartnerSubject]


class PartnerReason(BaseModel):
    model_config = ConfigDict(extra="ignore")
    code: str = Field(max_length=60)
    message: str = Field(max_length=500)
    result: ReasonResult | None = None


class PartnerBenefit(BaseModel):
    model_config = ConfigDict(extra="ignore")
    amount: int | None = Field(default=None, ge=0, le=10**12)
    currency: str = Field(default="KHR", pattern=r"^[A-Z]{3}$")
    frequency: BenefitFrequency | None = None
    description: str | None = Field(default=None, max_length=500)


class PartnerDetermination(BaseModel):
    model_config = ConfigDict(extra="ignore")
    reference_id: str
    outcome: Literal["eligible", "not_eligible", "needs_information", "enrolled", "indeterminate", "error"]
    reasons: list[PartnerReason] = Field(default_factory=list, max_length=50)
    missing_facts: list[str] = Field(default_factory=list, max_length=50)
    benefit: PartnerBenefit | None = None


class EligibilityResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")
    transaction_id: str
    rules_version: str | None = Field(default=None, max_length=40)
    determinations: list[PartnerDetermination] = Field(max_length=1000)


class ApplicationSubmission(BaseModel):
    """An application sent to the partner (the optional `submit` capability)."""

    scheme_code: str
    transaction_id: str = Field(description="The same on every attempt for one application: deduplicate on it.")
    application_id: str = Field(description="Guichet's id of the application; the decision is posted to decision_path.")
    reference: str | None = Field(default=None, description="The reference number on the client's receipt.")
    submitted_on: str | None = Field(default=None, description="The day the client applied (YYYY-MM-DD).")
    purpose: Literal["application"] = "application"
    consent: dict[str, Any]
    level: SchemeLevel
    household: PartnerHousehold
    subject: PartnerSubject | None = Field(description="The applicant's facts; null for a household-level scheme.")
    decision_path: str = Field(description="Where the decision goes, on the office's Guichet: POST with a partner token.")


class SubmissionAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    transaction_id: str
    accepted: bool = True
    partner_reference: str | None = Field(default=None, max_length=100)
    message: str | None = Field(default=None, max_length=500)


class PartnerFailure(Exception):
    def __init__(self, reason: str, message: str, status: int | None = None):
        super().__init__(message)
        self.reason = reason  # a short code kept with the determination: timeout, connect, http_503, ...
        self.message = message
        self.status = status


# ---- the adapter -----------------------------------------------------------------------------------


class HttpAdapter:
    adapter_type = "http"

    def __init__(self, metadata: SchemeMetadata, *, url: str, needs: tuple[str, ...], token: str | None,
                 timeout: httpx.Timeout, overall_seconds: float, backoff_seconds: float, breaker: CircuitBreaker,
                 submit_url: str | None = None):
        self._metadata = metadata
        self.url = url
        self.submit_url = submit_url or url.rsplit("/", 1)[0] + "/applications"
        self.needs = needs
        self.token = token
        self.timeout = timeout
        self.overall_seconds = overall_seconds
        self.backoff_seconds = backoff_seconds
        self.breaker = breaker
        self._health = SchemeHealth(circuit="closed")
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    @property
    def metadata(self) -> SchemeMetadata:
        return self._metadata

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            # One pooled client per event loop (the server's, or a CLI run's).
            self._client = httpx.AsyncClient(timeout=self.timeout, limits=httpx.Limits(max_connections=50))
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and self._client_loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = None

    def health(self) -> SchemeHealth:
        self._health.circuit = self.breaker.state
        self._health.consecutive_failures = self.breaker.consecutive_failures
        return self._health

    def describe(self, language: str = "en") -> dict[str, Any]:
        return {"partner": {"needs": list(self.needs), "timeouts": {
            "connect": self.timeout.connect, "read": self.timeout.read, "write": self.timeout.write,
            "overall": self.overall_seconds}, "retries": MAX_RETRIES,
            "circuit": {"failure_threshold": self.breaker.failure_threshold, "reset_seconds": self.breaker.reset_seconds}}}

    def _errors(self, request: CheckRequest, reason: str, message: str, **provenance: Any) -> list[Determination]:
        return [Determination(self._metadata.code, s.person_id, Outcome.error, None,
                              [Reason("partner", ReasonResult.unknown, message)], provenance={"error": reason, **provenance})
                for s in request.subjects(self._metadata.level)]

    async def check(self, request: CheckRequest) -> list[Determination]:
        code = self._metadata.code
        subjects = request.subjects(self._metadata.level)
        if ConsentPurpose.eligibility_sharing not in request.consent_purposes:
            return [Determination(code, s.person_id, Outcome.needs_information, None,
                                  [Reason("consent", ReasonResult.unknown,
                                          _("Not checked with {agency}: the household has not consented to sharing facts "
                                            "with partner schemes (eligibility_sharing).", agency=self._metadata.agency))],
                                  missing_facts=["consent.eligibility_sharing"], provenance={"skipped": "no_consent"})
                    for s in subjects]
        if not self.breaker.allow():
            self._note(None, "error", "circuit open")
            return self._errors(request, "circuit_open",
                                _("Could not check with {agency}: it has failed repeatedly; calls resume in {seconds} s.",
                                  agency=self._metadata.agency, seconds=f"{self.breaker.retry_in():.0f}"),
                                transaction_id=request.transaction_id)
        body = self._body(request, subjects)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.overall_seconds):
                response, attempts = await self._send(body, request.transaction_id)
            answer = self._parse(response, request.transaction_id)
        except PartnerFailure as failure:
            return self._failed(request, failure, started)
        except TimeoutError:
            return self._failed(request, PartnerFailure("timeout", f"{self._metadata.agency} did not answer within "
                                                        f"{self.overall_seconds:g} s."), started)
        latency = (time.perf_counter() - started) * 1000
        self.breaker.record_success()
        self._note(latency, "ok", None)
        by_reference = {d.reference_id: d for d in answer.determinations}
        if self._metadata.level is SchemeLevel.household and answer.determinations:
            by_reference = {subjects[0].reference: answer.determinations[0]}  # one answer, about the household
        provenance = {"transaction_id": request.transaction_id, "http_status": response.status_code,
                      "latency_ms": round(latency, 1), "attempts": attempts}
        return [self._determination(s.person_id, by_reference.get(s.reference), answer.rules_version, provenance)
                for s in subjects]

    def _failed(self, request: CheckRequest, failure: PartnerFailure, started: float) -> list[Determination]:
        latency = (time.perf_counter() - started) * 1000
        self.breaker.record_failure()
        self._note(latency, "error", failure.reason)
        logger.warning("partner %s failed: %s", self._metadata.code, failure.reason)
        return self._errors(request, failure.reason, _("Could not check with {agency}: {problem}", agency=self._metadata.agency,
                                                       problem=failure.message),
                            transaction_id=request.transaction_id, http_status=failure.status, latency_ms=round(latency, 1))

    def _note(self, latency: float | None, outcome: str, error: str | None) -> None:
        metrics.partner_call(self._metadata.code, latency / 1000 if latency is not None else None, outcome,
                             "circuit_open" if error == "circuit open" else error, self.breaker.state)
        if latency is not None:
            self._health.last_latency_ms = round(latency, 1)
        self._health.last_outcome = outcome
        self._health.last_error = error
        self._health.last_checked_at = datetime.now(UTC).isoformat(timespec="seconds")

    def _body(self, request: CheckRequest, subjects) -> dict[str, Any]:
        person_needs = [n for n in self.needs if is_person_fact(n)]
        household_needs = [n for n in self.needs if not is_person_fact(n)]
        return EligibilityRequest(
            scheme_code=self._metadata.code, transaction_id=request.transaction_id, as_of=request.as_of.isoformat(),
            consent={"purposes": [ConsentPurpose.eligibility_sharing.value]}, level=self._metadata.level,
            household=PartnerHousehold(facts=jsonable({n: request.household_facts.get(n) for n in household_needs})),
            subjects=[PartnerSubject(reference_id=s.reference, facts=jsonable({n: s.facts.get(n) for n in person_needs}))
                      for s in (subjects if self._metadata.level is SchemeLevel.person else [])],
        ).model_dump(mode="json")

    async def _send(self, body: dict[str, Any], transaction_id: str, url: str | None = None) -> tuple[httpx.Response, int]:
        # X-Request-ID: the request that caused the call (the clerk's), so both sides' logs meet; the
        # transaction id when there is none (a CLI rescreen). The partner deduplicates on Idempotency-Key.
        headers = {"X-Request-ID": request_id_var.get() or transaction_id, "Idempotency-Key": transaction_id}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        client = self._http()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await client.post(url or self.url, json=body, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
                if attempt > MAX_RETRIES:
                    raise PartnerFailure("connect", "the partner cannot be reached.") from exc
                await asyncio.sleep(self._backoff(attempt, None))
                continue
            except httpx.TimeoutException as exc:  # read/write/pool: the partner may be working on it; don't pile on
                raise PartnerFailure("timeout", "the partner did not answer in time.") from exc
            except httpx.HTTPError as exc:
                raise PartnerFailure("transport", f"the call failed ({type(exc).__name__}).") from exc
            if response.status_code in RETRY_STATUSES and attempt <= MAX_RETRIES:
                await asyncio.sleep(self._backoff(attempt, response.headers.get("Retry-After")))
                continue
            return response, attempt

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        delay = self.backoff_seconds * (2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
        if retry_after:
            try:
                delay = max(delay, float(retry_after))
            except ValueError:
                pass
        return min(delay, self.overall_seconds)

    def _parse(self, response: httpx.Response, transaction_id: str) -> EligibilityResponse:
        status = response.status_code
        if status != 200:
            kind = "unauthorised" if status in (401, 403) else f"http_{status}"
            raise PartnerFailure(kind, f"the partner answered HTTP {status}.", status)
        try:
            answer = EligibilityResponse.model_validate_json(response.content)
        except ValidationError:
            raise PartnerFailure("malformed", "the partner's answer is not in the agreed format.", status) from None
        if answer.transaction_id != transaction_id:
            raise PartnerFailure("malformed", "the partner answered another transaction.", status)
        return answer

    def _determination(self, person_id, answer: PartnerDetermination | None, rules_version: str | None,
                       provenance: dict[str, Any]) -> Determination:
        code = self._metadata.code
        if answer is None:
            return Determination(code, person_id, Outcome.error, rules_version,
                                 [Reason("partner", ReasonResult.unknown, _("The partner's answer left this person out."))],
                                 provenance=provenance | {"error": "missing_subject"})
        outcome = {"enrolled": Outcome.eligible, "indeterminate": Outcome.error}.get(answer.outcome) or Outcome(answer.outcome)
        default = {Outcome.eligible: ReasonResult.passed, Outcome.not_eligible: ReasonResult.failed}.get(outcome, ReasonResult.unknown)
        reasons = [Reason(r.code, r.result or default, r.message) for r in answer.reasons]
        if answer.outcome == "enrolled":
            reasons.insert(0, Reason("enrolled", ReasonResult.passed, _("Already enrolled in {scheme}.", scheme=self._metadata.name)))
        benefit = None
        if answer.benefit is not None and outcome is Outcome.eligible:
            b = answer.benefit
            benefit = Benefit(b.amount, b.currency, b.frequency, b.description)
        return Determination(code, person_id, outcome, rules_version, reasons,
                             missing_facts=list(answer.missing_facts) if outcome is Outcome.needs_information else [],
                             benefit=benefit, provenance=provenance | {"partner_outcome": answer.outcome})

    # ---- applications (the optional submit capability of SubmittingAdapter) ------------------------------

    async def submit(self, request: SubmissionRequest) -> SubmissionResult:
        """Send an application, with the same minimised facts, timeouts, retries and breaker as a check.
        Never raises: a failure says whether trying again later may help (`retryable`)."""
        agency = self._metadata.agency
        if not self.breaker.allow():
            self._note(None, "error", "circuit open")
            return SubmissionResult(False, message=f"{agency} has failed repeatedly; calls resume in "
                                    f"{self.breaker.retry_in():.0f} s.", retryable=True, provenance={"error": "circuit_open"})
        body = self._submission_body(request)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.overall_seconds):
                response, attempts = await self._send(body, request.transaction_id, url=self.submit_url)
        except PartnerFailure as failure:
            return self._submission_failed(failure, started)
        except TimeoutError:
            return self._submission_failed(PartnerFailure("timeout", f"{agency} did not answer within {self.overall_seconds:g} s."),
                                           started)
        latency = (time.perf_counter() - started) * 1000
        status = response.status_code
        provenance = {"transaction_id": request.transaction_id, "http_status": status, "latency_ms": round(latency, 1),
                      "attempts": attempts}
        if status in (200, 201, 202):
            try:
                answer = SubmissionAnswer.model_validate_json(response.content)
            except ValidationError:
                answer = None
            if answer is None or answer.transaction_id != request.transaction_id:
                return self._submission_failed(PartnerFailure("malformed", "the partner's answer is not in the agreed format.",
                                                              status), started)
            self.breaker.record_success()
            self._note(latency, "ok", None)
            return SubmissionResult(answer.accepted, answer.partner_reference, answer.message, retryable=False,
                                    provenance=provenance)
        if status in (401, 403) or status >= 500 or status in RETRY_STATUSES:
            kind = "unauthorised" if status in (401, 403) else f"http_{status}"
            return self._submission_failed(PartnerFailure(kind, f"the partner answered HTTP {status}.", status), started)
        # Another 4xx: the partner is up and refuses this application; sending it again will not help.
        self.breaker.record_success()
        self._note(latency, "ok", None)
        return SubmissionResult(False, message=f"{agency} refused the application (HTTP {status}).", retryable=False,
                                provenance=provenance | {"error": f"http_{status}"})

    def _submission_failed(self, failure: PartnerFailure, started: float) -> SubmissionResult:
        latency = (time.perf_counter() - started) * 1000
        self.breaker.record_failure()
        self._note(latency, "error", failure.reason)
        logger.warning("partner %s: submission failed: %s", self._metadata.code, failure.reason)
        return SubmissionResult(False, message=f"Could not send to {self._metadata.agency}: {failure.message}", retryable=True,
                                provenance={"error": failure.reason, "http_status": failure.status, "latency_ms": round(latency, 1)})

    def _submission_body(self, request: SubmissionRequest) -> dict[str, Any]:
        person_needs = [n for n in self.needs if is_person_fact(n)]
        household_needs = [n for n in self.needs if not is_person_fact(n)]
        subject = None
        if self._metadata.level is SchemeLevel.person:
            subject = PartnerSubject(reference_id=request.subject.reference,
                                     facts=jsonable({n: request.subject.facts.get(n) for n in person_needs}))
        return ApplicationSubmission(
            scheme_code=self._metadata.code, transaction_id=request.transaction_id, application_id=str(request.application_id),
            reference=request.reference, submitted_on=request.submitted_on.isoformat() if request.submitted_on else None,
            consent={"purposes": [ConsentPurpose.eligibility_sharing.value]}, level=self._metadata.level,
            household=PartnerHousehold(facts=jsonable({n: request.household_facts.get(n) for n in household_needs})),
            subject=subject, decision_path=f"/api/v1/partner/applications/{request.application_id}/decision",
        ).model_dump(mode="json")

    @classmethod
    def from_definition(cls, doc: LDict, *, source: str, settings: Any = None) -> HttpAdapter:
        where = DefinitionFile(source)
        http = doc.get("http")
        if not isinstance(http, LDict):
            raise where.fail("an http scheme needs an 'http' section (url, needs, timeouts...)", doc, "http" if "http" in doc else None)
        allowed = {"url", "submit_url", "needs", "timeouts", "backoff_seconds", "circuit"}
        for key in http:
            if key not in allowed:
                raise where.fail(f"unknown key '{key}' in http (known: {', '.join(sorted(allowed))})", http, key)
        needs = http.get("needs")
        if not isinstance(needs, LList) or not needs:
            raise where.fail("http.needs lists the facts the partner needs (and gets nothing else)", http, "needs" if "needs" in http else None)
        for i, name in enumerate(needs):
            if not isinstance(name, str) or fact_spec(name) is None:
                raise where.fail(f"unknown fact {name!r} in http.needs", needs, i)
        timeouts = http.get("timeouts", LDict())
        seconds = {}
        for key, default in (("connect", 3.0), ("read", 10.0), ("write", 5.0), ("pool", 2.0), ("overall", 15.0)):
            value = timeouts.get(key, default) if isinstance(timeouts, dict) else None
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 120:
                raise where.fail(f"http.timeouts.{key} is a number of seconds (0 to 120)", timeouts if isinstance(timeouts, LDict) else http, key)
            seconds[key] = float(value)
        breaker = partner_breaker(http, where, "http")
        backoff = http.get("backoff_seconds", 0.2)
        if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or not 0 <= backoff <= 10:
            raise where.fail("http.backoff_seconds is a number of seconds (0 to 10)", http, "backoff_seconds")
        metadata = parse_metadata(doc, where, adapter="http", facts=tuple(needs), versions=partner_versions(doc, where))
        code = metadata.code
        overrides = getattr(settings, "partner_urls", None) or {}
        url = overrides.get(code) or http.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise where.fail("http.url is the partner's eligibility endpoint (http:// or https://)", http, "url")
        submit_url = http.get("submit_url")
        if submit_url is not None and (not isinstance(submit_url, str) or not submit_url.startswith(("http://", "https://"))):
            raise where.fail("http.submit_url is the partner's applications endpoint (http:// or https://)", http, "submit_url")
        tokens = getattr(settings, "partner_tokens", None) or {}
        token = tokens.get(code)
        token = token.get_secret_value() if hasattr(token, "get_secret_value") else token
        return cls(metadata, url=url, needs=tuple(needs), token=token,
                   timeout=httpx.Timeout(connect=seconds["connect"], read=seconds["read"], write=seconds["write"], pool=seconds["pool"]),
                   overall_seconds=seconds["overall"], backoff_seconds=float(backoff),
                   breaker=breaker, submit_url=submit_url)


# ---- what every partner scheme file says the same way (http here, dci in app/schemes/dci.py) -----------


def partner_breaker(section: LDict, where: DefinitionFile, name: str) -> CircuitBreaker:
    """`<name>.circuit: {failures, reset_seconds}`: the scheme's circuit breaker."""
    circuit = section.get("circuit", LDict())
    threshold = circuit.get("failures", 5) if isinstance(circuit, dict) else None
    reset = circuit.get("reset_seconds", 30) if isinstance(circuit, dict) else None
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise where.fail(f"{name}.circuit.failures is a whole number of at least 1", section, "circuit")
    if isinstance(reset, bool) or not isinstance(reset, (int, float)) or reset <= 0:
        raise where.fail(f"{name}.circuit.reset_seconds is a positive number", section, "circuit")
    return CircuitBreaker(failure_threshold=threshold, reset_seconds=float(reset))


def partner_versions(doc: LDict, where: DefinitionFile) -> tuple[SchemeVersion, ...]:
    """A partner decides by its own rules: always in force, unless the file dates its versions."""
    raw_versions = doc.get("versions")
    if raw_versions is None:
        return (ALWAYS_IN_FORCE,)
    if isinstance(raw_versions, LList) and raw_versions and all(isinstance(v, LDict) for v in raw_versions):
        return tuple(parse_version_info(v, where) for v in raw_versions)
    raise where.fail("'versions' of a partner scheme is a list of {version, effective_from, effective_to}", doc, "versions")
