"""A worker's memory (issue 13, bench/footprint.py): what most workers never use is made when first needed."""

import asyncio

import httpx
import pytest

from app.config import Settings
from app.db import create_engine, create_sessionmaker


async def test_the_dci_worker_makes_its_http_client_at_its_first_callback(app):
    """A TLS client (the CA bundle, parsed) costs ~2 MiB a worker; an office without DCI subscribers never needs it.
    Delivering callbacks with it is tested in test_dci_async.py."""
    worker = app.state.dci_worker
    assert worker._http is None
    client = worker.http
    assert isinstance(client, httpx.AsyncClient)
    assert worker.http is client


def test_a_sqlite_worker_keeps_three_connections_and_postgresql_ten(tmp_path):
    """SQLite runs one transaction at a time: a fourth connection would only wait, and cost the worker ~1.2 MiB."""
    sqlite = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'g.db'}", secret_key="k" * 40, pseudonym_key="p")
    postgresql = sqlite.model_copy(update={"database_url": "postgresql+asyncpg://guichet@127.0.0.1/guichet"})
    assert (sqlite.pool_size, postgresql.pool_size) == (3, 10)
    assert sqlite.model_copy(update={"db_pool_size": 6}).pool_size == 6  # GUICHET_DB_POOL_SIZE still decides
    sqlite_pool, postgresql_pool = create_engine(sqlite).sync_engine.pool, create_engine(postgresql).sync_engine.pool
    assert (sqlite_pool.size(), sqlite_pool._max_overflow) == (3, 0)
    assert (postgresql_pool.size(), postgresql_pool._max_overflow) == (10, 10)


async def test_requests_beyond_the_sqlite_pool_wait_for_a_connection(client, world, app, settings):
    """16 clerks at once on a pool of 3: every one is answered (they wait for the pool, not for SQLite's lock)."""
    if not settings.is_sqlite:
        pytest.skip("the SQLite pool")
    engine = create_engine(settings.model_copy(update={"db_pool_size": None}))
    previous = app.state.engine, app.state.sessionmaker
    app.state.engine, app.state.sessionmaker = engine, create_sessionmaker(engine)
    try:
        responses = await asyncio.gather(*(client.get("/api/v1/households", headers=world.clerk_a.headers)
                                           for _ in range(16)))
    finally:
        app.state.engine, app.state.sessionmaker = previous
        await engine.dispose()
    assert [r.status_code for r in responses] == [200] * 16
