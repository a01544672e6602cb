"""The scheme adapter plug-in contract: what a scheme says about itself and what a check returns.

A scheme adapter answers "is this subject eligible?" for one scheme. The subject is a person, or the
household for a household-level scheme. Adapters are plain objects that satisfy `SchemeAdapter`; the
rules adapter and the HTTP adapter are built in, third parties add their own types through the
`guichet.schemes` entry-point group (see app/schemes/registry.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from app.vocabulary import BenefitFrequency, Outcome, SchemeKind


class SchemeLevel(StrEnum):
    person = "person"  # one determination per member
    household = "household"  # one determination for the household


class ReasonResult(StrEnum):
    passed = "passed"
    failed = "failed"
    unknown = "unknown"


Messages = dict[str, str]  # language code -> text; "en" is always present


def say(messages: Messages | None, language: str = "en") -> str | None:
    """The message in the wanted language, falling back to English."""
    if not messages:
        return None
    return messages.get(language) or messages.get("en")


@dataclass(frozen=True, slots=True)
class SchemeVersion:
    version: str
    effective_from: date
    effective_to: date | None = None

    def in_force(self, on: date) -> bool:
        return self.effective_from <= on and (self.effective_to is None or on <= self.effective_to)


@dataclass(frozen=True)
class SchemeMetadata:
    code: str
    name: str
    kind: SchemeKind
    level: SchemeLevel
    agency: str
    legal_reference: str
    adapter: str  # the adapter type's name: "rules", "http" or a plug-in's
    facts: tuple[str, ...]  # every fact the scheme may read (data minimisation for partners)
    versions: tuple[SchemeVersion, ...]
    sources: tuple[str, ...] = ()
    description: Messages = field(default_factory=dict)
    service_level_days: int | None = None  # days the agency takes to decide an application (case management)
    source_file: str | None = None
    names: Messages = field(default_factory=dict)  # the name by language, when the scheme file gives them
    agencies: Messages = field(default_factory=dict)  # the agency's name by language, likewise

    def name_in(self, language: str) -> str:
        return say(self.names, language) or self.name

    def agency_in(self, language: str) -> str:
        return say(self.agencies, language) or self.agency

    def version_on(self, on: date) -> SchemeVersion | None:
        """The version in force on a day (the latest to start, when versions overlap)."""
        candidates = [v for v in self.versions if v.in_force(on)]
        return max(candidates, key=lambda v: v.effective_from) if candidates else None


@dataclass(slots=True)
class Reason:
    rule: str
    result: ReasonResult
    message: str
    facts: dict[str, Any] = field(default_factory=dict)  # the values the rule looked at

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "result": self.result.value, "message": self.message, "facts": self.facts}


@dataclass(slots=True)
class Benefit:
    amount: int | None
    currency: str = "KHR"
    frequency: BenefitFrequency | None = None
    description: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"amount": self.amount, "currency": self.currency,
                "frequency": self.frequency.value if self.frequency else None, "description": self.description}


@dataclass(slots=True)
class Determination:
    """One scheme's verdict for one subject. `error` means "could not be determined" and is never
    shown as not eligible."""

    scheme_code: str
    person_id: uuid.UUID | None  # None for the household
    outcome: Outcome
    rules_version: str | None
    reasons: list[Reason] = field(default_factory=list)
    missing_facts: list[str] = field(default_factory=list)
    benefit: Benefit | None = None
    hints: list[str] = field(default_factory=list)  # near misses: "would qualify with an IDPoor card"
    provenance: dict[str, Any] = field(default_factory=dict)  # partner call: transaction id, latency, status
    # Set by adapters that can tell cheaply that a determination would not change: a digest of its inputs.
    input_fingerprint: str | None = None
    # The rules adapter's structured explanation beside the flat reasons: {target, rules}, trees that
    # mirror the rule with each node's result and whether it decided (app/schemes/rules.py). None
    # for partners (their reasons are a flat list) and errors.
    explanation: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Subject:
    """Who a determination is about. `reference` is an opaque stand-in, the only identifier a partner
    ever sees (a fresh one per screening), so that partners cannot link screenings together."""

    person_id: uuid.UUID | None
    reference: str
    facts: dict[str, Any]  # person facts merged over household facts, by fact name


@dataclass(frozen=True, slots=True)
class CheckRequest:
    as_of: date
    household_facts: dict[str, Any]
    members: tuple[Subject, ...]
    household: Subject
    consent_purposes: frozenset[str]
    transaction_id: str  # reused on every retry, so a partner can deduplicate
    language: str = "en"

    def subjects(self, level: SchemeLevel) -> tuple[Subject, ...]:
        return self.members if level is SchemeLevel.person else (self.household,)


@dataclass(slots=True)
class SchemeHealth:
    """For schemes reached over the network: the circuit breaker and the last call."""

    circuit: str  # closed | open | half_open
    last_latency_ms: float | None = None
    last_outcome: str | None = None  # ok | error
    last_error: str | None = None
    last_checked_at: str | None = None
    consecutive_failures: int = 0


@runtime_checkable
class SchemeAdapter(Protocol):
    """What every scheme adapter offers. `check` never raises for a partner's failure: it answers with
    `error` determinations (the screening goes on without that scheme)."""

    @property
    def metadata(self) -> SchemeMetadata: ...

    async def check(self, request: CheckRequest) -> list[Determination]: ...

    def describe(self, language: str = "en") -> dict[str, Any]:
        """The scheme's rules and messages, readable by a clerk."""
        ...

    def health(self) -> SchemeHealth | None: ...


# ---- optional abilities: what an adapter may offer besides SchemeAdapter -------------------------------
# Found with isinstance (the protocols are runtime-checkable), so a plug-in gains an ability by having the
# method; this file is the whole contract.


@runtime_checkable
class ChecksInProcess(Protocol):
    """An adapter that decides without I/O (the rules adapter): a screening runs it in process while the
    partners' calls are in flight, rather than as one more awaited call."""

    def check_now(self, request: CheckRequest) -> list[Determination]: ...


@runtime_checkable
class ChecksSubjects(Protocol):
    """An adapter that can decide for some of a request's subjects only (`person_ids`; None for a
    household-level scheme's household)."""

    def check_subjects(self, request: CheckRequest, person_ids: Any) -> list[Determination]: ...


@runtime_checkable
class Fingerprinted(ChecksSubjects, Protocol):
    """An adapter whose determinations depend only on what it is given: per subject, a digest of its
    inputs (None: cannot tell). A re-screen re-evaluates only the subjects whose digest changed, and
    never needs the consent in force (only partners do)."""

    def input_fingerprints(self, request: CheckRequest) -> list[tuple[Any, str | None]]: ...


@runtime_checkable
class Closable(Protocol):
    """An adapter holding resources (an HTTP client): the registry closes it when the server stops."""

    async def aclose(self) -> None: ...


# ---- optional ability: submitting an application (used by case management) -------------------------


@dataclass(frozen=True, slots=True)
class SubmissionRequest:
    application_id: uuid.UUID
    scheme_code: str
    subject: Subject
    household_facts: dict[str, Any]
    transaction_id: str  # the same on every attempt for one application, so a partner can deduplicate
    reference: str | None = None  # the number on the client's receipt
    submitted_on: date | None = None


@dataclass(slots=True)
class SubmissionResult:
    accepted: bool
    partner_reference: str | None = None
    message: str | None = None
    retryable: bool = False
    provenance: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class SubmittingAdapter(SchemeAdapter, Protocol):
    """A scheme that also takes applications (e.g. a partner's HTTP API)."""

    async def submit(self, request: SubmissionRequest) -> SubmissionResult: ...


def can_submit(adapter: SchemeAdapter) -> bool:
    return callable(getattr(adapter, "submit", None))


class SchemeDefinitionError(ValueError):
    """A scheme file that cannot be used: its file and line say where."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None):
        self.message = message
        self.source = source
        self.line = line
        where = f"{source}:{line}: " if source and line else (f"{source}: " if source else "")
        super().__init__(f"{where}{message}")
