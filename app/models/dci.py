"""DCI (Digital Convergence Initiative) registry APIs: partner clients, their messages, transactions,
callbacks waiting to be delivered, subscriptions; and the lookups Guichet itself makes in external
registries (docs/dci.md)."""

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, JSONType, Versioned, new_id, utcnow


class DciClient(Versioned, Base):
    """A partner system allowed to query the registry. Its `client_id` is also the `sender_id` it puts
    in every message header. Scopes: which query types, which record fields, which offices' records."""

    __tablename__ = "dci_client"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(200))
    query_types: Mapped[list] = mapped_column()
    fields: Mapped[list] = mapped_column()
    offices: Mapped[list] = mapped_column()  # office codes
    callback_url: Mapped[str | None] = mapped_column(String(500))
    jwks: Mapped[dict | None] = mapped_column()  # the partner's public keys, pinned at onboarding
    signature_required: Mapped[bool] = mapped_column(default=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    # Tokens issued before this instant are refused (set on deactivation and on a new secret).
    tokens_valid_after: Mapped[datetime] = mapped_column(default=utcnow)


class DciMessage(Base):
    """Every message id a client sent, so that a replayed message is refused."""

    __tablename__ = "dci_message"

    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dci_client.id"), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class DciTransaction(Base):
    """One request of a client and the answer it got (kept a day, for txn/status)."""

    __tablename__ = "dci_transaction"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dci_client.id"))
    transaction_id: Mapped[str] = mapped_column(String(99))
    correlation_id: Mapped[str] = mapped_column(String(64), unique=True)
    action: Mapped[str] = mapped_column(String(20))
    reference_ids: Mapped[list] = mapped_column()
    status: Mapped[str] = mapped_column(String(4))
    response: Mapped[dict | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    __table_args__ = (Index("ix_dci_transaction_client_transaction", "client_id", "transaction_id"),)


class DciDelivery(Base):
    """A callback (on-search, txn-on-status, on-subscribe, notify...) waiting for the worker, which
    signs it when it sends it and retries with back-off until the partner acknowledges it."""

    __tablename__ = "dci_delivery"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dci_client.id"))
    url: Mapped[str] = mapped_column(String(500))
    header: Mapped[dict] = mapped_column()
    message: Mapped[dict | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    delivered_at: Mapped[datetime | None] = mapped_column()
    failed_at: Mapped[datetime | None] = mapped_column()  # gave up after the last attempt
    last_error: Mapped[str | None] = mapped_column(String(300))

    __table_args__ = (Index("ix_dci_delivery_pending", "delivered_at", "failed_at", "next_attempt_at"),)


class DciSubscription(Base):
    """A client following changes of the households its filter selects (registry core API)."""

    __tablename__ = "dci_subscription"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dci_client.id"), index=True)
    reference_id: Mapped[str] = mapped_column(String(99))
    event_types: Mapped[list] = mapped_column()
    filter_type: Mapped[str] = mapped_column(String(20))
    filter: Mapped[dict] = mapped_column(JSONType)  # a query: an object or a predicate list
    record_type: Mapped[str] = mapped_column(String(10))
    locale: Mapped[str] = mapped_column(String(3))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column()
    # Changes recorded up to this instant have been looked at.
    events_after: Mapped[datetime] = mapped_column(default=utcnow)


class DciLookup(Base):
    """Guichet asking an external registry about a person (by national ID) for a clerk."""

    __tablename__ = "dci_lookup"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    office_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("office.id"))  # None: an admin's
    requested_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user_account.id"))
    registry_code: Mapped[str] = mapped_column(String(40))
    national_id: Mapped[str] = mapped_column(String(30))
    transaction_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12))  # pending | found | not_found | unavailable | rejected
    candidate: Mapped[dict | None] = mapped_column()
    message: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (UniqueConstraint("transaction_id"),)
