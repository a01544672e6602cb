import uuid
from typing import Annotated

from fastapi import Header, Query, Response

from app.deps import OfficeUser, SessionDep
from app.etag import etag
from app.routers import PATCH_RESPONSES, REGISTRY_RESPONSES, IfMatch, Limit, Offset, SearchText, api_router
from app.schemas.common import LocationCode, SearchPage
from app.schemas.households import MatchQuery, MatchResult, PersonRead, PersonSummary, PersonUpdate
from app.services import names, persons
from app.vocabulary import Sex

router = api_router(tags=["persons"])


@router.get("/persons", response_model=SearchPage[PersonSummary])
async def search_persons(
    session: SessionDep,
    actor: OfficeUser,
    name: Annotated[SearchText, Query(description=(
        "Part of the name in Khmer or Latin script, whichever the person was registered in; case, accents and "
        "common romanisation variants ignored (Sophea, Sophia and សុភា find each other)."))] = None,
    national_id: Annotated[str | None, Query(max_length=30)] = None,
    location: LocationCode | None = None,
    sex: Sex | None = None,
    household_id: uuid.UUID | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
    accept_language: Annotated[str | None, Header(max_length=200, description="Khmer first (km) sorts names in Khmer collation.")] = None,
) -> SearchPage[PersonSummary]:
    items, total, exact = await persons.search_persons(
        session, actor, name=name, national_id=national_id, location=location, sex=sex, household_id=household_id,
        limit=limit, offset=offset, khmer_order=names.prefers_khmer(accept_language),
    )
    return SearchPage(items=items, total=total, total_exact=exact, limit=limit, offset=offset)


@router.post("/persons/matches", response_model=MatchResult)
async def find_matches(session: SessionDep, actor: OfficeUser, body: MatchQuery) -> MatchResult:
    """People already registered who may be the person at the window, scored, with the fields that
    matched: look before registering."""
    return MatchResult(items=await persons.find_matches(session, actor, body))


@router.get("/persons/{person_id}", response_model=PersonRead)
async def get_person(session: SessionDep, actor: OfficeUser, person_id: uuid.UUID, response: Response) -> PersonRead:
    person = await persons.get_person(session, actor, person_id)
    response.headers["ETag"] = etag(person.version)
    return person


@router.patch("/persons/{person_id}", response_model=PersonRead, responses=PATCH_RESPONSES | REGISTRY_RESPONSES)
async def update_person(
    session: SessionDep, actor: OfficeUser, person_id: uuid.UUID, body: PersonUpdate, response: Response,
    if_match: IfMatch = None,  # optional here so that its absence is a 428, not a validation error
) -> PersonRead:
    person = await persons.update_person(session, actor, person_id, body, if_match)
    response.headers["ETag"] = etag(person.version)
    return person
