"""Central monitoring's indicators: the catalogue (what each indicator counts and how it may be broken
down), the queries that read the smallest rollup holding a question's dimensions, and small-cell
suppression (docs/monitoring.md)."""

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, Integer, func, or_, select, text, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from app import clock
from app.errors import InvalidInput
from app.models import MonitoringOpenItem
from app.services.monitoring.rollups import (
    ADDITIVE_GRAINS,
    CUBOIDS,
    GRAIN_SERVES,
    PERIODS,
    ROLLUP_TABLES,
    UNIQUE_GRAINS,
    period_end,
    period_label,
    period_start,
)
from app.services.monitoring.suppression import Cell, coarsen, hide_small_components, protect
from app.upsert import dialect_name
from app.vocabulary import AGE_BANDS, GrievanceCategory, GrievanceChannel, Outcome, Sex

# ---- indicators ----------------------------------------------------------------------------------------

GEO = ("province", "district", "commune", "office", "area_type")
PERSON = ("sex", "age_band", "disability")
HOUSEHOLD = ("idpoor_level", "female_headed")
# Breakdown names of the API -> rollup columns.
COLUMN_OF = {"office": "office_code", "category": "detail", "agency": "detail", "outcome": "detail", "decision": "detail",
             "reason": "detail", "channel": "detail"}
BREAKDOWNS = (*GEO, "scheme", *PERSON, *HOUSEHOLD, "category", "agency", "outcome", "decision", "reason", "channel")


@dataclass(frozen=True)
class Indicator:
    name: str
    title: str
    definition: str
    unit: str
    kind: str  # count | unique | ratio | median | overdue
    metric: str
    breakdowns: tuple[str, ...]
    fixed: dict[str, str] = field(default_factory=dict)  # column -> value every cell is restricted to
    numerator: tuple[str, ...] = ()  # ratio: detail values (or sex values) counted above the line
    denominator: tuple[str, ...] = ()
    split: str = "detail"  # ratio: the column that tells numerator from the rest

    @property
    def periods(self) -> tuple[str, ...]:
        return PERIODS

    @property
    def counts_persons(self) -> bool:
        return self.kind in ("count", "unique", "overdue")


_ALL = (*GEO, *PERSON, *HOUSEHOLD)
_SCHEME_ALL = (*GEO, "scheme", *PERSON, *HOUSEHOLD)
CATALOG: dict[str, Indicator] = {i.name: i for i in [
    Indicator("clients_served", "Clients served", "Unique persons with any recorded service at the window in the "
              "period (registration, update, screening, application, referral, case, grievance; not a re-screen, a "
              "partner's or the office's own change), each counted once per period under the dimensions of their first "
              "event in it.", "persons", "unique", "clients_served", _ALL),
    Indicator("households_reached", "Households reached", "Unique households with any recorded service at the window "
              "in the period.", "households", "unique", "households_reached", (*GEO, *HOUSEHOLD)),
    Indicator("female_headed_households_reached", "Female-headed households reached",
              "Unique households headed by a woman with any recorded service at the window in the period.", "households",
              "unique", "households_reached", (*GEO, "idpoor_level"), fixed={"female_headed": "true"}),
    Indicator("households_registered", "Households registered", "Households newly registered.", "households", "count",
              "households_registered", (*GEO, *HOUSEHOLD)),
    Indicator("persons_registered", "Persons registered", "Persons newly registered (with their household or added "
              "to one).", "persons", "count", "persons_registered", _ALL),
    Indicator("households_updated", "Household updates", "Changes recorded to households.", "households", "count",
              "households_updated", (*GEO, *HOUSEHOLD)),
    Indicator("screenings", "Screenings", "Eligibility screenings run at the window (one per household screened, every "
              "scheme at once); re-screens are counted apart (rescreens).", "households", "count", "screenings",
              (*GEO, *HOUSEHOLD)),
    Indicator("determinations", "Determinations", "Scheme determinations of screenings at the window, by outcome "
              "(eligible, not_eligible, needs_information, error).", "persons", "count", "determinations",
              (*_SCHEME_ALL, "outcome")),
    Indicator("eligible_determinations", "Likely eligible, per scheme", "Determinations of a screening at the window "
              "that found a person (or household) likely eligible for a scheme.", "persons", "count", "determinations",
              _SCHEME_ALL, fixed={"detail": Outcome.eligible.value}),
    Indicator("rescreens", "Re-screens", "Households re-screened with no client at the window (guichet rescreen after "
              "a rules change): one per household whose verdicts, reasons or benefits changed.", "households", "count",
              "rescreens", (*GEO, *HOUSEHOLD)),
    Indicator("rescreen_determinations", "Determinations changed by re-screens", "Determinations a re-screen wrote "
              "because they say something new (verdict, reasons, benefit), by their outcome.", "persons", "count",
              "rescreen_determinations", (*_SCHEME_ALL, "outcome")),
    Indicator("applications_submitted", "Applications submitted", "Applications filed with a scheme.", "persons", "count",
              "applications_submitted", _SCHEME_ALL),
    Indicator("applications_approved", "Applications approved", "Applications a scheme approved.", "persons", "count",
              "applications_decided", _SCHEME_ALL, fixed={"detail": "approved"}),
    Indicator("applications_rejected", "Applications rejected", "Applications a scheme rejected.", "persons", "count",
              "applications_decided", _SCHEME_ALL, fixed={"detail": "rejected"}),
    Indicator("rejection_reasons", "Rejections by reason", "Rejected applications by the scheme's reason code.", "persons",
              "count", "rejection_reasons", (*_SCHEME_ALL, "reason")),
    Indicator("approval_rate", "Approval rate", "Approved / (approved + rejected) among decisions made in the period "
              "(withdrawals left out).", "ratio", "ratio", "applications_decided", _SCHEME_ALL, numerator=("approved",),
              denominator=("approved", "rejected")),
    Indicator("median_days_to_decision", "Median days to decision", "Median of the days from submission to an approval "
              "or rejection, over the decisions made in the period (times over 365 days count as 365).", "days", "median",
              "decision_days", _SCHEME_ALL),
    Indicator("decisions_within_service_level", "Decisions within the service level",
              "Share of approvals and rejections made within the scheme's service level.", "ratio", "ratio",
              "decisions_in_service_level", _SCHEME_ALL, numerator=("yes",), denominator=("yes", "no")),
    Indicator("beneficiaries", "Beneficiaries", "Unique persons (or households, for household schemes) with an application "
              "approved in the period, per scheme: a person approved by two schemes counts once in each.", "persons",
              "unique", "beneficiaries", _SCHEME_ALL),
    Indicator("women_share_of_beneficiaries", "Women's share of beneficiaries", "Female beneficiaries / beneficiaries "
              "whose sex is recorded (see beneficiaries).", "ratio", "ratio", "beneficiaries",
              (*GEO, "scheme", "age_band", "disability", *HOUSEHOLD), numerator=(Sex.female.value,),
              denominator=tuple(s.value for s in Sex), split="sex"),
    Indicator("referrals_issued", "Referrals issued", "Referrals to another agency or service.", "persons", "count",
              "referrals_issued", (*_ALL, "agency")),
    Indicator("referrals_completed", "Referrals completed", "Referrals the receiving agency completed.", "persons",
              "count", "referrals_completed", (*_ALL, "agency")),
    Indicator("referrals_overdue", "Referrals overdue", "Referrals open at the end of the period (or today, for the "
              "current one) whose due date had passed: no completion, decline or expiry by then.", "persons", "overdue",
              "referral", (*_ALL, "agency")),
    Indicator("grievances_opened", "Grievances received", "Grievances and appeals received, by category.", "persons",
              "count", "grievances_opened", (*_SCHEME_ALL, "category")),
    Indicator("grievances_by_channel", "Grievances by channel", "Grievances received, by the channel they came "
              "through.", "persons", "count", "grievances_by_channel", (*_SCHEME_ALL, "channel")),
    Indicator("grievances_resolved", "Grievances resolved", "Grievances resolved, by category (an appeal's by the "
              "scheme it contests).", "persons", "count", "grievances_resolved", (*_SCHEME_ALL, "category")),
    Indicator("grievances_escalated", "Grievances escalated", "Grievances escalated to a higher level, by category.",
              "persons", "count", "grievances_escalated", (*_SCHEME_ALL, "category")),
    Indicator("grievances_overdue", "Grievances overdue", "Grievances open at the end of the period (or today, for the "
              "current one) past their service-level due date: not resolved or rejected by then.", "persons", "overdue",
              "grievance", (*_SCHEME_ALL, "category")),
    Indicator("appeals_lodged", "Appeals lodged", "Appeals received (grievances of category appeal), by the scheme "
              "whose decision they contest.", "persons", "count", "grievances_opened", _SCHEME_ALL,
              fixed={"detail": GrievanceCategory.appeal.value}),
    Indicator("appeals_upheld", "Appeals upheld", "Appeals resolved in the appellant's favour, by the scheme whose "
              "decision they contest (a resolution event that does not name it counts under no scheme).", "persons",
              "count", "appeals_decided", _SCHEME_ALL, fixed={"detail": "upheld"}),
    Indicator("appeals_upheld_rate", "Share of appeals upheld", "Appeals upheld / appeals decided (resolved with a "
              "verdict) in the period, by the scheme whose decision they contest.", "ratio", "ratio", "appeals_decided",
              _SCHEME_ALL, numerator=("upheld",), denominator=("upheld", "not_upheld")),
    Indicator("cases_opened", "Cases opened", "Case-management cases opened.", "persons", "count", "cases_opened", _ALL),
    Indicator("cases_closed", "Cases closed", "Cases closed, by outcome.", "persons", "count", "cases_closed",
              (*_ALL, "outcome")),
]}

_VALUE_SETS: dict[str, tuple[str, ...]] = {
    "sex": tuple(s.value for s in Sex),
    "age_band": AGE_BANDS,
    "area_type": ("urban", "rural"),
    "disability": ("true", "false"),
    "female_headed": ("true", "false"),
    "idpoor_level": ("1", "2"),
    "category": tuple(c.value for c in GrievanceCategory),
    "channel": tuple(c.value for c in GrievanceChannel),
    "outcome": (*(o.value for o in Outcome),),
    "decision": ("approved", "rejected", "withdrawn"),
}
_PATTERNS = {"province": 2, "district": 4, "commune": 6}
_UNKNOWN = {"sex": "unknown", "age_band": "unknown", "area_type": "unknown", "disability": "unknown",
            "female_headed": "unknown", "idpoor_level": "none"}
SUPPRESSION_RULE = (
    "A cell counting persons or households with a value from 1 to k-1 is returned as suppressed (value null), never "
    "as the number. Cells are decided on the table of every dimension a question names, grouped or filtered: a "
    "filter shows the same row of that table as the breakdown does. Within a period, along each dimension, a line "
    "of cells (the others held fixed) that has exactly one suppressed cell gets a second one (its smallest other "
    "non-zero cell), until no line has a lone suppressed cell, so that the line's total (another query) minus the "
    "visible cells does not give a suppressed cell away. Counts by quarter are the sums of the months, suppressed "
    "when a month is; a day is suppressed when its month is, the days of a month form a line, and a week is the sum "
    "of its days, suppressed when a day is. A ratio or median is suppressed when a count it is computed from is "
    "below k. Zero cells are not returned."
)


def filter_value(name: str, raw: str) -> str:
    """A filter's value as stored in the rollups, or InvalidInput."""
    pointer = f"#/query/{name}"
    if name in _UNKNOWN and raw == _UNKNOWN[name]:
        return ""
    if name in _VALUE_SETS:
        if raw not in _VALUE_SETS[name]:
            allowed = ", ".join((*_VALUE_SETS[name], *([_UNKNOWN[name]] if name in _UNKNOWN else [])))
            raise InvalidInput(f"{name} must be one of {allowed}.", field=pointer)
        return raw
    if name in _PATTERNS:
        if not (raw.isdigit() and len(raw) == _PATTERNS[name]):
            raise InvalidInput(f"{name} is a {_PATTERNS[name]}-digit location code.", field=pointer)
        return raw
    if not raw or len(raw) > 40 or not all(c.isalnum() or c in "_.-" for c in raw):
        raise InvalidInput(f"{name} must be a code of letters, digits, '_', '.' or '-' (at most 40).", field=pointer)
    return raw


def output_value(name: str, stored: str) -> Any:
    if stored == "":
        return None
    if name in ("disability", "female_headed"):
        return stored == "true"
    if name == "idpoor_level":
        return int(stored)
    return stored


def _bucket(column, period: str, grain: str, dialect: str):
    """The start of the period a stored period_start falls in, in SQL."""
    if period == grain:
        return column
    if dialect == "postgresql":
        return func.date_trunc(period, column).cast(Date)
    if period == "week":  # SQLite: back to Monday (%w is 0 on Sunday)
        shift = func.printf("-%d days", (func.cast(func.strftime("%w", column), Integer) + 6) % 7)
        return type_coerce(func.date(column, shift), Date)
    if period == "month":
        return type_coerce(func.date(column, "start of month"), Date)
    shift = func.printf("-%d months", (func.cast(func.strftime("%m", column), Integer) - 1) % 3)
    return type_coerce(func.date(column, "start of month", shift), Date)


def choose_cuboid(indicator: Indicator, period: str, columns: set[str]) -> tuple[str, str]:
    grains = UNIQUE_GRAINS if indicator.kind == "unique" else ADDITIVE_GRAINS
    for cuboid, dimensions in CUBOIDS.items():  # smallest first
        if not columns <= set(dimensions):
            continue
        for grain in grains[cuboid]:
            if indicator.kind == "unique" and grain != period:
                continue
            if period in GRAIN_SERVES[grain]:
                return cuboid, grain
    raise AssertionError(f"no cuboid for {indicator.name} by {period} over {columns}")  # F holds everything


@dataclass
class Answer:
    indicator: Indicator
    period: str
    start: date
    end: date
    group_by: list[str]
    filters: dict[str, str]
    k: int
    cells: list[Cell]

    @property
    def suppressed(self) -> int:
        return sum(1 for c in self.cells if c.suppressed)

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for cell in self.cells:
            row: dict[str, Any] = {"period": period_label(cell.start, self.period), "period_start": cell.start}
            for name, stored in zip(self.group_by, cell.key, strict=True):
                row[name] = output_value(name, stored)
            row["value"] = None if cell.suppressed else cell.value
            row["suppressed"] = cell.suppressed
            out.append(row)
        return out


async def indicator_values(session: AsyncSession, *, name: str, date_from: date, date_to: date, period: str,
                           group_by: list[str], filters: dict[str, str], k: int, today: date | None = None) -> Answer:
    indicator = CATALOG.get(name)
    if indicator is None:
        raise InvalidInput(f"Unknown indicator {name}; see /api/v1/monitoring/indicators/catalog.", field="#/query/indicator")
    if date_from > date_to:
        raise InvalidInput("from must not be after to.", field="#/query/from")
    for position, dim in enumerate(group_by):
        if dim not in indicator.breakdowns:
            raise InvalidInput(f"{name} cannot be broken down by {dim}; allowed: {', '.join(indicator.breakdowns)}.",
                               field=f"#/query/group_by/{position}")
    if len(set(group_by)) != len(group_by):
        raise InvalidInput("group_by names a dimension twice.", field="#/query/group_by")
    for dim in filters:
        if dim not in indicator.breakdowns:
            raise InvalidInput(f"{name} cannot be filtered by {dim}; allowed: {', '.join(indicator.breakdowns)}.",
                               field=f"#/query/{dim}")
    for d, v in filters.items():
        filter_value(d, v)  # a bad value is refused before any query
    start, end = period_start(date_from, period), period_end(date_to, period)
    if (end - start).days > 3700 or (period == "day" and (end - start).days > 400):
        raise InvalidInput("The range is too long: at most 10 years, or about a year by day.", field="#/query/to")
    today = today or clock.today()
    if dialect_name(session) == "postgresql":
        await session.execute(text("SET LOCAL jit = off"))  # compiling a plan costs more than these small sums
    # Decided on every dimension the question names (suppression module), then the asked cells kept.
    named = [d for d in BREAKDOWNS if d in group_by or d in filters]
    table = await _decided(session, indicator, period, start, end, [COLUMN_OF.get(d, d) for d in named], k, today)
    wanted = {named.index(d): filter_value(d, v) for d, v in filters.items()}
    keep = [named.index(d) for d in group_by]
    cells = [Cell(c.start, tuple(c.key[i] for i in keep), c.value, c.components, c.suppressed) for c in table
             if start <= c.start <= end and all(c.key[i] == v for i, v in wanted.items())]
    return Answer(indicator, period, start, end, group_by, filters, k, cells)


async def _decided(session: AsyncSession, indicator: Indicator, period: str, start: date, end: date, columns: list[str],
                   k: int, today: date) -> list[Cell]:
    """The cells of a table over `columns`, each marked hidden or shown; additive counts by every period
    derived from the month's table (suppression module). May cover more periods than asked."""
    if indicator.kind == "count":
        if period == "quarter":
            return coarsen(await _decided(session, indicator, "month", start, end, columns, k, today), "quarter")
        if period == "week":
            return coarsen(await _decided(session, indicator, "day", start, end, columns, k, today), "week")
        if period == "day":
            # Whole weeks (for their sums) and whole months (each a line of days, and the table deciding them).
            start = min(period_start(start, "week"), period_start(start, "month"))
            end = max(period_end(end, "week"), period_end(end, "month"))
            months = await _decided(session, indicator, "month", start, end, columns, k, today)
            hidden_months = {(c.start, c.key) for c in months if c.suppressed}
            cells = await _from_rollups(session, indicator, "day", start, end, columns)
            protect(cells, k, within=("month",),
                    hidden_already=lambda c: (period_start(c.start, "month"), c.key) in hidden_months)
            return cells
    if indicator.kind == "overdue":
        cells = await _overdue(session, indicator, period, start, end, columns, today)
    else:
        cells = await _from_rollups(session, indicator, period, start, end, columns)
    if indicator.counts_persons:
        protect(cells, k)
    else:
        hide_small_components(cells, k)
    return cells


async def _sums(session: AsyncSession, indicator: Indicator, period: str, start: date, end: date, columns: list[str],
                extra: str | None = None) -> list[tuple]:
    # No filter here: a question's filters are kept after suppression, which sees their whole table.
    wanted = set(columns) | set(indicator.fixed) | ({extra} if extra else set())
    cuboid, grain = choose_cuboid(indicator, period, wanted)
    table = ROLLUP_TABLES[cuboid]
    bucket = _bucket(table.c.period_start, period, grain, dialect_name(session)).label("bucket")
    selected = [bucket, *(table.c[c] for c in columns), *([table.c[extra]] if extra else [])]
    conditions = [table.c.metric == indicator.metric, table.c.grain == grain,
                  table.c.period_start >= start, table.c.period_start <= end]
    conditions += [table.c[c] == v for c, v in indicator.fixed.items()]
    query = select(*selected, func.sum(table.c.value)).where(*conditions).group_by(*selected)
    return [tuple(row) for row in await session.execute(query)]


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) and not isinstance(value, datetime) else (
        value.date() if isinstance(value, datetime) else date.fromisoformat(str(value)))


async def _from_rollups(session: AsyncSession, indicator: Indicator, period: str, start: date, end: date,
                        columns: list[str]) -> list[Cell]:
    extra = indicator.split if indicator.kind == "ratio" else "detail" if indicator.kind == "median" else None
    return cells_from_sums(indicator, await _sums(session, indicator, period, start, end, columns, extra=extra))


def cells_from_sums(indicator: Indicator, rows: list[tuple]) -> list[Cell]:
    """An indicator's cells from summed counters: rows of (period start, *key, value) for counts, with the
    split column's value before the sum for ratios and the days for medians (_sums; the office report)."""
    if indicator.kind in ("count", "unique"):
        cells = [Cell(_as_date(r[0]), tuple(r[1:-1]), int(r[-1])) for r in rows if r[-1]]
    elif indicator.kind == "ratio":
        parts: dict[tuple, Counter] = {}
        for r in rows:
            parts.setdefault((_as_date(r[0]), tuple(r[1:-2])), Counter())[r[-2]] += int(r[-1])
        cells = []
        for (bucket, key), counts in parts.items():
            above = sum(counts[v] for v in indicator.numerator)
            total = sum(counts[v] for v in indicator.denominator)
            if total:
                cells.append(Cell(bucket, key, round(above / total, 4), components=(above, total - above)))
    else:  # median of a histogram of whole days
        histograms: dict[tuple, Counter] = {}
        for r in rows:
            histograms.setdefault((_as_date(r[0]), tuple(r[1:-2])), Counter())[int(r[-2])] += int(r[-1])
        cells = [Cell(bucket, key, _median(h), components=(sum(h.values()),)) for (bucket, key), h in histograms.items()]
    cells.sort(key=lambda c: (c.start, c.key))
    return cells


def _median(histogram: Counter) -> float:
    n = sum(histogram.values())
    ordered = sorted(histogram.items())

    def nth(i: int) -> int:  # the i-th smallest value, 0-based
        seen = 0
        for value, count in ordered:
            seen += count
            if i < seen:
                return value
        raise IndexError(i)

    middle = nth(n // 2) if n % 2 else (nth(n // 2 - 1) + nth(n // 2)) / 2
    return float(middle)


def _periods(start: date, end: date, period: str) -> list[date]:
    starts, current = [], start
    while current <= end:
        starts.append(current)
        current = period_end(current, period) + timedelta(days=1)
    return starts


async def _overdue(session: AsyncSession, indicator: Indicator, period: str, start: date, end: date, columns: list[str],
                   today: date) -> list[Cell]:
    table = MonitoringOpenItem.__table__
    cells = []
    for bucket in _periods(start, end, period):
        if bucket > today:
            break
        as_of = min(period_end(bucket, period), today)
        selected = [table.c[c] for c in columns]
        conditions = [table.c.kind == indicator.metric, table.c.due_on < as_of, table.c.opened_on <= as_of,
                      or_(table.c.closed_on.is_(None), table.c.closed_on > as_of)]
        conditions += [table.c[c] == v for c, v in indicator.fixed.items()]
        query = select(*selected, func.count()).where(*conditions)
        if selected:
            query = query.group_by(*selected)
        for row in await session.execute(query):
            if row[-1]:
                cells.append(Cell(bucket, tuple(row[:-1]), int(row[-1])))
    cells.sort(key=lambda c: (c.start, c.key))
    return cells


def catalog() -> list[Indicator]:
    return list(CATALOG.values())
