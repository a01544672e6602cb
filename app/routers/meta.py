"""Health, readiness and the catalogue of problem types."""

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.errors import PROBLEM_TYPES, NotFound, problem_type_uri
from app.migrations_state import expected_head
from app.unit_of_work import TransactionalRoute

router = APIRouter(route_class=TransactionalRoute, tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive (no dependencies checked)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready"}})
async def readyz(request: Request) -> JSONResponse:
    """Ready to serve: the database answers and its schema is at the code's migration head."""
    checks: dict[str, object] = {}
    try:
        async with request.app.state.sessionmaker() as session:
            current = (await session.execute(text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()
        checks["database"] = "ok"
        head = expected_head()
        checks["migrations"] = "ok" if current == head else f"at {current}, code expects {head}"
    except Exception as exc:  # any failure means "not ready"; the reason is an exception name, no details
        checks["database"] = f"unreachable ({type(exc).__name__})"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503)


@router.get("/problems")
async def problem_catalogue() -> list[dict[str, object]]:
    """Every problem `type` this API answers with, its status and when it happens."""
    return [{"type": problem_type_uri(slug), "status": status, "title": title, "description": description}
            for slug, (status, title, description) in PROBLEM_TYPES.items()]


@router.get("/problems/{slug}")
async def problem_type(slug: Annotated[str, Path(max_length=64)]) -> dict[str, object]:
    if slug not in PROBLEM_TYPES:
        raise NotFound(f"No problem type {slug}.")
    status, title, description = PROBLEM_TYPES[slug]
    return {"type": problem_type_uri(slug), "status": status, "title": title, "description": description}
