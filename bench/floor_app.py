"""The footprint's floor: the fixed stack (uvicorn, FastAPI, Pydantic, SQLAlchemy async with the same
driver) serving one route that runs one query. What any app on this stack costs to start and to keep.

With GUICHET_FLOOR_LIBRARIES=1 it also imports the libraries Guichet loads to serve — python-jose with
its cryptography backend (tokens), httpx (partner schemes, the relay), pydantic-settings, prometheus-client,
PyYAML (scheme files), argon2 (passwords), orjson, python-multipart (the token form) — so that what is
left above it is the app's own code and data."""

import os

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

if os.environ.get("GUICHET_FLOOR_LIBRARIES"):
    import argon2  # noqa: F401
    import httpx  # noqa: F401
    import jose.jwt  # noqa: F401
    import orjson  # noqa: F401
    import prometheus_client  # noqa: F401
    import pydantic_settings  # noqa: F401
    import python_multipart  # noqa: F401
    import yaml  # noqa: F401

engine = create_async_engine(os.environ["GUICHET_DATABASE_URL"])
app = FastAPI()


@app.get("/ping")
async def ping() -> dict[str, int]:
    async with engine.connect() as connection:
        return {"one": (await connection.execute(text("SELECT 1"))).scalar_one()}
