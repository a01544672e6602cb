"""Office scoping: the one place a caller's office limits what they read and change.

A record of an office-owned table (one with an `office_id` column) is visible to the staff of that office
and to an admin (whose `Principal.office_scope` is None). Another office's record is "not found", exactly
like a missing one, so that an id never tells whether it exists elsewhere. Services ask here rather than
comparing `office_scope` themselves: a new office-owned resource gets the rule by calling `scoped` or
`load_scoped`, and the rule can change in one place."""

import uuid
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.principal import Principal

Owned = TypeVar("Owned")

# Statements built once per shape (the hot paths) take the office as this bound parameter.
OFFICE_PARAM = "office_id"


def is_scoped(actor: Principal) -> bool:
    """Whether the caller sees one office only (everyone but an admin)."""
    return actor.office_scope is not None


def may_see(actor: Principal, office_id: uuid.UUID) -> bool:
    """Whether the caller may see a record of this office."""
    return not is_scoped(actor) or actor.office_scope == office_id


def office_filters(column: ColumnElement, actor: Principal) -> list[ColumnElement]:
    """The conditions (none or one) that keep `column`, an office id, to the caller's office."""
    return [column == actor.office_scope] if is_scoped(actor) else []


def scoped(query: Select, model: Any, actor: Principal) -> Select:
    """The statement restricted to the rows of `model` (an office-owned model) the caller may see."""
    return query.where(*office_filters(model.office_id, actor))


def office_params(actor: Principal) -> dict[str, uuid.UUID]:
    """The bound parameters of a statement built by `where_office_param` for this caller."""
    return {OFFICE_PARAM: actor.office_scope} if is_scoped(actor) else {}


def where_office_param(query: Select, column: ColumnElement, scoped_shape: bool) -> Select:
    """For a statement built once per shape (`scoped_shape` is `is_scoped(actor)`), the office as a bound
    parameter that `office_params(actor)` fills."""
    return query.where(column == bindparam(OFFICE_PARAM)) if scoped_shape else query


def for_change(query: Select, lock: bool = True) -> Select:
    """A query for a record about to change: with `lock`, its row is held until the transaction ends
    (PostgreSQL; SQLite's writers take turns anyway), and read as the previous holder left it. So a state
    machine judges the latest state: two requests changing one record at the same moment get what they
    would get one after another (with If-Match: *, the second a 409, not a 412). FOR NO KEY UPDATE: rows
    that refer to it can still be written meanwhile."""
    return query.with_for_update(key_share=True).execution_options(populate_existing=True) if lock else query


async def load_scoped(session: AsyncSession, actor: Principal, model: type[Owned], record_id: uuid.UUID, *,
                      missing: str, lock: bool = False, options: tuple = ()) -> Owned:
    """The record of an office-owned model, if the caller's office may see it, else `NotFound(missing)`.
    With `lock`, held for change (`for_change`); `options` are loader options (e.g. selectinload)."""
    query = scoped(select(model).options(*options).where(model.id == record_id), model, actor)
    found = (await session.execute(for_change(query, lock))).scalar_one_or_none()
    if found is None:
        raise NotFound(missing)
    return found
