"""The benchmarks' floor: the same app and middleware, one INSERT, no auth. Only mounted when
GUICHET_BENCH_ENDPOINTS=true."""

from app.deps import SessionDep
from app.models import BenchProbe
from app.routers import api_router

router = api_router(tags=["benchmark"])


@router.post("/_bench/floor", status_code=201, include_in_schema=False)
async def floor(session: SessionDep) -> dict[str, int]:
    probe = BenchProbe()
    session.add(probe)
    await session.flush()
    return {"id": probe.id}
