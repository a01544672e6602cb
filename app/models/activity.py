import uuid
from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, new_id, utcnow


class ActivityEvent(Base):
    """The outbox: written in the same transaction as the change it reports, relayed to central later.

    The payload holds pseudonymised dimensions only, never names, IDs, birth dates or free text."""

    __tablename__ = "activity_event"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(String(60))
    schema_version: Mapped[int] = mapped_column(default=1)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    office_code: Mapped[str] = mapped_column(String(20))
    payload: Mapped[dict] = mapped_column()
    # Relay bookkeeping.
    sent_at: Mapped[datetime | None] = mapped_column()
    claimed_until: Mapped[datetime | None] = mapped_column()
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    parked_at: Mapped[datetime | None] = mapped_column()
    park_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_activity_event_sent_at_next_attempt_at", "sent_at", "next_attempt_at"),)
