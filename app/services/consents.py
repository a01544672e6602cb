"""The consent in force: a household's newest consent record (by when it was recorded, then by id) is
the one that counts; older records are its history. The one home of that rule, in the shapes the
services need: one household's record or purposes, a correlated subquery for a statement about many
households, and the newest record of each of a batch."""

import uuid
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ConsentRecord

NEWEST_FIRST = (ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc())


def purposes_in_force(household_id: ColumnElement | Any) -> ScalarSelect:
    """The purposes of the consent in force of `household_id` (a value, or a column to correlate with);
    NULL when the household has no consent record."""
    return (select(ConsentRecord.purposes).where(ConsentRecord.household_id == household_id)
            .order_by(*NEWEST_FIRST).limit(1).scalar_subquery())


async def consent_in_force(session: AsyncSession, household_id: uuid.UUID) -> ConsentRecord | None:
    return (await session.execute(
        select(ConsentRecord).where(ConsentRecord.household_id == household_id).order_by(*NEWEST_FIRST).limit(1)
    )).scalar_one_or_none()


async def purposes(session: AsyncSession, household_id: uuid.UUID) -> frozenset[str]:
    """What the household's consent in force covers (nothing without one)."""
    return frozenset((await session.execute(select(purposes_in_force(household_id)))).scalar() or ())


def in_force_of(household_ids: list[uuid.UUID]) -> Select:
    """Rows (household_id, purposes) of each listed household's consent in force, in one statement."""
    ranked = (select(ConsentRecord.household_id, ConsentRecord.purposes,
                     func.row_number().over(partition_by=ConsentRecord.household_id, order_by=NEWEST_FIRST).label("rank"))
              .where(ConsentRecord.household_id.in_(household_ids)).subquery())
    return select(ranked.c.household_id, ranked.c.purposes).where(ranked.c.rank == 1)
