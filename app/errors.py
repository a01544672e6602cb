"""Domain errors and their RFC 9457 problem+json rendering.

Services raise DomainError subclasses; one set of handlers turns them, and every framework error,
into `application/problem+json` with a stable `type` (a path under /problems, documented there)."""

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app import metrics
from app.context import request_id_var
from app.i18n import _, gettext, translate, validation_message

logger = logging.getLogger("guichet.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"

# slug -> (status, title, when it happens). The catalogue served at /problems is built from this.
PROBLEM_TYPES: dict[str, tuple[int, str, str]] = {
    "bad-request": (400, "Bad request", "The request cannot be understood as sent."),
    "malformed-json": (400, "Malformed JSON", "The body is not valid JSON."),
    "unauthenticated": (401, "Authentication required", "No token, or a token that is malformed, expired, "
                        "wrongly signed or of a user who may no longer sign in."),
    "invalid-credentials": (401, "Invalid credentials", "Wrong username, password or client secret."),
    "session-ended": (401, "Session ended", "The refresh token is unknown, expired, already used or revoked (a sign-out, "
                      "a password change, a deactivation); sign in again."),
    "forbidden": (403, "Forbidden", "The caller's role may not do this."),
    "not-found": (404, "Not found", "No such resource, or not one the caller may see."),
    "method-not-allowed": (405, "Method not allowed", "The resource does not accept this method."),
    "not-acceptable": (406, "Not acceptable", "The resource cannot be rendered in the requested media type."),
    "request-timeout": (408, "Request timeout", "The request's body did not arrive within the read timeout; "
                        "the connection is closed."),
    "conflict": (409, "Conflict", "The request conflicts with the current state of the resource."),
    "national-id-registered": (409, "National ID already registered", "A person with this national ID exists."),
    "possible-duplicate": (409, "Possible duplicate", "Likely duplicates exist; look at the candidates, then "
                           "register with confirm_new: true if this is really a new person."),
    "unlikely-facts": (409, "Unlikely facts", "Some facts are possible but unlikely (see `warnings`); check them with "
                       "the client, then send the request again with confirm_unlikely: true if they are right."),
    "idempotency-key-in-use": (409, "Request in progress", "A request with this Idempotency-Key is still running."),
    "idempotency-key-reused": (422, "Idempotency key reused", "This Idempotency-Key was used with another request."),
    "precondition-failed": (412, "Precondition failed", "If-Match does not match the current ETag."),
    "payload-too-large": (413, "Payload too large", "The body is over the size limit."),
    "unsupported-media-type": (415, "Unsupported media type", "The body's content type is not accepted here."),
    "validation": (422, "Invalid request", "One or more fields are invalid; see `errors`."),
    "precondition-required": (428, "Precondition required", "Send If-Match with the ETag you last read."),
    "too-many-attempts": (429, "Too many attempts", "Too many failed sign-ins for this account; wait Retry-After "
                          "seconds before trying again."),
    "too-many-lookups": (429, "Too many lookups", "Too many national IDs found registered at other offices within "
                         "the hour; wait before giving national IDs again."),
    "internal": (500, "Internal error", "Something failed on our side; the request changed nothing."),
    "service-unavailable": (503, "Service unavailable", "The database cannot be reached right now; retry later."),
}


def problem_type_uri(slug: str) -> str:
    return f"/problems/{slug}"


class DomainError(Exception):
    slug = "conflict"

    def __init__(self, detail: str, *, slug: str | None = None, headers: dict[str, str] | None = None, **extensions: Any):
        super().__init__(detail)
        self.detail = detail
        if slug:
            self.slug = slug
        self.headers = headers
        self.extensions = extensions

    @property
    def status(self) -> int:
        return PROBLEM_TYPES[self.slug][0]


class BadRequest(DomainError):
    slug = "bad-request"


class NotFound(DomainError):
    slug = "not-found"


class Forbidden(DomainError):
    slug = "forbidden"


class Conflict(DomainError):
    slug = "conflict"


class Unauthenticated(DomainError):
    slug = "unauthenticated"

    def __init__(self, detail: str, *, slug: str | None = None, **extensions: Any):
        super().__init__(detail, slug=slug, headers={"WWW-Authenticate": 'Bearer realm="guichet"'}, **extensions)


class InvalidInput(DomainError):
    """A 422 for a rule that the request schema cannot express (two heads, a village that is not a
    village...). `field` names the offending field as a JSON pointer."""

    slug = "validation"

    def __init__(self, detail: str, *, field: str, **extensions: Any):
        super().__init__(detail, errors=[{"pointer": field, "detail": detail}], **extensions)


class PreconditionRequired(DomainError):
    slug = "precondition-required"


class PreconditionFailed(DomainError):
    slug = "precondition-failed"


def problem_response(
    request: Request,
    status: int,
    *,
    slug: str | None = None,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    # Title and detail in the request's language (app/i18n.py); type and the errors' pointers and codes never change.
    title = gettext(PROBLEM_TYPES[slug][1]) if slug else HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": problem_type_uri(slug) if slug else "about:blank",
        "title": title,
        "status": status,
        "instance": request.url.path,
    }
    if detail:
        body["detail"] = translate(detail)
    for listed in ("errors", "warnings"):  # each entry's detail; its pointer and code stay
        if isinstance(extensions.get(listed), list):
            extensions[listed] = [{**e, "detail": translate(e["detail"])} if isinstance(e, dict) and "detail" in e else e
                                  for e in extensions[listed]]
    request_id = request_id_var.get()
    if request_id:
        body["request_id"] = request_id
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


_HTTP_STATUS_SLUGS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation",
    503: "service-unavailable",
}


# PostgreSQL's "character not in repertoire" and "untranslatable character": text it cannot store (U+0000).
_UNSTORABLE_TEXT = {"22021", "22P05"}
# A database that is gone or going, besides connection exceptions (class 08): shut down by an operator
# or a crash, or starting and not yet accepting connections (57P01-57P03), too many connections (53300).
# asyncpg reports these as plain database errors, not as operational ones.
_UNAVAILABLE_SQLSTATES = {"57P01", "57P02", "57P03", "53300"}


def database_unavailable(exc: BaseException) -> bool:
    """Is this the database being unreachable (retry later: 503), rather than a bug (500)?"""
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeoutError, OSError)):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None) or ""
        return sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES
    return False


def _pointer(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc[1:]] if loc and loc[0] == "body" else [str(p) for p in loc]
    return "#/" + "/".join(parts)


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        errors.append(
            {
                "pointer": _pointer(loc),
                "in": str(loc[0]) if loc else "body",
                "detail": validation_message(error),
                "code": error.get("type", "invalid"),
            }
        )
    return errors


def _allowed_methods(request: Request) -> list[str]:
    routes = request.app.router.routes
    return [method for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
            if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return problem_response(request, exc.status, slug=exc.slug, detail=exc.detail, headers=exc.headers, **exc.extensions)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = _HTTP_STATUS_SLUGS.get(exc.status_code)
        detail = exc.detail if isinstance(exc.detail, str) else None
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"There is nothing at {request.url.path}."
        headers = exc.headers
        if exc.status_code == 405:
            # Starlette names the methods of the first route on the path only; name them all.
            headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
            detail = _("{method} is not allowed here; use {allowed}.", method=request.method, allowed=headers["Allow"])
        return problem_response(request, exc.status_code, slug=slug, detail=detail, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc)
        if any(e["code"] == "json_invalid" for e in errors):
            return problem_response(request, 400, slug="malformed-json", detail="The request body is not valid JSON.",
                                    errors=errors)
        return problem_response(request, 422, slug="validation", detail="The request has invalid fields.", errors=errors)

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, exc: StaleDataError) -> JSONResponse:
        # Another request changed the record between our read and our write.
        return problem_response(request, 412, slug="precondition-failed",
                                detail="The record was changed by someone else; read it again and retry.")

    @app.exception_handler(PoolTimeoutError)
    @app.exception_handler(OperationalError)
    @app.exception_handler(OSError)
    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        logger.warning("database unavailable: %s", type(exc).__name__)
        metrics.database_unavailable(exc)
        return problem_response(request, 503, slug="service-unavailable",
                                # Not "nothing was changed": when the connection broke during the commit, the
                                # outcome is unknown. An Idempotency-Key makes the retry safe either way.
                                detail="The database cannot be reached right now. Retry shortly; a POST retried "
                                       "with the same Idempotency-Key is never done twice.",
                                headers={"Retry-After": "5"})

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> JSONResponse:
        if database_unavailable(exc):
            return await _unavailable(request, exc)
        if getattr(exc.orig, "sqlstate", None) in _UNSTORABLE_TEXT:
            # A NUL character that reached PostgreSQL through a query parameter or a form: the client's doing.
            return problem_response(request, 422, slug="validation",
                                    detail="Text must not contain the NUL character (U+0000).")
        logger.exception("database error")
        return problem_response(request, 500, slug="internal", detail="The request failed and changed nothing.")

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return problem_response(request, 500, slug="internal", detail="The request failed and changed nothing.")

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # Two requests raced for the same unique value; the loser changed nothing.
        logger.info("integrity conflict: %s", type(exc.orig).__name__)
        return problem_response(request, 409, slug="conflict",
                                detail="The request conflicts with a record saved at the same moment; read again and retry.")
