"""Writing a synthetic population (app/services/synthetic.py) into the registry's tables in bulk: COPY
on PostgreSQL, executemany on SQLite; then the statistics autovacuum would gather after a bulk load."""

from __future__ import annotations

import json
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.models import ConsentRecord, Household, Person

if TYPE_CHECKING:
    from app.services.synthetic import SyntheticHousehold

_TABLES = (Household.__table__, Person.__table__, ConsentRecord.__table__)


async def write(session: AsyncSession, households: list[SyntheticHousehold]) -> tuple[int, int]:
    """Insert the households not already there, with their people and consent, in the session's
    transaction: COPY on PostgreSQL, executemany on SQLite. Returns (households, persons) added."""
    if not households:
        return 0, 0
    existing = set((await session.execute(
        select(Household.id).where(Household.id.in_([h.household["id"] for h in households]))
    )).scalars())
    new = [h for h in households if h.household["id"] not in existing]
    if not new:
        return 0, 0
    rows = ([h.household for h in new], [p for h in new for p in h.persons], [h.consent for h in new])
    if session.bind.dialect.name == "postgresql":
        await _copy(session, rows)
    else:
        for table, table_rows in zip(_TABLES, rows, strict=True):
            await session.execute(insert(table), table_rows)
    return len(new), len(rows[1])


async def _copy(session: AsyncSession, rows: tuple[list[dict[str, Any]], ...]) -> None:
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection  # the asyncpg connection
    for table, table_rows in zip(_TABLES, rows, strict=True):
        columns = [c.name for c in table.columns]
        values = itemgetter(*columns)
        json_positions = [i for i, c in enumerate(table.columns) if isinstance(c.type, JSON)]
        records = [values(r) for r in table_rows]
        if json_positions:  # COPY takes JSON as text
            records = [_json_encoded(r, json_positions) for r in records]
        await raw.copy_records_to_table(table.name, records=records, columns=columns)


def _json_encoded(record: tuple, positions: list[int]) -> list:
    record = list(record)
    for i in positions:
        record[i] = json.dumps(record[i]) if record[i] else "{}" if isinstance(record[i], dict) else "[]"
    return record


async def analyze(engine: AsyncEngine) -> None:
    """What autovacuum would do after a bulk load, now: planner statistics, and on PostgreSQL the
    visibility map that lets duplicate matching read its indexes alone."""
    async with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM (ANALYZE) household, person, consent_record"))
        else:
            await connection.execute(text("ANALYZE"))
            await connection.commit()
