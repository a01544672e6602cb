"""The operators' CLI, run as a subprocess (`.venv/bin/guichet ...`) against a database of its own:
a temporary SQLite file, and a PostgreSQL database when GUICHET_TEST_POSTGRES_URL is set."""

import asyncio
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.security import verify_password
from conftest import BACKENDS, create_postgres_database, drop_postgres_database

GUICHET = str(Path(sys.executable).with_name("guichet"))
TABLES = ("location", "office", "user_account", "household", "person", "consent_record", "audit_event")


class Cli:
    def __init__(self, url: str, workdir: Path):
        self.url = url
        self.workdir = workdir
        self.var = workdir / "var"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GUICHET_")} | {
            "GUICHET_DATABASE_URL": url, "GUICHET_VAR_DIR": str(self.var)}

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([GUICHET, *args], env=self.env, cwd=self.workdir, input=stdin, capture_output=True,
                              text=True, timeout=120)

    def ok(self, *args: str, stdin: str | None = None) -> str:
        done = self(*args, stdin=stdin)
        assert done.returncode == 0, done.stderr
        return done.stdout

    async def fail_all(self, *cases: tuple[tuple[str, ...], str | None, str]) -> None:
        """Each (args, stdin, reason) fails with exactly one line on stderr naming the reason. The
        commands run side by side: each one's start-up costs more than its work."""
        async def run(args, stdin):
            process = await asyncio.create_subprocess_exec(
                GUICHET, *args, env=self.env, cwd=self.workdir, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(process.communicate((stdin or "").encode()), 120)
            return process.returncode, out.decode(), err.decode()

        results = await asyncio.gather(*(run(args, stdin) for args, stdin, _ in cases))
        for (args, _, reason), (code, out, err) in zip(cases, results, strict=True):
            lines = err.strip().splitlines()
            assert code != 0, (args, out)
            assert len(lines) == 1 and lines[0].startswith("error: "), (args, err)
            assert reason.lower() in lines[0].lower(), (args, lines[0])

    async def counts(self) -> dict[str, int]:
        engine = create_async_engine(self.url)
        try:
            async with engine.connect() as connection:
                return {t: (await connection.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one() for t in TABLES}
        finally:
            await engine.dispose()

    async def execute(self, sql: str) -> None:
        engine = create_async_engine(self.url)
        try:
            async with engine.begin() as connection:
                await connection.execute(text(sql))
        finally:
            await engine.dispose()

    async def scalar(self, sql: str):
        engine = create_async_engine(self.url)
        try:
            async with engine.connect() as connection:
                return (await connection.execute(text(sql))).scalar_one()
        finally:
            await engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
async def seeded(request, tmp_path_factory) -> Cli:
    """One database per backend for this module, migrated and seeded by the CLI itself; the tests
    add to it with codes of their own."""
    workdir = tmp_path_factory.mktemp(f"cli-{request.param}")
    url = f"sqlite+aiosqlite:///{workdir / 'db' / 'guichet.db'}" if request.param == "sqlite" else await create_postgres_database()
    cli = Cli(url, workdir)
    cli.upgrade_output = cli.ok("db", "upgrade")
    cli.seed_output = cli.ok("seed", "demo")
    cli.backend = request.param
    try:
        yield cli
    finally:
        if request.param == "postgres":
            await drop_postgres_database(url)


async def test_upgrade_and_seed_from_nothing_then_again(seeded):
    assert "database at head" in seeded.upgrade_output
    assert "3 offices, 6 users and 4 households added" in seeded.seed_output
    logins = json.loads((seeded.var / "demo_logins.json").read_text())
    assert set(logins) == {"admin", "supervisor.ach", "clerk.ach", "clerk.ssn", "monitor", "partner.hef"}
    assert stat.S_IMODE((seeded.var / "demo_logins.json").stat().st_mode) == 0o600
    for username, password in logins.items():
        assert username in seeded.seed_output and password in seeded.seed_output  # the demo logins are printed
    counts = await seeded.counts()
    assert counts["office"] == 3 and counts["user_account"] == 6 and counts["household"] == 4
    assert counts["location"] > 1000

    assert "database at head" in seeded.ok("db", "upgrade")  # nothing to do the second time
    assert "0 offices, 0 users and 0 households added" in seeded.ok("seed", "demo")
    assert await seeded.counts() == counts
    hashed = await seeded.scalar("SELECT password_hash FROM user_account WHERE username = 'clerk.ach'")
    assert await verify_password(hashed, logins["clerk.ach"])  # the same logins still work


async def test_the_national_gazetteer_comes_with_the_schema_and_never_undoes_an_operators_edit(seeded):
    national = await seeded.scalar("SELECT count(*) FROM location WHERE source = 'national'")
    assert national == 16465 and "national gazetteer: 16465 locations added" in seeded.upgrade_output
    assert await seeded.scalar("SELECT count(*) FROM location WHERE level = 'province'") == 25
    # An operator renames a village and a commune (`locations import`); a village goes missing.
    (seeded.workdir / "edits.csv").write_text(
        "code,name,level,parent_code,name_km\n170101,Char Chhuk (edited),commune,1701,ចារឈូក\n"
        "17010101,Prasat (edited),village,170101,ប្រាសាទថ្មី\n", encoding="utf-8")
    seeded.ok("locations", "import", "edits.csv")
    await seeded.execute("DELETE FROM location WHERE code = '23010101'")  # a village of Kep nobody lives in
    assert "national gazetteer: 1 locations added" in seeded.ok("db", "upgrade")
    assert "demo data: 0 locations" in seeded.ok("seed", "demo")
    assert await seeded.scalar("SELECT name FROM location WHERE code = '170101'") == "Char Chhuk (edited)"
    assert await seeded.scalar("SELECT name || '/' || name_km FROM location WHERE code = '17010101'") == "Prasat (edited)/ប្រាសាទថ្មី"
    assert await seeded.scalar("SELECT name || '/' || source FROM location WHERE code = '23010101'") == "Ampeng/national"


GOOD_GAZETTEER = "code,name,level,parent_code,name_km\n26,Test Province,province,,\n2601,Test District,district,26,\n" \
                 "260101,Test Commune,commune,2601,\n26010101,Phum Test,village,260101,ភូមិតេស្ត\n"


async def test_locations_import(seeded):
    before = await seeded.counts()
    (seeded.workdir / "gazetteer.csv").write_text(GOOD_GAZETTEER, encoding="utf-8")
    assert "imported 4 locations from gazetteer.csv" in seeded.ok("locations", "import", "gazetteer.csv")
    assert (await seeded.counts())["location"] == before["location"] + 4
    assert await seeded.scalar("SELECT name_km FROM location WHERE code = '26010101'") == "ភូមិតេស្ត"
    # Importing again updates in place: a renamed village, with a UTF-8 byte order mark this time; and a
    # file may add under parents already in the database.
    (seeded.workdir / "again.csv").write_text("\ufeff" + GOOD_GAZETTEER.replace("Phum Test", "Phum Thmei")
                                              + "26010102,Phum Kandal,village,260101,\n", encoding="utf-8")
    seeded.ok("locations", "import", "again.csv")
    assert (await seeded.counts())["location"] == before["location"] + 5
    assert await seeded.scalar("SELECT name FROM location WHERE code = '26010101'") == "Phum Thmei"


async def test_a_bad_gazetteer_changes_nothing(seeded):
    """One bad file of each kind: refused while reading it, by the database check, unreadable. (Every
    reason the reader gives is tested on the reader itself, in test_users_offices_locations.py.)"""
    before = await seeded.counts()
    # A good row before a bad one: the file goes in whole or not at all.
    (seeded.workdir / "half.csv").write_text(GOOD_GAZETTEER.replace("26", "27") + "27019999,X,village,270199\n")
    (seeded.workdir / "columns.csv").write_text("code,name,level\n28,Test,province\n")
    (seeded.workdir / "latin1.csv").write_bytes("code,name,level,parent_code\n28,Tést,province,\n".encode("latin-1"))
    # A quote left open: it used to swallow the rest of the file and be reported as "level ''".
    (seeded.workdir / "quote.csv").write_text(GOOD_GAZETTEER.replace("26", "27").replace("2701,Test", '2701,"Test'))
    cases = [(("locations", "import", "half.csv"), None, "parent 270199 of 27019999 is neither in the file nor in the database")]
    if seeded.backend == "sqlite":
        cases += [(("locations", "import", "quote.csv"), None, 'quote.csv:3: a quote (") opened on this line is never closed'),
                  (("locations", "import", "columns.csv"), None, "columns.csv: missing columns parent_code"),
                  (("locations", "import", "latin1.csv"), None, "not UTF-8"),
                  (("locations", "import", "no-such-file.csv"), None, "no such file")]
    await seeded.fail_all(*cases)
    assert await seeded.counts() == before


async def test_offices_create(seeded):
    out = seeded.ok("offices", "create", "--code", "BB-MOT", "--name", "Moung Ruessei Office", "--location", "0206")
    assert "created office BB-MOT" in out
    assert await seeded.scalar("SELECT location_code FROM office WHERE code = 'BB-MOT'") == "0206"
    before = await seeded.counts()
    create = ("offices", "create", "--code", "XX-1", "--name", "X", "--location")
    await seeded.fail_all(
        ((*create, "99"), None, "99 is not a province or district"),
        (("offices", "create", "--code", "BB-MOT", "--name", "Again", "--location", "0206"), None, "already exists"),
    )
    assert await seeded.counts() == before


async def test_each_error_names_what_is_wrong_in_one_line(seeded):
    """Bad input, bad configuration, a database without the schema: one line naming the option, the
    variable or the step to take; never a traceback, a regular expression or a validator's phrase."""
    before = await seeded.counts()
    create = ("offices", "create", "--code", "X-1", "--name", "X", "--location", "1701")
    await seeded.fail_all(
        (("rescreen", "--scheme", "KH-NOPE"), None, "there is no scheme KH-NOPE; `guichet schemes list` shows"),
        (("rescreen", "--office", "XX-NOPE"), None, "no office XX-NOPE"),  # and no progress bar before it
        (("offices", "create", "--code", "X 1", *create[4:]), None, "--code: must be 1 to 20 letters, digits, '.', '_' or '-'"),
        (("offices", "create", "--code", "X" * 21, *create[4:]), None, "--code: must have at most 20 characters"),
        ((*create[:5], "", *create[6:]), None, "--name: must not be empty"),
        ((*create[:7], "17a"), None, "--location: must be a code of the gazetteer: 2, 4, 6 or 8 digits"),
    )
    assert await seeded.counts() == before
    if seeded.backend != "sqlite":
        return  # the rest never reaches a database
    (seeded.workdir / "a-file").write_text("")
    cases = (
        ({"GUICHET_ROLE": "nope"}, ("schemes", "list"), "configuration: GUICHET_ROLE: Input should be 'office', 'central'"),
        ({"GUICHET_PARTNER_TOKENS": "not json"}, ("schemes", "list"), 'field "partner_tokens"'),
        ({"GUICHET_DATABASE_URL": "guichet.db"}, create, "configuration: GUICHET_DATABASE_URL: Could not parse"),
        ({"GUICHET_DATABASE_URL": f"sqlite+aiosqlite:///{seeded.workdir / 'new.db'}"}, create,
         "the database has no Guichet schema yet (no such table: location): run `guichet db upgrade` first"),
        ({"GUICHET_DATABASE_URL": f"sqlite+aiosqlite:///{seeded.workdir / 'a-file' / 'db' / 'g.db'}"}, ("db", "upgrade"),
         f"cannot make the database's folder {seeded.workdir / 'a-file' / 'db'}: Not a directory"),
    )
    others = [Cli(seeded.url, seeded.workdir) for _ in cases]
    for other, (env, _, _) in zip(others, cases, strict=True):
        other.env |= env
    await asyncio.gather(*(other.fail_all((args, None, reason)) for other, (_, args, reason) in zip(others, cases, strict=True)))


async def test_users_create(seeded):
    out = seeded.ok("users", "create", "--username", "clerk.mot", "--role", "clerk", "--office", "SR-ACH",
                    "--full-name", "A clerk", "--password-stdin", stdin="a long pass phrase\n")
    assert "created clerk clerk.mot" in out and "a long pass phrase" not in out
    hashed = await seeded.scalar("SELECT password_hash FROM user_account WHERE username = 'clerk.mot'")
    assert await verify_password(hashed, "a long pass phrase")  # the newline is not part of the password
    before = await seeded.counts()
    create = ("users", "create", "--password-stdin", "--username")
    refused_before_the_database = [
        ((*create, "clerk.y", "--role", "clerk"), "a long pass phrase", "must belong to an office"),
        (("users", "create", "--username", "clerk.z", "--role", "clerk", "--office", "SR-ACH"), "a long pass phrase",
         "--password-stdin"),
    ]
    await seeded.fail_all(
        ((*create, "clerk.x", "--role", "clerk", "--office", "XX-NONE"), "a long pass phrase", "no office with code XX-NONE"),
        ((*create, "clerk.mot", "--role", "clerk", "--office", "SR-ACH"), "a long pass phrase", "taken"),
        ((*create, "nope.partner", "--role", "partner", "--scheme", "KH-NOPE"), "a long pass phrase",
         "no scheme or referral agency with code KH-NOPE (`guichet schemes list`"),
        *(refused_before_the_database if seeded.backend == "sqlite" else []),
    )
    assert await seeded.counts() == before
    # A partner is bound to a scheme of the catalogue or to a referral agency.
    assert "created partner hef.api" in seeded.ok(*create, "hef.api", "--role", "partner", "--scheme", "KH-HEF",
                                                  stdin="a long pass phrase\n")
    assert "created partner nea.api" in seeded.ok(*create, "nea.api", "--role", "partner", "--scheme", "NEA",
                                                  stdin="a long pass phrase\n")


async def test_users_create_says_what_a_username_and_a_password_must_be(seeded):
    if seeded.backend != "sqlite":
        pytest.skip("refused before the database")
    create = ("users", "create", "--password-stdin", "--role", "monitor", "--username")
    await seeded.fail_all(
        ((*create, "Bad Name"), "a long pass phrase", "username: a username is 3 to 64 characters: lower-case letters"),
        ((*create, "ok.name"), "short", "password: a password is 10 to 128 characters long"),
    )
    for args, stdin in (((*create, "Bad Name"), "a long pass phrase"), ((*create, "ok.name"), "short")):
        error = seeded(*args, stdin=stdin).stderr
        assert "^" not in error and "pattern" not in error and "items" not in error, error
    # The option's own help names every role (not only typer's list of choices), the relay too.
    help_text = " ".join(re.sub("[│─╭╮╰╯]", " ", seeded("users", "create", "--help").stdout).split())
    assert "partner, relay (a relay is an office's account at central" in help_text, help_text


async def test_users_unlock(seeded):
    from datetime import UTC, datetime, timedelta

    engine = create_async_engine(seeded.url)
    later = datetime.now(UTC) + timedelta(minutes=10)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(
                "INSERT INTO login_throttle (username, source, failures, last_failure_at, next_attempt_at) "
                "VALUES ('clerk.ach', '203.0.113.5', 9, :now, :later), ('clerk.ach', '*', 9, :now, :later)"),
                {"now": datetime.now(UTC), "later": later})
    finally:
        await engine.dispose()
    assert "unlocked clerk.ach (2 failure counts cleared)" in seeded.ok("users", "unlock", "clerk.ach")
    assert await seeded.scalar("SELECT count(*) FROM login_throttle WHERE username = 'clerk.ach' "
                               "AND (failures > 0 OR next_attempt_at IS NOT NULL)") == 0
    assert await seeded.scalar("SELECT count(*) FROM audit_event WHERE action = 'unlock'") == 1
    await seeded.fail_all((("users", "unlock", "no.such.user"), None, "no user no.such.user"))


async def test_a_database_that_cannot_be_reached_is_one_line(seeded):
    if seeded.backend != "postgres":
        pytest.skip("a PostgreSQL URL is what an operator gets wrong")
    unreachable = Cli("postgresql+asyncpg://nobody@127.0.0.1:1/none", seeded.workdir)
    await unreachable.fail_all((("offices", "create", "--code", "X-1", "--name", "X", "--location", "1701"), None, "database"))
