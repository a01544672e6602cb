"""The schema changes only through migrations: `alembic upgrade head` from empty (done by the test
world on each backend) gives exactly the tables, columns, types and indexes the models declare."""

import asyncio

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from app.migrations_state import alembic_config, expected_head
from app.models import Base


async def test_models_do_not_drift_from_migrations(app, world):
    def diff(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    async with app.state.engine.connect() as connection:
        differences = await connection.run_sync(diff)
    assert differences == [], f"models and migrations differ: {differences}"


async def test_database_is_at_the_code_head(app, world):
    async with app.state.engine.connect() as connection:
        current = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
    assert current == expected_head()


async def test_audit_trail_is_append_only_in_the_database(client, world, app):
    response = await client.get("/api/v1/households", headers=world.clerk_a.headers)
    assert response.status_code == 200
    for statement in ("UPDATE audit_event SET action = 'forged'", "DELETE FROM audit_event"):
        async with app.state.engine.connect() as connection:
            try:
                async with connection.begin():
                    await connection.execute(text(statement))
            except DBAPIError as exc:
                assert "append-only" in str(exc)
            else:
                raise AssertionError(f"{statement} was allowed")


async def test_migrations_go_down_to_nothing_and_up_again(tmp_path):
    """Every migration's downgrade works, so an upgrade that went wrong can be undone."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'roundtrip.db'}"
    config = alembic_config(url)
    config.attributes["skip_logging_config"] = True

    async def tables() -> set[str]:
        engine = create_async_engine(url)
        async with engine.connect() as connection:
            names = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
        await engine.dispose()
        return names - {"alembic_version"}

    await asyncio.to_thread(command.upgrade, config, "head")
    assert {t.name for t in Base.metadata.sorted_tables} <= await tables()
    await asyncio.to_thread(command.downgrade, config, "base")
    assert await tables() == set()
    await asyncio.to_thread(command.upgrade, config, "head")
    assert {t.name for t in Base.metadata.sorted_tables} <= await tables()
