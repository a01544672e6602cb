"""What every `guichet` command shares: the settings (configuration errors in one line), running a
coroutine with database faults in words, one transaction on a fresh engine, input checked by the API's
models. Errors go to stderr as one line, with exit code 1."""

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import typer

from app import clock
from app.config import Settings, get_settings


class CommandError(Exception):
    """A reason to stop, printed as one line."""


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def run(work: Callable[[], Awaitable[Any]]) -> Any:
    from sqlalchemy.exc import ArgumentError, DBAPIError

    from app.errors import DomainError

    try:
        return asyncio.run(work())
    except (CommandError, DomainError, ValueError) as exc:
        fail(str(exc).splitlines()[0])
    except OSError as exc:
        fail(f"cannot reach the database: {exc}")
    except ArgumentError as exc:  # a URL SQLAlchemy cannot parse, or a driver it does not know
        fail(f"configuration: GUICHET_DATABASE_URL: {str(exc).splitlines()[0]}")
    except DBAPIError as exc:
        fail(_database_fault(exc))


def _database_fault(exc) -> str:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
    # SQLite's "no such table", PostgreSQL's undefined_table (42P01)
    if "no such table" in reason or getattr(exc.orig, "sqlstate", None) == "42P01":
        return f"the database has no Guichet schema yet ({reason}): run `guichet db upgrade` first"
    return f"the database refused: {type(exc.orig).__name__}: {reason}"


def settings() -> Settings:
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        current = get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        variable = f"GUICHET_{str(first['loc'][0]).upper()}: " if first["loc"] else ""
        fail(f"configuration: {variable}{first['msg'].removeprefix('Value error, ')}")
    except SettingsError as exc:  # a GUICHET_ variable holding a map or a list that is not JSON
        fail(f"configuration: {exc} (a map or a list is written as JSON)")
    clock.set_timezone(current.timezone)
    from app.services import activity

    activity.configure(current.pseudonym_key.get_secret_value())
    return current


@asynccontextmanager
async def transaction(current: Settings):
    """One transaction on a fresh engine, committed if the block succeeds."""
    from app.db import create_engine, create_sessionmaker

    engine = create_engine(current)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            yield session
    finally:
        await engine.dispose()


def validated(model, **values):
    """The command's options as the API's input model checks them, or the first error in an operator's words."""
    from pydantic import ValidationError

    try:
        return model(**values)
    except ValidationError as exc:
        fail(_in_words(exc.errors()[0]))


# The options whose field has another name, and what a value must look like where the schema says it with a
# regular expression, which is no way to tell an operator.
_OPTIONS = {"location_code": "location", "office_code": "office", "scheme_code": "scheme"}
_FORMS = {"code": "1 to 20 letters, digits, '.', '_' or '-'",
          "location_code": "a code of the gazetteer: 2, 4, 6 or 8 digits, e.g. 1701"}


def _in_words(error: dict) -> str:
    """One validation error as the option it concerns and what is wrong with it."""
    field = str(error["loc"][0]) if error["loc"] else ""
    option = f"--{_OPTIONS.get(field, field).replace('_', '-')}" if field else "input"
    if error["type"] == "string_pattern_mismatch":
        return f"{option}: must be {_FORMS.get(field, 'written in its documented form (see --help)')}"
    if error["type"] == "string_too_short":
        return f"{option}: must not be empty" if error["ctx"]["min_length"] == 1 else \
            f"{option}: must have at least {error['ctx']['min_length']} characters"
    if error["type"] == "string_too_long":
        return f"{option}: must have at most {error['ctx']['max_length']} characters"
    return f"{option}: {error['msg'].removeprefix('Value error, ')}"
