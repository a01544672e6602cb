"""Office-to-central sync status."""

from app.routers import api_router

router = api_router(tags=["sync"])
