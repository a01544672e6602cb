"""The service's notion of "today": dates (birth dates in the future, deadlines, overdue) are judged in
the offices' time zone, not in UTC, so a child born this morning in Phnom Penh is not "in the future"."""

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

_zone = ZoneInfo("Asia/Phnom_Penh")


def set_timezone(name: str) -> None:
    global _zone
    _zone = ZoneInfo(name)


def timezone() -> ZoneInfo:
    return _zone


def now() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    return datetime.now(_zone).date()


def aware(value: Any) -> datetime | None:
    """An instant read back from the database, as aware UTC: min() or max() over a UTC column comes back
    naive (or as text) from SQLite."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
