"""`guichet dci ...`: the DCI partner clients (docs/dci.md)."""

import json
from pathlib import Path
from typing import Annotated

import typer

from app.cli_support import fail, run, settings, transaction, validated

dci_cli = typer.Typer(help="DCI registry APIs: partner clients (docs/dci.md).", no_args_is_help=True)
dci_clients_cli = typer.Typer(help="Partner systems allowed to query the registry.", no_args_is_help=True)
dci_cli.add_typer(dci_clients_cli, name="clients")


def _words(value: str) -> list[str]:
    return [w.strip() for w in value.split(",") if w.strip()]


@dci_clients_cli.command("create")
def dci_clients_create(
    client_id: Annotated[str, typer.Option(help="The partner's id, also the sender_id of its messages.")],
    name: Annotated[str, typer.Option(help="The partner's name.")],
    offices: Annotated[str, typer.Option(help="Office codes whose households it may find, comma-separated.")],
    fields: Annotated[str, typer.Option(help="Record fields it may receive, comma-separated (docs/dci.md).")],
    query_types: Annotated[str, typer.Option(help="idtype-value, predicate, expression (comma-separated).")] = "idtype-value",
    callback_url: Annotated[str | None, typer.Option(help="Base URL of its DCI endpoints (async answers, notify).")] = None,
    jwks_file: Annotated[Path | None, typer.Option(help="Its public keys (a JWK Set, JSON).")] = None,
    unsigned: Annotated[bool, typer.Option("--unsigned", help="Accept its messages without a signature.")] = False,
) -> None:
    """Create a DCI partner client; its secret is printed once."""
    from app.schemas.dci import DciClientCreate
    from app.services import dci_clients

    current = settings()
    try:
        jwks = json.loads(jwks_file.read_text()) if jwks_file else None
    except (OSError, ValueError) as exc:
        fail(f"--jwks-file: {exc}")
    body = validated(DciClientCreate, client_id=client_id, name=name, offices=_words(offices), fields=_words(fields),
                      query_types=_words(query_types), callback_url=callback_url, jwks=jwks, signature_required=not unsigned)

    async def work():
        async with transaction(current) as session:
            return await dci_clients.create_client(session, None, body)

    client = run(work)
    typer.echo(f"created DCI client {client.client_id} (token: POST /oauth2/client/token; shown once, keep it secret):")
    typer.echo(f"  client_id={client.client_id}")
    typer.echo(f"  client_secret={client.client_secret}")


@dci_clients_cli.command("list")
def dci_clients_list() -> None:
    """The DCI partner clients and their scopes."""
    from app.services import dci_clients

    current = settings()

    async def work():
        async with transaction(current) as session:
            return (await dci_clients.list_clients(session, limit=1000, offset=0))[0]

    for client in run(work):
        state = "active" if client.is_active else "inactive"
        typer.echo(f"{client.client_id}\t{state}\toffices={','.join(client.offices)}\tquery_types={','.join(client.query_types)}"
                   f"\tfields={','.join(client.fields)}")


