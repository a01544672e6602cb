"""Accounts: office staff, the ministry's monitors, partner schemes' service accounts, admins."""

import uuid
from collections.abc import Collection
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.principal import Principal
from app.errors import Conflict, InvalidInput, NotFound
from app.models import Office, User
from app.models.base import utcnow
from app.schemes.registry import SchemeRegistry
from app.security import hash_password
from app.services import audit, throttle
from app.vocabulary import Role


def partner_codes(schemes: SchemeRegistry, settings: Settings) -> set[str]:
    """What a partner account may be bound to: a scheme, or a referral agency (by its code, any case)."""
    return set(schemes.codes()) | set(settings.referral_agencies)


async def create_user(
    session: AsyncSession,
    actor: Principal | None,
    *,
    username: str,
    password: str,
    role: Role,
    full_name: str | None = None,
    office_code: str | None = None,
    scheme_code: str | None = None,
    known_partners: Collection[str] | None = None,
) -> tuple[User, str | None]:
    """`known_partners`: partner_codes(), which a partner's scheme_code must be one of (None: the caller
    binds it to a scheme it knows, as the demo data does)."""
    if scheme_code is not None and known_partners is not None and scheme_code not in known_partners \
            and scheme_code.lower() not in known_partners:
        raise InvalidInput(f"There is no scheme or referral agency with code {scheme_code} (`guichet schemes list`, "
                           f"GET /api/v1/schemes and GET /api/v1/referral-agencies list them).", field="#/scheme_code")
    office_id = None
    if office_code is not None:
        office_id = (await session.execute(select(Office.id).where(Office.code == office_code))).scalar_one_or_none()
        if office_id is None:
            raise InvalidInput(f"There is no office with code {office_code}.", field="#/office_code")
    if (await session.execute(select(User.id).where(User.username == username))).first():
        raise Conflict(f"The username {username} is taken.")
    user = User(
        username=username,
        full_name=full_name,
        password_hash=await hash_password(password),
        role=role,
        office_id=office_id,
        scheme_code=scheme_code,
        # A second earlier, so that a token issued in the same second as the account is valid.
        tokens_valid_after=utcnow() - timedelta(seconds=1),
    )
    session.add(user)
    await session.flush()
    audit.record(session, actor, action="create", entity_type="user", entity_id=user.id, office_id=office_id,
                 details={"username": username, "role": role})
    return user, office_code


async def list_users(session: AsyncSession, *, limit: int, offset: int) -> tuple[list[tuple[User, str | None]], int]:
    total = (await session.execute(select(func.count(User.id)))).scalar_one()
    rows = await session.execute(
        select(User, Office.code).outerjoin(Office, Office.id == User.office_id).order_by(User.username).limit(limit).offset(offset)
    )
    return [(u, c) for u, c in rows.all()], total


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> tuple[User, str | None]:
    row = (await session.execute(select(User, Office.code).outerjoin(Office, Office.id == User.office_id).where(User.id == user_id))).first()
    if row is None:
        raise NotFound("No such user.")
    return row[0], row[1]


async def update_user(
    session: AsyncSession, actor: Principal, user: User, *, is_active: bool | None, password: str | None, full_name: str | None
) -> User:
    changed = []
    if is_active is not None and is_active != user.is_active:
        user.is_active = is_active
        changed.append("is_active")
    if password is not None:
        user.password_hash = await hash_password(password)
        changed.append("password")
    if full_name is not None:
        user.full_name = full_name
        changed.append("full_name")
    if "is_active" in changed or "password" in changed:
        user.tokens_valid_after = utcnow()  # outstanding tokens stop working now
    if changed:
        await session.flush()
        audit.record(session, actor, action="update", entity_type="user", entity_id=user.id, office_id=user.office_id,
                     details={"fields": changed})
    return user


async def unlock(session: AsyncSession, actor: Principal | None, *, user_id: uuid.UUID | None = None,
                 username: str | None = None) -> tuple[User, int]:
    """Lift the sign-in waits on an account (app/services/throttle.py), named by id (the API) or
    username (the CLI); with the number of its counts (per address, and its own) that had failures."""
    which = User.id == user_id if user_id is not None else User.username == username
    user = (await session.execute(select(User).where(which))).scalar_one_or_none()
    if user is None:
        raise NotFound(f"No user {username}." if username else "No such user.")
    cleared = await throttle.clear(session, user.username)
    audit.record(session, actor, action="unlock", entity_type="user", entity_id=user.id, office_id=user.office_id,
                 details={"username": user.username, "cleared": cleared})
    return user, cleared
