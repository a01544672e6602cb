"""The gazetteer: province > district > commune > village, by geocode."""

import csv
import gzip
import io
import re
import time
from pathlib import Path

from sqlalchemy import false, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidInput, NotFound
from app.models import Location
from app.models.location import LEVEL_CODE_LENGTH
from app.services.names import khmer_collated, place_name_condition
from app.schemas.common import clean_place_name
from app.upsert import dialect_insert

# Every province, district, commune and village, with Latin and Khmer names (app/data/GAZETTEER_SOURCES.md).
NATIONAL_GAZETTEER = Path(__file__).resolve().parent.parent / "data" / "gazetteer.csv.gz"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode's control characters (Cc)
_PARENT_LEVEL = {"district": "province", "commune": "district", "village": "commune"}


class GazetteerError(ValueError):
    pass


def parse_gazetteer(text: str, *, source: str) -> list[dict]:
    """Rows of a gazetteer CSV (code,name,level,parent_code[,name_km]), checked as a whole: every code's
    length matches its level and extends its parent's code, and every parent is a known row."""
    # strict: a quote left open would otherwise swallow the rest of the file into one field.
    reader = csv.DictReader(io.StringIO(text), strict=True)
    missing = {"code", "name", "level", "parent_code"} - set(_fieldnames(reader, source))
    if missing:
        raise GazetteerError(f"{source}: missing columns {', '.join(sorted(missing))}")
    rows: dict[str, dict] = {}
    for line, raw in _records(reader, source):
        code, level = (raw.get("code") or "").strip(), (raw.get("level") or "").strip()
        parent = (raw.get("parent_code") or "").strip() or None
        name = (raw.get("name") or "").strip()
        where = f"{source}:{line}"
        if None in raw:  # more fields than columns: often a comma in a name that is not in quotes
            raise GazetteerError(f"{where}: more fields than the header's {len(reader.fieldnames)} columns "
                                 f"(a name with a comma goes in double quotes)")
        if _CONTROL.search(name + (raw.get("name_km") or "")):
            raise GazetteerError(f"{where}: a name has a line break, tab or other control character")
        if level not in LEVEL_CODE_LENGTH:
            raise GazetteerError(f"{where}: level {level!r} is not one of {', '.join(LEVEL_CODE_LENGTH)}")
        if not code.isdigit() or len(code) != LEVEL_CODE_LENGTH[level]:
            raise GazetteerError(f"{where}: a {level} code has {LEVEL_CODE_LENGTH[level]} digits, got {code!r}")
        if not name or len(name) > 120:
            raise GazetteerError(f"{where}: name must be 1 to 120 characters")
        name_km = (raw.get("name_km") or "").strip() or None
        if name_km and len(name_km) > 120:
            raise GazetteerError(f"{where}: name_km must be at most 120 characters")
        try:  # place names are printed (receipts, slips) and searched, as people's names are
            name, name_km = clean_place_name(name), name_km and clean_place_name(name_km)
        except ValueError as exc:
            raise GazetteerError(f"{where}: name {exc}") from None
        if level == "province" and parent:
            raise GazetteerError(f"{where}: a province has no parent")
        if level != "province" and (parent is None or code[: len(parent)] != parent or len(parent) != len(code) - 2):
            raise GazetteerError(f"{where}: parent_code of {code} must be {code[:-2]}")
        if code in rows:
            raise GazetteerError(f"{where}: duplicate code {code}")
        rows[code] = {
            "code": code,
            "name": name,
            "name_km": name_km,
            "level": level,
            "parent_code": parent,
            "source": source[:80],
        }
    return list(rows.values())


def _fieldnames(reader: csv.DictReader, source: str) -> list[str]:
    try:
        return reader.fieldnames or []
    except csv.Error as exc:
        raise GazetteerError(f"{source}:1: {_csv_fault(exc)}") from None


def _records(reader: csv.DictReader, source: str):
    """(line where the record starts, record): a quoted field may hold line breaks, so a record may span lines."""
    start = reader.line_num + 1
    while True:
        try:
            raw = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise GazetteerError(f"{source}:{start}: {_csv_fault(exc)}") from None
        yield start, raw
        start = reader.line_num + 1


def _csv_fault(exc: csv.Error) -> str:
    if "unexpected end of data" in str(exc):
        return 'a quote (") opened on this line is never closed'
    return f"not valid CSV ({exc}); a field with a comma or a quote goes in double quotes, its quotes doubled"


async def import_rows(session: AsyncSession, rows: list[dict]) -> int:
    """Insert or update the rows, parents first. Parents may already be in the database."""
    known = set((await session.execute(select(Location.code))).scalars())
    for row in rows:
        if row["parent_code"] and row["parent_code"] not in known and not any(r["code"] == row["parent_code"] for r in rows):
            raise GazetteerError(f"parent {row['parent_code']} of {row['code']} is neither in the file nor in the database")
    await _insert(session, rows, update=True)
    return len(rows)


def national_gazetteer() -> list[dict]:
    return parse_gazetteer(gzip.decompress(NATIONAL_GAZETTEER.read_bytes()).decode("utf-8"), source="national")


async def load_national_gazetteer(session: AsyncSession) -> int:
    """Add the national gazetteer's locations the database lacks; those it has stay as they are, whatever an
    operator made of them (`guichet locations import`). Returns how many were added."""
    known = set((await session.execute(select(Location.code))).scalars())
    new = [row for row in national_gazetteer() if row["code"] not in known]
    await _insert(session, new, update=False)
    return len(new)


async def _insert(session: AsyncSession, rows: list[dict], *, update: bool) -> None:
    """Parents first; an existing code is updated, or left alone."""
    if not rows:
        return
    order = {level: i for i, level in enumerate(LEVEL_CODE_LENGTH)}
    statement = dialect_insert(session, Location)
    if update:
        statement = statement.on_conflict_do_update(
            index_elements=["code"],
            set_={c: statement.excluded[c] for c in ("name", "name_km", "level", "parent_code", "source", "name_keys")},
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=["code"])
    # One statement with many rows of parameters: SQLAlchemy sends them in batches of one INSERT each.
    await session.execute(statement, sorted(rows, key=lambda r: order[r["level"]]))


async def list_locations(
    session: AsyncSession, *, parent: str | None, level: str | None, name: str | None, limit: int, offset: int,
    within: str | None = None, khmer_order: bool = False,
) -> tuple[list[Location], int]:
    query = select(Location)
    if within is not None:
        # A place's code starts with its parents' (2, 4, 6, 8 digits).
        query = query.where(Location.code.startswith(within, autoescape=True), Location.code != within)
    if parent is not None:
        query = query.where(Location.parent_code == parent)
    elif level is None and name is None and within is None:
        query = query.where(Location.level == "province")
    if level is not None:
        query = query.where(Location.level == level)
    if name is not None:
        # Khmer or Latin, normalised, from the start of a word of either name: "angkor" and "អង្គរ" find
        # អង្គរជុំ Angkor Chum, "chum" too (names.place_name_condition); punctuation alone finds nothing.
        condition = place_name_condition(Location.name_keys, name)
        query = query.where(condition if condition is not None else false())
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    # Khmer order: by Khmer name (a place without one after, by its Latin name), then code for namesakes.
    order = [*await khmer_collated(session, func.coalesce(Location.name_km, Location.name)), Location.code] if khmer_order \
        else [Location.code]
    rows = (await session.execute(query.order_by(*order).limit(limit).offset(offset))).scalars().all()
    return list(rows), total


async def get_location(session: AsyncSession, code: str) -> Location:
    location = await session.get(Location, code)
    if location is None:
        raise NotFound(f"No location with code {code}.")
    return location


# Villages are never deleted (an import only adds or renames), so a code once seen stays valid.
_known_villages: set[str] = set()


async def require_village(session: AsyncSession, code: str, *, field: str) -> None:
    if code in _known_villages:
        return
    location = await session.get(Location, code)
    if location is None or location.level != "village":
        raise InvalidInput(f"{code} is not a village of the gazetteer.", field=field)
    _known_villages.add(code)


# A village's path of names, as household reads show it, kept a minute: every registration and read
# shows one, and a gazetteer import (another process) renames rarely; a rename shows within a minute.
PATH_TTL_SECONDS = 60.0
_paths: dict[str, tuple[float, dict[str, str | None]]] = {}


async def location_path(session: AsyncSession, village_code: str) -> dict[str, str | None]:
    now = time.monotonic()
    cached = _paths.get(village_code)
    if cached is not None and cached[0] > now:
        return cached[1]
    codes = [village_code[:n] for n in (2, 4, 6, 8)]
    rows = (await session.execute(select(Location.code, Location.name, Location.name_km).where(Location.code.in_(codes)))).all()
    names = {row.code: row.name for row in rows}
    names_km = {row.code: row.name_km for row in rows}
    path = {
        "province": names.get(codes[0]),
        "district": names.get(codes[1]),
        "commune": names.get(codes[2]),
        "village": names.get(codes[3]),
        "province_km": names_km.get(codes[0]),
        "district_km": names_km.get(codes[1]),
        "commune_km": names_km.get(codes[2]),
        "village_km": names_km.get(codes[3]),
    }
    if len(_paths) > 100_000:  # more than the country's villages: something odd, start again
        _paths.clear()
    _paths[village_code] = (now + PATH_TTL_SECONDS, path)
    return path
