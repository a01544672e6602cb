"""Case management: cases, notes, applications, referrals, follow-ups, grievances (issue: case management).

A case is one client's journey at the window. Everything done in it (an application, its decision, a
referral, a follow-up, a note, a grievance) writes a row of its timeline (`case_event`) in the same
transaction; screenings of the household are read into the timeline from their own table. Each
record carries its office, so office scoping is one column away. Due dates are calendar dates in the
offices' time zone (app.clock), so "overdue" is a plain comparison with today there."""

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Versioned, new_id, utcnow


class Case(Versioned, Base):
    __tablename__ = "case_file"  # "case" is an SQL keyword

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    office_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("office.id"))
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("household.id"))
    person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("person.id"))
    summary: Mapped[str | None] = mapped_column(String(500))  # why the client came
    status: Mapped[str] = mapped_column(String(10))
    opened_at: Mapped[datetime] = mapped_column()
    opened_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_account.id"))
    assigned_to: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user_account.id"))
    closed_at: Mapped[datetime | None] = mapped_column()
    closed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user_account.id"))
    outcome: Mapped[str | None] = mapped_column(String(40))
    outcome_note: Mapped[str | None] = mapped_column(String(1000))

    __table_args__ = (
        Index("ix_case_file_office_status_opened", "office_id", "status", "opened_at"),
        Index("ix_case_file_household", "household_id", "status"),
        Index("ix_case_file_assigned", "assigned_to", "status"),
    )


class CaseNote(Base):
    """Append-only. A confidential note's text is shown to supervisors and admins only."""

    __tablename__ = "case_note"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("case_file.id"))
    office_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("office.id"))
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_account.id"))
    text: Mapped[str] = mapped_column(String(4000))
    confidential: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_case_note_case_created", "case_id", "created_at"),)


class CaseEvent(Base):
    """The case's timeline, append-only: one row per thing that happened in the case. `details` never
    holds a confidential note's text (the note row does)."""

    __tablename__ = "case_event"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("case_file.id"))
    at: Mapped[datetime] = mapped_column()
    actor_id: Mapped[uuid.UUID | None] = mapped_column()  # None: the system (an expiry)
    actor_username: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(40))  # application.decided, referral.status_changed, note.added, ...
    subject_type: Mapped[str] = mapped_column(String(20))  # case, note, application, referral, follow_up, grievance
    subject_id: Mapped[uuid.UUID | None] = mapped_column()
    details: Mapped[dict] = mapped_column(default=dict)

    __table_args__ = (Index("ix_case_event_case_at", "case_id", "at", "id"),)


class ReferenceCounter(Base):
    """The last sequence number given per office, kind of record and year: reference numbers such as
    SR-ACH-2026-A00042 are taken from it by one INSERT ... ON CONFLICT DO UPDATE ... RETURNING, which
    serialises concurrent requests of an office on its row and rolls back with a failed request."""

    __tablename__ = "reference_counter"

    office_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("office.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(1), primary_key=True)  # A(pplication), R(eferral), G(rievance)
    year: Mapped[int] = mapped_column(primary_key=True)
    last: Mapped[int] = mapped_column()


class Application(Versioned, Base):
    """Enrolment into a scheme for a person (person-level scheme) or the household."""

    __tablename__ = "application"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("case_file.id"))
    office_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("office.id"))
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("household.id"))
    person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("person.id"))
    # The scheme as it was when the application was filed (a scheme may leave the catalogue later).
    scheme_code: Mapped[str] = mapped_column(String(40))
    scheme_name: Mapped[str] = mapped_column(String(200))
    scheme_kind: Mapped[str] = mapped_column(String(20))
    agency: Mapped[str] = mapped_column(String(200))
    route: Mapped[str] = mapped_column(String(10))  # office | partner
    status: Mapped[str] = mapped_column(String(20))
    submitted_at: Mapped[datetime] = mapped_column()
    submitted_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_account.id"))
    service_level_days: Mapped[int] = mapped_column()
    decision_due_date: Mapped[date] = mapped_column()
    # The latest screening's verdict for this subject and scheme when filed, and the clerk's reason
    # for filing against a not_eligible one.
    screening_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("screening.id"))
    screening_outcome: Mapped[str | None] = mapped_column(String(20))
    against_screening: Mapped[bool] = mapped_column(default=False)
    screening_override_reason: Mapped[str | None] = mapped_column(String(1000))
    decided_at: Mapped[datetime | None] = mapped_column()
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user_account.id"))
    decided_by_kind: Mapped[str | None] = mapped_column(String(12))  # partner | supervisor | applicant
    days_to_decision: Mapped[int | None] = mapped_column()
    within_service_level: Mapped[bool | None] = mapped_column()
    reason_code: Mapped[str | None] = mapped_column(String(40))
    reason_text: Mapped[str | None] = mapped_column(String(2000))
    benefit: Mapped[dict | None] = mapped_column()  # {type, amount, currency, frequency, start_date}
    # Sending it to a partner scheme (route partner only).
    submission_state: Mapped[str | None] = mapped_column(String(10))
    submission_attempts: Mapped[int] = mapped_column(default=0)
    submission_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None] = mapped_column()
    partner_reference: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (
        Index("ix_application_office_status_due", "office_id", "status", "decision_due_date"),
        Index("ix_application_case", "case_id"),
        Index("ix_application_scheme_status", "scheme_code", "status"),
        Index("ix_application_subject", "household_id", "person_id", "scheme_code"),
    )


class Referral(Versioned, Base):
    __tablename__ = "referral"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("case_file.id"))
    office_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("office.id"))
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("household.id"))
    person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("person.id"))
    agency: Mapped[str] = mapped_column(String(40))
    service: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(1000))
    due_date: Mapped[date] = mapped_column()
    status: Mapped[str] = mapped_column(String(10))
    issued_at: Mapped[datetime] = mapped_column()
    issued_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_account.id"))
    accepted_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    outcome_note: Mapped[str | None] = mapped_column(String(1000))

    __table_args__ = (
        Index("ix_referral_office_status_due", "office_id", "status", "due_date"),
        Index("ix_referral_agency_status", "agency", "status", "due_date"),
        Index("ix_referral_case", "case_id"),
    )


class FollowUp(Versioned, Base):
    """A dated task in the clerk's work queue."""

    __tablename__ = "follow_up"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("case_file.id"))
    office_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("office.id"))
    due_date: Mapped[date] = mapped_column()
    action: Mapped[str] = mapped_column(String(500))
    assigned_to: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user_account.id"))
    status: Mapped[str] = mapped_column(String(10))
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_account.id"))
    completed_at: Mapped[datetime | None] = mapped_column()
    completed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user_account.id"))
    note: Mapped[str | None] = mapped_column(String(1000))

    __table_args__ = (
        Index("ix_follow_up_office_status_due", "office_id", "status", "due_date"),
        Index("ix_follow_up_case", "case_id"),
    )


class Grievance(Versioned, Base):
    """A complaint or an appeal. The complainant is a registered person, someone named who is not
    registered, or anonymous; an appeal names the application it contests."""

    __tablename__ = "grievance"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    office_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("office.id"))
    case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("case_file.id"))
    category: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(10))
    complainant_kind: Mapped[str] = mapped_column(String(10))
    person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("person.id"))
    household_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("household.id"))
    complainant_name: Mapped[str | None] = mapped_column(String(200))
    complainant_contact: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(4000))
    application_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("application.id"))
    status: Mapped[str] = mapped_column(String(10))
    level: Mapped[int] = mapped_column()
    sla_due_date: Mapped[date] = mapped_column()
    received_at: Mapped[datetime] = mapped_column()
    received_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_account.id"))
    resolution: Mapped[str | None] = mapped_column(String(2000))
    upheld: Mapped[bool | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        Index("ix_grievance_office_status_due", "office_id", "status", "sla_due_date"),
        Index("ix_grievance_case", "case_id"),
        Index("ix_grievance_application", "application_id"),
    )
