"""Locations, offices and users."""

import uuid
from typing import Annotated

from fastapi import Header, Path, Query, Response

from app.deps import AdminUser, CurrentUser, SchemesDep, SessionDep, SettingsDep
from app.etag import check_if_match, etag
from app.routers import CONFLICT_RESPONSES, PATCH_RESPONSES, IfMatch, Limit, Offset, SearchText, api_router
from app.schemas.common import LocationCode, Page
from app.schemas.registry import LocationRead, OfficeCreate, OfficeRead, UserCreate, UserRead, UserUpdate
from app.services import locations, names, offices, users
from app.unit_of_work import Idempotent
from app.vocabulary import LocationLevel

router = api_router(tags=["registry"])


@router.get("/locations", response_model=Page[LocationRead])
async def list_locations(
    session: SessionDep,
    _: CurrentUser,
    parent: Annotated[LocationCode | None, Query(description="Children of this location.")] = None,
    level: LocationLevel | None = None,
    name: Annotated[SearchText, Query(description=(
        "The start of a word of the place's Khmer or Latin name (អង្គរ or angkor finds អង្គរជុំ Angkor Chum); "
        "case and accents ignored, Khmer normalised."))] = None,
    within: Annotated[LocationCode | None, Query(description="Only places inside this one (at any depth).")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
    accept_language: Annotated[str | None, Header(max_length=200, description="Khmer first (km) sorts places by Khmer name, in Khmer collation.")] = None,
) -> Page[LocationRead]:
    """The gazetteer. Without filters: the provinces. With `parent`: its children. With `within`: every place
    inside one. In code order, or by Khmer name when Khmer is the language asked for."""
    rows, total = await locations.list_locations(session, parent=parent, level=level, name=name, within=within,
                                                 limit=limit, offset=offset, khmer_order=names.prefers_khmer(accept_language))
    return Page(items=rows, total=total, limit=limit, offset=offset)


@router.get("/locations/{code}", response_model=LocationRead)
async def get_location(session: SessionDep, _: CurrentUser, code: Annotated[str, Path(max_length=8)]) -> LocationRead:
    return await locations.get_location(session, code)


@router.get("/offices", response_model=Page[OfficeRead])
async def list_offices(session: SessionDep, _: CurrentUser, limit: Limit = 100, offset: Offset = 0) -> Page[OfficeRead]:
    rows, total = await offices.list_offices(session, limit=limit, offset=offset)
    return Page(items=rows, total=total, limit=limit, offset=offset)


@router.get("/offices/{code}", response_model=OfficeRead)
async def get_office(session: SessionDep, _: CurrentUser, code: Annotated[str, Path(max_length=20)]) -> OfficeRead:
    """The office a POST /offices answered with in its Location."""
    return await offices.office_by_code(session, code)


@router.post("/offices", response_model=OfficeRead, status_code=201, dependencies=[Idempotent],
             responses=CONFLICT_RESPONSES)
async def create_office(session: SessionDep, actor: AdminUser, body: OfficeCreate, response: Response) -> OfficeRead:
    office = await offices.create_office(session, actor, code=body.code, name=body.name, location_code=body.location_code)
    response.headers["Location"] = f"/api/v1/offices/{office.code}"
    return office


def _user_read(user, office_code: str | None) -> UserRead:
    return UserRead.model_validate({**{c: getattr(user, c) for c in UserRead.model_fields if hasattr(user, c)},
                                    "office_code": office_code})


@router.post("/users", response_model=UserRead, status_code=201, dependencies=[Idempotent],
             responses=CONFLICT_RESPONSES)
async def create_user(
    registry: SchemesDep, session: SessionDep, settings: SettingsDep, actor: AdminUser, body: UserCreate, response: Response,
) -> UserRead:
    user, office_code = await users.create_user(
        session, actor, username=body.username, password=body.password.get_secret_value(), role=body.role,
        full_name=body.full_name, office_code=body.office_code, scheme_code=body.scheme_code,
        known_partners=users.partner_codes(registry, settings),
    )
    response.headers["Location"] = f"/api/v1/users/{user.id}"
    response.headers["ETag"] = etag(user.version)
    return _user_read(user, office_code)


@router.get("/users", response_model=Page[UserRead])
async def list_users(session: SessionDep, _: AdminUser, limit: Limit = 100, offset: Offset = 0) -> Page[UserRead]:
    rows, total = await users.list_users(session, limit=limit, offset=offset)
    return Page(items=[_user_read(u, c) for u, c in rows], total=total, limit=limit, offset=offset)


@router.get("/users/{user_id}", response_model=UserRead)
async def get_user(session: SessionDep, _: AdminUser, user_id: uuid.UUID, response: Response) -> UserRead:
    user, office_code = await users.get_user(session, user_id)
    response.headers["ETag"] = etag(user.version)
    return _user_read(user, office_code)


@router.patch("/users/{user_id}", response_model=UserRead, responses=PATCH_RESPONSES)
async def update_user(
    session: SessionDep, actor: AdminUser, user_id: uuid.UUID, body: UserUpdate, response: Response,
    if_match: IfMatch = None,  # optional here so that its absence is a 428, not a validation error
) -> UserRead:
    """Deactivate or reactivate an account, or reset its password; either revokes its tokens."""
    user, office_code = await users.get_user(session, user_id)
    check_if_match(if_match, user.version)
    user = await users.update_user(
        session, actor, user, is_active=body.is_active, password=body.password.get_secret_value() if body.password else None,
        full_name=body.full_name,
    )
    response.headers["ETag"] = etag(user.version)
    return _user_read(user, office_code)


@router.post("/users/{user_id}/unlock", status_code=204, response_class=Response)
async def unlock_user(session: SessionDep, actor: AdminUser, user_id: uuid.UUID) -> Response:
    """Lift the sign-in waits on an account that failed sign-ins slowed down (docs/sessions.md). Its
    password is unchanged; reset it with PATCH when it may be known to someone else."""
    await users.unlock(session, actor, user_id=user_id)
    return Response(status_code=204)
