"""The schema changes only through migrations: `alembic upgrade head` from empty (done by the test
world on each backend) gives exactly the tables, columns, types and indexes the models declare."""

import asyncio
import uuid

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import column, insert, inspect, select, table, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from app.migrations_state import alembic_config, expected_head
from app.models import Base, Household, Office, Person
from conftest import create_postgres_database, drop_postgres_database


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


async def test_0006_gives_registered_members_their_households_village(backend, tmp_path):
    """A registry upgraded to 0006 with people in it: each member takes the village of their household."""
    url = (f"sqlite+aiosqlite:///{tmp_path / 'upgrade.db'}" if backend == "sqlite"
           else await create_postgres_database())
    config = alembic_config(url)
    config.attributes["skip_logging_config"] = True
    engine = create_async_engine(url)
    try:
        await asyncio.to_thread(command.upgrade, config, "0005_scale")
        office_id = uuid.uuid4()
        households = {uuid.uuid4(): "17010101", uuid.uuid4(): "17010201"}
        async with engine.begin() as connection:
            # The table as it was at 0005 (the model's insert would add columns of later revisions).
            location = table("location", *map(column, ("code", "name", "level", "parent_code", "source")))
            await connection.execute(insert(location), [
                {"code": code, "name": code, "level": level, "parent_code": parent, "source": "test"}
                for code, level, parent in [("17", "province", None), ("1701", "district", "17"),
                                            ("170101", "commune", "1701"), ("170102", "commune", "1701"),
                                            ("17010101", "village", "170101"), ("17010201", "village", "170102")]])
            await connection.execute(insert(Office.__table__).values(id=office_id, code="SR-ACH", name="Office",
                                                                      location_code="1701"))
            for household_id, village in households.items():
                await connection.execute(insert(Household.__table__).values(
                    id=household_id, office_id=office_id, village_code=village, area_type="rural", version=1))
                await connection.execute(insert(Person.__table__), [
                    {"id": uuid.uuid4(), "household_id": household_id, "office_id": office_id, "given_name": given,
                     "family_name": "Sok", "search_name": f"sok {given.lower()}", "family_key": "sok",
                     "given_key": given.lower(), "sex": "female", "birth_year": 1990, "relationship": relationship,
                     "version": 1}
                    for given, relationship in (("Dara", "head"), ("Bopha", "child"))])
        await asyncio.to_thread(command.upgrade, config, "head")
        async with engine.connect() as connection:
            members = (await connection.execute(select(Person.household_id, Person.village_code))).all()
        assert sorted((str(h), v) for h, v in members) == sorted(
            (str(h), v) for h, v in households.items() for _ in range(2))
    finally:
        await engine.dispose()
        if backend == "postgres":
            await drop_postgres_database(url)
