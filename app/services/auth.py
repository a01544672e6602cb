"""Signing in: the OAuth2 password grant for people, client credentials for service accounts.

Failed attempts are counted per username (known or not) in their own transaction, so a failed
sign-in is remembered although the request fails; after too many, the username is locked a while."""

import math
from datetime import timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.errors import DomainError, Unauthenticated
from app.models import LoginThrottle, Office, User
from app.models.base import utcnow
from app.security import issue_token, verify_password
from app.vocabulary import SERVICE_ROLES, Role


async def _throttle(sessionmaker: async_sessionmaker, username: str) -> LoginThrottle | None:
    async with sessionmaker() as session:
        return await session.get(LoginThrottle, username)


async def _record_failure(sessionmaker: async_sessionmaker, settings: Settings, username: str) -> None:
    now = utcnow()
    async with sessionmaker() as session, session.begin():
        row = await session.get(LoginThrottle, username)
        if row is None:
            row = LoginThrottle(username=username, failures=0)
            session.add(row)
        elif row.last_failure_at < now - timedelta(minutes=settings.login_lock_minutes):
            row.failures = 0  # old failures are forgiven
        row.failures += 1
        row.last_failure_at = now
        if row.failures >= settings.login_max_failures:
            row.locked_until = now + timedelta(minutes=settings.login_lock_minutes)
        # Failures older than the window are forgiven anyway: without this, probing random usernames
        # would grow the table without end.
        await session.execute(delete(LoginThrottle).where(
            LoginThrottle.username != username,
            LoginThrottle.last_failure_at < now - timedelta(minutes=settings.login_lock_minutes),
            or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until < now),
        ))


async def sign_in(
    session: AsyncSession,
    sessionmaker: async_sessionmaker,
    settings: Settings,
    *,
    username: str,
    password: str,
    service_account: bool,
) -> tuple[str, int]:
    throttle = await _throttle(sessionmaker, username)
    if throttle is not None and throttle.locked_until is not None and throttle.locked_until > utcnow():
        wait = math.ceil((throttle.locked_until - utcnow()).total_seconds())
        raise DomainError(f"Too many failed sign-ins for this account; try again in {wait} seconds.",
                          slug="too-many-attempts", headers={"Retry-After": str(wait)})
    row = (
        await session.execute(select(User, Office.code).outerjoin(Office, Office.id == User.office_id).where(User.username == username))
    ).first()
    user, office_code = row if row else (None, None)
    if not verify_password(user.password_hash if user else None, password) or not user.is_active:
        # End the read first: on SQLite it holds the write lock that the failure's own transaction needs.
        await session.rollback()
        await _record_failure(sessionmaker, settings, username)
        raise Unauthenticated("Wrong username or password." if not service_account else "Wrong client id or secret.",
                              slug="invalid-credentials")
    if service_account != (Role(user.role) in SERVICE_ROLES):
        raise Unauthenticated(
            "Service accounts use grant_type=client_credentials; people use grant_type=password.", slug="invalid-credentials"
        )
    if throttle is not None:
        await session.execute(delete(LoginThrottle).where(LoginThrottle.username == username))
    return issue_token(settings, subject=user.id, role=user.role, office=office_code, scheme=user.scheme_code)
