"""The ministry's dashboard at central's `/` (and `/dashboard`, which a standalone instance, whose `/` is
the clerk's console, also serves): one page that signs in and reads the monitoring API (docs/frontend.md,
docs/monitoring.md)."""

from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import Response

from app import console

router = APIRouter(include_in_schema=False)


@router.get("/")
@router.get("/dashboard")
async def dashboard_page(if_none_match: Annotated[str | None, Header(max_length=200)] = None) -> Response:
    return console.page_response("dashboard", if_none_match)
