"""Applications: filing, reading, the receipt, decisions and the office's transitions."""

import uuid
from typing import Annotated

from fastapi import BackgroundTasks, Query, Request, Response

from app.deps import OfficeUser, SchemesDep, SessionDep, SettingsDep, SupervisorUser
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
from app.schemas.cases import ApplicationCreate, ApplicationRead, ApplicationUpdate, DecisionCreate, ReceiptRead
from app.schemas.common import Page
from app.schemas.screening import SchemeCode
from app.schemes.language import agency_name, scheme_name
from app.services import applications
from app.unit_of_work import Idempotent
from app.vocabulary import ApplicationStatus, SubmissionState

router = api_router(tags=["applications"])


@router.post("/cases/{case_id}/applications", response_model=ApplicationRead, status_code=201, dependencies=[Idempotent],
             responses=CONFLICT_RESPONSES)
async def file_application(request: Request, registry: SchemesDep, session: SessionDep, settings: SettingsDep,
                           actor: OfficeUser, case_id: uuid.UUID, body: ApplicationCreate, response: Response,
                           background: BackgroundTasks) -> ApplicationRead:
    """File an application to a scheme for a member (person-level scheme) or the household. Where the
    latest screening found the applicant not_eligible, `against_screening_reason` is required (422
    without it). A scheme reached over HTTP is then sent to its agency (`submission`), after this
    answer; any other scheme is decided here by a supervisor."""
    application = await applications.file_application(session, actor, settings, registry, case_id, body)
    if application.submission is not None:
        background.add_task(applications.send_to_partner, request.app.state.sessionmaker, registry, application.id, actor)
    response.headers["Location"] = f"/api/v1/applications/{application.id}"
    response.headers["ETag"] = etag(application.version)
    return application


@router.get("/applications", response_model=Page[ApplicationRead])
async def list_applications(
    session: SessionDep, actor: OfficeUser, status: ApplicationStatus | None = None, scheme_code: SchemeCode | None = None,
    overdue: Annotated[bool | None, Query(description="Undecided past the scheme's service-level days.")] = None,
    case_id: uuid.UUID | None = None, household_id: uuid.UUID | None = None,
    submission: Annotated[SubmissionState | None, Query(description="failed: flagged for the clerk to send again.")] = None,
    limit: Limit = 50, offset: Offset = 0,
) -> Page[ApplicationRead]:
    items, total = await applications.list_applications(
        session, actor, status=status, scheme_code=scheme_code, overdue=overdue, case_id=case_id, household_id=household_id,
        submission=submission, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/applications/{application_id}", response_model=ApplicationRead)
async def get_application(session: SessionDep, actor: OfficeUser, application_id: uuid.UUID, response: Response) -> ApplicationRead:
    application = await applications.get_application(session, actor, application_id)
    response.headers["ETag"] = etag(application.version)
    return application


@router.patch("/applications/{application_id}", response_model=ApplicationRead, responses=PATCH_RESPONSES | CONFLICT_RESPONSES)
async def change_status(session: SessionDep, actor: OfficeUser, application_id: uuid.UUID, body: ApplicationUpdate,
                        response: Response, if_match: IfMatch = None) -> ApplicationRead:
    """submitted -> pending_information (say what is needed) -> submitted; the applicant withdraws. An
    illegal transition answers 409 naming the allowed ones."""
    application = await applications.change_status(session, actor, application_id, body, if_match)
    response.headers["ETag"] = etag(application.version)
    return application


@router.post("/applications/{application_id}/decision", response_model=ApplicationRead, dependencies=[Idempotent],
             responses=PATCH_RESPONSES | CONFLICT_RESPONSES)
async def decide(session: SessionDep, actor: SupervisorUser, application_id: uuid.UUID, body: DecisionCreate,
                 response: Response, if_match: IfMatch = None) -> ApplicationRead:
    """A supervisor approves (optionally with the benefit) or rejects (with a reason code and the reasons
    in writing) an application of a scheme decided at the office. Needs If-Match."""
    application = await applications.decide(session, actor, application_id, body, if_match)
    response.headers["ETag"] = etag(application.version)
    return application


@router.post("/applications/{application_id}/submission", response_model=ApplicationRead, status_code=202,
             dependencies=[Idempotent], responses=CONFLICT_RESPONSES)
async def send_again(request: Request, registry: SchemesDep, session: SessionDep, actor: OfficeUser,
                     application_id: uuid.UUID, response: Response, background: BackgroundTasks) -> ApplicationRead:
    """Send a flagged (failed) submission to the partner again; the answer comes before the attempt ends."""
    application = await applications.request_resend(session, actor, application_id)
    background.add_task(applications.send_to_partner, request.app.state.sessionmaker, registry, application.id, actor)
    response.headers["ETag"] = etag(application.version)
    return application


@router.get("/applications/{application_id}/receipt", response_model=ReceiptRead, responses=PRINTABLE_RESPONSES)
async def receipt(request: Request, registry: SchemesDep, session: SessionDep, settings: SettingsDep, actor: OfficeUser,
                  application_id: uuid.UUID):
    """The client's proof of application: reference number, scheme, date, office and what happens next.
    JSON, or a printable HTML page (UTF-8) when the Accept header prefers text/html."""
    wanted = printable_media(request)
    found = await applications.receipt(session, actor, settings, application_id)
    found = found.model_copy(update={"scheme_name": scheme_name(registry, found.scheme_code, found.scheme_name),
                                     "agency": agency_name(registry, found.scheme_code, found.agency)})
    return printable(wanted, found, applications.render_receipt)
