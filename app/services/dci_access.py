"""What a DCI partner may find: the households of its offices whose consent in force covers sharing
with partner programmes (`registry_sharing`).

The one place the DCI code asks the office-scoping and "consent in force" questions, wrapping
today's rules (a record belongs to one office; the newest consent record is the one in force), so
that it follows them when they move."""

import uuid

from sqlalchemy import ColumnElement, String, and_, cast, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Household, Office
from app.services import consents
from app.vocabulary import ConsentPurpose

SHARING_PURPOSE = ConsentPurpose.registry_sharing


async def office_ids(session: AsyncSession, codes: list[str]) -> list[uuid.UUID]:
    return list((await session.execute(select(Office.id).where(Office.code.in_(codes)))).scalars())


def consent_covers_sharing(household_id: ColumnElement) -> ColumnElement:
    """The household's consent in force (`consents.purposes_in_force`) includes registry_sharing."""
    # Purposes are a JSON list of fixed words: its text holds the quoted word exactly when the list does
    # (the same test on SQLite's JSON text and PostgreSQL's jsonb).
    return cast(consents.purposes_in_force(household_id), String).like(f'%"{SHARING_PURPOSE.value}"%')


def shareable(offices: list[uuid.UUID]) -> ColumnElement:
    """Households a partner of these offices may see."""
    return and_(Household.office_id.in_(offices), consent_covers_sharing(Household.id))

