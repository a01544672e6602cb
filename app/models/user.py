import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Versioned, new_id, utcnow


class User(Versioned, Base):
    __tablename__ = "user_account"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    office_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("office.id"), index=True)
    scheme_code: Mapped[str | None] = mapped_column(String(40))
    is_active: Mapped[bool] = mapped_column(default=True)
    # Tokens issued before this instant are refused (set on deactivation and password change).
    tokens_valid_after: Mapped[datetime] = mapped_column(default=utcnow)


class LoginThrottle(Base):
    """Sign-in attempts per account (a username, known or not, so that probing names reveals nothing) and
    source address; the row whose source is "*" counts a person's failures from every address. Each
    attempt is counted before its password is checked (app/services/throttle.py)."""

    __tablename__ = "login_throttle"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column()
    # No password is checked for this account (from this address) before then.
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    # An address the account signed in from lately is not slowed by strangers' failures elsewhere.
    last_success_at: Mapped[datetime | None] = mapped_column()


class RefreshToken(Base):
    """A refresh token, stored as its SHA-256 (the token itself is shown once). Each use replaces it by
    a new one of the same family (one sign-in); a token used twice ends its whole family."""

    __tablename__ = "refresh_token"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_account.id"), index=True)
    signed_in_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Unused until then (idle lifetime), and never beyond session_expires_at (the sign-in's whole lifetime).
    expires_at: Mapped[datetime] = mapped_column()
    session_expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
