"""Referrals to another agency or service, and the agencies one can refer to."""

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
from app.schemas.cases import AgencyRead, EventCode, ReferralCreate, ReferralRead, ReferralSlipRead, ReferralUpdate
from app.schemas.common import Page
from app.services import referrals
from app.unit_of_work import Idempotent
from app.vocabulary import ReferralStatus

router = api_router(tags=["referrals"])


@router.get("/referral-agencies", response_model=list[AgencyRead])
async def list_agencies(settings: SettingsDep, actor: OfficeUser) -> list[AgencyRead]:
    """The agencies and services a case can be referred to (GUICHET_REFERRAL_AGENCIES)."""
    return referrals.agencies(settings)


@router.post("/cases/{case_id}/referrals", response_model=ReferralRead, status_code=201, dependencies=[Idempotent],
             responses=CONFLICT_RESPONSES)
async def issue_referral(session: SessionDep, settings: SettingsDep, actor: OfficeUser, case_id: uuid.UUID,
                         body: ReferralCreate, response: Response) -> ReferralRead:
    referral = await referrals.issue(session, actor, settings, case_id, body)
    response.headers["Location"] = f"/api/v1/referrals/{referral.id}"
    response.headers["ETag"] = etag(referral.version)
    return referral


@router.get("/referrals", response_model=Page[ReferralRead])
async def list_referrals(
    session: SessionDep, settings: SettingsDep, actor: OfficeUser, status: ReferralStatus | None = None,
    agency: EventCode | None = None,
    overdue: Annotated[bool | None, Query(description="Open past the due date.")] = None,
    case_id: uuid.UUID | None = None, limit: Limit = 50, offset: Offset = 0,
) -> Page[ReferralRead]:
    """The office's referrals, soonest due first."""
    items, total = await referrals.list_referrals(session, actor, settings, status=status, agency=agency, overdue=overdue,
                                                  case_id=case_id, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/referrals/{referral_id}", response_model=ReferralRead)
async def get_referral(session: SessionDep, settings: SettingsDep, actor: OfficeUser, referral_id: uuid.UUID,
                       response: Response) -> ReferralRead:
    referral = await referrals.get_referral(session, actor, settings, referral_id)
    response.headers["ETag"] = etag(referral.version)
    return referral


@router.get("/referrals/{referral_id}/slip", response_model=ReferralSlipRead, responses=PRINTABLE_RESPONSES)
async def slip(request: Request, session: SessionDep, settings: SettingsDep, actor: OfficeUser, referral_id: uuid.UUID):
    """The referral slip the client carries to the agency: who is referred, to which agency and service, why,
    and by when. JSON, or a printable HTML page (UTF-8) when the Accept header prefers text/html."""
    wanted = printable_media(request)
    found = await referrals.slip(session, actor, settings, referral_id)
    return printable(wanted, found, referrals.render_slip)


@router.patch("/referrals/{referral_id}", response_model=ReferralRead, responses=PATCH_RESPONSES | CONFLICT_RESPONSES)
async def update_referral(session: SessionDep, settings: SettingsDep, actor: OfficeUser, referral_id: uuid.UUID,
                          body: ReferralUpdate, response: Response, if_match: IfMatch = None) -> ReferralRead:
    """Record what the agency did (accepted, completed, declined) or that it expired; or move the due date."""
    referral = await referrals.update(session, actor, settings, referral_id, body, if_match)
    response.headers["ETag"] = etag(referral.version)
    return referral
