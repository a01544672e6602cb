"""The application factory."""

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles

from app import clock, i18n, metrics
from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker
from app.errors import PROBLEM_MEDIA_TYPE, install_error_handlers
from app.middleware import BodyLimitMiddleware, LanguageMiddleware, RequestContextMiddleware
from app.routers import (
    applications,
    assets,
    audit,
    auth,
    cases,
    console,
    dashboard,
    dci,
    exports,
    follow_ups,
    grievances,
    households,
    meta,
    monitoring,
    office_report,
    partner,
    persons,
    referrals,
    registry,
    schemes,
    screenings,
    sync,
)
from app.schemas.common import Problem
from app.schemes import load_registry
from app.services import activity, dci_worker, relay

MAX_BODY_BYTES = 1024 * 1024
STATIC_DIR = Path(__file__).parent / "static"
SWAGGER_UI = "/static/swagger-ui"

# Routes by instance role (GUICHET_ROLE): an office holds personal data and relays its activity events;
# central holds only what the offices relay and has no registry; standalone is both (docs/monitoring.md).
COMMON_ROUTERS = (meta, auth, registry, audit, assets, exports)
OFFICE_ROUTERS = (households, persons, schemes, screenings, sync, cases, applications, referrals, follow_ups, grievances,
                  partner, console, dci, office_report)
CENTRAL_ROUTERS = (monitoring, dashboard)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Every scheme is loaded and checked before serving: a broken scheme file stops start-up here,
        # naming its file and line (SchemeDefinitionError), not at the first screening.
        schemes = load_registry(settings)
        app.state.schemes = schemes
        engine = create_engine(settings)
        app.state.engine = engine
        metrics.forget_dead_workers()
        metrics.instrument_engine(engine)
        app.state.sessionmaker = create_sessionmaker(engine)
        relay_task = relay.start_in_process(app) if settings.serves_office and settings.relay_in_process else None
        dci_task = dci_worker.start_in_process(app) if settings.serves_office and settings.dci_worker_inprocess is not False else None
        try:
            yield
        finally:
            if dci_task is not None:
                await dci_worker.stop_in_process(dci_task)
            if relay_task is not None:
                await relay.stop_in_process(relay_task)
            await schemes.aclose()
            await engine.dispose()
            metrics.release_engine(engine)
            metrics.worker_stopped()

    clock.set_timezone(settings.timezone)
    i18n.set_default_language(settings.default_language)  # outside requests (the CLI); a request negotiates its own
    activity.configure(settings.pseudonym_key.get_secret_value())

    app = FastAPI(
        title="Guichet",
        version="0.1.0",
        summary="Single-window case management for social protection: one visit, every scheme.",
        lifespan=lifespan,
        docs_url=None,  # served below from the package's own copy of Swagger UI
        redoc_url=None,  # one documentation page; ReDoc would fetch its script and fonts from CDNs
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(RequestContextMiddleware)  # the 413 above carries the request id
    app.add_middleware(LanguageMiddleware, default=settings.default_language)  # outermost: every answer has a language

    routers = [*COMMON_ROUTERS]
    if settings.serves_office:
        routers += OFFICE_ROUTERS
    if settings.serves_central:
        routers += CENTRAL_ROUTERS
    for module in routers:
        app.include_router(module.router)
    if settings.bench_endpoints:
        from app.routers import bench

        app.include_router(bench.router)
        if settings.serves_central:
            app.include_router(monitoring.bench_router)
    app.openapi = lambda: _openapi(app)
    _serve_docs(app)
    return app


def _serve_docs(app: FastAPI) -> None:
    """Swagger UI at /docs with its script, style sheet and icon from this instance (app/static), not from a
    CDN: an office without internet still reads its API. No validator badge (it calls swagger.io)."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    async def docs(request: Request) -> Any:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title=f"{app.title} - Swagger UI", oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js", swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_UI}/favicon-32x32.png", swagger_ui_parameters={"validatorUrl": None},
        )

    async def oauth2_redirect(request: Request) -> Any:
        return get_swagger_ui_oauth2_redirect_html()

    app.add_route("/docs", docs, include_in_schema=False)
    app.add_route("/docs/oauth2-redirect", oauth2_redirect, include_in_schema=False)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """Every error response is declared as application/problem+json with the Problem schema."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem_schema.pop("$defs", {}))
    components["Problem"] = problem_schema
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                if status.isdigit() and int(status) >= 400:
                    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    app.openapi_schema = schema
    return schema
