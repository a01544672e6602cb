"""Health, readiness, metrics and the catalogue of problem types (docs/operations.md)."""

import asyncio
import hmac
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from app import clock, metrics
from app.errors import PROBLEM_TYPES, NotFound, Unauthenticated, problem_type_uri
from app.i18n import gettext
from app.migrations_state import expected_head
from app.services import relay
from app.unit_of_work import TransactionalRoute

router = APIRouter(route_class=TransactionalRoute, tags=["operations"])

# A probe must answer within its own timeout (a load balancer's is often 2-3 s), database down or not.
READINESS_SECONDS = 2.5


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive (no dependencies checked)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready"}})
async def readyz(request: Request) -> JSONResponse:
    """Ready to serve: the database answers and its schema is at the code's migration head.

    An office also reports its relay (backlog, oldest unsent event, last success and error), but never
    fails readiness for it: an office whose central is unreachable keeps serving clients, its events
    wait in the outbox, and taking it out of the load balancer would only stop the window."""
    settings = request.app.state.settings
    checks: dict[str, object] = {}
    relay_state: dict[str, Any] | None = None
    try:
        async with asyncio.timeout(READINESS_SECONDS):
            async with request.app.state.sessionmaker() as session:
                current = (await session.execute(text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()
                checks["database"] = "ok"
                head = expected_head()
                checks["migrations"] = "ok" if current == head else f"at {current}, code expects {head}"
                if settings.serves_office and current == head:
                    relay_state = _relay_summary(await relay.status(session, office_code=None))
    except Exception as exc:  # any failure means "not ready"; the reason is an exception name, no details
        checks["database"] = f"{'failing' if 'database' in checks else 'unreachable'} ({type(exc).__name__})"
    ready = all(v == "ok" for v in checks.values())
    body: dict[str, Any] = {"status": "ready" if ready else "not ready", "checks": checks}
    if relay_state is not None:
        body["relay"] = relay_state
    return JSONResponse(body, status_code=200 if ready else 503)


def _relay_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The offices' relay status summed up: what waits, since when, and how the last attempts went."""
    now = datetime.now(UTC)
    oldest = min((r["oldest_unsent_at"] for r in rows if r["oldest_unsent_at"]), default=None)
    last_success = max((clock.aware(r["last_success_at"]) for r in rows if r["last_success_at"]), default=None)
    errors = [r for r in rows if r["last_error_at"]]
    last_error = max(errors, key=lambda r: clock.aware(r["last_error_at"]), default=None)
    return {
        "backlog": sum(r["backlog"] for r in rows),
        "oldest_unsent_at": oldest.isoformat() if oldest else None,
        "oldest_unsent_age_seconds": round((now - oldest).total_seconds(), 1) if oldest else None,
        "parked": sum(r["parked"] for r in rows),
        "last_success_at": last_success.isoformat() if last_success else None,
        "last_error_at": clock.aware(last_error["last_error_at"]).isoformat() if last_error else None,
        "last_error": last_error["last_error"] if last_error else None,
    }


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request, authorization: Annotated[str | None, Header(max_length=500)] = None) -> Response:
    """Prometheus text exposition. Open unless GUICHET_METRICS_TOKEN is set (then a bearer token);
    either way it names routes, schemes and offices, never a person."""
    settings = request.app.state.settings
    if not settings.metrics_enabled:
        raise NotFound(f"There is nothing at {request.url.path}.")
    if settings.metrics_token is not None:
        expected = f"Bearer {settings.metrics_token.get_secret_value()}".encode()
        if authorization is None or not hmac.compare_digest(authorization.encode(), expected):
            raise Unauthenticated("/metrics needs the metrics token (GUICHET_METRICS_TOKEN) as a bearer token.")
    return Response(await metrics.exposition(request.app, relay_status=relay.status), media_type=metrics.CONTENT_TYPE)


@router.get("/problems")
async def problem_catalogue() -> list[dict[str, object]]:
    """Every problem `type` this API answers with, its status and when it happens."""
    return [{"type": problem_type_uri(slug), "status": status, "title": gettext(title), "description": gettext(description)}
            for slug, (status, title, description) in PROBLEM_TYPES.items()]


@router.get("/problems/{slug}", responses={404: {"description": "No such problem type"}})
async def problem_type(slug: Annotated[str, Path(max_length=64)]) -> dict[str, object]:
    if slug not in PROBLEM_TYPES:
        raise NotFound(f"No problem type {slug}.")
    status, title, description = PROBLEM_TYPES[slug]
    return {"type": problem_type_uri(slug), "status": status, "title": gettext(title), "description": gettext(description)}
