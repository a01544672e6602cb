"""One request, one transaction.

Every route runs inside `TransactionalRoute`: it reads the request's whole body, opens the request's
session, runs the handler, stores the response of an idempotent POST in that same transaction, and
commits; any exception rolls everything back, so a failed request leaves the database as it was.
Services only flush."""

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

import orjson
from fastapi import Depends, Header, Request, Response, params
from fastapi.routing import APIRoute
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from app.deps import CurrentUser
from app.errors import BadRequest, DomainError
from app.models import IdempotencyKey
from app.models.base import utcnow
from app.upsert import insert_ignore

logger = logging.getLogger("guichet.uow")

IDEMPOTENCY_TTL = timedelta(hours=24)
IDEMPOTENCY_LOCK = timedelta(seconds=60)
# Expired keys still hold their stored responses, personal data included; a claim drops them now and then.
PRUNE_EVERY = timedelta(minutes=10)
_next_prune = None
_REPLAYED_HEADERS = ("content-type", "etag", "location")


class IdempotentReplay(Exception):
    """Raised by the idempotency dependency to answer with the stored first response."""

    def __init__(self, key: IdempotencyKey):
        self.key = key

    def response(self) -> Response:
        headers = dict(self.key.response_headers or {})
        headers["Idempotent-Replayed"] = "true"
        return Response(self.key.response_body, status_code=self.key.response_status, headers=headers)


def _json_media_type(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19  # the shortest whole number beyond 64 bits has 19 digits (-9223372036854775809)


def _long_whole_number(body: bytes) -> bool:
    """Does the body hold a number of 19 digits or more as a value (after a colon, a comma or a bracket,
    not inside a string as far as the bytes before it tell)? A digit run inside a string (a hexadecimal
    pseudonym) is told apart by what precedes it; one that looks like a value costs a slower parse only."""
    digits = body.translate(_DIGITS_AS_ZERO)
    start = digits.find(_LONG_RUN)
    while start != -1:
        before = start - 1
        while before >= 0 and body[before] in b" \t\r\n-":
            before -= 1
        if before < 0 or body[before] in b":,[":
            return True
        start = digits.find(_LONG_RUN, start + len(_LONG_RUN))
    return False


def _form_media_type(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() in ("application/x-www-form-urlencoded", "multipart/form-data")


class JSONRequest(Request):
    """Bodies parsed by orjson, faster than the standard library (a relay's batch of 1,000 events, kept
    alive as a request keeps it: 2.1 ms against 3.3 ms). What orjson refuses but the standard library
    takes (a byte-order mark, NaN) goes to the standard library, so no body that was accepted is refused
    now. orjson reads a whole number beyond 64 bits as a float (2**64 as 1.8446744073709552e19), which
    would then be validated as a number the client did not send: a body holding a number that long goes
    to the standard library, which keeps it whole (the look costs a few µs for a registration, a fifth
    of orjson's parse for a relay's batch)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            if _long_whole_number(body):
                self._json = json.loads(body)
                return self._json
            try:
                self._json = orjson.loads(body)
            except orjson.JSONDecodeError:
                self._json = json.loads(body)
        return self._json


class TransactionalRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()
        # A body in another content type than the route's (JSON documents; the token endpoint's form) is
        # a 415, not a validation error about a body the API never read as sent.
        takes_form = self.body_field is not None and isinstance(self.body_field.field_info, params.Form)
        takes_json = self.body_field is not None and not takes_form

        async def run_in_transaction(request: Request) -> Response:
            request = JSONRequest(request.scope, request.receive)
            await _read_body(request)
            content_type = request.headers.get("content-type")
            if takes_json and content_type and not _json_media_type(content_type) and await request.body():
                raise DomainError(f"The body must be JSON (Content-Type: application/json), not {content_type[:100]}.",
                                  slug="unsupported-media-type")
            if takes_form and content_type and not _form_media_type(content_type) and await request.body():
                raise DomainError(f"The body must be form-encoded (Content-Type: application/x-www-form-urlencoded), "
                                  f"as OAuth2 token requests are, not {content_type[:100]}.", slug="unsupported-media-type")
            sessionmaker = request.app.state.sessionmaker
            async with sessionmaker() as session:
                request.state.session = session
                request.state.idempotency_claim = None
                try:
                    response = await handler(request)
                    claim = request.state.idempotency_claim
                    if claim is not None:
                        await _store_response(session, claim, response)
                    await session.commit()
                except IdempotentReplay as replay:
                    await session.rollback()
                    return replay.response()
                except BaseException:
                    await session.rollback()
                    if request.state.idempotency_claim is not None:
                        await _release(sessionmaker, request.state.idempotency_claim)
                    raise
                return response

        return run_in_transaction


async def _read_body(request: Request) -> None:
    """The whole body, before anything reads the database (the caller's lookup included): a client that
    sends half a body and waits then holds a socket, never a connection or SQLite's write lock. It must
    arrive within GUICHET_BODY_READ_TIMEOUT_SECONDS (408, and the connection closes: its unread rest
    cannot be skipped). A client that leaves mid-body raises ClientDisconnect, logged as its doing by
    RequestContextMiddleware."""
    headers = request.headers
    if "content-length" not in headers and "transfer-encoding" not in headers:
        return  # no body (RFC 9112 §6.3): nothing to wait for
    seconds = request.app.state.settings.body_read_timeout_seconds
    try:
        async with asyncio.timeout(seconds):
            await request.body()
    except TimeoutError:
        raise DomainError(f"The request body did not arrive within {seconds:g} seconds; send the request again.",
                          slug="request-timeout", headers={"Connection": "close"}) from None


async def _store_response(session, claim_id: int, response: Response) -> None:
    headers = {k: v for k, v in response.headers.items() if k.lower() in _REPLAYED_HEADERS}
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == claim_id)
        .values(response_status=response.status_code, response_headers=headers, response_body=bytes(response.body),
                locked_until=None)
    )


async def _release(sessionmaker, claim_id: int) -> None:
    """The work was rolled back, so the key is freed: a retry with it runs the request again."""
    try:
        async with sessionmaker() as session, session.begin():
            await session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == claim_id))
    except Exception:  # the lock expires by itself; never hide the original error
        logger.warning("could not release idempotency key %s", claim_id, exc_info=True)


async def idempotency(
    request: Request,
    principal: CurrentUser,
    idempotency_key: Annotated[str | None, Header(max_length=255, alias="Idempotency-Key")] = None,
) -> None:
    """Dependency for POST routes: the same key and body replay the first response; the same key with
    another body answers 422; a key still in flight answers 409."""
    if idempotency_key is None:
        return
    if not idempotency_key.strip():
        raise BadRequest("Idempotency-Key must not be empty.")
    body = await request.body()
    digest = hashlib.sha256(b"%s %s\n%s" % (request.method.encode(), str(request.url.path).encode(), body)).hexdigest()
    principal_key = str(principal.id)
    now = utcnow()
    sessionmaker = request.app.state.sessionmaker
    # The caller lookup has opened the request's transaction; it has only read. On SQLite every
    # transaction holds the single write lock from its first statement, so the claim's own
    # transaction below would wait for this one forever: end it first (the work begins a new one).
    if request.state.session.in_transaction():
        await request.state.session.commit()
    # Claimed in its own committed transaction so that concurrent twins see it at once. (The path is
    # cut to its column; the hash covers all of it.)
    async with sessionmaker() as session, session.begin():
        global _next_prune
        if _next_prune is None or now >= _next_prune:
            _next_prune = now + PRUNE_EVERY
            await session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < now - IDEMPOTENCY_TTL))
        inserted = await session.execute(
            insert_ignore(session, IdempotencyKey, ["principal", "key"]).values(
                principal=principal_key, key=idempotency_key, method=request.method, path=request.url.path[:300],
                request_hash=digest, locked_until=now + IDEMPOTENCY_LOCK, created_at=now,
            )
        )
        existing = (
            await session.execute(
                select(IdempotencyKey).where(IdempotencyKey.principal == principal_key, IdempotencyKey.key == idempotency_key)
            )
        ).scalar_one()
        if inserted.rowcount == 1:
            request.state.idempotency_claim = existing.id
            return
        if existing.created_at < now - IDEMPOTENCY_TTL or (
            existing.response_status is None and existing.locked_until is not None and existing.locked_until < now
        ):
            # Expired, or abandoned by a request that died: take it over for this request.
            await session.execute(
                update(IdempotencyKey).where(IdempotencyKey.id == existing.id).values(
                    method=request.method, path=request.url.path[:300], request_hash=digest, locked_until=now + IDEMPOTENCY_LOCK,
                    created_at=now, response_status=None, response_headers=None, response_body=None,
                )
            )
            request.state.idempotency_claim = existing.id
            return
    if existing.request_hash != digest:
        raise DomainError(
            "This Idempotency-Key was already used with a different request; use a new key for a new request.",
            slug="idempotency-key-reused",
        )
    if existing.response_status is None:
        raise DomainError(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            slug="idempotency-key-in-use",
            headers={"Retry-After": "1"},
        )
    raise IdempotentReplay(existing)


Idempotent = Depends(idempotency)


async def prune_idempotency_keys(sessionmaker) -> int:
    async with sessionmaker() as session, session.begin():
        result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - IDEMPOTENCY_TTL))
        return result.rowcount


__all__ = ["Idempotent", "IntegrityError", "TransactionalRoute", "prune_idempotency_keys"]
