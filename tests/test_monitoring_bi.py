"""BI tools (Superset, Metabase) at central: the read-only role guichet_bi reads the monitoring_bi views
over the monthly rollups, with small cells masked, and nothing else: no table, no other schema, no
write (migration 0040; PostgreSQL only)."""

import os
import uuid

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from conftest import POSTGRES_ADMIN_URL, create_postgres_database, drop_postgres_database, migrate

pytestmark = pytest.mark.skipif(not POSTGRES_ADMIN_URL, reason="PostgreSQL only (GUICHET_TEST_POSTGRES_URL)")
VIEWS = {"monthly_province_sex", "monthly_province_person", "monthly_province_household", "monthly_office", "offices"}


def dsn(url: str, user: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    return (parsed.set(username=user, password=None) if user else parsed).render_as_string(hide_password=False)


@pytest.fixture
async def central():
    url = await create_postgres_database()
    login = f"bi_reader_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = None
    try:
        await migrate(url)
        admin = await asyncpg.connect(dsn(url))
        await admin.execute(f"CREATE ROLE {login} LOGIN IN ROLE guichet_bi")  # what an operator does for Superset
        yield admin, await asyncpg.connect(dsn(url, login))
    finally:
        if admin is not None:
            await admin.close()
        await drop_postgres_database(url)
        cluster = await asyncpg.connect(dsn(POSTGRES_ADMIN_URL))
        await cluster.execute(f"DROP ROLE IF EXISTS {login}")
        await cluster.close()


async def test_the_bi_role_reads_the_views_and_nothing_else(central):
    admin, reader = central
    await admin.execute(
        "INSERT INTO monitoring_rollup_sex (metric, grain, period_start, province, scheme, detail, sex, value) VALUES "
        "('persons_registered', 'month', '2026-11-01', '17', '', '', 'female', 12), "
        "('persons_registered', 'month', '2026-11-01', '17', '', '', 'male', 3)")
    rows = await reader.fetch("SELECT sex, value, suppressed FROM monitoring_bi.monthly_province_sex ORDER BY sex")
    assert [tuple(r) for r in rows] == [("female", 12, False), ("male", None, True)]
    for view in VIEWS:
        await reader.fetch(f"SELECT * FROM monitoring_bi.{view} LIMIT 1")
    # Every relation of the database the role may read: the views, and nothing else.
    readable = await reader.fetch(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%' AND has_table_privilege(c.oid, 'SELECT')")
    assert {(r[0], r[1]) for r in readable} == {("monitoring_bi", v) for v in VIEWS}
    for statement in ("SELECT * FROM public.monitoring_rollup_sex", "SELECT * FROM public.monitoring_event",
                      "SELECT * FROM public.person", "SELECT * FROM public.user_account",
                      "UPDATE monitoring_bi.monthly_province_sex SET sex = 'x'",
                      "DELETE FROM public.monitoring_rollup_office", "CREATE TABLE public.mine (x int)",
                      "CREATE VIEW monitoring_bi.mine AS SELECT 1"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await reader.execute(statement)
    await reader.close()
