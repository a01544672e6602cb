"""Case management: cases, notes, the timeline, applications and receipts, decisions, referrals,
follow-ups and grievances (request and response bodies). docs/case-management.md explains them."""

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from app.i18n import LocalisedName, LocalisedStr
from app.schemas.common import InputModel, IsoDate, Name, ReadModel, Text200, Text500, field_error
from app.schemas.screening import SchemeCode
from app.vocabulary import (
    ApplicationRoute,
    ApplicationStatus,
    BenefitFrequency,
    CaseOutcome,
    CaseStatus,
    ComplainantKind,
    FollowUpStatus,
    GrievanceCategory,
    GrievanceChannel,
    GrievanceStatus,
    ReferralStatus,
    SubmissionState,
    WaitingWith,
)

Text1000 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
Text2000 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Text4000 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
# Codes that travel to central in activity events (reason codes, agencies, services, benefit types).
EventCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9_.-]{1,40}$")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


# ---- cases --------------------------------------------------------------------------------------------


class CaseCreate(InputModel):
    household_id: uuid.UUID
    person_id: uuid.UUID | None = Field(default=None, description="The member the case is about, if one.")
    summary: Text500 | None = Field(default=None, description="Why the client came.")
    assigned_to: uuid.UUID | None = Field(default=None, description="A clerk or supervisor of the office; you by default.")


class CaseUpdate(InputModel):
    """Assign, put to wait, reopen or close. Closing needs an outcome, and nothing open in the case."""

    status: CaseStatus | None = None
    assigned_to: uuid.UUID | None = None
    summary: Text500 | None = None
    outcome: CaseOutcome | None = Field(default=None, description="Required when closing.")
    outcome_note: Text1000 | None = None

    @model_validator(mode="after")
    def _outcome_goes_with_closing(self) -> "CaseUpdate":
        if self.status is CaseStatus.closed and self.outcome is None:
            raise field_error("closing a case needs its outcome", "outcome")
        if self.outcome is not None and self.status is not CaseStatus.closed:
            raise field_error("an outcome is given when closing (status: closed)", "outcome")
        if self.outcome_note is not None and self.status is not CaseStatus.closed:
            raise field_error("an outcome note is given when closing (status: closed)", "outcome_note")
        return self


class OpenItems(ReadModel):
    applications: int
    referrals: int
    follow_ups: int
    grievances: int


class CaseRead(ReadModel):
    id: uuid.UUID
    version: int
    office_code: str
    household_id: uuid.UUID
    person_id: uuid.UUID | None
    client_name: str | None = Field(description="The member's name, or the household head's.")
    summary: str | None
    status: CaseStatus
    opened_at: datetime
    opened_by: uuid.UUID
    assigned_to: uuid.UUID | None
    closed_at: datetime | None
    closed_by: uuid.UUID | None
    outcome: CaseOutcome | None
    outcome_note: str | None
    overdue: bool = Field(description="Something in the case is past its due date (decision, referral, follow-up, grievance).")
    open_items: OpenItems


class NoteCreate(InputModel):
    text: Text4000
    confidential: bool = Field(default=False, strict=True, description="Readable by supervisors and admins only.")


class NoteRead(ReadModel):
    id: uuid.UUID
    case_id: uuid.UUID
    author_id: uuid.UUID
    created_at: datetime
    confidential: bool
    text: str | None = Field(description="Null when withheld: a confidential note read by a clerk.")
    withheld: bool


class TimelineEntry(ReadModel):
    at: datetime
    kind: str = Field(description="case.opened, screening.completed, application.submitted, application.decided, "
                                  "referral.issued, note.added, follow_up.completed, grievance.opened, ...")
    subject_type: str
    subject_id: uuid.UUID | None
    actor: str | None = Field(description="Username; null for the system.")
    details: dict[str, Any]


# ---- applications ----------------------------------------------------------------------------------------


class ApplicationCreate(InputModel):
    scheme_code: SchemeCode
    person_id: uuid.UUID | None = Field(
        default=None, description="The applicant, for a person-level scheme (the case's person by default); "
                                  "none for a household-level scheme.")
    against_screening_reason: Text1000 | None = Field(
        default=None, description="Required when the latest screening found the applicant not_eligible for the scheme.")


class ApplicationUpdate(InputModel):
    """The office's transitions; decisions go through POST /applications/{id}/decision."""

    status: Literal[ApplicationStatus.pending_information, ApplicationStatus.submitted, ApplicationStatus.withdrawn]
    note: Text1000 | None = Field(default=None, description="What information is needed; why the client withdrew.")

    @model_validator(mode="after")
    def _say_what_is_needed(self) -> "ApplicationUpdate":
        if self.status is ApplicationStatus.pending_information and self.note is None:
            raise field_error("say what information is needed (note)", "note")
        return self


class BenefitIn(InputModel):
    type: EventCode = Field(description="e.g. cash_transfer, health_coverage, training_stipend")
    amount: int | None = Field(default=None, strict=True, ge=0, le=10**12)
    currency: Currency = "KHR"
    frequency: BenefitFrequency | None = None
    start_date: IsoDate | None = None


class DecisionCreate(InputModel):
    """A rejection carries the written reasons the client is entitled to: a code and a text."""

    decision: Literal[ApplicationStatus.approved, ApplicationStatus.rejected]
    reason_code: EventCode | None = None
    reason_text: Text2000 | None = None
    benefit: BenefitIn | None = None

    @model_validator(mode="after")
    def _reasons_for_a_refusal(self) -> "DecisionCreate":
        if self.decision is ApplicationStatus.rejected:
            if self.reason_code is None:
                raise field_error("a rejection needs a reason code", "reason_code")
            if self.reason_text is None:
                raise field_error("a rejection needs the reasons in writing (reason_text)", "reason_text")
            if self.benefit is not None:
                raise field_error("only an approval carries a benefit", "benefit")
        return self


class DecisionRead(ReadModel):
    decided_at: datetime
    decided_by: uuid.UUID | None
    decided_by_kind: Literal["partner", "supervisor", "applicant"]
    days_to_decision: int
    within_service_level: bool
    reason_code: str | None
    reason_text: str | None
    benefit: dict[str, Any] | None


class SubmissionRead(ReadModel):
    state: SubmissionState
    attempts: int
    error: str | None
    sent_at: datetime | None
    partner_reference: str | None


class ApplicationRead(ReadModel):
    id: uuid.UUID
    version: int
    reference: str
    case_id: uuid.UUID
    office_code: str
    household_id: uuid.UUID
    person_id: uuid.UUID | None
    scheme_code: str
    scheme_name: str
    scheme_kind: str
    agency: str
    route: ApplicationRoute = Field(description="office: a supervisor decides; partner: the scheme's agency decides.")
    status: ApplicationStatus
    submitted_at: datetime
    submitted_by: uuid.UUID
    service_level_days: int
    decision_due_date: date
    overdue: bool
    screening_id: uuid.UUID | None
    screening_outcome: str | None
    against_screening: bool
    screening_override_reason: str | None
    decision: DecisionRead | None
    submission: SubmissionRead | None = Field(description="Sending it to the partner (route partner only).")


class ReceiptRead(ReadModel):
    """The client's proof of application."""

    reference: str
    application_id: uuid.UUID
    scheme_code: str
    scheme_name: str
    agency: str
    applicant_name: str | None
    household_id: uuid.UUID
    submitted_at: datetime
    submitted_on: date = Field(description="The day, in the office's time zone.")
    submitted_time: str = Field(description="HH:MM in the office's time zone.")
    office_code: str
    office_name: str
    received_by: str
    status: ApplicationStatus
    decision_due_date: date
    what_happens_next: list[LocalisedStr]  # in the reader's language
    appeal_window_days: int


class PartnerApplicationRead(ReadModel):
    """What a partner sees of an application of its scheme: no personal data (the facts came with the
    submission)."""

    id: uuid.UUID
    version: int
    reference: str
    scheme_code: str
    status: ApplicationStatus
    submitted_on: date
    decision_due_date: date
    partner_reference: str | None
    decided_at: datetime | None


# ---- referrals -------------------------------------------------------------------------------------------


class ReferralCreate(InputModel):
    agency: EventCode = Field(description="An agency of GET /api/v1/referral-agencies, e.g. nea")
    service: EventCode | None = Field(default=None, description="One of the agency's services, e.g. job_counselling")
    reason: Text1000
    due_date: IsoDate = Field(description="When the agency should have acted; today or later.")
    person_id: uuid.UUID | None = Field(default=None, description="The member referred (the case's person by default).")


class ReferralUpdate(InputModel):
    status: Literal[ReferralStatus.accepted, ReferralStatus.completed, ReferralStatus.declined,
                    ReferralStatus.expired] | None = None
    note: Text1000 | None = Field(default=None, description="What the agency said; goes with a change of status.")
    due_date: IsoDate | None = Field(default=None, description="A new due date, while the referral is open.")

    @model_validator(mode="after")
    def _a_note_goes_with_a_status(self) -> "ReferralUpdate":
        if self.note is not None and self.status is None:
            raise field_error("a note goes with a change of status", "note")
        return self


class PartnerReferralUpdate(InputModel):
    status: Literal[ReferralStatus.accepted, ReferralStatus.completed, ReferralStatus.declined]
    note: Text1000 | None = None


class ReferralRead(ReadModel):
    id: uuid.UUID
    version: int
    reference: str
    case_id: uuid.UUID
    office_code: str
    household_id: uuid.UUID
    person_id: uuid.UUID | None
    agency: str
    agency_name: LocalisedName | None
    service: str | None
    service_name: LocalisedName | None
    reason: str
    due_date: date
    status: ReferralStatus
    overdue: bool
    issued_at: datetime
    issued_by: uuid.UUID
    accepted_at: datetime | None
    closed_at: datetime | None
    outcome_note: str | None


class ReferredClient(ReadModel):
    name: str
    phone: str | None


class PartnerReferralRead(ReadModel):
    """What the receiving agency sees: the slip, and the client's name and phone only when the household
    consented to referral_sharing."""

    id: uuid.UUID
    version: int
    reference: str
    office_code: str
    agency: str
    service: str | None
    reason: str
    due_date: date
    status: ReferralStatus
    issued_on: date
    client: ReferredClient | None


class ReferralSlipRead(ReadModel):
    """The slip the client carries to the agency."""

    reference: str
    referral_id: uuid.UUID
    agency: str
    agency_name: LocalisedName | None
    service: str | None
    service_name: LocalisedName | None
    client_name: str | None = Field(description="The member referred, or the household's head.")
    reason: str
    issued_at: datetime
    issued_on: date = Field(description="The day, in the office's time zone.")
    issued_by: str
    office_code: str
    office_name: str
    due_date: date = Field(description="When the agency should have acted.")
    status: ReferralStatus


class AgencyRead(ReadModel):
    code: str
    name: LocalisedName
    services: dict[str, LocalisedName]


# ---- follow-ups ------------------------------------------------------------------------------------------


class FollowUpCreate(InputModel):
    due_date: IsoDate
    action: Text500 = Field(description="What to do.")
    assigned_to: uuid.UUID | None = Field(default=None, description="A clerk or supervisor of the office; the case's by default.")


class FollowUpUpdate(InputModel):
    status: Literal[FollowUpStatus.completed, FollowUpStatus.cancelled] | None = None
    note: Text1000 | None = Field(default=None, description="What was done; required to complete.")
    due_date: IsoDate | None = None
    action: Text500 | None = None
    assigned_to: uuid.UUID | None = None

    @model_validator(mode="after")
    def _completion_says_what_was_done(self) -> "FollowUpUpdate":
        if self.status is FollowUpStatus.completed and self.note is None:
            raise field_error("completing a follow-up needs a note of what was done", "note")
        return self


class FollowUpRead(ReadModel):
    id: uuid.UUID
    version: int
    case_id: uuid.UUID
    office_code: str
    due_date: date
    action: str
    assigned_to: uuid.UUID | None
    status: FollowUpStatus
    overdue: bool
    created_by: uuid.UUID
    created_at: datetime
    completed_at: datetime | None
    completed_by: uuid.UUID | None
    note: str | None


# ---- grievances and appeals --------------------------------------------------------------------------------


class Complainant(InputModel):
    """A registered person (person_id), someone not registered (name and contact), or anonymous."""

    kind: ComplainantKind
    person_id: uuid.UUID | None = None
    name: Name | None = None
    contact: Text200 | None = Field(default=None, description="A phone number or an address to give the answer to.")

    @model_validator(mode="after")
    def _fields_of_the_kind(self) -> "Complainant":
        if self.kind is ComplainantKind.person:
            if self.person_id is None:
                raise field_error("a registered complainant is named by person_id", "person_id")
            if self.name is not None or self.contact is not None:
                raise field_error("a registered complainant's name and contact are in the registry", "name")
        elif self.kind is ComplainantKind.named:
            if self.name is None:
                raise field_error("name the complainant", "name")
            if self.contact is None:
                raise field_error("say how to reach the complainant with the answer", "contact")
            if self.person_id is not None:
                raise field_error("a registered complainant is of kind person", "person_id")
        elif self.person_id is not None or self.name is not None or self.contact is not None:
            raise field_error("an anonymous complaint names nobody", "kind")
        return self


class GrievanceCreate(InputModel):
    category: GrievanceCategory
    channel: GrievanceChannel
    complainant: Complainant
    description: Text4000
    application_id: uuid.UUID | None = Field(default=None, description="For an appeal: the decided application it contests.")
    case_id: uuid.UUID | None = Field(default=None, description="The case it belongs to (an appeal's is its application's).")

    @model_validator(mode="after")
    def _an_appeal_names_its_application(self) -> "GrievanceCreate":
        if self.category is GrievanceCategory.appeal:
            if self.application_id is None:
                raise field_error("an appeal names the application it contests", "application_id")
            if self.complainant.kind is ComplainantKind.anonymous:
                raise field_error("an appeal cannot be anonymous: the answer goes to the applicant", "complainant", "kind")
        elif self.application_id is not None:
            raise field_error("only an appeal names an application (category: appeal)", "application_id")
        return self


class GrievanceUpdate(InputModel):
    status: Literal[GrievanceStatus.in_review, GrievanceStatus.resolved, GrievanceStatus.escalated,
                    GrievanceStatus.rejected] | None = None
    resolution: Text2000 | None = Field(default=None, description="What the complainant is told; required to resolve or reject.")
    upheld: bool | None = Field(default=None, strict=True, description="For an appeal being resolved: was it upheld?")
    note: Text1000 | None = Field(default=None, description="A note for the record (e.g. why it is escalated).")

    @model_validator(mode="after")
    def _closing_says_why(self) -> "GrievanceUpdate":
        if self.status in (GrievanceStatus.resolved, GrievanceStatus.rejected) and self.resolution is None:
            raise field_error("say what the complainant is told (resolution)", "resolution")
        if self.resolution is not None and self.status not in (GrievanceStatus.resolved, GrievanceStatus.rejected):
            raise field_error("a resolution is given when resolving or rejecting", "resolution")
        if self.upheld is not None and self.status is not GrievanceStatus.resolved:
            raise field_error("upheld is said when resolving an appeal", "upheld")
        return self


class ComplainantRead(ReadModel):
    kind: ComplainantKind
    person_id: uuid.UUID | None
    name: str | None
    contact: str | None


class GrievanceRead(ReadModel):
    id: uuid.UUID
    version: int
    reference: str
    office_code: str
    case_id: uuid.UUID | None
    category: GrievanceCategory
    channel: GrievanceChannel
    complainant: ComplainantRead
    description: str
    application_id: uuid.UUID | None
    application_reference: str | None
    status: GrievanceStatus
    waiting_with: WaitingWith | None = Field(
        description="Who acts next while it is open: the office, or (an appeal whose office has no active supervisor "
                    "besides the one who took the decision) an admin.")
    level: int
    sla_due_date: date
    overdue: bool
    received_at: datetime
    received_by: uuid.UUID
    resolution: str | None
    upheld: bool | None
    closed_at: datetime | None


class GrievanceAcknowledgementRead(ReadModel):
    """What the complainant takes home: the reference and when the answer is due."""

    reference: str
    grievance_id: uuid.UUID
    category: GrievanceCategory
    channel: GrievanceChannel
    complainant_name: str | None = Field(description="The registered person's or the named complainant's; none if anonymous.")
    description: str
    application_reference: str | None = Field(description="For an appeal: the application it contests.")
    scheme_name: str | None = Field(description="For an appeal: the scheme of that application.")
    received_at: datetime
    received_on: date = Field(description="The day, in the office's time zone.")
    received_time: str = Field(description="HH:MM in the office's time zone.")
    received_by: str
    office_code: str
    office_name: str
    status: GrievanceStatus
    answer_due_date: date = Field(description="The answer deadline at its current level (sla_due_date).")
