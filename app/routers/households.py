import uuid
from typing import Annotated, Literal

from fastapi import Query, Response

from app.deps import OfficeUser, SessionDep
from app.etag import etag
from app.routers import PATCH_RESPONSES, REGISTRY_RESPONSES, IfMatch, Limit, Offset, SearchText, api_router
from app.schemas.common import LocationCode, SearchPage
from app.schemas.households import (
    ConsentIn,
    ConsentRead,
    HouseholdCreate,
    HouseholdRead,
    HouseholdSummary,
    HouseholdUpdate,
    MemberAdd,
    PersonRead,
)
from app.services import households
from app.unit_of_work import Idempotent

router = api_router(tags=["households"])


@router.post("/households", response_model=HouseholdRead, status_code=201, dependencies=[Idempotent],
             responses=REGISTRY_RESPONSES)
async def register_household(session: SessionDep, actor: OfficeUser, body: HouseholdCreate, response: Response) -> HouseholdRead:
    """Register a household with its members and consent. Facts that cannot be true answer 422; a
    national ID already registered, unlikely facts (unless `confirm_unlikely`) or a likely duplicate
    person (unless `confirm_new`) answer 409 with what was found."""
    household = await households.register_household(session, actor, body)
    response.headers["Location"] = f"/api/v1/households/{household.id}"
    response.headers["ETag"] = etag(household.version)
    return household


@router.get("/households", response_model=SearchPage[HouseholdSummary])
async def search_households(
    session: SessionDep,
    actor: OfficeUser,
    name: Annotated[SearchText, Query(description="Part of any member's name; case and accents ignored.")] = None,
    national_id: Annotated[str | None, Query(max_length=30)] = None,
    phone: Annotated[str | None, Query(max_length=20, description="Any member's phone number, as recorded.")] = None,
    idpoor_card: Annotated[str | None, Query(max_length=40, description="The household's IDPoor card number.")] = None,
    location: Annotated[LocationCode | None, Query(description="A village or any location above it.")] = None,
    idpoor_level: Literal["1", "2", "none"] | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> SearchPage[HouseholdSummary]:
    items, total, exact = await households.search_households(
        session, actor, name=name, national_id=national_id, phone=phone, idpoor_card=idpoor_card, location=location,
        idpoor_level=idpoor_level, limit=limit, offset=offset,
    )
    return SearchPage(items=items, total=total, total_exact=exact, limit=limit, offset=offset)


@router.get("/households/{household_id}", response_model=HouseholdRead)
async def get_household(session: SessionDep, actor: OfficeUser, household_id: uuid.UUID, response: Response) -> HouseholdRead:
    household = await households.get_household(session, actor, household_id)
    response.headers["ETag"] = etag(household.version)
    return household


@router.patch("/households/{household_id}", response_model=HouseholdRead, responses=PATCH_RESPONSES | REGISTRY_RESPONSES)
async def update_household(
    session: SessionDep, actor: OfficeUser, household_id: uuid.UUID, body: HouseholdUpdate, response: Response,
    if_match: IfMatch = None,  # optional here so that its absence is a 428, not a validation error
) -> HouseholdRead:
    household = await households.update_household(session, actor, household_id, body, if_match)
    response.headers["ETag"] = etag(household.version)
    return household


@router.post("/households/{household_id}/members", response_model=PersonRead, status_code=201,
             dependencies=[Idempotent], responses=REGISTRY_RESPONSES)
async def add_member(
    session: SessionDep, actor: OfficeUser, household_id: uuid.UUID, body: MemberAdd, response: Response
) -> PersonRead:
    person = await households.add_member(session, actor, household_id, body)
    response.headers["Location"] = f"/api/v1/persons/{person.id}"
    response.headers["ETag"] = etag(person.version)
    return person


@router.get("/households/{household_id}/consent", response_model=list[ConsentRead])
async def consent_history(session: SessionDep, actor: OfficeUser, household_id: uuid.UUID) -> list[ConsentRead]:
    """Every consent given for the household, newest (the one in force) first."""
    return await households.consent_history(session, actor, household_id)


@router.post("/households/{household_id}/consent", response_model=ConsentRead, status_code=201, dependencies=[Idempotent])
async def change_consent(session: SessionDep, actor: OfficeUser, household_id: uuid.UUID, body: ConsentIn) -> ConsentRead:
    """Record the household's consent as it stands now; earlier records are kept."""
    return await households.change_consent(session, actor, household_id, body)
