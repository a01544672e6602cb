"""DCI partner clients: made by an admin with their scopes and keys; a client exchanges its
credentials for a short token (`POST /oauth2/client/token`) and sends it with every message."""

import secrets
import uuid
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.principal import Principal
from app.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from app.etag import check_if_match
from app.models import DciClient, Office
from app.models.base import utcnow
from app.schemas.dci import DciClientCreate, DciClientRead, DciClientUpdate
from app.security import InvalidToken, hash_password, issue_token, verify_password, verify_token
from app.services import audit

CLIENT_ROLE = "dci_client"  # the role claim of a client's token: no user account has it


def _read(client: DciClient, secret: str | None = None) -> DciClientRead:
    return DciClientRead.model_validate(client).model_copy(update={"client_secret": secret})


async def _check_offices(session: AsyncSession, codes: list[str]) -> None:
    known = set((await session.execute(select(Office.code).where(Office.code.in_(codes)))).scalars())
    for i, code in enumerate(codes):
        if code not in known:
            raise InvalidInput(f"There is no office with code {code}.", field=f"#/offices/{i}")


async def create_client(session: AsyncSession, actor: Principal | None, data: DciClientCreate) -> DciClientRead:
    await _check_offices(session, data.offices)
    if (await session.execute(select(DciClient.id).where(DciClient.client_id == data.client_id))).first():
        raise Conflict(f"The client id {data.client_id} is taken.")
    if data.signature_required and data.jwks is None:
        raise InvalidInput("A client that must sign needs its public keys (jwks).", field="#/jwks")
    secret = secrets.token_urlsafe(32)
    client = DciClient(client_id=data.client_id, name=data.name, secret_hash=await hash_password(secret),
                       query_types=list(dict.fromkeys(data.query_types)), fields=list(dict.fromkeys(data.fields)),
                       offices=list(dict.fromkeys(data.offices)), callback_url=data.callback_url,
                       jwks=data.jwks.model_dump() if data.jwks else None, signature_required=data.signature_required,
                       tokens_valid_after=utcnow() - timedelta(seconds=1))
    session.add(client)
    await session.flush()
    audit.record(session, actor, action="create", entity_type="dci_client", entity_id=client.id, office_id=None,
                 details={"client_id": client.client_id, "offices": client.offices, "fields": client.fields})
    return _read(client, secret)


async def list_clients(session: AsyncSession, *, limit: int, offset: int) -> tuple[list[DciClientRead], int]:
    total = (await session.execute(select(func.count(DciClient.id)))).scalar_one()
    rows = (await session.execute(select(DciClient).order_by(DciClient.client_id).limit(limit).offset(offset))).scalars()
    return [_read(c) for c in rows], total


async def _get(session: AsyncSession, client_id: uuid.UUID) -> DciClient:
    client = await session.get(DciClient, client_id)
    if client is None:
        raise NotFound("There is no such DCI client.")
    return client


async def get_client(session: AsyncSession, client_id: uuid.UUID) -> tuple[DciClientRead, int]:
    client = await _get(session, client_id)
    return _read(client), client.version


async def update_client(session: AsyncSession, actor: Principal, client_id: uuid.UUID, data: DciClientUpdate,
                        if_match: str | None) -> tuple[DciClientRead, int]:
    client = await _get(session, client_id)
    check_if_match(if_match, client.version)
    changes = data.model_dump(exclude_unset=True, exclude={"new_secret"})
    for name in ("name", "query_types", "fields", "offices", "is_active", "signature_required"):
        if changes.get(name) is None and name in changes:
            raise InvalidInput(f"{name} cannot be cleared.", field=f"#/{name}")
    if data.offices is not None:
        await _check_offices(session, data.offices)
    jwks = changes.pop("jwks", client.jwks) if "jwks" in changes else client.jwks
    if changes.get("signature_required", client.signature_required) and not jwks:
        raise InvalidInput("A client that must sign needs its public keys (jwks).", field="#/jwks")
    for name, value in changes.items():
        setattr(client, name, list(dict.fromkeys(value)) if isinstance(value, list) else value)
    client.jwks = jwks
    secret = None
    if data.new_secret:
        secret = secrets.token_urlsafe(32)
        client.secret_hash = await hash_password(secret)
    if data.new_secret or changes.get("is_active") is False:
        client.tokens_valid_after = utcnow()
    client.updated_at = utcnow()
    await session.flush()
    audit.record(session, actor, action="update", entity_type="dci_client", entity_id=client.id, office_id=None,
                 details={"fields": sorted(changes) + (["secret"] if data.new_secret else [])})
    return _read(client, secret), client.version


async def issue_client_token(session: AsyncSession, settings: Settings, *, client_id: str, client_secret: str) -> tuple[str, int]:
    client = (await session.execute(select(DciClient).where(DciClient.client_id == client_id))).scalar_one_or_none()
    # Checked against a dummy hash when the client is unknown: the same time either way.
    if not await verify_password(client.secret_hash if client else None, client_secret) or not client.is_active:
        raise Unauthenticated("Wrong client id or secret.", slug="invalid-credentials")
    lifetime = settings.model_copy(update={"token_lifetime_minutes": settings.dci_token_minutes})
    return issue_token(lifetime, subject=client.id, role=CLIENT_ROLE, office=None, scheme=None)


async def authenticate(session: AsyncSession, settings: Settings, token: str | None) -> DciClient:
    """The client a bearer token was issued to, as the database knows it now (active, not revoked)."""
    if not token:
        raise Unauthenticated("Send 'Authorization: Bearer <token>' from POST /oauth2/client/token.")
    try:
        claims = verify_token(settings, token)
    except InvalidToken:
        raise Unauthenticated("The token is invalid or expired; get a new one.") from None
    client = await session.get(DciClient, claims.subject) if claims.role == CLIENT_ROLE else None
    if client is None or not client.is_active or claims.issued_at < client.tokens_valid_after.timestamp():
        raise Unauthenticated("This token is not a DCI client's, or it was revoked.")
    return client
