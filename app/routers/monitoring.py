"""Central monitoring: event ingest and indicators."""

from app.routers import api_router

router = api_router(tags=["monitoring"])
