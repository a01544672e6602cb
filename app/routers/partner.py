"""The partner API: a scheme's agency decides the applications sent to it, and an agency answers the
referrals made to it. A partner account is bound to one scheme code (docs/case-management.md)."""

import uuid

from fastapi import Response

from app.deps import PartnerUser, SessionDep, SettingsDep
from app.etag import etag
from app.routers import CONFLICT_RESPONSES, PATCH_RESPONSES, IfMatch, Limit, Offset, api_router
from app.schemas.cases import (
    DecisionCreate,
    PartnerApplicationRead,
    PartnerReferralRead,
    PartnerReferralUpdate,
)
from app.schemas.common import Page
from app.services import applications, referrals
from app.unit_of_work import Idempotent
from app.vocabulary import ApplicationStatus, ReferralStatus

router = api_router(tags=["partner"], prefix="/api/v1/partner")


@router.get("/applications", response_model=Page[PartnerApplicationRead])
async def list_applications(session: SessionDep, actor: PartnerUser, status: ApplicationStatus | None = None,
                            limit: Limit = 50, offset: Offset = 0) -> Page[PartnerApplicationRead]:
    """Applications of your scheme sent to you, oldest first."""
    items, total = await applications.list_for_partner(session, actor, status=status, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/applications/{application_id}", response_model=PartnerApplicationRead)
async def get_application(session: SessionDep, actor: PartnerUser, application_id: uuid.UUID,
                          response: Response) -> PartnerApplicationRead:
    """The application's state and its ETag (for the decision's If-Match). Another scheme's: 404."""
    application = await applications.get_for_partner(session, actor, application_id)
    response.headers["ETag"] = etag(application.version)
    return application


@router.post("/applications/{application_id}/decision", response_model=PartnerApplicationRead, dependencies=[Idempotent],
             responses=PATCH_RESPONSES | CONFLICT_RESPONSES)
async def decide(session: SessionDep, actor: PartnerUser, application_id: uuid.UUID, body: DecisionCreate, response: Response,
                 if_match: IfMatch = None) -> PartnerApplicationRead:
    """Approve (optionally with the benefit: type, amount, currency, frequency, start date) or reject (a
    reason code and the reasons in writing, which the client is told). If-Match: the ETag you read
    (or `*`). Another scheme's application: 404."""
    decided = await applications.decide_as_partner(session, actor, application_id, body, if_match)
    response.headers["ETag"] = etag(decided.version)
    return decided


@router.get("/referrals", response_model=Page[PartnerReferralRead])
async def list_referrals(session: SessionDep, settings: SettingsDep, actor: PartnerUser, status: ReferralStatus | None = None,
                         limit: Limit = 50, offset: Offset = 0) -> Page[PartnerReferralRead]:
    """Referrals to your agency (open ones unless `status` says otherwise), soonest due first."""
    items, total = await referrals.list_for_partner(session, actor, settings, status=status, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/referrals/{referral_id}", response_model=PartnerReferralRead)
async def get_referral(session: SessionDep, settings: SettingsDep, actor: PartnerUser, referral_id: uuid.UUID,
                       response: Response) -> PartnerReferralRead:
    referral = await referrals.get_for_partner(session, actor, settings, referral_id)
    response.headers["ETag"] = etag(referral.version)
    return referral


@router.patch("/referrals/{referral_id}", response_model=PartnerReferralRead, responses=PATCH_RESPONSES | CONFLICT_RESPONSES)
async def update_referral(session: SessionDep, settings: SettingsDep, actor: PartnerUser, referral_id: uuid.UUID,
                          body: PartnerReferralUpdate, response: Response, if_match: IfMatch = None) -> PartnerReferralRead:
    """accepted, then completed or declined, with a note for the office."""
    referral = await referrals.update_as_partner(session, actor, settings, referral_id, body, if_match)
    response.headers["ETag"] = etag(referral.version)
    return referral
