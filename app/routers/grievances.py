"""Grievances and appeals."""

import uuid
from typing import Annotated

from fastapi import Query, Request, Response

from app.deps import OfficeUser, SessionDep, SettingsDep
from app.etag import etag
from app.routers import (
    CONFLICT_RESPONSES,
    PATCH_RESPONSES,
    PRINTABLE_RESPONSES,
    IfMatch,
    Limit,
    Offset,
    api_router,
    printable,
    printable_media,
)
from app.schemas.cases import GrievanceAcknowledgementRead, GrievanceCreate, GrievanceRead, GrievanceUpdate
from app.schemas.common import Page
from app.services import grievances
from app.unit_of_work import Idempotent
from app.vocabulary import GrievanceCategory, GrievanceStatus, WaitingWith

router = api_router(tags=["grievances"])


@router.post("/grievances", response_model=GrievanceRead, status_code=201, dependencies=[Idempotent],
             responses=CONFLICT_RESPONSES)
async def lodge(session: SessionDep, settings: SettingsDep, actor: OfficeUser, body: GrievanceCreate,
                response: Response) -> GrievanceRead:
    """Take a complaint, or an appeal against a decided application (within the appeal window). Answers
    with its reference number and the date by which it is answered."""
    grievance = await grievances.lodge(session, actor, settings, body)
    response.headers["Location"] = f"/api/v1/grievances/{grievance.id}"
    response.headers["ETag"] = etag(grievance.version)
    return grievance


@router.get("/grievances", response_model=Page[GrievanceRead])
async def list_grievances(
    session: SessionDep, actor: OfficeUser, status: GrievanceStatus | None = None, category: GrievanceCategory | None = None,
    overdue: Annotated[bool | None, Query(description="Open past the answer deadline.")] = None,
    case_id: uuid.UUID | None = None, application_id: uuid.UUID | None = None,
    waiting_with: Annotated[WaitingWith | None, Query(description="Open ones waiting with the office, or with an admin "
                                                                  "(appeals nobody in their office may decide).")] = None,
    limit: Limit = 50, offset: Offset = 0,
) -> Page[GrievanceRead]:
    """The office's grievances (an admin's: every office's), soonest due first."""
    items, total = await grievances.list_grievances(session, actor, status=status, category=category, overdue=overdue,
                                                    case_id=case_id, application_id=application_id,
                                                    waiting_with=waiting_with, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/grievances/{grievance_id}", response_model=GrievanceRead)
async def get_grievance(session: SessionDep, actor: OfficeUser, grievance_id: uuid.UUID, response: Response) -> GrievanceRead:
    grievance = await grievances.get_grievance(session, actor, grievance_id)
    response.headers["ETag"] = etag(grievance.version)
    return grievance


@router.get("/grievances/{grievance_id}/acknowledgement", response_model=GrievanceAcknowledgementRead,
            responses=PRINTABLE_RESPONSES)
async def acknowledgement(request: Request, session: SessionDep, actor: OfficeUser, grievance_id: uuid.UUID):
    """The acknowledgement the complainant takes home: the reference, what was received, and the date by which
    it is answered. JSON, or a printable HTML page (UTF-8) when the Accept header prefers text/html."""
    wanted = printable_media(request)
    found = await grievances.acknowledgement(session, actor, grievance_id)
    return printable(wanted, found, grievances.render_acknowledgement)


@router.patch("/grievances/{grievance_id}", response_model=GrievanceRead, responses=PATCH_RESPONSES | CONFLICT_RESPONSES)
async def update_grievance(session: SessionDep, settings: SettingsDep, actor: OfficeUser, grievance_id: uuid.UUID,
                           body: GrievanceUpdate, response: Response, if_match: IfMatch = None) -> GrievanceRead:
    """in_review; then resolved (with the resolution the complainant is told; an appeal says whether it
    is upheld), rejected, or escalated to the next level (a new deadline)."""
    grievance = await grievances.update(session, actor, settings, grievance_id, body, if_match)
    response.headers["ETag"] = etag(grievance.version)
    return grievance
