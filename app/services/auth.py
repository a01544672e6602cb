"""Signing in and sessions (docs/sessions.md): the OAuth2 password grant for people, client credentials
for service accounts, and for people a refresh token that renews the short access token.

A refresh token is used once: each renewal replaces it by a new one of the same family (the sign-in).
A token presented again after its replacement means two holders, one of them not its owner, so the
whole family ends. A family ends anyway after REFRESH_LIFETIME_HOURS, a token after REFRESH_IDLE_MINUTES
unused, and every family of a person at a password change or a deactivation (tokens_valid_after)."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.principal import Principal
from app.errors import InvalidInput, Unauthenticated
from app.models import Office, RefreshToken, User
from app.models.base import new_id, utcnow
from app.security import hash_password, issue_token, new_refresh_token, refresh_token_digest, verify_password
from app.services import audit, throttle
from app.vocabulary import SERVICE_ROLES, Role


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    expires_in: int
    refresh_token: str | None = None  # people only
    refresh_expires_in: int | None = None


# Columns, not the ORM object: the read's transaction ends before the password is hashed, and a
# rollback would expire an object.
_ACCOUNT = (
    select(User.id, User.role, User.password_hash, User.is_active, User.scheme_code, User.tokens_valid_after,
           Office.code.label("office_code"))
    .outerjoin(Office, Office.id == User.office_id)
)
_BY_USERNAME = _ACCOUNT.where(User.username == bindparam("username"))
_BY_ID = _ACCOUNT.where(User.id == bindparam("user_id"))


async def sign_in(
    session: AsyncSession,
    sessionmaker: async_sessionmaker,
    settings: Settings,
    *,
    username: str,
    password: str,
    source: str,
    service_account: bool,
) -> Tokens:
    async with throttle.turn(username):
        account = (await session.execute(_BY_USERNAME, {"username": username})).first()
        service = account is not None and Role(account.role) in SERVICE_ROLES
        # Nothing is held while the password is hashed (on SQLite the read holds the write lock).
        await session.rollback()
        attempt = await throttle.take(sessionmaker, settings, username=username, source=source, person=not service)
    if not await verify_password(account.password_hash if account else None, password) or not account.is_active:
        raise Unauthenticated("Wrong username or password." if not service_account else "Wrong client id or secret.",
                              slug="invalid-credentials")
    await throttle.succeeded(session, attempt)
    if service_account != service:
        raise Unauthenticated(
            "Service accounts use grant_type=client_credentials; people use grant_type=password.", slug="invalid-credentials"
        )
    access_token, expires_in = issue_token(settings, subject=account.id, role=account.role, office=account.office_code,
                                           scheme=account.scheme_code)
    if service:  # a service account signs in again with its credentials (RFC 6749 4.4.3: no refresh token)
        return Tokens(access_token, expires_in)
    now = utcnow()
    # The person's ended sign-ins are kept until then, so that a replaced token is recognised if used again.
    await session.execute(delete(RefreshToken).where(RefreshToken.user_id == account.id,
                                                     RefreshToken.session_expires_at < now))
    refresh_token, refresh_expires_in = await _refresh_token(
        session, settings, user_id=account.id, family_id=new_id(), signed_in_at=now,
        session_expires_at=now + timedelta(hours=settings.refresh_lifetime_hours))
    return Tokens(access_token, expires_in, refresh_token, refresh_expires_in)


async def refresh(session: AsyncSession, sessionmaker: async_sessionmaker, settings: Settings, *, refresh_token: str) -> Tokens:
    """A new access token and a new refresh token for a refresh token, which is used up."""
    now = utcnow()
    digest = refresh_token_digest(refresh_token)
    # Used up by the statement that checks it: of two renewals with one token, the second finds it used
    # (PostgreSQL re-reads the row after the first commits; SQLite's writers take turns).
    used = (await session.execute(
        update(RefreshToken)
        .where(RefreshToken.token_hash == digest, RefreshToken.used_at.is_(None), RefreshToken.revoked_at.is_(None),
               RefreshToken.expires_at > now, RefreshToken.session_expires_at > now)
        .values(used_at=now)
        .returning(RefreshToken.user_id, RefreshToken.family_id, RefreshToken.signed_in_at, RefreshToken.session_expires_at)
    )).first()
    if used is None:
        reused = (await session.execute(select(RefreshToken.family_id).where(
            RefreshToken.token_hash == digest, RefreshToken.used_at.is_not(None)))).scalar_one_or_none()
        await session.rollback()
        if reused is not None:
            # Its own transaction: the request fails, the family's end must stay.
            async with sessionmaker() as own, own.begin():
                await _end_family(own, reused, now)
        raise _session_ended()
    account = (await session.execute(_BY_ID, {"user_id": used.user_id})).first()
    if account is None or not account.is_active or used.signed_in_at < account.tokens_valid_after \
            or Role(account.role) in SERVICE_ROLES:
        raise _session_ended()
    access_token, expires_in = issue_token(settings, subject=account.id, role=account.role, office=account.office_code,
                                           scheme=account.scheme_code)
    refresh_token, refresh_expires_in = await _refresh_token(
        session, settings, user_id=account.id, family_id=used.family_id, signed_in_at=used.signed_in_at,
        session_expires_at=used.session_expires_at)
    return Tokens(access_token, expires_in, refresh_token, refresh_expires_in)


async def revoke(session: AsyncSession, *, refresh_token: str) -> None:
    """Sign-out: the refresh token's whole family ends. An unknown token is no error (RFC 7009)."""
    family = (await session.execute(select(RefreshToken.family_id).where(
        RefreshToken.token_hash == refresh_token_digest(refresh_token)))).scalar_one_or_none()
    if family is not None:
        await _end_family(session, family, utcnow())


async def change_password(
    session: AsyncSession,
    sessionmaker: async_sessionmaker,
    settings: Settings,
    actor: Principal,
    *,
    current_password: str,
    new_password: str,
    source: str,
) -> None:
    """A person changes their own password, proving the current one (throttled like a sign-in, so that a
    stolen access token cannot be used to guess it). Every token and session of theirs ends."""
    current_hash = (await session.execute(select(User.password_hash).where(User.id == actor.id))).scalar_one()
    await session.rollback()  # nothing held while hashing
    async with throttle.turn(actor.username):
        attempt = await throttle.take(sessionmaker, settings, username=actor.username, source=source, person=True)
    if not await verify_password(current_hash, current_password):
        # Not a 401: the caller's token is good, and a client would take a 401 for a session to renew.
        raise InvalidInput("The current password is wrong.", field="#/current_password")
    new_hash = await hash_password(new_password)
    await throttle.succeeded(session, attempt)
    user = await session.get(User, actor.id)
    user.password_hash = new_hash
    user.tokens_valid_after = utcnow()
    await session.flush()
    audit.record(session, actor, action="update", entity_type="user", entity_id=user.id, office_id=user.office_id,
                 details={"fields": ["password"], "by": "self"})


async def _refresh_token(
    session: AsyncSession, settings: Settings, *, user_id: uuid.UUID, family_id: uuid.UUID, signed_in_at: datetime,
    session_expires_at: datetime,
) -> tuple[str, int]:
    now = utcnow()
    token, digest = new_refresh_token()
    expires_at = min(now + timedelta(minutes=settings.refresh_idle_minutes), session_expires_at)
    session.add(RefreshToken(token_hash=digest, family_id=family_id, user_id=user_id, signed_in_at=signed_in_at,
                             created_at=now, expires_at=expires_at, session_expires_at=session_expires_at))
    await session.flush()
    return token, int((expires_at - now).total_seconds())


async def _end_family(session: AsyncSession, family_id: uuid.UUID, now: datetime) -> None:
    await session.execute(update(RefreshToken).where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
                          .values(revoked_at=now))


def _session_ended() -> Unauthenticated:
    return Unauthenticated("The session has ended (signed out, expired, replaced or revoked); sign in again.",
                           slug="session-ended")
