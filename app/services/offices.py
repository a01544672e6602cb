"""Single-window offices, each at a province or district."""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.principal import Principal
from app.errors import Conflict, InvalidInput, NotFound
from app.models import Location, Office
from app.services import audit


async def create_office(session: AsyncSession, actor: Principal | None, *, code: str, name: str, location_code: str) -> Office:
    location = await session.get(Location, location_code)
    if location is None or location.level not in ("province", "district"):
        raise InvalidInput(f"{location_code} is not a province or district of the gazetteer.", field="#/location_code")
    if (await session.execute(select(Office.id).where(Office.code == code))).first():
        raise Conflict(f"An office with code {code} already exists.")
    office = Office(code=code, name=name, location_code=location_code)
    session.add(office)
    await session.flush()
    audit.record(session, actor, action="create", entity_type="office", entity_id=office.id, office_id=office.id,
                 details={"code": code})
    return office


async def list_offices(session: AsyncSession, *, limit: int, offset: int) -> tuple[list[Office], int]:
    total = (await session.execute(select(func.count(Office.id)))).scalar_one()
    rows = (await session.execute(select(Office).order_by(Office.code).limit(limit).offset(offset))).scalars().all()
    return list(rows), total


async def office_by_code(session: AsyncSession, code: str) -> Office:
    office = (await session.execute(select(Office).where(Office.code == code))).scalar_one_or_none()
    if office is None:
        raise NotFound(f"No office with code {code}.")
    return office
