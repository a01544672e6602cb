"""Engine and sessions for SQLite (embedded default) and PostgreSQL (production)."""

import hashlib
from collections.abc import Iterable

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.config import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    # hide_parameters: a statement's values (names, national IDs) stay out of SQL logs and out of the
    # text of database errors, which tracebacks would otherwise carry into the logs.
    if settings.is_sqlite:
        # No overflow: a connection beyond the pool would only wait for the writer's lock (settings.pool_size);
        # a request waits for the pool instead, woken as soon as a connection is back.
        engine = create_async_engine(
            settings.database_url,
            pool_size=settings.pool_size,
            max_overflow=0,
            pool_timeout=settings.db_pool_timeout_seconds,
            hide_parameters=True,
        )
        _configure_sqlite(engine, busy_timeout_ms=int(settings.db_statement_timeout_seconds * 1000))
        return engine
    return create_async_engine(
        settings.database_url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_size,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_pre_ping=False,
        hide_parameters=True,
        connect_args={
            "timeout": settings.db_pool_timeout_seconds,
            "command_timeout": settings.db_statement_timeout_seconds,
            "server_settings": {"application_name": "guichet"},
        },
    )


def _configure_sqlite(engine: AsyncEngine, *, busy_timeout_ms: int) -> None:
    """Take transaction control away from the sqlite3 module (whose legacy mode never BEGINs before a
    SELECT), turn on foreign keys and WAL, and make every transaction a writer from its first
    statement: GET requests write audit rows too, and a deferred BEGIN that upgrades to a writer later
    fails at once instead of waiting when another writer got there first."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", f"busy_timeout={busy_timeout_ms}", "foreign_keys=ON"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def advisory_key(namespace: str, value: str) -> int:
    """The PostgreSQL advisory-lock key of a value within a namespace: 64 bits of its hash."""
    return int.from_bytes(hashlib.blake2b(f"guichet-{namespace}:{value}".encode(), digest_size=8).digest(), "big", signed=True)


_LOCK_KEYS = text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k")


async def lock_values(session: AsyncSession, namespace: str, values: Iterable[str]) -> None:
    """Hold a lock per value until the transaction ends, so that another transaction working on the same
    values waits for this one to commit and then sees what it wrote. Taken in one order (sorted keys,
    which unnest keeps), so two transactions never wait for each other in a circle. On PostgreSQL only:
    SQLite's writers already take turns (BEGIN IMMEDIATE)."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(_LOCK_KEYS, {"keys": sorted({advisory_key(namespace, v) for v in values})})
