"""The clerk's console at an office's (and a standalone instance's) `/`: one HTML page that loads the
console's modules from /assets; everything else it does goes through the public API (docs/frontend.md).
Central's `/` is left for the ministry's dashboard."""

from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import Response

from app import console

router = APIRouter(include_in_schema=False)


@router.get("/")
async def console_page(if_none_match: Annotated[str | None, Header(max_length=200)] = None) -> Response:
    return console.page_response("console", if_none_match)
