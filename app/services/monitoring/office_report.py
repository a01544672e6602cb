"""The office report: the indicators' catalogue over one office's own activity, this month against the
last, computed at the office from its outbox (`activity_event`, the pseudonymised events it relays to
central), with the same counting rules as central's rollups (rollups.py) and the same cells
(indicators.cells_from_sums). Nothing leaves the office and no personal data is read.

No small-cell suppression here: the supervisor reading it sees every record of the office already.
Overdue counts need the open items central keeps and are not in this report."""

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import clock
from app.errors import InvalidInput
from app.events import EVENT_TYPES
from app.models import ActivityEvent
from app.services.monitoring import indicators
from app.services.monitoring.rollups import (
    DIMENSIONS,
    Counts,
    Fact,
    Increments,
    count_subject,
    event_dimensions,
    local_day,
    period_end,
    period_label,
    period_start,
    subjects,
)

REPORTED = ("clients_served", "households_reached", "persons_registered", "households_registered", "screenings",
            "eligible_determinations", "applications_submitted", "applications_approved", "applications_rejected",
            "approval_rate", "median_days_to_decision", "decisions_within_service_level", "beneficiaries",
            "referrals_issued", "referrals_completed", "grievances_opened", "grievances_resolved")
BREAKDOWNS = ("sex", "age_band", "disability", "scheme")


@dataclass
class ReportLine:
    key: str | bool | int | None  # the breakdown's value (None: the whole office, or not recorded)
    this_month: float | int | None
    last_month: float | int | None


@dataclass
class ReportItem:
    indicator: indicators.Indicator
    lines: list[ReportLine]


async def office_report(session: AsyncSession, *, office_code: str, month: date, breakdown: str | None
                        ) -> tuple[date, date, list[ReportItem]]:
    """(this month's start, last month's start, one item per reported indicator)."""
    if breakdown is not None and breakdown not in BREAKDOWNS:
        raise InvalidInput(f"breakdown is one of {', '.join(BREAKDOWNS)}.", field="#/query/breakdown")
    this = period_start(month, "month")
    last = period_start(this - timedelta(days=1), "month")
    counted = await _counted(session, office_code, last, period_end(this, "month"))
    items = []
    for name in REPORTED:
        indicator = indicators.CATALOG[name]
        if breakdown is not None and breakdown not in indicator.breakdowns:
            lines = []
        else:
            cells = indicators.cells_from_sums(indicator, _sums(counted, indicator, breakdown))
            by_key: dict[tuple, ReportLine] = {}
            for cell in cells:
                line = by_key.setdefault(cell.key, ReportLine(
                    indicators.output_value(breakdown, cell.key[0]) if breakdown else None, None, None))
                if cell.start == this:
                    line.this_month = cell.value
                elif cell.start == last:
                    line.last_month = cell.value
            lines = [by_key[key] for key in sorted(by_key)]
        items.append(ReportItem(indicator, lines))
    return this, last, items


async def _counted(session: AsyncSession, office_code: str, first: date, final: date) -> Counter:
    """The office's events of [first, final] (its local days) counted as central's widest cuboid (F)
    counts them: additive metrics by day, unique ones by month."""
    zone = clock.timezone()
    since = datetime.combine(first, time.min, zone)
    until = datetime.combine(final + timedelta(days=1), time.min, zone)
    rows = await session.execute(
        select(ActivityEvent.type, ActivityEvent.schema_version, ActivityEvent.occurred_at, ActivityEvent.payload)
        .where(ActivityEvent.office_code == office_code, ActivityEvent.occurred_at >= since,
               ActivityEvent.occurred_at < until)
        .order_by(ActivityEvent.occurred_at, ActivityEvent.id))
    counts, seen = Counts(), {}
    for event_type, version, occurred_at, payload in rows:
        model = EVENT_TYPES.get((event_type, version))
        if model is None:
            continue
        try:
            parsed = model.model_validate(payload)
        except ValidationError:  # what central would refuse (and the relay parks) is not counted here either
            continue
        fact = Fact(event_type, local_day(occurred_at), event_dimensions(office_code, parsed), parsed)
        counts.add_fact(fact)
        for kind, subject in subjects(fact):
            count_subject(seen.setdefault((kind, subject), set()), kind, fact, counts)
    increments = Increments()
    increments.add_rows(counts.rows)
    return increments.counts


def _sums(counted: Counter, indicator: indicators.Indicator, breakdown: str | None) -> list[tuple]:
    """Rows as indicators._sums gives them, by month, from cuboid F's keys: (cuboid, metric, grain,
    period_start, *DIMENSIONS values)."""
    grain = "month" if indicator.kind == "unique" else "day"
    column = indicators.COLUMN_OF.get(breakdown, breakdown) if breakdown else None
    extra = indicator.split if indicator.kind == "ratio" else "detail" if indicator.kind == "median" else None
    position = {name: 4 + i for i, name in enumerate(DIMENSIONS)}
    totals: Counter = Counter()
    for key, value in counted.items():
        if key[0] != "F" or key[1] != indicator.metric or key[2] != grain:
            continue
        if any(key[position[c]] != v for c, v in indicator.fixed.items()):
            continue
        row = (period_start(key[3], "month"), *([key[position[column]]] if column else []),
               *([key[position[extra]]] if extra else []))
        totals[row] += value
    return [(*row, value) for row, value in sorted(totals.items())]


def month_label(start: date) -> str:
    return period_label(start, "month")
