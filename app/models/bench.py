from datetime import datetime

from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class BenchProbe(Base):
    """One row per call of the benchmark floor endpoint (enabled with GUICHET_BENCH_ENDPOINTS)."""

    __tablename__ = "bench_probe"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
