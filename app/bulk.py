"""Writing many rows, of one or several tables, at the cost of one statement.

A screening writes its record, its audit row, 38 determinations and 39 activity events; the ORM
would spend a round trip per table and encode every JSON value one by one. Here the rows go to
PostgreSQL as one JSON document and one statement: each table's rows are expanded by
`jsonb_populate_recordset` in a data-modifying CTE, and since foreign keys are checked at the end of
the statement, a row may reference one inserted beside it. Large batches (a re-screen) go by COPY.
On SQLite, in process, a multi-row INSERT per table costs no round trip."""

import uuid
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import JSON, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

# Past this many rows, COPY's binary stream beats parsing one JSON document.
COPY_ABOVE = 2_000

Rows = list[dict[str, Any]]


async def insert_rows(session: AsyncSession, *batches: tuple[Table, Rows]) -> None:
    """Insert each (table, rows) in the session's transaction, in the given order. The rows of one
    table all have the same keys; a column left out takes its default, as with the ORM."""
    batches = tuple((table, with_defaults(table, rows)) for table, rows in batches if rows)
    if not batches:
        return
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        for table, rows in batches:
            await session.execute(table.insert(), rows)
        return
    if sum(len(rows) for _, rows in batches) > COPY_ABOVE:
        # COPY exists only in the driver, so its errors are the driver's own; only batch commands (the
        # re-screen) write this many rows at once, never a request.
        driver = (await connection.get_raw_connection()).driver_connection
        for table, rows in batches:
            await _copy(driver, table, rows)
        return
    shape = tuple((table, tuple(rows[0])) for table, rows in batches)
    # Through SQLAlchemy's connection (not the driver's) so that a unique violation is an IntegrityError
    # (a 409) and a lost connection invalidates the pool, as for every other statement.
    await connection.exec_driver_sql(_statement(shape), (to_json([rows for _, rows in batches]),))


def with_defaults(table: Table, rows: Rows) -> Rows:
    """The rows with the Python-side defaults of the columns they leave out, as the ORM would insert them."""
    defaults = _defaults(table, frozenset(rows[0]))
    if not defaults:
        return rows
    return [row | {name: make() for name, make in defaults} for row in rows]


@lru_cache(maxsize=256)
def _defaults(table: Table, keys: frozenset[str]) -> tuple[tuple[str, Callable[[], Any]], ...]:
    """The Python-side defaults of the columns a row leaves out (server defaults apply by themselves)."""
    found = []
    for column in table.columns:
        default = column.default
        if column.name in keys or default is None:
            continue
        if default.is_callable:
            found.append((column.name, lambda make=default.arg: make(None)))
        elif default.is_scalar:
            found.append((column.name, lambda value=default.arg: value))
    return tuple(found)


def to_json(value: Any) -> str:
    """Rows as one JSON document for PostgreSQL to take apart: orjson, several times faster than the
    standard library at the sizes a batch reaches."""
    return orjson.dumps(value, default=_uuid).decode()


def _uuid(value: Any) -> str:
    # orjson knows uuid.UUID itself, not its subclasses (asyncpg hands back its own).
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@lru_cache(maxsize=64)
def _statement(shape: tuple[tuple[Table, tuple[str, ...]], ...]) -> str:
    quote = postgresql.dialect().identifier_preparer.quote
    inserts = []
    for i, (table, keys) in enumerate(shape):
        columns = ", ".join(quote(k) for k in keys)
        inserts.append(f"INSERT INTO {quote(table.name)} ({columns}) SELECT {columns} "
                       f"FROM jsonb_populate_recordset(NULL::{quote(table.name)}, $1::jsonb -> {i})")
    *first, last = inserts
    if not first:
        return last
    return "WITH " + ", ".join(f"t{i} AS ({sql})" for i, sql in enumerate(first)) + " " + last


async def _copy(driver, table: Table, rows: Rows) -> None:
    names = list(rows[0])
    as_json = {c.name for c in table.columns if isinstance(c.type, JSON)}
    # A re-screen's rows share their values (the same reasons for every subject with the same facts):
    # each object is encoded once. Keyed by identity, which holds while `rows` keeps them alive.
    encoded: dict[int, str] = {}

    def value(v: Any) -> Any:
        key = id(v)
        if key not in encoded:
            encoded[key] = to_json(v)
        return encoded[key]

    records = [tuple(value(row[n]) if n in as_json and row[n] is not None else row[n] for n in names) for row in rows]
    await driver.copy_records_to_table(table.name, records=records, columns=names)
