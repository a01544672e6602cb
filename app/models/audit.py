import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


NATIONAL_ID_LOOKUP = "national_id_lookup"


class AuditEvent(Base):
    """Who did what to which record, when, from which request. Append-only (database triggers refuse
    UPDATE and DELETE)."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[uuid.UUID | None] = mapped_column()
    actor_username: Mapped[str | None] = mapped_column(String(64))
    actor_role: Mapped[str | None] = mapped_column(String(16))
    office_id: Mapped[uuid.UUID | None] = mapped_column()
    action: Mapped[str] = mapped_column(String(40))
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict] = mapped_column(default=dict)

    __table_args__ = (
        Index("ix_audit_event_office_at", "office_id", "at"),
        Index("ix_audit_event_entity", "entity_type", "entity_id"),
        # A staff member's national-ID lookups at other offices in the last hour, counted at every
        # registration (app/services/households.py): an index of those rows alone, tiny.
        Index("ix_audit_event_national_id_lookup", "actor_id", "at",
              postgresql_where=text(f"action = '{NATIONAL_ID_LOOKUP}'"), sqlite_where=text(f"action = '{NATIONAL_ID_LOOKUP}'")),
    )
