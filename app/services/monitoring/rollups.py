"""Central monitoring's rollups: the dimensions an event is counted under, the cuboids (one table each)
and the grains they are kept at, what each event counts, and the counted rows summed into the tables
(docs/monitoring.md).

- rollups: additive counters per metric, period and dimension values, one table per cuboid: F
  (`monitoring_rollup`, every dimension, by day; a log of increments that readers sum) and, by month,
  S (province by sex), P (province by sex, age band and disability), H (province by area, IDPoor
  level and female-headed) and O (office and district by sex). A query reads the smallest cuboid
  that holds its dimensions. Each event is reduced to counted rows (Counts), which PostgreSQL sums
  into every table in one statement and Python sums elsewhere (Increments).
- unique counts: a subject (person, household, beneficiary) is counted in a period at the first day
  it is seen in it (`first_seen`, `count_subject`); ingest keeps the days in `monitoring_subject`.
- open items: referrals and grievances with their due and closing dates (`open_item_change`), for
  "overdue as of a date"."""

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from app import clock
from app.events import EventPayload
from app.models import (
    MonitoringRollup,
    MonitoringRollupHousehold,
    MonitoringRollupOffice,
    MonitoringRollupProvince,
    MonitoringRollupSex,
)
from app.vocabulary import EventTrigger

# ---- dimensions and cuboids ---------------------------------------------------------------------------

# Every dimension an event can be counted under, in the column order of the full rollup table.
DIMENSIONS = ("office_code", "province", "district", "commune", "area_type", "scheme", "sex", "age_band", "disability",
              "idpoor_level", "female_headed", "detail")
_PERSONAL = frozenset({"sex", "age_band", "disability"})
_HOUSEHOLD = frozenset({"idpoor_level", "female_headed"})

# Cuboid -> the dimensions its table keeps, in column order; smallest first (a query reads the first
# that holds its dimensions).
CUBOIDS: dict[str, tuple[str, ...]] = {
    "S": ("province", "scheme", "detail", "sex"),
    "P": ("province", "scheme", "detail", "sex", "age_band", "disability"),
    "H": ("province", "scheme", "detail", "area_type", "idpoor_level", "female_headed"),
    "O": ("office_code", "province", "district", "scheme", "detail", "sex"),
    "F": DIMENSIONS,
}
# F, as large as the events it counts, is a log of increments (no key to upsert against); the small
# cuboids are dense tables of counters.
APPEND_ONLY = frozenset({"F"})
ROLLUP_TABLES = {"S": MonitoringRollupSex.__table__, "P": MonitoringRollupProvince.__table__,
                 "H": MonitoringRollupHousehold.__table__, "O": MonitoringRollupOffice.__table__,
                 "F": MonitoringRollup.__table__}
# Grains each cuboid is kept at: additive counters are summed into longer periods at query time;
# unique counts are kept at every grain they are asked for, since they cannot be summed.
ADDITIVE_GRAINS = {"S": ("month",), "P": ("month",), "H": ("month",), "O": ("month",), "F": ("day",)}
UNIQUE_GRAINS = {"S": ("month", "quarter"), "P": ("month", "quarter"), "H": ("month", "quarter"),
                 "O": ("month", "quarter"), "F": ("day", "week", "month", "quarter")}
PERIODS = ("day", "week", "month", "quarter")
GRAIN_SERVES = {"day": PERIODS, "week": ("week",), "month": ("month", "quarter"), "quarter": ("quarter",)}

# Unique sets: which dimensions a subject is counted under.
SUBJECT_KINDS = {
    "person": ("clients_served", frozenset(DIMENSIONS) - {"scheme", "detail"}),
    "household": ("households_reached", frozenset(DIMENSIONS) - {"scheme", "detail"} - _PERSONAL),
    "beneficiary": ("beneficiaries", frozenset(DIMENSIONS) - {"detail"}),
}

DAYS_CAP = 365  # decision times are kept exactly up to a year; longer ones count as 365 for the median

@lru_cache(maxsize=16384)
def period_start(day: date, grain: str) -> date:
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    if grain == "month":
        return day.replace(day=1)
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def period_end(day: date, grain: str) -> date:
    start = period_start(day, grain)
    if grain == "day":
        return start
    if grain == "week":
        return start + timedelta(days=6)
    months = 1 if grain == "month" else 3
    year, month = divmod(start.month - 1 + months, 12)
    return date(start.year + year, month + 1, 1) - timedelta(days=1)


def period_label(start: date, grain: str) -> str:
    if grain == "day":
        return start.isoformat()
    if grain == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if grain == "month":
        return f"{start.year}-{start.month:02d}"
    return f"{start.year}-Q{(start.month - 1) // 3 + 1}"


def local_day(moment: datetime) -> date:
    """Events are bucketed by the offices' calendar day, not UTC's."""
    return moment.astimezone(clock.timezone()).date()


def _flag(value: bool | None) -> str:
    return "" if value is None else ("true" if value else "false")


# ---- what each event counts ----------------------------------------------------------------------------


@dataclass(slots=True)
class Fact:
    """One accepted event, reduced to what the rollups need: its local day and its dimension values
    in DIMENSIONS order (detail left '')."""

    type: str
    day: date
    dims: tuple[str, ...]
    payload: EventPayload


@lru_cache(maxsize=64)
def _scheme_field(model: type[EventPayload]) -> str | None:
    # Looked up per model, not with getattr(payload, ...): a missing attribute on a pydantic model is slow.
    return next((f for f in ("scheme", "appeal_scheme") if f in model.model_fields), None)


def event_dimensions(office_code: str, payload: EventPayload) -> tuple[str, ...]:
    d = payload.dimensions
    field = _scheme_field(type(payload))
    scheme = (getattr(payload, field) or "") if field else ""
    return (office_code, d.province, d.district or "", d.commune or "", d.area_type.value if d.area_type else "", scheme,
            d.sex.value if d.sex else "", d.age_band or "", _flag(d.disability),
            str(d.idpoor_level) if d.idpoor_level else "", _flag(d.female_headed), "")


def counted(event_type: str, p: Any) -> list[tuple[str, str]]:
    """The additive metrics an event increments, each with its detail (category, agency, outcome...)."""
    match event_type:
        case "household.registered":
            return [("households_registered", "")]
        case "household.updated":
            return [("households_updated", "")]
        case "person.registered":
            return [("persons_registered", "")]
        case "person.updated":
            return [("persons_updated", "")]
        case "consent.changed":
            return [("consent_changes", "")]
        # Screenings count as service only at the window; a re-screen (no client came) has its own counters.
        case "screening.completed":
            return [("screenings" if p.trigger is EventTrigger.window else "rescreens", "")]
        case "screening.determination":
            return [("determinations" if p.trigger is EventTrigger.window else "rescreen_determinations", p.outcome.value)]
        case "case.opened":
            return [("cases_opened", "")]
        case "case.closed":
            return [("cases_closed", p.outcome)]
        case "application.submitted":
            return [("applications_submitted", "against_screening" if p.against_screening else "")]
        case "application.decided":
            decision = p.decision.value
            metrics = [("applications_decided", decision)]
            if decision in ("approved", "rejected"):
                metrics.append(("decision_days", str(min(p.days_to_decision, DAYS_CAP))))
                metrics.append(("decisions_in_service_level", "yes" if p.within_service_level else "no"))
            if decision == "rejected" and p.reason_code:
                metrics.append(("rejection_reasons", p.reason_code))
            return metrics
        case "referral.issued":
            return [("referrals_issued", p.agency)]
        case "referral.status_changed":
            return [(f"referrals_{p.status.value}", p.agency)]
        case "follow_up.completed":
            return [("follow_ups_completed", "overdue" if p.overdue else "on_time")]
        case "grievance.opened":
            return [("grievances_opened", p.category.value), ("grievances_by_channel", p.channel.value)]
        case "grievance.status_changed":
            metrics = [(f"grievances_{p.status.value}", p.category.value)]
            if p.status == "resolved" and p.upheld is not None:
                metrics.append(("appeals_decided", "upheld" if p.upheld else "not_upheld"))
            return metrics
    return []


def subjects(fact: Fact) -> list[tuple[str, str]]:
    """(kind, subject) pairs an event shows as served: its person and its household when a client was
    served at the window (not by a re-screen, a partner or the office's housekeeping), a new beneficiary
    whoever decided."""
    p = fact.payload
    found = []
    if p.trigger is EventTrigger.window:
        if p.person:
            found.append(("person", p.person))
        if p.household:
            found.append(("household", p.household))
    if fact.type == "application.decided" and p.decision == "approved" and (p.person or p.household):
        found.append(("beneficiary", f"{p.scheme}:{p.person or p.household}"))
    return found


# (kind, status) -> closes the item
_CLOSING = {"referral": {"completed", "declined", "expired"}, "grievance": {"resolved", "rejected"}}


def open_item_change(fact: Fact) -> tuple[str, str, dict[str, Any]] | None:
    p = fact.payload
    match fact.type:
        case "referral.issued":
            return "referral", p.referral, {"opened_on": fact.day, "due_on": p.due_date, "detail": p.agency}
        case "grievance.opened":
            return "grievance", p.grievance, {"opened_on": fact.day, "due_on": p.sla_due_date, "detail": p.category.value}
        case "referral.status_changed" if p.status in _CLOSING["referral"]:
            return "referral", p.referral, {"closed_on": fact.day, "detail": p.agency}
        case "grievance.status_changed" if p.status in _CLOSING["grievance"]:
            return "grievance", p.grievance, {"closed_on": fact.day, "detail": p.category.value}
    return None


def merge_open_item(target: dict[str, Any], values: dict[str, Any], dims: dict[str, Any]) -> None:
    """Whichever order the opening and the closing arrive in: the opening gives the dimensions and the
    due date, the earliest closing closes."""
    if values.get("opened_on") is not None or not target:
        target.update({d: dims.get(d, "") for d in DIMENSIONS})
        target["detail"] = values.get("detail", dims.get("detail", ""))
    if values.get("opened_on") is not None:
        target["opened_on"], target["due_on"] = values["opened_on"], values.get("due_on")
    closed = values.get("closed_on")
    if closed is not None and (target.get("closed_on") is None or closed < target["closed_on"]):
        target["closed_on"] = closed


# Every (cuboid, grain) that a rollup table is kept at has a bit; a counted row's mask names those it
# counts in. Additive metrics count in each cuboid's ADDITIVE_GRAINS; a subject seen for the first
# time in some periods counts in the UNIQUE_GRAINS among them.
GRAIN_BITS: dict[tuple[str, str], int] = {
    pair: 1 << i for i, pair in enumerate(
        (cuboid, grain) for cuboid in CUBOIDS for grain in PERIODS
        if grain in ADDITIVE_GRAINS[cuboid] or grain in UNIQUE_GRAINS[cuboid])}
ADDITIVE_MASK = sum(GRAIN_BITS[(cuboid, grain)] for cuboid, grains in ADDITIVE_GRAINS.items() for grain in grains)


@lru_cache(maxsize=16)
def unique_mask(grains: tuple[str, ...]) -> int:
    return sum(GRAIN_BITS[(cuboid, grain)] for cuboid, kept in UNIQUE_GRAINS.items() for grain in kept if grain in grains)


@lru_cache(maxsize=8)
def _kept(keep: frozenset[str]) -> tuple[bool, ...]:
    return tuple(d in keep for d in DIMENSIONS)


class Counts:
    """What a batch adds to the rollups, one row per thing counted and nothing summed yet:
    (metric, local day, mask of GRAIN_BITS, dimension values in DIMENSIONS order, the detail included
    and '' where the thing is not counted under a dimension). PostgreSQL sums the rows into every table
    in one statement (Store.add_to_rollups); elsewhere Increments sums them in Python."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, date, int, tuple[str, ...]]] = []

    def add_fact(self, fact: Fact) -> None:
        for metric, detail in counted(fact.type, fact.payload):
            self.rows.append((metric, fact.day, ADDITIVE_MASK, (*fact.dims[:-1], detail) if detail else fact.dims))

    def add_subject(self, metric: str, fact: Fact, grains: Sequence[str], keep: frozenset[str]) -> None:
        dims = tuple([value if kept else "" for value, kept in zip(fact.dims, _kept(keep))])
        self.rows.append((metric, fact.day, unique_mask(tuple(grains)), dims))


@lru_cache(maxsize=256)
def _targets(mask: int) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
    """(cuboid, grain, where the cuboid's columns are in DIMENSIONS) for each bit of a mask."""
    return tuple((cuboid, grain, tuple(DIMENSIONS.index(d) for d in CUBOIDS[cuboid]))
                 for (cuboid, grain), bit in GRAIN_BITS.items() if mask & bit)


class Increments:
    """Counted rows summed by table key in Python (SQLite, and bench/indicators.py). A key is (cuboid,
    metric, grain, period_start, the cuboid's dimension values...)."""

    def __init__(self) -> None:
        self.counts: Counter[tuple] = Counter()

    def add_rows(self, rows: Iterable[tuple[str, date, int, tuple[str, ...]]]) -> None:
        counts = self.counts
        for metric, day, mask, dims in rows:
            for cuboid, grain, picks in _targets(mask):
                counts[(cuboid, metric, grain, period_start(day, grain), *[dims[i] for i in picks])] += 1

    def by_cuboid(self) -> dict[str, list[tuple]]:
        """Each table's keys (without the cuboid), sorted so that concurrent batches lock shared rows in
        the same order (no deadlock)."""
        out: dict[str, list[tuple]] = {}
        for key in sorted(self.counts):
            out.setdefault(key[0], []).append(key)
        return out


def rollup_columns(cuboid: str) -> tuple[str, ...]:
    return ("metric", "grain", "period_start", *CUBOIDS[cuboid])


def _rollup_statement() -> str:
    """PostgreSQL: the counted rows (one JSON array) summed into every rollup table in one statement.
    The small tables' rows are upserted in key order, and the tables always in the same order, so that
    concurrent batches lock shared rows in the same order (no deadlock); F only appends."""
    columns = ", ".join(f"r->>{i + 3} AS {d}" for i, d in enumerate(DIMENSIONS))
    parts = [f"counted AS MATERIALIZED (SELECT r->>0 AS metric, (r->>1)::date AS day, (r->>2)::int AS mask, {columns} "
             "FROM jsonb_array_elements($1::jsonb) AS r)"]
    for cuboid, dims in CUBOIDS.items():
        table = ROLLUP_TABLES[cuboid].name
        grains = ", ".join(f"('{grain}', {bit})" for (c, grain), bit in GRAIN_BITS.items() if c == cuboid)
        key, names = ", ".join(rollup_columns(cuboid)), ", ".join(dims)
        upsert = (f"ORDER BY 1, 2, 3, {names} ON CONFLICT ({key}) DO UPDATE SET value = {table}.value + excluded.value"
                  if cuboid not in APPEND_ONLY else "")
        parts.append(
            f"rollup_{cuboid.lower()} AS (INSERT INTO {table} ({key}, value) "
            f"SELECT c.metric, g.grain, CASE g.grain WHEN 'day' THEN c.day ELSE date_trunc(g.grain, c.day::timestamp)::date END, "
            f"{names}, count(*) FROM counted AS c JOIN (VALUES {grains}) AS g(grain, bit) ON c.mask & g.bit <> 0 "
            f"GROUP BY 1, 2, 3, {names} {upsert})")
    return "WITH " + ", ".join(parts) + " SELECT 1"


ROLLUP_STATEMENT = _rollup_statement()


def first_seen(days: set[int], day: date) -> list[str]:
    """The grains in which `day` is the first day seen (days: ordinals already seen)."""
    if not days:
        return list(PERIODS)
    ordinal = day.toordinal()
    if ordinal in days:
        return []
    grains = ["day"]
    for grain in ("week", "month", "quarter"):
        start, end = period_start(day, grain).toordinal(), period_end(day, grain).toordinal()
        if not any(start <= d <= end for d in days):
            grains.append(grain)
    return grains


def count_subject(days: set[int], kind: str, fact: Fact, counts: Counts) -> bool:
    """Count a subject in every period of which this is its first day seen; False if the day was seen."""
    grains = first_seen(days, fact.day)
    if not grains:
        return False
    days.add(fact.day.toordinal())
    metric, keep = SUBJECT_KINDS[kind]
    counts.add_subject(metric, fact, grains, keep)
    return True

