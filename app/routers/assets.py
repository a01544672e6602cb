"""The front ends' static files under their content-hashed prefix, `/assets/<version>/` (app/console)."""

from typing import Annotated

from fastapi import APIRouter, Header, Path
from fastapi.responses import Response

from app import console

router = APIRouter(include_in_schema=False)


@router.get("/assets/{version}/{path:path}")
async def asset(version: Annotated[str, Path(max_length=64)], path: Annotated[str, Path(max_length=300)],
                accept_encoding: Annotated[str | None, Header(max_length=300)] = None) -> Response:
    return console.asset_response(version, path, accept_encoding)
