"""The DCI registry APIs (docs/dci.md): Guichet as a Social Registry under /dci/sr (and IBR's
`enrolled` under /dci/ibr), its token and key endpoints, the callback it receives as a client, and the
admin's and clerk's routes around them.

HTTP statuses are about transport: a message the registry read answers 200 (sync: the callback
header's status says `succ` or `rjct` with its reason code) or 202 (async: ACK); an async message it
cannot take answers 200 with NACK or ERR. Authentication failures (401), a bad signature on a sync
endpoint (401) and an unreadable body (400) are problem+json that also carry the spec's
`errors: [{code, message}]`."""

import uuid
from typing import Annotated, Any

from fastapi import BackgroundTasks, Depends, Form, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from app.deps import AdminUser, OfficeUser, SessionDep, SettingsDep
from app.dci import signing
from app.dci.envelope import ERR_BAD_REQUEST, ERR_UNAUTHORIZED, Rejected, ack, callback_header
from app.errors import BadRequest, DomainError, Unauthenticated
from app.etag import etag
from app.models import DciClient
from app.routers import PATCH_RESPONSES, IfMatch, Limit, Offset, api_router
from app.schemas.common import Page
from app.schemas.dci import DciClientCreate, DciClientRead, DciClientUpdate, RegistryLookupCreate, RegistryLookupRead
from app.services import dci_clients, dci_lookups, dci_provider, dci_worker

router = api_router(tags=["dci"], prefix="")
_bearer = OAuth2PasswordBearer(tokenUrl="/oauth2/client/token", auto_error=False, scheme_name="DCI client")


async def dci_client(session: SessionDep, settings: SettingsDep, token: Annotated[str | None, Depends(_bearer)]) -> DciClient:
    try:
        return await dci_clients.authenticate(session, settings, token)
    except Unauthenticated as exc:
        raise Unauthenticated(exc.detail, errors=[{"code": ERR_UNAUTHORIZED, "message": exc.detail}]) from None


dci_client.dci_client_auth = True  # read by the role-matrix test: a DCI client's token, no user's
ClientDep = Annotated[DciClient, Depends(dci_client)]

ENVELOPE = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["header", "message"], "description": "A DCI message: {signature, header, message} "
    "(spdci/standards v1.0.0; docs/dci.md).",
    "properties": {"signature": {"type": "string", "maxLength": 2 * 1024 * 1024}, "header": {"type": "object"},
                   "message": {"type": "object"}}}}}}}


class DciMessage(BaseModel):
    signature: str | None = Field(default=None, max_length=2 * 1024 * 1024)
    header: dict[str, Any] | None = None
    message: dict[str, Any] | None = None


async def _body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise DomainError("The body is not valid JSON.", slug="malformed-json",
                          errors=[{"code": ERR_BAD_REQUEST, "message": "The body is not valid JSON."}]) from None


def _transport_error(rejected: Rejected) -> DomainError:
    if rejected.code.startswith("err.signature"):
        return Unauthenticated(rejected.message, errors=[{"code": rejected.code, "message": rejected.message}])
    return BadRequest(rejected.message, errors=[{"code": rejected.code, "message": rejected.message}])


async def _sync(request: Request, session, settings, client: DciClient, kind: str) -> JSONResponse:
    body = await _body(request)
    try:
        header = await dci_provider.receive(session, settings, client, body, kind)
        answer = await dci_provider.HANDLERS[kind](session, settings, client, header, body["message"])
    except Rejected as rejected:
        if not rejected.code.startswith("rjct."):
            raise _transport_error(rejected) from None
        reply = callback_header(dci_provider.ACTIONS[kind][1], "rjct", sender_id=settings.dci_sender_id,
                                receiver_id=client.client_id, total_count=0, completed_count=0,
                                reason_code=rejected.code, reason_message=rejected.message)
        return JSONResponse(signing.envelope(settings, reply, None))
    return JSONResponse(signing.envelope(settings, dci_provider.reply_header(settings, client, kind, answer), answer.message))


async def _async(request: Request, session, settings, client: DciClient, kind: str) -> JSONResponse:
    body = await _body(request)
    try:
        header = await dci_provider.receive(session, settings, client, body, kind)
        url = dci_provider.callback_url(client, header, kind)
        answer = await dci_provider.HANDLERS[kind](session, settings, client, header, body["message"])
    except Rejected as rejected:
        if rejected.code.startswith("rjct."):  # the Error object has no rjct codes: NACK, the code in the text
            return JSONResponse(ack("NACK", "", code=ERR_BAD_REQUEST, message=f"{rejected.code}: {rejected.message}"))
        return JSONResponse(ack("ERR", "", code=rejected.code, message=rejected.message))
    dci_provider.enqueue(session, client, url, dci_provider.reply_header(settings, client, kind, answer), answer.message)
    return JSONResponse(ack("ACK", answer.correlation_id), status_code=202,
                        background=BackgroundTask(dci_worker.wake, request.app))


# ---- Guichet as a Social Registry -------------------------------------------------------------------

SR = "/dci/sr/registry"


@router.post(f"{SR}/sync/search", openapi_extra=ENVELOPE, response_model=DciMessage)
async def sync_search(request: Request, session: SessionDep, settings: SettingsDep, client: ClientDep) -> JSONResponse:
    """Search the registry (Group or Member; idtype-value, predicate or expression), answered inline."""
    return await _sync(request, session, settings, client, "search")


@router.post(f"{SR}/search", openapi_extra=ENVELOPE, status_code=202, response_model=DciMessage)
async def search(request: Request, session: SessionDep, settings: SettingsDep, client: ClientDep) -> JSONResponse:
    """Search; the answer goes to the client's /registry/on-search."""
    return await _async(request, session, settings, client, "search")


@router.post(f"{SR}/sync/txn/status", openapi_extra=ENVELOPE, response_model=DciMessage)
async def sync_txn_status(request: Request, session: SessionDep, settings: SettingsDep, client: ClientDep) -> JSONResponse:
    return await _sync(request, session, settings, client, "txn-status")


@router.post(f"{SR}/txn/status", openapi_extra=ENVELOPE, status_code=202, response_model=DciMessage)
async def txn_status(request: Request, session: SessionDep, settings: SettingsDep, client: ClientDep) -> JSONResponse:
    return await _async(request, session, settings, client, "txn-status")


@router.post(f"{SR}/subscribe", openapi_extra=ENVELOPE, status_code=202, response_model=DciMessage)
async def subscribe(request: Request, session: SessionDep, settings: SettingsDep, client: ClientDep) -> JSONResponse:
    """Follow households (new member, move, IDPoor level, death...): changes go to the client's /registry/notify."""
    return await _async(request, session, settings, client, "subscribe")


@router.post(f"{SR}/unsubscribe", openapi_extra=ENVELOPE, status_code=202, response_model=DciMessage)
async def unsubscribe(request: Request, session: SessionDep, settings: SettingsDep, client: ClientDep) -> JSONResponse:
    return await _async(request, session, settings, client, "unsubscribe")


@router.post("/dci/ibr/registry/sync/enrolled", openapi_extra=ENVELOPE, response_model=DciMessage)
async def sync_enrolled(request: Request, session: SessionDep, settings: SettingsDep, client: ClientDep) -> JSONResponse:
    """IBR: is this person enrolled in a programme (an approved application)?"""
    return await _sync(request, session, settings, client, "enrolled")


class TokenAnswer(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: str  # a string, as the spec's OAuth2ClientTokenResponse types it


@router.post("/oauth2/client/token", response_model=TokenAnswer)
async def client_token(
    session: SessionDep, settings: SettingsDep,
    grant_type: Annotated[str, Form(max_length=40)],
    client_id: Annotated[str, Form(min_length=1, max_length=64)],
    client_secret: Annotated[str, Form(min_length=1, max_length=128)],
    scope: Annotated[str | None, Form(max_length=200)] = None,
) -> TokenAnswer:
    """A DCI client's access token (client credentials, form-encoded)."""
    if grant_type != "client_credentials":
        raise BadRequest("Only grant_type=client_credentials is offered here.", error="unsupported_grant_type")
    token, lifetime = await dci_clients.issue_client_token(session, settings, client_id=client_id, client_secret=client_secret)
    return TokenAnswer(access_token=token, expires_in=str(lifetime))


class Jwks(BaseModel):
    keys: list[dict[str, Any]]


@router.get("/.well-known/jwks.json", response_model=Jwks)
async def jwks(settings: SettingsDep) -> dict[str, Any]:
    """The keys our DCI messages are signed with."""
    return signing.our_jwks(settings)


# ---- Guichet as a client: a registry's async answer ------------------------------------------------


@router.post("/dci/client/registry/on-search", openapi_extra=ENVELOPE, response_model=DciMessage)
async def on_search(request: Request, session: SessionDep, settings: SettingsDep) -> JSONResponse:
    """An external registry's answer to our async search (signed by its pinned keys)."""
    body = await _body(request)
    try:
        correlation_id = await dci_lookups.on_search(session, settings, body)
    except Rejected as rejected:
        return JSONResponse(ack("ERR", "", code=rejected.code, message=rejected.message))
    return JSONResponse(ack("ACK", correlation_id))


# ---- the admin's and the clerk's routes -------------------------------------------------------------

api = api_router(tags=["dci"])


@api.post("/dci/clients", response_model=DciClientRead, status_code=201)
async def create_client(request: Request, session: SessionDep, actor: AdminUser, body: DciClientCreate,
                        response: Response, background: BackgroundTasks) -> DciClientRead:
    """A partner system allowed to query the registry; its secret is shown once."""
    client = await dci_clients.create_client(session, actor, body)
    response.headers["Location"] = f"/api/v1/dci/clients/{client.id}"
    background.add_task(dci_worker.wake, request.app)  # once committed: the worker starts its rounds
    return client


@api.get("/dci/clients", response_model=Page[DciClientRead])
async def list_clients(session: SessionDep, actor: AdminUser, limit: Limit = 50, offset: Offset = 0) -> Page[DciClientRead]:
    items, total = await dci_clients.list_clients(session, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@api.get("/dci/clients/{client_id}", response_model=DciClientRead)
async def get_client(session: SessionDep, actor: AdminUser, client_id: uuid.UUID, response: Response) -> DciClientRead:
    client, version = await dci_clients.get_client(session, client_id)
    response.headers["ETag"] = etag(version)
    return client


@api.patch("/dci/clients/{client_id}", response_model=DciClientRead, responses=PATCH_RESPONSES)
async def update_client(session: SessionDep, actor: AdminUser, client_id: uuid.UUID, body: DciClientUpdate,
                        response: Response, if_match: IfMatch = None) -> DciClientRead:
    client, version = await dci_clients.update_client(session, actor, client_id, body, if_match)
    response.headers["ETag"] = etag(version)
    return client


@api.post("/registry-lookups", response_model=RegistryLookupRead, status_code=201)
async def look_up(session: SessionDep, settings: SettingsDep, actor: OfficeUser, body: RegistryLookupCreate,
                  response: Response) -> RegistryLookupRead:
    """Ask an external registry what it knows of a person by national ID, to offer the clerk (nothing is
    written to the registry here). A registry that is down answers `unavailable`, never an error."""
    lookup = await dci_lookups.look_up(session, settings, actor, body)
    response.headers["Location"] = f"/api/v1/registry-lookups/{lookup.id}"
    return lookup


@api.get("/registry-lookups/{lookup_id}", response_model=RegistryLookupRead)
async def get_lookup(session: SessionDep, actor: OfficeUser, lookup_id: uuid.UUID) -> RegistryLookupRead:
    return await dci_lookups.get_lookup(session, actor, lookup_id)


router.include_router(api)
