
import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator, AwareDatetime, BeforeValidator

from app.deps import SessionDep, SupervisorUser
from app.routers import Limit, Offset, api_router
from app.schemas.common import Page
from app.schemas.registry import AuditRead
from app.services import audit

router = api_router(tags=["audit"])

Filter = Annotated[str | None, Query(max_length=64)]


def _not_a_number(value: object) -> object:
    # Pydantic would read "0" or "1700000000" as seconds since 1970; the contract says an ISO 8601 date-time.
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9.]+\s*", value):
        raise ValueError("an ISO 8601 date-time with its offset, e.g. 2026-01-31T08:00:00+07:00")
    return value


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59-12:00 is past the last representable instant
        raise ValueError("the instant is out of range") from None


Instant = Annotated[AwareDatetime, BeforeValidator(_not_a_number), AfterValidator(_in_utc)]


@router.get("/audit", response_model=Page[AuditRead])
async def list_audit(
    session: SessionDep,
    actor: SupervisorUser,
    entity_type: Filter = None,
    entity_id: Filter = None,
    action: Filter = None,
    actor_username: Filter = None,
    since: Instant | None = None,
    until: Instant | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[AuditRead]:
    """The audit trail, newest first: a supervisor sees their office's, an admin everything."""
    rows, total = await audit.list_events(
        session, actor, entity_type=entity_type, entity_id=entity_id, action=action, actor_username=actor_username,
        since=since, until=until, limit=limit, offset=offset,
    )
    return Page(items=rows, total=total, limit=limit, offset=offset)
