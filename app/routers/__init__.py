"""Routers parse and authorise, call one service function and shape the answer."""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import HTMLResponse

from app.errors import DomainError
from app.schemas.common import MAX_PAGE, PROBLEM_RESPONSES, ReadModel
from app.unit_of_work import TransactionalRoute

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Page size, at most {MAX_PAGE}.")]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=100, description="The ETag you last read.")]
SearchText = Annotated[str | None, Query(min_length=1, max_length=100)]


def api_router(*, tags: list[str], prefix: str = "/api/v1") -> APIRouter:
    return APIRouter(prefix=prefix, tags=tags, route_class=TransactionalRoute, responses=PROBLEM_RESPONSES)

PATCH_RESPONSES = {
    412: {"description": "If-Match is stale: someone changed the record since you read it"},
    428: {"description": "If-Match is missing"},
}
CONFLICT_RESPONSES = {409: {"description": "Conflicts with the current state, or an Idempotency-Key still in flight"}}

# Requests that give national IDs and facts: a national ID registered, unlikely facts to confirm, likely
# duplicates; too many national IDs found at other offices within the hour.
REGISTRY_RESPONSES = {
    409: {"description": "National ID already registered, unlikely facts (confirm_unlikely), likely duplicates "
                         "(confirm_new), or an Idempotency-Key still in flight"},
    429: {"description": "Too many national IDs found registered at other offices within the hour"},
}


# ---- printables: JSON, or a page to print (the receipt, the referral slip, the grievance acknowledgement) ----

PRINTABLE_RESPONSES = {200: {"content": {"text/html": {"schema": {"type": "string"}}},
                             "description": "As JSON, or as a printable page with Accept: text/html"},
                       406: {"description": "Neither JSON nor HTML is acceptable"}}


def _wanted_media(accept: str | None) -> str | None:
    """json or html by the Accept header's preferences (JSON when it does not say); None when neither."""
    if not accept or not accept.strip():
        return "json"
    best: dict[str, float] = {"json": 0.0, "html": 0.0}
    for part in accept.split(",")[:50]:
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = max(0.0, min(1.0, float(param[2:])))
                except ValueError:
                    quality = 0.0
        media = media.lower()
        for kind, names in (("json", ("application/json", "application/*", "*/*")), ("html", ("text/html", "text/*", "*/*"))):
            if media in names:
                # An exact media type outranks a wildcard of the same quality.
                best[kind] = max(best[kind], quality + (0.001 if media in ("application/json", "text/html") else 0))
    kind = max(best, key=lambda k: (best[k], k == "json"))
    return kind if best[kind] > 0 else None


def printable_media(request: Request) -> str:
    """"json" or "html", as the caller's Accept prefers; 406 when it takes neither (asked before any work)."""
    wanted = _wanted_media(request.headers.get("accept"))
    if wanted is None:
        raise DomainError("This is available as application/json or text/html.", slug="not-acceptable")
    return wanted


def printable(wanted: str, found: ReadModel, page: Callable[[ReadModel], str]) -> Response:
    """The answer in the media chosen by printable_media. Personal data: no cache keeps it."""
    headers = {"Vary": "Accept", "Cache-Control": "no-store"}
    if wanted == "html":
        return HTMLResponse(page(found), headers=headers)
    return Response(found.model_dump_json(), media_type="application/json", headers=headers)
