"""Eligibility screenings: one call runs every scheme for a household and each member."""

import uuid
from typing import Annotated

from fastapi import Body, Response

from app.deps import OfficeUser, SchemesDep, SessionDep
from app.routers import CONFLICT_RESPONSES, Limit, Offset, api_router
from app.schemas.common import Page
from app.schemas.screening import ScreeningCreate, ScreeningPreview, ScreeningRead, ScreeningSummary
from app.schemes.language import localise_screening
from app.services import screening
from app.unit_of_work import Idempotent

router = api_router(tags=["screenings"])


@router.post("/households/{household_id}/screenings", response_model=ScreeningRead, status_code=201,
             dependencies=[Idempotent], responses=CONFLICT_RESPONSES)
async def screen_household(
    registry: SchemesDep, session: SessionDep, actor: OfficeUser, household_id: uuid.UUID, response: Response,
    body: Annotated[ScreeningCreate | None, Body()] = None,
) -> ScreeningRead:
    """Run every scheme in force (or `schemes`) for the household and each member, and keep the record.
    A partner scheme that fails answers `error` for that scheme; the screening still succeeds."""
    result = await screening.screen_household(session, actor, registry, household_id, body.schemes if body else None)
    response.headers["Location"] = f"/api/v1/screenings/{result.id}"
    return localise_screening(registry, result)


@router.post("/screenings/preview", response_model=ScreeningRead)
async def preview(registry: SchemesDep, session: SessionDep, actor: OfficeUser, body: ScreeningPreview) -> ScreeningRead:
    """"Am I eligible?": the body of a household registration, screened without registering anyone.
    Nothing about the people is stored."""
    return localise_screening(registry, await screening.preview(session, actor, registry, body, body.schemes))


@router.get("/screenings/{screening_id}", response_model=ScreeningRead)
async def get_screening(registry: SchemesDep, session: SessionDep, actor: OfficeUser, screening_id: uuid.UUID) -> ScreeningRead:
    return localise_screening(registry, await screening.get_screening(session, actor, screening_id))


@router.get("/households/{household_id}/screenings", response_model=Page[ScreeningSummary])
async def list_screenings(session: SessionDep, actor: OfficeUser, household_id: uuid.UUID, limit: Limit = 50,
                          offset: Offset = 0) -> Page[ScreeningSummary]:
    """The household's screenings, newest first."""
    items, total = await screening.list_screenings(session, actor, household_id, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)
