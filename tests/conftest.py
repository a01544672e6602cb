"""The test world: every test that talks to the API runs once on SQLite and once on PostgreSQL.

GUICHET_TEST_POSTGRES_URL switches the PostgreSQL half on (an admin URL; each run creates and drops
its own database there). When it is set and PostgreSQL cannot be reached, the tests fail: they are
never skipped. Each backend is migrated once with the real migrations; after every test the data
tables are emptied, keeping the gazetteer, offices and users of the world."""

import asyncio
import os
import uuid
from datetime import UTC, datetime, timedelta
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

# The suite's assertions on titles and details are in English; an instance's default is Khmer
# (GUICHET_DEFAULT_LANGUAGE=km). Servers the tests start inherit this; tests/test_i18n.py sets its own.
os.environ.setdefault("GUICHET_DEFAULT_LANGUAGE", "en")
from alembic import command
from sqlalchemy import delete, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from app.main import create_app
from app.migrations_state import alembic_config
from app.models import Base, Office, User
from app.security import hash_password, issue_token
from app.services import locations
from app.vocabulary import Role

POSTGRES_ADMIN_URL = os.environ.get("GUICHET_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgres"] if POSTGRES_ADMIN_URL else [])
WORLD_TABLES = {"location", "office", "user_account", "alembic_version"}
PASSWORD = "correct horse battery"
_PASSWORD_HASH = asyncio.run(hash_password(PASSWORD))


async def create_postgres_database() -> str:
    admin_url = make_url(POSTGRES_ADMIN_URL)
    name = f"guichet_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    return admin_url.set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(url: str) -> None:
    admin_url = make_url(POSTGRES_ADMIN_URL)
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    await engine.dispose()


async def migrate(url: str) -> None:
    # env.py runs its own event loop, so the migration runs in a thread.
    config = alembic_config(url)
    config.attributes["skip_logging_config"] = True
    await asyncio.to_thread(command.upgrade, config, "head")


@pytest.fixture(scope="session", params=BACKENDS)
async def database_url(request, tmp_path_factory) -> AsyncIterator[str]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'guichet.db'}"
        await migrate(url)
        yield url
        return
    url = await create_postgres_database()
    try:
        await migrate(url)
        yield url
    finally:
        await drop_postgres_database(url)


@pytest.fixture(scope="session")
def var_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("var")


@pytest.fixture(scope="session")
def settings(database_url: str, var_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        var_dir=var_dir,
        secret_key="test-secret-key-that-is-long-enough-0123456789",
        pseudonym_key="test-pseudonym-key",
        token_lifetime_minutes=30,
        db_pool_size=25,
    )


@dataclass
class Account:
    id: uuid.UUID
    username: str
    role: Role
    office_code: str | None
    scheme_code: str | None
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class World:
    admin: Account
    supervisor_a: Account
    clerk_a: Account
    supervisor_b: Account
    clerk_b: Account
    monitor: Account
    partner: Account
    office_a: str = "SR-ACH"
    office_b: str = "SR-SSN"
    office_ids: dict[str, uuid.UUID] = field(default_factory=dict)

    def token_for(self, settings: Settings, account: Account) -> str:
        """A fresh token for an account (issued now, unlike the session-long ones of the world)."""
        return issue_token(settings, subject=account.id, role=account.role, office=account.office_code,
                           scheme=account.scheme_code)[0]


WORLD_USERS = {
    "admin": (Role.admin, None, None),
    "supervisor_a": (Role.supervisor, "SR-ACH", None),
    "clerk_a": (Role.clerk, "SR-ACH", None),
    "supervisor_b": (Role.supervisor, "SR-SSN", None),
    "clerk_b": (Role.clerk, "SR-SSN", None),
    "monitor": (Role.monitor, None, None),
    "partner": (Role.partner, None, "KH-HEF"),
}


@pytest.fixture(scope="session")
async def app(settings: Settings):
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def world(app, settings: Settings) -> World:
    async with app.state.sessionmaker() as session, session.begin():
        await locations.load_national_gazetteer(session)
        offices = {code: Office(code=code, name=f"{code} office", location_code=location)
                   for code, location in (("SR-ACH", "1701"), ("SR-SSN", "1712"))}
        session.add_all(offices.values())
        await session.flush()
        users = {}
        for name, (role, office, scheme) in WORLD_USERS.items():
            user = User(username=name.replace("_", "."), password_hash=_PASSWORD_HASH, role=role,
                        office_id=offices[office].id if office else None, scheme_code=scheme,
                        tokens_valid_after=datetime(2020, 1, 1, tzinfo=UTC))
            session.add(user)
            users[name] = user
        await session.flush()
    accounts = {
        name: Account(id=user.id, username=user.username, role=Role(user.role), office_code=WORLD_USERS[name][1],
                      scheme_code=user.scheme_code,
                      token=issue_token(settings, subject=user.id, role=user.role, office=WORLD_USERS[name][1],
                                        scheme=user.scheme_code)[0])
        for name, user in users.items()
    }
    return World(**accounts, office_ids={code: office.id for code, office in offices.items()})


WORLD_USERNAMES = [name.replace("_", ".") for name in WORLD_USERS]
WORLD_OFFICES = ["SR-ACH", "SR-SSN"]


async def empty_data_tables(app) -> None:
    """Delete everything but the world (users and offices a test made go too); the audit trail's
    append-only guard is lifted for it."""
    extra = [delete(User).where(User.username.not_in(WORLD_USERNAMES)), delete(Office).where(Office.code.not_in(WORLD_OFFICES))]
    async with app.state.engine.connect() as connection:
        # Only the tables that exist: a model whose migration is still being written is skipped.
        existing = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
        await connection.rollback()
        tables = [t for t in reversed(Base.metadata.sorted_tables) if t.name not in WORLD_TABLES and t.name in existing]
        postgres = connection.dialect.name == "postgresql"
        async with connection.begin():
            if postgres:
                await connection.execute(text("SET LOCAL session_replication_role = replica"))
                # DELETE, not TRUNCATE: a test leaves a few rows, and TRUNCATE costs ~100 ms however few.
                # (The replica role skips the audit trail's append-only trigger and the foreign keys.)
                for table in tables:
                    await connection.execute(table.delete())
                for statement in extra:
                    await connection.execute(statement)
            else:
                guards = (await connection.execute(text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_event'"
                ))).all()
                for name, _ in guards:
                    await connection.execute(text(f'DROP TRIGGER "{name}"'))
                for table in tables:
                    await connection.execute(table.delete())
                for statement in extra:
                    await connection.execute(statement)
                for _, sql in guards:
                    await connection.execute(text(sql))


@pytest.fixture
async def client(app, world) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://guichet.test") as http:
        yield http
    await empty_data_tables(app)


@pytest.fixture
def make_account(app, settings: Settings, world: World):
    """Makes a user of its own for a test that changes it (deactivates it, changes its password...),
    with the world's password and a token issued now. Removed with the test's data."""

    async def make(role: Role = Role.clerk, office: str | None = "SR-ACH", scheme: str | None = None) -> Account:
        async with app.state.sessionmaker() as session, session.begin():
            user = User(username=f"u{uuid.uuid4().hex[:12]}", password_hash=_PASSWORD_HASH, role=role,
                        office_id=world.office_ids[office] if office else None, scheme_code=scheme,
                        tokens_valid_after=datetime.now(UTC) - timedelta(seconds=1))
            session.add(user)
        token = issue_token(settings, subject=user.id, role=role, office=office, scheme=scheme)[0]
        return Account(id=user.id, username=user.username, role=role, office_code=office, scheme_code=scheme, token=token)

    return make


@pytest.fixture
def backend(database_url: str) -> str:
    return "postgres" if database_url.startswith("postgresql") else "sqlite"


def pytest_collection_modifyitems(items):
    """The browser files first: they are the longest, and with two processes (`make test`) a long file started
    last keeps one process busy while the other idles."""
    items.sort(key=lambda item: "/tests/browser/" not in str(item.path))  # a stable sort: order kept otherwise
