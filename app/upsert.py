"""INSERT ... ON CONFLICT for whichever database the session is on."""

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def dialect_name(session: AsyncSession) -> str:
    return session.bind.dialect.name


def dialect_insert(session: AsyncSession, model):
    """An INSERT that has on_conflict_do_nothing / on_conflict_do_update on both databases."""
    return (postgresql if dialect_name(session) == "postgresql" else sqlite).insert(model)


def insert_ignore(session: AsyncSession, model, conflict_columns: list[str]):
    return dialect_insert(session, model).on_conflict_do_nothing(index_elements=conflict_columns)
