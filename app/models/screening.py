"""Eligibility: screenings and their determinations (issue: one-call eligibility).

Both tables are append-only by design (no code path updates or deletes them): a screening is the
record of what was decided, on which facts, under which rules version. The latest determination for
(household, person, scheme) is found through ix_determination_latest."""

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, new_id, utcnow


class Screening(Base):
    __tablename__ = "screening"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("household.id"))
    office_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("office.id"))
    screened_at: Mapped[datetime] = mapped_column(default=utcnow)
    screened_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user_account.id"))  # None: a re-screen run
    trigger: Mapped[str] = mapped_column(String(16))  # clerk | rescreen
    as_of: Mapped[date] = mapped_column()
    household_version: Mapped[int] = mapped_column()
    schemes: Mapped[list] = mapped_column()  # the scheme codes run
    # The facts the schemes read: {"household": {...}, "members": {person_id: {...}}}.
    facts: Mapped[dict] = mapped_column()
    request_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_screening_household_screened_at", "household_id", "screened_at"),
        Index("ix_screening_office_screened_at", "office_id", "screened_at"),
    )


class ScreeningDetermination(Base):
    """One scheme's verdict for one member (person_id set) or for the household (person_id null)."""

    __tablename__ = "determination"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    screening_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("screening.id"), index=True)
    # Copied from the screening (which holds the foreign key) so that the latest determination for a
    # household is one index range; no second foreign-key check on every row of a re-screen.
    household_id: Mapped[uuid.UUID] = mapped_column()
    person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("person.id"))
    screened_at: Mapped[datetime] = mapped_column()
    scheme_code: Mapped[str] = mapped_column(String(40))
    scheme_name: Mapped[str] = mapped_column(String(200))
    scheme_kind: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(20))
    rules_version: Mapped[str | None] = mapped_column(String(40))
    reasons: Mapped[list] = mapped_column()
    missing_facts: Mapped[list] = mapped_column()
    hints: Mapped[list] = mapped_column()
    benefit: Mapped[dict | None] = mapped_column()
    provenance: Mapped[dict] = mapped_column()
    # The rules' structure beside the flat reasons (which path decided, which criterion failed); None for
    # partner schemes, errors and determinations made before it was kept.
    explanation: Mapped[dict | None] = mapped_column()
    # Digest of what the determination says (outcome, version, reasons, missing facts, hints, benefit,
    # explanation): a re-screen compares it instead of reading every reason back.
    fingerprint: Mapped[str] = mapped_column(String(32))
    # For rules schemes, a digest of what it was decided from (the rules as written, the facts read):
    # when it is unchanged a re-screen does not even evaluate the rules again.
    input_fingerprint: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        # "The latest determination for (household or person, scheme)": case management reads it.
        Index("ix_determination_latest", "household_id", "person_id", "scheme_code", "screened_at"),
    )
