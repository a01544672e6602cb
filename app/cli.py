"""`guichet ...`: the operators' commands. Errors go to stderr as one line, with exit code 1."""

import asyncio
import json
import os
import secrets
import sys
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from app import clock
from app.cli_dci import dci_cli
from app.cli_support import CommandError, fail, run, settings, transaction, validated
from app.config import Settings, get_settings
from app.vocabulary import Role

cli = typer.Typer(help="Guichet: single-window case management for social protection.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
seed_cli = typer.Typer(help="Demo and synthetic data.", no_args_is_help=True)
locations_cli = typer.Typer(help="The gazetteer.", no_args_is_help=True)
offices_cli = typer.Typer(help="Single-window offices.", no_args_is_help=True)
users_cli = typer.Typer(help="User accounts.", no_args_is_help=True)
relay_cli = typer.Typer(help="Send this office's activity events to central monitoring (docs/monitoring.md).",
                        invoke_without_command=True)
monitoring_cli = typer.Typer(help="Central monitoring.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(seed_cli, name="seed")
cli.add_typer(locations_cli, name="locations")
cli.add_typer(offices_cli, name="offices")
cli.add_typer(users_cli, name="users")
cli.add_typer(relay_cli, name="relay")
cli.add_typer(monitoring_cli, name="monitoring")
cli.add_typer(dci_cli, name="dci")


# ---- serve and database ----------------------------------------------------------------------------


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
) -> None:
    """Run the API (uvicorn). OpenAPI docs at /docs."""
    import uvicorn

    current = settings()
    from app.config import InstanceRole
    from app.logs import configure_logging

    if current.role is InstanceRole.standalone and current.central_url is None:
        # Standalone: the relay posts to this very server's central routes, over HTTP like an office's.
        local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        os.environ["GUICHET_CENTRAL_URL"] = f"http://{local if ':' not in local else f'[{local}]'}:{port}"
        get_settings.cache_clear()
    configure_logging(current.log_level)
    from app.metrics import prepare_multiprocess_dir

    prepare_multiprocess_dir(workers, current.var_dir)  # several workers share their metrics (docs/operations.md)
    uvicorn.run("app.asgi:app", host=host, port=port, workers=workers, access_log=False, log_config=None,
                proxy_headers=True, server_header=False)


@db_cli.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Migrate the database to the newest schema (or REVISION), then add the national gazetteer's
    locations it lacks (those it has are left as they are)."""
    from alembic import command

    from app.migrations_state import alembic_config
    from app.services import locations

    current = settings()
    if current.is_sqlite:
        folder = Path(current.database_url.split("///", 1)[-1]).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(f"cannot make the database's folder {folder}: {exc.strerror}")
    try:
        command.upgrade(alembic_config(current.database_url), revision)
    except Exception as exc:  # alembic and the drivers raise many kinds; the operator needs the reason
        fail(f"migration failed: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    typer.echo(f"database at {revision}")
    if revision != "head":
        return

    async def work() -> int:
        async with transaction(current) as session:
            return await locations.load_national_gazetteer(session)

    # Every role needs it: an office's villages, central's offices (`offices create --location`).
    typer.echo(f"national gazetteer: {run(work)} locations added (those already there are left as they are)")


# ---- gazetteer, offices, users ---------------------------------------------------------------------


@locations_cli.command("import")
def locations_import(file: Annotated[Path, typer.Argument(help="The CSV file.")]) -> None:
    """Load a gazetteer CSV (columns: code, name, level, parent_code[, name_km]); existing codes are updated."""
    from app.services import locations

    current = settings()
    # The file is checked here rather than by typer, whose complaint spans several lines.
    try:
        rows = locations.parse_gazetteer(file.read_text(encoding="utf-8-sig"), source=file.name)
    except UnicodeDecodeError:
        fail(f"{file}: not UTF-8 text")
    except locations.GazetteerError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{file}: {exc.strerror or 'cannot be read'}")

    async def work() -> int:
        async with transaction(current) as session:
            return await locations.import_rows(session, rows)

    typer.echo(f"imported {run(work)} locations from {file.name}")


@offices_cli.command("create")
def offices_create(
    code: Annotated[str, typer.Option(help="Short office code, e.g. SR-ACH.")],
    name: Annotated[str, typer.Option(help="Office name.")],
    location: Annotated[str, typer.Option(help="Province or district code of the gazetteer.")],
) -> None:
    """Create a single-window office."""
    from app.schemas.registry import OfficeCreate
    from app.services import offices

    current = settings()
    body = validated(OfficeCreate, code=code, name=name, location_code=location)
    from app.config import InstanceRole

    async def work():
        async with transaction(current) as session:
            office = await offices.create_office(session, None, code=body.code, name=body.name, location_code=body.location_code)
            credentials = await _relay_credentials(session, office.code) if current.role is InstanceRole.central else None
            return office, credentials

    office, credentials = run(work)
    typer.echo(f"created office {office.code} ({office.name}) at {office.location_code}")
    if credentials:
        _print_credentials(*credentials)


@offices_cli.command("credentials")
def offices_credentials(code: Annotated[str, typer.Option(help="Office code.")]) -> None:
    """At central: issue new client credentials for an office's relay (the old secret stops working)."""
    current = settings()

    async def work():
        async with transaction(current) as session:
            return await _relay_credentials(session, code)

    _print_credentials(*run(work))


async def _relay_credentials(session, office_code: str) -> tuple[str, str]:
    from app.services import relay

    try:
        user, secret = await relay.relay_account(session, office_code, new_secret=True)
    except relay.RelayNotConfigured as exc:
        raise CommandError(str(exc)) from None
    return user.username, secret


def _print_credentials(client_id: str, secret: str) -> None:
    typer.echo("relay credentials for the office instance (shown once; keep the secret secret):")
    typer.echo(f"  GUICHET_RELAY_CLIENT_ID={client_id}")
    typer.echo(f"  GUICHET_RELAY_CLIENT_SECRET={secret}")


@users_cli.command("create")
def users_create(
    username: Annotated[str, typer.Option(help="Sign-in name.")],
    role: Annotated[Role, typer.Option(help=f"One of {', '.join(Role)} (a relay is an office's account at central; "
                                            f"`guichet offices credentials` makes one with a generated secret).")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input.")] = False,
    office: Annotated[str | None, typer.Option(help="Office code (supervisors and clerks).")] = None,
    scheme: Annotated[str | None, typer.Option(help="Scheme code (partner accounts).")] = None,
    full_name: Annotated[str | None, typer.Option(help="Full name.")] = None,
) -> None:
    """Create a user account; the password is read from standard input."""
    from app.schemas.registry import UserCreate
    from app.services import users

    if not password_stdin:
        fail("pass --password-stdin and the password on standard input (it never goes on the command line)")
    password = sys.stdin.readline().rstrip("\r\n")
    current = settings()
    body = validated(UserCreate, username=username, password=password, role=role, office_code=office,
                      scheme_code=scheme, full_name=full_name)

    async def work():
        registry = _registry(current) if body.scheme_code is not None else None  # a partner's scheme must exist
        try:
            async with transaction(current) as session:
                user, _ = await users.create_user(
                    session, None, username=body.username, password=password, role=body.role, full_name=body.full_name,
                    office_code=body.office_code, scheme_code=body.scheme_code,
                    known_partners=users.partner_codes(registry, current) if registry else None,
                )
                return user
        finally:
            if registry is not None:
                await registry.aclose()

    user = run(work)
    typer.echo(f"created {user.role} {user.username}")

@users_cli.command("unlock")
def users_unlock(username: Annotated[str, typer.Argument(help="The account's username (or a relay's client id).")]) -> None:
    """Lift the sign-in waits that failed attempts put on an account (docs/sessions.md)."""
    from app.services import users

    current = settings()

    async def work():
        async with transaction(current) as session:
            return await users.unlock(session, None, username=username)

    _, cleared = run(work)
    typer.echo(f"unlocked {username} ({cleared} failure counts cleared)")


# ---- relay and monitoring --------------------------------------------------------------------------


@relay_cli.callback()
def relay_main(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Send what is due now, then exit.")] = False,
) -> None:
    """Run the relay (until SIGTERM or Ctrl-C). With PostgreSQL several may run; with SQLite, one per file."""
    if ctx.invoked_subcommand is not None:
        return
    import signal

    from app.db import create_engine, create_sessionmaker
    from app.logs import configure_logging
    from app.services import relay

    current = settings()
    configure_logging(current.log_level)

    async def work() -> int:
        engine = create_engine(current)
        try:
            worker = relay.Relay(current, create_sessionmaker(engine))
        except relay.RelayNotConfigured as exc:
            await engine.dispose()
            raise CommandError(str(exc)) from None
        try:
            if once:
                return await worker.drain()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            await worker.run(stop)
            return 0
        finally:
            await worker.aclose()
            await engine.dispose()

    handled = run(work)
    if once:
        typer.echo(f"relayed {handled} events")


@relay_cli.command("replay")
def relay_replay(
    office: Annotated[str | None, typer.Option(help="Only this office's events.")] = None,
    since: Annotated[datetime | None, typer.Option(help="Events that happened at or after (ISO 8601, UTC if no offset).")] = None,
    until: Annotated[datetime | None, typer.Option(help="Events that happened before.")] = None,
    parked: Annotated[bool, typer.Option("--parked", help="Parked events (after central was fixed) instead of sent ones.")] = False,
) -> None:
    """Make events due again: sent ones are sent again (central counts them as duplicates, or takes the
    ones it lost, e.g. after a restore); --parked ones are retried."""
    from app.services import relay

    current = settings()

    async def work() -> int:
        async with transaction(current) as session:
            return await relay.replay(session, office_code=office, since=_utc(since), until=_utc(until), parked=parked)

    typer.echo(f"{run(work)} events will be sent again")


def _utc(moment: datetime | None) -> datetime | None:
    from datetime import UTC

    return None if moment is None else moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@monitoring_cli.command("rebuild")
def monitoring_rebuild() -> None:
    """At central: recompute every rollup from the stored events (after an indicator's definition changed)."""
    from app.services.monitoring import ingest

    current = settings()

    async def work() -> int:
        async with transaction(current) as session:
            return await ingest.rebuild(session)

    typer.echo(f"rebuilt the rollups from {run(work)} events")


@monitoring_cli.command("push-dhis2")
def monitoring_push_dhis2(
    period: str = typer.Option(..., "--period", help="A DHIS2 month (202611) or quarter (2026Q4)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="DHIS2 checks the values and stores nothing."),
) -> None:
    """At central: post a period's indicators to the configured DHIS2 (GUICHET_DHIS2_URL, with
    GUICHET_DHIS2_TOKEN or GUICHET_DHIS2_USERNAME and GUICHET_DHIS2_PASSWORD), by code, creating or
    updating each value, and print DHIS2's import summary. Safe to repeat."""
    import httpx

    from app.errors import DomainError
    from app.services.monitoring import dhis2

    current = settings()
    if not current.dhis2_url:
        raise typer.BadParameter("set GUICHET_DHIS2_URL to the DHIS2 to post to", param_hint="GUICHET_DHIS2_URL")
    try:
        mapping = dhis2.load_mapping(current.dhis2_mapping)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="GUICHET_DHIS2_MAPPING") from exc

    async def values() -> "dhis2.DataValueSet":
        async with transaction(current) as session:
            return await dhis2.data_value_set(session, period=period, mapping=mapping, k=current.small_cell_k)

    try:
        data = run(values)
    except DomainError as exc:
        raise typer.BadParameter(exc.detail, param_hint="--period") from exc
    secret = lambda value: value.get_secret_value() if value else None  # noqa: E731
    try:
        summary = run(lambda: dhis2.push(data, url=current.dhis2_url, token=secret(current.dhis2_token),
                                         username=current.dhis2_username, password=secret(current.dhis2_password),
                                         dry_run=dry_run))
    except (ValueError, RuntimeError, httpx.HTTPError) as exc:
        typer.echo(f"push-dhis2: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{len(data.values)} values for {period} ({data.suppressed} suppressed cells not sent)")
    typer.echo(summary.describe(dry_run))
    if summary.status in ("ERROR", "UNKNOWN"):
        raise typer.Exit(1)


# ---- demo data -------------------------------------------------------------------------------------


@seed_cli.command("demo")
def seed_demo() -> None:
    """Add the demo offices, users and a few households, and what the database lacks of the national
    gazetteer (idempotent: what exists is left as it is). Prints the demo logins."""
    from app.services import demo

    current = settings()
    logins_file = current.var_dir / "demo_logins.json"
    logins = json.loads(logins_file.read_text()) if logins_file.exists() else {
        username: secrets.token_urlsafe(9) for username in demo.DEMO_USERNAMES
    }

    async def work():
        async with transaction(current) as session:
            return await demo.seed(session, logins, with_households=current.serves_office)

    summary = run(work)
    logins_file.parent.mkdir(parents=True, exist_ok=True)
    if not logins_file.exists():
        logins_file.touch(mode=0o600)
        logins_file.write_text(json.dumps(logins, indent=2))
    typer.echo(summary)
    typer.echo(f"Demo logins (kept in {logins_file}):")
    for username, role_line in demo.describe(logins):
        typer.echo(f"  {username:<16} {logins[username]:<14} {role_line}")


# ---- eligibility schemes and re-screening ----------------------------------------------------------

schemes_cli = typer.Typer(help="Eligibility schemes: the catalogue and scheme files.", no_args_is_help=True)
cli.add_typer(schemes_cli, name="schemes")


def _registry(current: Settings):
    from app.schemes import SchemeDefinitionError, load_registry

    try:
        return load_registry(current)
    except SchemeDefinitionError as exc:
        fail(str(exc))


@schemes_cli.command("list")
def schemes_list() -> None:
    """Every scheme loaded (catalogue, GUICHET_SCHEMES_PATH, plug-ins) with the version in force today."""
    current = settings()
    today = clock.today()
    for adapter in _registry(current):
        meta = adapter.metadata
        version = meta.version_on(today)
        typer.echo(f"{meta.code:<16} {meta.kind.value:<17} {meta.level.value:<9} {meta.adapter:<6} "
                   f"{version.version if version else '(not in force)':<14} {meta.name}  [{meta.source_file or 'plug-in'}]")


@schemes_cli.command("validate")
def schemes_validate(paths: Annotated[list[Path], typer.Argument(help="Scheme files or directories.")]) -> None:
    """Check scheme files as start-up would; the first problem is printed with its file and line."""
    from app.schemes import SchemeDefinitionError
    from app.schemes.registry import validate

    current = settings()
    try:
        found = validate(paths, current)
    except SchemeDefinitionError as exc:
        fail(str(exc))
    for meta in found:
        typer.echo(f"ok {meta.code} ({meta.source_file}): {len(meta.versions)} version(s), reads {len(meta.facts)} facts")
    if not found:
        fail("no scheme files (*.yaml, *.yml) found")


@schemes_cli.command("facts")
def schemes_facts() -> None:
    """The facts a scheme file may name (plus person.attributes.<key>)."""
    from app.schemes.facts import FACTS

    for spec in FACTS.values():
        values = f" ({' | '.join(spec.values)})" if spec.values else ""
        typer.echo(f"{spec.name:<40} {spec.type:<8} {spec.description}{values}")


@cli.command()
def rescreen(
    scheme: Annotated[list[str] | None, typer.Option(help="Only this scheme (repeatable); default: every scheme in force.")] = None,
    office: Annotated[str | None, typer.Option(help="Only this office's households; default: every office.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=5000, help="Households per transaction.")] = 500,
) -> None:
    """Re-run the screenings after a rules change, in batches, and summarise the verdicts that changed."""
    from app.db import create_engine, create_sessionmaker
    from app.services.rescreen import rescreen as run_rescreen

    current = settings()
    registry = _registry(current)

    async def work():
        engine = create_engine(current)
        try:
            from app.services.rescreen import count_households

            for code in scheme or []:
                if registry.get(code) is None:
                    raise CommandError(f"there is no scheme {code}; `guichet schemes list` shows the schemes there are")
            async with create_sessionmaker(engine)() as session:
                total = await count_households(session, office_code=office)
            with ExitStack() as shown:
                bar = None

                def progress(households: int) -> None:
                    # Shown from the first batch done: a refused request (an unknown office) is one line.
                    nonlocal bar
                    if bar is None:
                        bar = shown.enter_context(typer.progressbar(length=total, label="Re-screening", file=sys.stderr))
                    bar.update(households)

                return await run_rescreen(create_sessionmaker(engine), registry, office_code=office, scheme_codes=scheme,
                                          batch_size=batch_size, on_progress=progress)
        finally:
            await registry.aclose()
            await engine.dispose()

    summary = run(work)
    rate = summary.households / summary.seconds if summary.seconds else 0
    typer.echo(f"re-screened {summary.households} households in {summary.seconds:.1f} s ({rate:,.0f} households/s); "
               f"{summary.screenings_written} screenings and {summary.determinations_written} determinations written "
               f"(unchanged ones are not written again)")
    if not summary.changed:
        typer.echo("no verdict changed")
    else:
        typer.echo("verdicts that changed (scheme: before -> after: count):")
        for (code, before, after), n in sorted(summary.changed.items(), key=lambda item: (item[0][0], -item[1])):
            typer.echo(f"  {code:<16} {before or '(none)':>17} -> {after:<17} {n}")
    if summary.unreached:
        # Not a failure of the run, but not done either: a script running it must be able to tell.
        for code, n in sorted(summary.unreached.items()):
            typer.echo(f"{code}: {n} subjects not reached (the scheme answered with an error); their latest verdict "
                       f"stays in force; run again later", err=True)
        raise typer.Exit(code=3)


@seed_cli.command("synthetic")
def seed_synthetic(
    households: Annotated[int, typer.Option(min=1, max=10_000_000, help="How many households (4.4 people each on average).")],
    office: Annotated[str | None, typer.Option(help="Office code; default: every office, each with its own villages.")] = None,
    seed: Annotated[int, typer.Option(min=0, max=2**31 - 1, help="The same seed gives the same households.")] = 1,
) -> None:
    """Load a synthetic population (realistic Cambodian households) for load tests and benchmarks.

    Households go to the villages of the office's province or district (default: every office, its own villages).

    Written in bulk with the registry's derived columns, so search and duplicate matching find them.

    NOT registrations: no audit rows and no activity events are written; central monitoring never counts them.

    National IDs start with SY. A seed (and office) always gives the same households: running again adds only
    those not yet there."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from app.db import create_engine
    from app.services import synthetic

    current = settings()

    async def work():
        engine = create_engine(current)
        try:
            with Progress(TextColumn("households"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=Console(stderr=True), transient=True) as bar:  # stdout keeps the summary
                task = bar.add_task("load", total=households)
                return await synthetic.load(engine, households=households, office_code=office, seed=seed,
                                            as_of=clock.today(), on_progress=lambda n: bar.advance(task, n))
        finally:
            await engine.dispose()

    summary = run(work)
    typer.echo(f"added {summary.households} households ({summary.persons} persons) at {', '.join(summary.offices)} "
               f"in {summary.seconds:.1f} s ({summary.persons_per_second:.0f} persons/s); "
               f"{summary.skipped} of seed {seed} were already there")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
