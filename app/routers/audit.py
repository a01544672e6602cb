
from typing import Annotated

from fastapi import Query

from app.deps import SessionDep, SupervisorUser
from app.routers import Limit, Offset, api_router
from app.schemas.common import Instant, Page
from app.schemas.registry import AuditRead
from app.services import audit

router = api_router(tags=["audit"])

Filter = Annotated[str | None, Query(max_length=64)]


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
