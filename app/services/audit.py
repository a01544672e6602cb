"""The audit trail: every create, update and read of personal data, and every dedup override."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.context import request_id_var
from app.principal import Principal
from app.models import AuditEvent
from app.models.base import utcnow
from app.services.scoping import scoped


def record(session: AsyncSession, actor: Principal | None, **what: Any) -> None:
    session.add(AuditEvent(**row(actor, **what)))


def row(
    actor: Principal | None,
    *,
    action: str,
    entity_type: str,
    entity_id: uuid.UUID | str | None,
    office_id: uuid.UUID | None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The audit row as the table's columns: `record` adds it to the session, bulk writers
    (app.bulk.insert_rows) insert it with the rest of their rows."""
    return {
        "at": utcnow(),
        "actor_id": actor.id if actor else None,
        "actor_username": actor.username if actor else "system",
        "actor_role": actor.role if actor else None,
        "office_id": office_id,
        "action": action,
        "entity_type": entity_type,
        "entity_id": str(entity_id) if entity_id is not None else None,
        "request_id": request_id_var.get(),
        "details": details or {},
    }


def record_partner_search(session: AsyncSession, actor: Principal, entity_type: str, records: list, total: int,
                          **details: Any) -> None:
    """A partner's list page: one row for the request, like every read, under the office when the page
    holds one office's records (an office's own database), so that its supervisors see it."""
    offices = {r.office_id for r in records}
    record(session, actor, action="search", entity_type=entity_type, entity_id=None,
           office_id=offices.pop() if len(offices) == 1 else None,
           details={"partner": actor.scheme_code, "results": [str(r.id) for r in records], "total": total} | details)


async def list_events(
    session: AsyncSession,
    actor: Principal,
    *,
    entity_type: str | None,
    entity_id: str | None,
    action: str | None,
    actor_username: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[AuditEvent], int]:
    query = scoped(select(AuditEvent), AuditEvent, actor)
    for column, value in (
        (AuditEvent.entity_type, entity_type),
        (AuditEvent.entity_id, entity_id),
        (AuditEvent.action, action),
        (AuditEvent.actor_username, actor_username),
    ):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (await session.execute(query.order_by(AuditEvent.id.desc()).limit(limit).offset(offset))).scalars().all()
    return list(rows), total
