"""Follow-ups: the clerk's work queue."""

import uuid
from typing import Annotated

from fastapi import Query, Response

from app.deps import OfficeUser, SessionDep
from app.etag import etag
from app.routers import CONFLICT_RESPONSES, PATCH_RESPONSES, IfMatch, Limit, Offset, api_router
from app.routers.cases import AssignedTo
from app.schemas.cases import FollowUpCreate, FollowUpRead, FollowUpUpdate
from app.schemas.common import IsoDate, Page
from app.services import follow_ups
from app.unit_of_work import Idempotent
from app.vocabulary import FollowUpStatus

router = api_router(tags=["follow-ups"])


@router.post("/cases/{case_id}/follow-ups", response_model=FollowUpRead, status_code=201, dependencies=[Idempotent],
             responses=CONFLICT_RESPONSES)
async def create_follow_up(session: SessionDep, actor: OfficeUser, case_id: uuid.UUID, body: FollowUpCreate,
                           response: Response) -> FollowUpRead:
    follow_up = await follow_ups.create(session, actor, case_id, body)
    response.headers["Location"] = f"/api/v1/follow-ups/{follow_up.id}"
    response.headers["ETag"] = etag(follow_up.version)
    return follow_up


@router.get("/follow-ups", response_model=Page[FollowUpRead])
async def list_follow_ups(
    session: SessionDep, actor: OfficeUser,
    due_before: Annotated[IsoDate | None, Query(description="Due on or before this day.")] = None,
    status: FollowUpStatus | None = FollowUpStatus.open, assigned_to: AssignedTo = None, case_id: uuid.UUID | None = None,
    overdue: bool | None = None, limit: Limit = 50, offset: Offset = 0,
) -> Page[FollowUpRead]:
    """The office's follow-ups (open ones unless `status` says otherwise), soonest due first."""
    items, total = await follow_ups.list_follow_ups(session, actor, due_before=due_before, status=status,
                                                    assigned_to=assigned_to, case_id=case_id, overdue=overdue,
                                                    limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/follow-ups/{follow_up_id}", response_model=FollowUpRead)
async def get_follow_up(session: SessionDep, actor: OfficeUser, follow_up_id: uuid.UUID, response: Response) -> FollowUpRead:
    follow_up = await follow_ups.get_follow_up(session, actor, follow_up_id)
    response.headers["ETag"] = etag(follow_up.version)
    return follow_up


@router.patch("/follow-ups/{follow_up_id}", response_model=FollowUpRead, responses=PATCH_RESPONSES | CONFLICT_RESPONSES)
async def update_follow_up(session: SessionDep, actor: OfficeUser, follow_up_id: uuid.UUID, body: FollowUpUpdate,
                           response: Response, if_match: IfMatch = None) -> FollowUpRead:
    """Complete (with a note of what was done) or cancel; or change the due date, the task or who does it."""
    follow_up = await follow_ups.update(session, actor, follow_up_id, body, if_match)
    response.headers["ETag"] = etag(follow_up.version)
    return follow_up
