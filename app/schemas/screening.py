"""Eligibility screenings and the scheme catalogue: request and response bodies."""

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator

from app.schemas.common import InputModel, ReadModel
from app.schemas.households import HouseholdCreate
from app.schemes.base import ReasonResult
from app.vocabulary import BenefitFrequency, Outcome, SchemeKind

SchemeCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")]


class ScreeningCreate(InputModel):
    schemes: Annotated[list[SchemeCode], Field(min_length=1, max_length=100)] | None = Field(
        default=None, description="Scheme codes to run; every scheme in force when absent.")

    @field_validator("schemes")
    @classmethod
    def _unique(cls, schemes: list[str] | None) -> list[str] | None:
        return list(dict.fromkeys(schemes)) if schemes is not None else None


class ScreeningPreview(HouseholdCreate):
    """The body of a household registration (nothing is registered), plus the schemes to run."""

    schemes: Annotated[list[SchemeCode], Field(min_length=1, max_length=100)] | None = None


class ReasonRead(ReadModel):
    rule: str
    result: str = Field(description="passed, failed or unknown")
    message: str
    facts: dict[str, Any] = Field(default_factory=dict, description="The recorded values the rule looked at.")


class ExplanationNode(ReadModel):
    """A group of the scheme's rules (all, any, not) or one criterion, with how it came out."""

    op: Literal["all", "any", "not"] | None = Field(
        default=None, description="all, any or not for a group; null for a criterion, whose message is the reason of "
                                  "the same rule in reasons[].")
    rule: str | None = Field(default=None, description="The rule's name (a group may have none).")
    message: str | None = Field(default=None, description="A group's plain-language meaning, when the scheme gives one.")
    result: ReasonResult = Field(description="passed, failed or unknown")
    decisive: bool = Field(description="Part of why the verdict is what it is: the path of an `any` that was met, the "
                                       "criterion of an `all` that failed, what is unknown. Other nodes did not matter.")
    children: list["ExplanationNode"] = Field(default_factory=list)


class Explanation(ReadModel):
    """The verdict in the rule's own structure, beside the flat reasons."""

    target: ExplanationNode | None = Field(
        description="Whom the scheme is for (its target group), when it names one. A subject outside it is not eligible "
                    "for that one reason alone, and `rules` is null: nothing else was asked.")
    rules: ExplanationNode | None = Field(description="The scheme's rules; null outside the target group.")


class BenefitRead(ReadModel):
    amount: int | None
    currency: str
    frequency: BenefitFrequency | None
    description: str | None


class DeterminationRead(ReadModel):
    scheme_code: str
    scheme_name: str
    scheme_kind: SchemeKind
    person_id: uuid.UUID | None = Field(description="The member; null for a household-level scheme.")
    member_index: int | None = Field(default=None, description="The member's position in the household (0 = first).")
    outcome: Outcome
    rules_version: str | None
    reasons: list[ReasonRead]
    missing_facts: list[str]
    benefit: BenefitRead | None
    hints: list[str] = Field(description="Near misses: what would make the subject eligible.")
    provenance: dict[str, Any] = Field(default_factory=dict, description="For partner schemes: transaction id, latency, error.")
    explanation: Explanation | None = Field(
        default=None, description="For rules schemes: the verdict in the rule's structure (which path of an `any` made it, "
                                  "which criterion of an `all` failed). Null for partner schemes, errors, and "
                                  "determinations stored before it was kept.")


class OutcomeCounts(ReadModel):
    eligible: int = 0
    not_eligible: int = 0
    needs_information: int = 0
    error: int = 0


class ScreeningRead(ReadModel):
    id: uuid.UUID | None = Field(description="null for a preview, which is not stored.")
    household_id: uuid.UUID | None
    screened_at: datetime
    screened_by: uuid.UUID | None
    trigger: str = Field(description="clerk, rescreen or preview")
    as_of: date = Field(description="The check date: the rules version in force on it applied.")
    schemes: list[str]
    counts: OutcomeCounts
    determinations: list[DeterminationRead]


class ScreeningSummary(ReadModel):
    id: uuid.UUID
    household_id: uuid.UUID
    screened_at: datetime
    screened_by: uuid.UUID | None
    trigger: str
    as_of: date
    schemes: list[str]
    counts: OutcomeCounts


class SchemeHealthRead(ReadModel):
    circuit: str = Field(description="closed, open or half_open")
    last_latency_ms: float | None
    last_outcome: str | None
    last_error: str | None
    last_checked_at: str | None
    consecutive_failures: int


class SchemeSummary(ReadModel):
    code: str
    name: str
    kind: SchemeKind
    level: str = Field(description="person: one verdict per member; household: one for the household")
    agency: str
    legal_reference: str
    adapter: str
    in_force: bool
    rules_version: str | None = Field(description="The version in force today.")
    effective_from: date | None
    effective_to: date | None
    facts: list[str] = Field(description="Every fact the scheme reads (all a partner scheme is sent).")
    sources: list[str]
    description: str | None
    service_level_days: int | None
    can_submit: bool = Field(description="Applications can be submitted to the scheme through its adapter.")
    health: SchemeHealthRead | None = Field(description="For partner schemes reached over HTTP.")


class SchemeDetail(SchemeSummary):
    versions: list[dict[str, Any]] = Field(default_factory=list, description="Each version: parameters, rules with their messages, benefit.")
    partner: dict[str, Any] | None = None
    fact_catalogue: dict[str, str] = Field(default_factory=dict, description="What each fact the scheme reads means.")
