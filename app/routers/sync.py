"""Office-to-central sync: what the relay has sent, what waits, what central refused."""

from fastapi import Query

from app.deps import SessionDep, SettingsDep, SupervisorUser
from app.routers import Limit, Offset, api_router
from app.schemas.common import Code, Page
from app.schemas.monitoring import ParkedEventRead, RelayStatusRead, SyncStatus
from app.services import relay

router = api_router(tags=["sync"])


@router.get("/sync/status", response_model=SyncStatus)
async def sync_status(session: SessionDep, actor: SupervisorUser, settings: SettingsDep) -> SyncStatus:
    """Backlog, oldest unsent event, last success, last error and parked count of the relay: a
    supervisor sees their office, an admin every office of this instance."""
    rows = await relay.status(session, office_code=actor.office_code if actor.office_scope else None)
    return SyncStatus(central_url=settings.central_url, relay_in_process=settings.relay_in_process,
                      offices=[RelayStatusRead(**row) for row in rows])


@router.get("/sync/parked", response_model=Page[ParkedEventRead])
async def parked(session: SessionDep, actor: SupervisorUser, limit: Limit = 50, offset: Offset = 0,
                 office: Code | None = Query(default=None, description="Admin: one office only.")) -> Page[ParkedEventRead]:
    """Events central refused as invalid, with its reason (`guichet relay replay --parked` sends them again)."""
    office_code = actor.office_code if actor.office_scope else office
    rows, total = await relay.parked_events(session, office_code=office_code, limit=limit, offset=offset)
    return Page(items=[ParkedEventRead(**r) for r in rows], total=total, limit=limit, offset=offset)
