"""Routers parse and authorise, call one service function and shape the answer."""

from typing import Annotated

from fastapi import APIRouter, Header, Query

from app.schemas.common import MAX_PAGE, PROBLEM_RESPONSES
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
