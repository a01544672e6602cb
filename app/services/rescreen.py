"""`guichet rescreen`: re-run the screenings of an office (or of every office) after a rules change.

Households are taken in batches by id (keyset order, so a long run never rereads or skips one), each
batch in its own transaction: an interrupted run keeps the batches it finished, and running it again
skips what is already up to date (a screening is written only where a verdict, its reasons or its
rules version differ from the latest one). Two batches are in flight at once so that the database's
work on one overlaps the rules evaluation of the other."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import clock
from app.errors import InvalidInput
from app.models import Office
from app.schemes.registry import SchemeRegistry
from app.services.screening import (
    RescreenSummary,
    count_households,
    households_to_rescreen,
    rescreen_batch,
    select_schemes,
)


async def rescreen(
    sessionmaker: async_sessionmaker[AsyncSession],
    registry: SchemeRegistry,
    *,
    office_code: str | None,
    scheme_codes: list[str] | None,
    batch_size: int = 500,
    jobs: int = 2,
    on_progress: Callable[[int], None] | None = None,
) -> RescreenSummary:
    adapters = select_schemes(registry, scheme_codes, clock.today(), pointer="--scheme")
    async with sessionmaker() as session:
        if office_code is not None and (await session.execute(select(Office.id).where(Office.code == office_code))).first() is None:
            raise InvalidInput(f"There is no office {office_code}.", field="--office")
        total = await count_households(session, office_code=office_code)
    summary = RescreenSummary()
    run_id = f"rescreen-{uuid.uuid4().hex[:12]}"
    started = time.perf_counter()
    batches: asyncio.Queue = asyncio.Queue(maxsize=jobs)

    async def list_batches() -> None:
        after = None
        async with sessionmaker() as session:
            while True:
                ids = await households_to_rescreen(session, office_code=office_code, after=after, limit=batch_size)
                await session.rollback()  # end the read transaction between batches
                if not ids:
                    break
                await batches.put(ids)
                after = ids[-1]
        for _ in range(jobs):
            await batches.put(None)

    async def work() -> None:
        while (ids := await batches.get()) is not None:
            async with sessionmaker() as session, session.begin():
                await rescreen_batch(session, registry, adapters, ids, summary, run_id=run_id)
            if on_progress:
                on_progress(len(ids))

    await asyncio.gather(list_batches(), *(work() for _ in range(jobs)))
    summary.seconds = time.perf_counter() - started
    summary.total = total
    return summary
