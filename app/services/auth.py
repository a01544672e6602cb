"""Signing in: the OAuth2 password grant for people, client credentials for service accounts. Failed
attempts are throttled per account and source address (app/services/throttle.py)."""

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.errors import Unauthenticated
from app.models import Office, User
from app.security import issue_token, verify_password
from app.services import throttle
from app.vocabulary import SERVICE_ROLES, Role

# Columns, not the ORM object: the read's transaction ends before the password is hashed, and a
# rollback would expire an object.
_BY_USERNAME = (
    select(User.id, User.role, User.password_hash, User.is_active, User.scheme_code, Office.code.label("office_code"))
    .outerjoin(Office, Office.id == User.office_id)
    .where(User.username == bindparam("username"))
)


async def sign_in(
    session: AsyncSession,
    sessionmaker: async_sessionmaker,
    settings: Settings,
    *,
    username: str,
    password: str,
    source: str,
    service_account: bool,
) -> tuple[str, int]:
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
    return issue_token(settings, subject=account.id, role=account.role, office=account.office_code,
                       scheme=account.scheme_code)
