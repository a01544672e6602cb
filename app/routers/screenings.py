"""Eligibility screenings."""

from app.routers import api_router

router = api_router(tags=["screenings"])
