"""Cases: a client's journey at the window, its notes and its timeline."""

import uuid
from typing import Annotated

from fastapi import Query, Response

from app.deps import OfficeUser, SessionDep, SettingsDep
from app.etag import etag
from app.routers import CONFLICT_RESPONSES, PATCH_RESPONSES, IfMatch, Limit, Offset, api_router
from app.schemas.cases import CaseCreate, CaseRead, CaseUpdate, NoteCreate, NoteRead, TimelineEntry
from app.schemas.common import Page
from app.services import cases
from app.unit_of_work import Idempotent
from app.vocabulary import CaseStatus

router = api_router(tags=["cases"])

# "me", or a user's id.
AssignedTo = Annotated[str | None, Query(
    pattern=r"^(me|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$",
    description="`me`, or a user's id.")]


@router.post("/cases", response_model=CaseRead, status_code=201, dependencies=[Idempotent], responses=CONFLICT_RESPONSES)
async def open_case(session: SessionDep, actor: OfficeUser, body: CaseCreate, response: Response) -> CaseRead:
    """Open a case for a household (and, if it is about one member, that person). A client with an open
    case answers 409 naming it."""
    case = await cases.open_case(session, actor, body)
    response.headers["Location"] = f"/api/v1/cases/{case.id}"
    response.headers["ETag"] = etag(case.version)
    return case


@router.get("/cases", response_model=Page[CaseRead])
async def list_cases(
    session: SessionDep, actor: OfficeUser, status: CaseStatus | None = None, assigned_to: AssignedTo = None,
    overdue: Annotated[bool | None, Query(description="Something inside is past its due date.")] = None,
    household_id: uuid.UUID | None = None, person_id: uuid.UUID | None = None, limit: Limit = 50, offset: Offset = 0,
) -> Page[CaseRead]:
    """The office's cases, newest first."""
    items, total = await cases.list_cases(session, actor, status=status, assigned_to=assigned_to, overdue=overdue,
                                          household_id=household_id, person_id=person_id, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/cases/{case_id}", response_model=CaseRead)
async def get_case(session: SessionDep, settings: SettingsDep, actor: OfficeUser, case_id: uuid.UUID,
                   response: Response) -> CaseRead:
    case = await cases.get_case(session, actor, settings, case_id)
    response.headers["ETag"] = etag(case.version)
    return case


@router.patch("/cases/{case_id}", response_model=CaseRead, responses=PATCH_RESPONSES | CONFLICT_RESPONSES)
async def update_case(session: SessionDep, settings: SettingsDep, actor: OfficeUser, case_id: uuid.UUID, body: CaseUpdate,
                      response: Response, if_match: IfMatch = None) -> CaseRead:
    """Assign; wait (status waiting) and resume (open); close with an outcome, once nothing in the case
    is open (409 names what is); reopen a closed case (supervisors)."""
    case = await cases.update_case(session, actor, settings, case_id, body, if_match)
    response.headers["ETag"] = etag(case.version)
    return case


@router.get("/cases/{case_id}/timeline", response_model=Page[TimelineEntry])
async def timeline(session: SessionDep, settings: SettingsDep, actor: OfficeUser, case_id: uuid.UUID, limit: Limit = 200,
                   offset: Offset = 0) -> Page[TimelineEntry]:
    """Everything that happened in the case, oldest first: screenings, applications and their decisions,
    referrals, notes (a confidential note's text for supervisors only), follow-ups, grievances."""
    items, total = await cases.timeline(session, actor, settings, case_id, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.post("/cases/{case_id}/notes", response_model=NoteRead, status_code=201, dependencies=[Idempotent])
async def add_note(session: SessionDep, actor: OfficeUser, case_id: uuid.UUID, body: NoteCreate) -> NoteRead:
    """A note; a confidential one is readable by supervisors and admins only (even its author, if a clerk,
    sees that it exists, not its text)."""
    return await cases.add_note(session, actor, case_id, body)


@router.get("/cases/{case_id}/notes", response_model=list[NoteRead])
async def list_notes(session: SessionDep, actor: OfficeUser, case_id: uuid.UUID) -> list[NoteRead]:
    return await cases.list_notes(session, actor, case_id)
