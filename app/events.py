"""Activity events: what an office tells central, versioned, with pseudonymised dimensions only.

This module is the contract between offices and central. The same models validate what an office
emits and what central ingests, so a field that is not declared here (a name, a national ID, a birth
date, free text) cannot travel. A change to a payload is a new schema_version, never an edit; the one
exception is `trigger`, added to every payload with a default that is what central took every event
without it to be (a client served at the window), so that an office's backlog from before it still
counts as it did (docs/monitoring.md)."""

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.vocabulary import (
    AGE_BANDS,
    ApplicationStatus,
    AreaType,
    BenefitFrequency,
    ConsentPurpose,
    EventTrigger,
    GrievanceCategory,
    GrievanceChannel,
    GrievanceStatus,
    Outcome,
    ReferralStatus,
    SchemeKind,
    Sex,
)

Pseudonym = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
AgeBand = Annotated[str, StringConstraints(pattern="^(" + "|".join(a.replace("+", r"\+") for a in AGE_BANDS) + ")$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Dimensions(Strict):
    """Breakdowns for the ministry's indicators; none of them identifies a person."""

    province: Annotated[str, StringConstraints(pattern=r"^\d{2}$")]
    district: Annotated[str, StringConstraints(pattern=r"^\d{4}$")] | None = None
    commune: Annotated[str, StringConstraints(pattern=r"^\d{6}$")] | None = None
    village: Annotated[str, StringConstraints(pattern=r"^\d{8}$")] | None = None
    area_type: AreaType | None = None
    sex: Sex | None = None
    age_band: AgeBand | None = None
    disability: bool | None = None
    idpoor_level: int | None = Field(default=None, ge=1, le=2)
    female_headed: bool | None = None


class EventPayload(Strict):
    household: Pseudonym | None = None
    person: Pseudonym | None = None
    dimensions: Dimensions
    trigger: EventTrigger = Field(default=EventTrigger.window, description=(
        "What caused the event: central counts service to clients (screenings, clients served...) only from "
        "the window. Missing in events of offices older than it: taken as window."))


class HouseholdRegistered(EventPayload):
    size: int = Field(ge=1, le=100)


class HouseholdUpdated(EventPayload):
    fields: list[Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,40}$")]] = Field(max_length=40)


class PersonRegistered(EventPayload):
    pass


class PersonUpdated(EventPayload):
    fields: list[Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,40}$")]] = Field(max_length=40)


class ConsentChanged(EventPayload):
    purposes: list[ConsentPurpose] = Field(max_length=10)


SchemeCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,40}$")]
Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.-]{1,40}$")]
Days = Annotated[int, Field(ge=0, le=36500)]


# ---- eligibility screening -------------------------------------------------------------------------


class ScreeningCompleted(EventPayload):
    """One per screening of a household (the household's dimensions)."""

    screening: Pseudonym
    schemes: int = Field(ge=0, le=1000)
    determinations: int = Field(ge=0, le=100000)
    eligible: int = Field(ge=0, le=100000)


class ScreeningDetermination(EventPayload):
    """One per determination: a member (person set) or the household (person unset) for one scheme."""

    screening: Pseudonym
    scheme: SchemeCode
    scheme_kind: SchemeKind
    outcome: Outcome


# ---- cases, applications, referrals, follow-ups ------------------------------------------------------


class CaseOpened(EventPayload):
    case: Pseudonym


class CaseClosed(EventPayload):
    case: Pseudonym
    outcome: Code
    days_open: Days


class ApplicationSubmitted(EventPayload):
    application: Pseudonym
    scheme: SchemeCode
    scheme_kind: SchemeKind
    against_screening: bool = Field(description="Filed although the latest screening found not_eligible.")


class Benefit(Strict):
    type: Code
    amount: int | None = Field(default=None, ge=0, le=10**12)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "KHR"
    frequency: BenefitFrequency | None = None


class ApplicationDecided(EventPayload):
    application: Pseudonym
    scheme: SchemeCode
    scheme_kind: SchemeKind
    decision: Literal[ApplicationStatus.approved, ApplicationStatus.rejected, ApplicationStatus.withdrawn]
    decided_by: Literal["partner", "supervisor", "applicant"]
    reason_code: Code | None = None
    days_to_decision: Days
    within_service_level: bool
    benefit: Benefit | None = None


class ReferralIssued(EventPayload):
    referral: Pseudonym
    agency: Code
    service: Code | None = None
    due_date: date


class ReferralStatusChanged(EventPayload):
    referral: Pseudonym
    agency: Code
    status: Literal[ReferralStatus.accepted, ReferralStatus.completed, ReferralStatus.declined, ReferralStatus.expired]
    days_open: Days
    overdue: bool


class FollowUpCompleted(EventPayload):
    follow_up: Pseudonym
    overdue: bool


# ---- grievances and appeals --------------------------------------------------------------------------


class GrievanceOpened(EventPayload):
    """household/person are set only for a registered complainant; dimensions then carry their sex
    and age band. An anonymous complaint carries the office's location only."""

    grievance: Pseudonym
    category: GrievanceCategory
    channel: GrievanceChannel
    level: Annotated[int, Field(ge=1, le=5)] = 1
    sla_due_date: date
    appeal_scheme: SchemeCode | None = None


class GrievanceStatusChanged(EventPayload):
    grievance: Pseudonym
    category: GrievanceCategory
    channel: GrievanceChannel
    status: Literal[GrievanceStatus.in_review, GrievanceStatus.resolved, GrievanceStatus.escalated, GrievanceStatus.rejected]
    level: Annotated[int, Field(ge=1, le=5)] = 1
    days_open: Days
    overdue: bool
    upheld: bool | None = Field(default=None, description="For an appeal that is resolved: was it upheld?")
    appeal_scheme: SchemeCode | None = Field(default=None, description="For an appeal: the scheme whose decision it contests.")


# (type, schema_version) -> payload model
EVENT_TYPES: dict[tuple[str, int], type[EventPayload]] = {
    ("household.registered", 1): HouseholdRegistered,
    ("household.updated", 1): HouseholdUpdated,
    ("person.registered", 1): PersonRegistered,
    ("person.updated", 1): PersonUpdated,
    ("consent.changed", 1): ConsentChanged,
    ("screening.completed", 1): ScreeningCompleted,
    ("screening.determination", 1): ScreeningDetermination,
    ("case.opened", 1): CaseOpened,
    ("case.closed", 1): CaseClosed,
    ("application.submitted", 1): ApplicationSubmitted,
    ("application.decided", 1): ApplicationDecided,
    ("referral.issued", 1): ReferralIssued,
    ("referral.status_changed", 1): ReferralStatusChanged,
    ("follow_up.completed", 1): FollowUpCompleted,
    ("grievance.opened", 1): GrievanceOpened,
    ("grievance.status_changed", 1): GrievanceStatusChanged,
}


class ActivityEventEnvelope(Strict):
    """One event as it travels from an office to central."""

    id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f-]{36}$")]
    type: Annotated[str, StringConstraints(max_length=60)]
    schema_version: int = Field(ge=1, le=100)
    occurred_at: datetime
    office_code: Annotated[str, StringConstraints(max_length=20)]
    payload: dict
