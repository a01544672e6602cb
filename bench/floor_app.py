"""The footprint's floor: the fixed stack (uvicorn, FastAPI, Pydantic, SQLAlchemy async with the same
driver) serving one route that runs one query. What any app on this stack costs to start and to keep."""

import os

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

engine = create_async_engine(os.environ["GUICHET_DATABASE_URL"])
app = FastAPI()


@app.get("/ping")
async def ping() -> dict[str, int]:
    async with engine.connect() as connection:
        return {"one": (await connection.execute(text("SELECT 1"))).scalar_one()}
