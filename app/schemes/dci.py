"""The DCI adapter: a scheme whose beneficiaries are in a DCI registry (IBR's `enrolled`, or a scheme's
own Social Registry endpoint), asked whether a person is already enrolled, so that screening can say
"already receives it".

    code: KH-FAMILY-PKG
    adapter: dci
    level: person
    ...
    dci:
      registry: IBR                # a key of GUICHET_DCI_REGISTRIES (URL, token, keys)
      ask: enrolled                # enrolled (IBR /registry/sync/enrolled) | search (/registry/sync/search by ID)
      programme: KH-FAMILY-PKG     # optional: the programme id the registry knows the scheme by
      circuit: {failures: 5, reset_seconds: 30}

Only the member's national ID leaves (and nothing without the household's eligibility_sharing
consent). Enrolled: `eligible`, with the reason "enrolled". Not enrolled: `needs_information` (the
registry only knows who receives the scheme, not who could). A registry that fails: `error` for this
scheme only, never "not eligible"."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from app.dci.client import RegistryRejected, RegistryUnavailable, registry_client
from app.i18n import _
from app.schemes.base import CheckRequest, Determination, Reason, ReasonResult, SchemeHealth, SchemeMetadata
from app.schemes.breaker import CircuitBreaker
from app.schemes.http import partner_breaker, partner_versions
from app.schemes.definition import DefinitionFile, parse_metadata
from app.schemes.yamlfile import LDict
from app.vocabulary import ConsentPurpose, Outcome

logger = logging.getLogger("guichet.schemes.dci")


class DciAdapter:
    adapter_type = "dci"

    def __init__(self, metadata: SchemeMetadata, *, settings: Any, registry: str, ask: str, programme: str | None,
                 breaker: CircuitBreaker):
        self._metadata = metadata
        self.settings = settings
        self.registry = registry
        self.ask = ask
        self.programme = programme
        self.breaker = breaker
        self._health = SchemeHealth(circuit="closed")

    @property
    def metadata(self) -> SchemeMetadata:
        return self._metadata

    def describe(self, language: str = "en") -> dict[str, Any]:
        return {"dci": {"registry": self.registry, "ask": self.ask, "programme": self.programme,
                        "needs": ["person.national_id"]}}

    def health(self) -> SchemeHealth:
        self._health.circuit = self.breaker.state
        self._health.consecutive_failures = self.breaker.consecutive_failures
        return self._health

    def _one(self, person_id, outcome: Outcome, rule: str, result: ReasonResult, message: str, **extra: Any) -> Determination:
        return Determination(self._metadata.code, person_id, outcome, None, [Reason(rule, result, message)], **extra)

    async def check(self, request: CheckRequest) -> list[Determination]:
        name, agency = self._metadata.name, self._metadata.agency
        if ConsentPurpose.eligibility_sharing not in request.consent_purposes:
            return [self._one(s.person_id, Outcome.needs_information, "consent", ReasonResult.unknown,
                              _("Not checked with {agency}: the household has not consented to sharing facts with "
                                "partner schemes (eligibility_sharing).", agency=agency), missing_facts=["consent.eligibility_sharing"],
                              provenance={"skipped": "no_consent"}) for s in request.members]
        client = registry_client(self.settings, self.registry)
        answers = []
        for subject in request.members:
            national_id = subject.facts.get("person.national_id")
            if not national_id:
                answers.append(self._one(subject.person_id, Outcome.needs_information, "national_id", ReasonResult.unknown,
                                         _("{agency} is asked by national ID: record it.", agency=agency),
                                         missing_facts=["person.national_id"]))
                continue
            if not self.breaker.allow():
                answers.append(self._one(subject.person_id, Outcome.error, "partner", ReasonResult.unknown,
                                         _("Could not check with {agency}: it has failed repeatedly; calls resume in {seconds} s.",
                                           agency=agency, seconds=f"{self.breaker.retry_in():.0f}"),
                                         provenance={"error": "circuit_open"}))
                continue
            transaction_id = uuid.uuid4().hex
            started = time.perf_counter()
            try:
                if self.ask == "enrolled":
                    enrolled = (await client.enrolled(transaction_id, national_id, self.programme))[0]
                else:
                    enrolled = bool(await client.search(transaction_id, national_id, entity="Member"))
            except (RegistryUnavailable, RegistryRejected) as exc:
                failed = isinstance(exc, RegistryUnavailable)
                if failed:
                    self.breaker.record_failure()
                else:
                    self.breaker.record_success()
                self._note(started, "error", str(exc))
                logger.warning("dci scheme %s: %s", self._metadata.code, exc)
                answers.append(self._one(subject.person_id, Outcome.error, "partner", ReasonResult.unknown,
                                         _("Could not check with {agency}: {problem}", agency=agency, problem=str(exc)[:400]),
                                         provenance={"error": "unavailable" if failed else "rejected",
                                                     "transaction_id": transaction_id}))
                continue
            self.breaker.record_success()
            latency = self._note(started, "ok", None)
            provenance = {"transaction_id": transaction_id, "latency_ms": latency, "registry": self.registry,
                          "partner_outcome": "enrolled" if enrolled else "not_enrolled"}
            if enrolled:
                answers.append(self._one(subject.person_id, Outcome.eligible, "enrolled", ReasonResult.passed,
                                         _("Already receives {scheme} (enrolled, per {agency}).", scheme=name, agency=agency),
                                         provenance=provenance))
            else:
                answers.append(self._one(subject.person_id, Outcome.needs_information, "not_enrolled", ReasonResult.unknown,
                                         _("Not enrolled in {scheme} per {agency}; the agency decides on an application.",
                                           scheme=name, agency=agency),
                                         provenance=provenance))
        return answers

    def _note(self, started: float, outcome: str, error: str | None) -> float:
        latency = round((time.perf_counter() - started) * 1000, 1)
        self._health.last_latency_ms = latency
        self._health.last_outcome = outcome
        self._health.last_error = error
        return latency

    @classmethod
    def from_definition(cls, doc: LDict, *, source: str, settings: Any = None) -> DciAdapter:
        where = DefinitionFile(source)
        section = doc.get("dci")
        if not isinstance(section, LDict):
            raise where.fail("a dci scheme needs a 'dci' section (registry, ask, programme)", doc, "dci" if "dci" in doc else None)
        for key in section:
            if key not in {"registry", "ask", "programme", "circuit"}:
                raise where.fail(f"unknown key '{key}' in dci (known: ask, circuit, programme, registry)", section, key)
        registries = getattr(settings, "dci_registries", None) or {}
        registry = section.get("registry")
        if not isinstance(registry, str) or registry not in registries:
            raise where.fail(f"dci.registry names a registry of GUICHET_DCI_REGISTRIES (configured: "
                             f"{', '.join(sorted(registries)) or 'none'})", section, "registry")
        ask = section.get("ask", "enrolled")
        if ask not in ("enrolled", "search"):
            raise where.fail("dci.ask is enrolled or search", section, "ask")
        programme = section.get("programme")
        if programme is not None and not isinstance(programme, str):
            raise where.fail("dci.programme is the programme's id at the registry", section, "programme")
        if doc.get("level", "person") != "person":
            raise where.fail("a dci scheme is asked about persons (level: person)", doc, "level")
        metadata = parse_metadata(doc, where, adapter="dci", facts=("person.national_id",),
                                  versions=partner_versions(doc, where))
        return cls(metadata, settings=settings, registry=registry, ask=ask, programme=programme,
                   breaker=partner_breaker(section, where, "dci"))
