"""National IDs: one person holds one. A national ID given at the window that is already registered is
refused, naming the person where the caller may see them; a lookup of another office's record is
audited and throttled, so that an office cannot enumerate another's registry by national ID."""

import math
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Uuid, bindparam, func, literal, literal_column, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import lock_values
from app.errors import DomainError
from app.models import AuditEvent, Office, Person
from app.models.audit import NATIONAL_ID_LOOKUP
from app.models.base import utcnow
from app.principal import Principal
from app.services import audit
from app.services.scoping import is_scoped, may_see

# A staff member who finds national IDs registered at other offices learns who is registered there:
# so many an hour, so that an office cannot enumerate another's registry by national ID.
LOOKUPS_PER_HOUR = 10
LOOKUP_WINDOW = timedelta(hours=1)
# The caller's lookups in the window. The action is written into the statement, not sent as a
# parameter, so that both databases read them from the partial index of those rows alone.
_LOOKUPS = select(func.count()).select_from(AuditEvent).where(
    AuditEvent.action == literal_column(f"'{NATIONAL_ID_LOOKUP}'"),
    AuditEvent.actor_id == bindparam("actor_id", type_=Uuid()), AuditEvent.at > bindparam("since"))
_FIRST_LOOKUP = _LOOKUPS.with_only_columns(func.min(AuditEvent.at))
_REGISTERED = (
    select(Person.id, Person.household_id, Person.national_id, Office.code, Person.office_id)
    .join(Office, Office.id == Person.office_id)
    .where(Person.national_id.in_(bindparam("ids", expanding=True)),
           or_(bindparam("except_person", type_=Uuid()).is_(None), Person.id != bindparam("except_person", type_=Uuid())))
    .limit(1).subquery("registered")
)
# Built once: every registration runs it, and building it cost more than running it. One row, in one
# round trip: the caller's recent lookups, and a person already holding one of the IDs (or nulls).
_REGISTERED_IDS = select(_LOOKUPS.scalar_subquery().label("lookups"), *_REGISTERED.c).select_from(
    select(literal(1).label("one")).subquery("one").outerjoin(_REGISTERED, true()))


async def check_national_ids(
    session: AsyncSession, actor: Principal, national_ids: dict[str, str], *, except_person: uuid.UUID | None = None
) -> None:
    """national_ids maps a field pointer to the ID given there. An ID already registered is a 409 that
    names the existing person when the caller may see them; at another office, only that the person is
    registered elsewhere and how to have the record transferred. That lookup is audited as a read of
    the other office's personal data and counted: past LOOKUPS_PER_HOUR in the hour, every request of
    the caller that gives a national ID is a 429 until the hour has passed (refusing only IDs registered
    elsewhere would tell them apart)."""
    if not national_ids:
        return
    # Two requests giving one ID at the same moment: the second waits for the first to commit and then
    # finds its person here (a precise 409), instead of failing on the unique index at commit.
    await lock_values(session, "national-id", national_ids.values())
    now = utcnow()
    found = (await session.execute(_REGISTERED_IDS, {"ids": list(national_ids.values()), "except_person": except_person,
                                                     "actor_id": actor.id, "since": now - LOOKUP_WINDOW})).one()
    staff = is_scoped(actor)
    if staff and found.lookups >= LOOKUPS_PER_HOUR:
        raise await _too_many_lookups(session, actor, now)
    if found.id is None:
        return
    pointer = next(p for p, v in national_ids.items() if v == found.national_id)
    if may_see(actor, found.office_id):
        raise DomainError(f"National ID {found.national_id} is already registered.", slug="national-id-registered",
                          field=pointer, existing_person_id=str(found.id), existing_household_id=str(found.household_id),
                          existing_office_code=found.code)
    await _record_lookup(session, actor, found, pointer, now)
    raise DomainError(
        f"National ID {found.national_id} is already registered at another office. If the person now lives here, "
        "do not register them again: ask your supervisor to have their record transferred (an administrator finds "
        "it by this national ID).",
        slug="national-id-registered", field=pointer, existing_person_id=None, existing_household_id=None,
        existing_office_code=None,
    )


async def _record_lookup(session: AsyncSession, actor: Principal, found: Any, pointer: str, now: datetime) -> None:
    """Audit the lookup (under the office that holds the person, whose supervisors see it) so that the
    row stays although the request fails: in a transaction of its own, once the request's is rolled
    back (on SQLite that one holds the only write lock; it is failing anyway). The count is taken again
    there, one lookup of the caller's at a time, so that parallel requests cannot pass the limit together."""
    await session.rollback()
    async with AsyncSession(session.bind) as own, own.begin():
        await lock_values(own, "national-id-lookups", [str(actor.id)])
        lookups = (await own.execute(_LOOKUPS, {"actor_id": actor.id, "since": now - LOOKUP_WINDOW})).scalar_one()
        if lookups >= LOOKUPS_PER_HOUR:
            raise await _too_many_lookups(own, actor, now)
        audit.record(own, actor, action=NATIONAL_ID_LOOKUP, entity_type="person", entity_id=found.id,
                     office_id=found.office_id, details={"field": pointer, "by_office": actor.office_code})


async def _too_many_lookups(session: AsyncSession, actor: Principal, now: datetime) -> DomainError:
    first = (await session.execute(_FIRST_LOOKUP, {"actor_id": actor.id, "since": now - LOOKUP_WINDOW})).scalar_one()
    wait = max(1, math.ceil(((first or now) + LOOKUP_WINDOW - now).total_seconds()))
    return DomainError(
        f"You have found {LOOKUPS_PER_HOUR} national IDs registered at other offices within the hour; national IDs "
        f"can be given again in {math.ceil(wait / 60)} minutes.",
        slug="too-many-lookups", headers={"Retry-After": str(wait)},
    )
