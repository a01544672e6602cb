"""Central monitoring: ingest of the offices' activity events, the rollups kept up to date in the same
transaction as the event rows, and the indicators that dashboards read from the rollups only.

Three kinds of state, all written by `ingest` (docs/monitoring.md):
- rollups: additive counters per metric, period and dimension values, one table per cuboid: F
  (`monitoring_rollup`, every dimension, by day; a log of increments that readers sum) and, by month,
  S (province by sex), P (province by sex, age band and disability), H (province by area, IDPoor
  level and female-headed) and O (office and district by sex). A query reads the smallest cuboid
  that holds its dimensions. Each event is reduced to counted rows (Counts), which PostgreSQL sums
  into every table in one statement and Python sums elsewhere (Increments).
- `monitoring_subject`: the days a person, household or beneficiary was seen. A unique count per
  day, week, month or quarter is a counter incremented when a subject is first seen in that period.
- `monitoring_open_item`: referrals and grievances with their due and closing dates, for "overdue
  as of a date" (due date passed, no closing event yet)."""

import re
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import Date, Integer, and_, case, func, or_, select, text, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from app import clock
from app.bulk import to_json
from app.db import advisory_key
from app.deps import Principal
from app.errors import InvalidInput
from app.events import EVENT_TYPES, ActivityEventEnvelope, EventPayload
from app.models import (
    MonitoringEvent,
    MonitoringOfficeSync,
    MonitoringOpenItem,
    MonitoringRollup,
    MonitoringRollupHousehold,
    MonitoringRollupOffice,
    MonitoringRollupProvince,
    MonitoringRollupSex,
    MonitoringSubject,
    Office,
)
from app.models.base import utcnow
from app.schemas.monitoring import IngestResult, RejectedEvent
from app.upsert import dialect_insert, dialect_name
from app.vocabulary import AGE_BANDS, EventTrigger, GrievanceCategory, GrievanceChannel, Outcome, Sex

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
_GRAIN_SERVES = {"day": PERIODS, "week": ("week",), "month": ("month", "quarter"), "quarter": ("quarter",)}

# Unique sets: which dimensions a subject is counted under.
SUBJECT_KINDS = {
    "person": ("clients_served", frozenset(DIMENSIONS) - {"scheme", "detail"}),
    "household": ("households_reached", frozenset(DIMENSIONS) - {"scheme", "detail"} - _PERSONAL),
    "beneficiary": ("beneficiaries", frozenset(DIMENSIONS) - {"detail"}),
}

DAYS_CAP = 365  # decision times are kept exactly up to a year; longer ones count as 365 for the median
FUTURE_TOLERANCE = timedelta(days=1)  # an office clock a little ahead is tolerated, a date in the future is not
PERSONAL_FIELDS = frozenset({
    "name", "given_name", "family_name", "full_name", "national_id", "phone", "phone_number", "email", "birth_date",
    "date_of_birth", "birth_year", "address", "card_number", "equity_card", "idpoor_card_number", "latitude",
    "longitude", "gps", "given_by", "note", "notes", "comment", "description", "monthly_income", "income",
})


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


_ROLLUP_STATEMENT = _rollup_statement()


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


# ---- ingest --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Accepted:
    id: str  # canonical (lower-case hex, dashes at 8-4-4-4-12): compares and sorts as the UUID does
    type: str
    schema_version: int
    occurred_at: datetime
    office_code: str
    payload: EventPayload
    raw_payload: dict


def _personal_field(value: Any, path: str = "payload") -> str | None:
    if isinstance(value, dict):
        for key, inner in value.items():
            if isinstance(key, str) and key.lower() in PERSONAL_FIELDS:
                return f"{path}.{key}"
            found = _personal_field(inner, f"{path}.{key}")
            if found:
                return found
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            found = _personal_field(inner, f"{path}[{i}]")
            if found:
                return found
    return None


def _describe(exc: ValidationError, prefix: str) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in (prefix, *error["loc"]) if p != "")
        parts.append(f"{where}: {error['msg']}")
    more = len(exc.errors()) - 3
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _refused(raw: dict, exc: ValidationError, prefix: str) -> str:
    # Every model refuses unknown fields; name a personal one as what it is.
    found = _personal_field(raw.get("payload")) if isinstance(raw.get("payload"), dict) else None
    if found:
        return f"{found} is personal data; events carry pseudonymised dimensions only (the event was refused, not stored)"
    return _describe(exc, prefix)


_ENVELOPE_FIELDS = frozenset(ActivityEventEnvelope.model_fields)
_CANONICAL_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CANONICAL_INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})")


def _plain_envelope(raw: dict) -> tuple[str, str, int, datetime, str, dict] | None:
    """(id, type, schema_version, occurred_at, office_code, payload) of an envelope in the form relays
    send (exactly its fields, each of its plain JSON type, a canonical id, an RFC 3339 instant): what
    ActivityEventEnvelope gives for it, without the cost of building the model (a third of an event's
    validation). None for anything else, which the model then judges."""
    if raw.keys() != _ENVELOPE_FIELDS:
        return None
    event_id, event_type, version, at, office, payload = (raw["id"], raw["type"], raw["schema_version"], raw["occurred_at"],
                                                          raw["office_code"], raw["payload"])
    if not (type(event_id) is str and _CANONICAL_ID.fullmatch(event_id) and type(event_type) is str and len(event_type) <= 60
            and type(version) is int and 1 <= version <= 100 and type(office) is str and len(office) <= 20
            and type(payload) is dict and type(at) is str and _CANONICAL_INSTANT.fullmatch(at)):
        return None
    try:
        occurred_at = datetime.fromisoformat(at)
    except ValueError:  # a 25th hour, a 30 February...: the model says what is wrong
        return None
    return event_id, event_type, version, occurred_at, office, payload


def check_event(raw: Any, office_code: str | None, now: datetime) -> _Accepted | str:
    """The event, validated against its versioned schema, or the reason it is refused."""
    if not isinstance(raw, dict):
        return "an event must be a JSON object"
    plain = _plain_envelope(raw)
    if plain is None:
        try:
            envelope = ActivityEventEnvelope.model_validate(raw)
        except ValidationError as exc:
            return _refused(raw, exc, "")
        plain = (envelope.id, envelope.type, envelope.schema_version, envelope.occurred_at, envelope.office_code,
                 envelope.payload)
    raw_id, event_type, version, occurred_at, office, raw_payload = plain
    model = EVENT_TYPES.get((event_type, version))
    if model is None:
        return f"unknown event type or schema version: {event_type} v{version}"
    if office != office_code:
        return f"office_code {office} is not this relay's office ({office_code})"
    if occurred_at.tzinfo is None:
        return "occurred_at must carry a time zone offset"
    if occurred_at > now + FUTURE_TOLERANCE:
        return "occurred_at is in the future"
    try:
        payload = model.model_validate(raw_payload)
    except ValidationError as exc:
        return _refused(raw, exc, "payload")
    if not _CANONICAL_ID.fullmatch(raw_id):  # the envelope's pattern lets dashes stand anywhere
        try:
            raw_id = str(uuid.UUID(raw_id))
        except ValueError:
            return "id is not a UUID"
    return _Accepted(raw_id, event_type, version, occurred_at.astimezone(UTC), office, payload, raw_payload)


async def ingest(session: AsyncSession, actor: Principal, events: list[Any]) -> IngestResult:
    """Store a batch of one office's events once each by id, and bring every rollup up to date, in the
    caller's transaction. A re-sent event is a duplicate and counts nothing."""
    now = utcnow()
    rejected: list[RejectedEvent] = []
    accepted: dict[str, _Accepted] = {}
    in_batch_duplicates = 0
    for index, raw in enumerate(events):
        result = check_event(raw, actor.office_code, now)
        if isinstance(result, str):
            raw_id = raw.get("id") if isinstance(raw, dict) else None
            rejected.append(RejectedEvent(id=str(raw_id)[:64] if raw_id is not None else None, index=index, problem=result))
        elif result.id in accepted:
            in_batch_duplicates += 1
        else:
            accepted[result.id] = result

    store = await Store.open(session)
    # In id order, so that two batches holding the same events (a replay beside the relay) wait for each
    # other instead of deadlocking; the one that stored an event first counts it.
    new_ids = await store.insert_events(sorted(accepted.values(), key=lambda e: e.id), now) if accepted else set()
    new = [e for e in accepted.values() if e.id in new_ids]
    facts = [Fact(e.type, local_day(e.occurred_at), event_dimensions(e.office_code, e.payload), e.payload)
             for e in sorted(new, key=lambda e: e.occurred_at)]
    # From here one office's batches are applied one at a time: its subjects and open items are its own,
    # so their read-modify-write needs no other lock (PostgreSQL; SQLite has a single writer anyway).
    await store.lock(advisory_key("monitoring", actor.office_code or ""))
    await apply(session, facts, store=store)
    duplicates = len(accepted) - len(new) + in_batch_duplicates
    await _record_sync(session, actor.office_code or "", now, new, duplicates, len(rejected))
    return IngestResult(accepted=len(new), duplicates=duplicates, rejected=rejected)


class Store:
    """The batch writes of ingest. On PostgreSQL (asyncpg) each is one statement over a JSON array or
    over arrays, in the session's transaction; elsewhere, SQLAlchemy executemany."""

    def __init__(self, session: AsyncSession, pg: Any):
        self.session, self.pg = session, pg

    @classmethod
    async def open(cls, session: AsyncSession) -> "Store":
        pg = None
        if dialect_name(session) == "postgresql" and session.bind.dialect.driver == "asyncpg":
            connection = await session.connection()
            await connection.execute(text("SELECT 1"))  # the transaction has begun on the driver's connection
            pg = (await connection.get_raw_connection()).driver_connection
        return cls(session, pg)

    async def lock(self, key: int) -> None:
        if self.pg is not None:
            await self.pg.execute("SELECT pg_advisory_xact_lock($1)", key)

    async def insert_events(self, events: list[_Accepted], now: datetime) -> set[str]:
        """The ids of the events stored now (not already there)."""
        if self.pg is not None:
            # One JSON array for the whole batch: one encoder call here, one parse there (the payloads
            # are parsed into jsonb either way).
            rows = await self.pg.fetch(
                "INSERT INTO monitoring_event (id, office_code, type, schema_version, occurred_at, received_at, payload) "
                "SELECT (e->>0)::uuid, e->>1, e->>2, (e->>3)::int, (e->>4)::timestamptz, $1, e->5 "
                "FROM jsonb_array_elements($2::jsonb) AS e ON CONFLICT (id) DO NOTHING RETURNING id",
                now, to_json([(e.id, e.office_code, e.type, e.schema_version, e.occurred_at.isoformat(), e.raw_payload)
                            for e in events]))
            return {str(r[0]) for r in rows}
        insert = dialect_insert(self.session, _EVENTS).on_conflict_do_nothing(index_elements=["id"])
        result = await self.session.execute(insert.returning(_EVENTS.c.id), [
            {"id": uuid.UUID(e.id), "office_code": e.office_code, "type": e.type, "schema_version": e.schema_version,
             "occurred_at": e.occurred_at, "received_at": now, "payload": e.raw_payload} for e in events])
        return {str(i) for i in result.scalars()}

    async def add_to_rollups(self, counts: Counts) -> None:
        if not counts.rows:
            return
        if self.pg is not None:
            await self.pg.execute(_ROLLUP_STATEMENT, to_json([(metric, day.isoformat(), mask, *dims)
                                                            for metric, day, mask, dims in counts.rows]))
            return
        increments = Increments()
        increments.add_rows(counts.rows)
        for cuboid, keys in increments.by_cuboid().items():
            columns = rollup_columns(cuboid)
            table = ROLLUP_TABLES[cuboid]
            insert = dialect_insert(self.session, table)
            if cuboid not in APPEND_ONLY:
                insert = insert.on_conflict_do_update(index_elements=list(columns), set_={"value": table.c.value + insert.excluded.value})
            await self.session.execute(insert, [dict(zip(columns, k[1:], strict=True), value=increments.counts[k])
                                                for k in keys])

    async def load_subjects(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], set[int]]:
        if self.pg is not None:
            rows = await self.pg.fetch(
                "SELECT s.kind, s.subject, s.days::text FROM monitoring_subject s "
                "JOIN unnest($1::text[], $2::text[]) AS k(kind, subject) ON s.kind = k.kind AND s.subject = k.subject",
                [k for k, _ in keys], [s for _, s in keys])
            return {(kind, subject): set(orjson.loads(days)) for kind, subject, days in rows}
        known = {}
        for chunk in _chunks(keys, 400):
            rows = await self.session.execute(select(_SUBJECTS).where(
                _SUBJECTS.c.kind.in_({k for k, _ in chunk}), _SUBJECTS.c.subject.in_([s for _, s in chunk])))
            known.update({(kind, subject): set(days) for kind, subject, days in rows})
        return known

    async def save_subjects(self, rows: list[tuple[str, str, list[int]]]) -> None:
        if self.pg is not None:
            await self.pg.execute(
                "INSERT INTO monitoring_subject (kind, subject, days) SELECT s->>0, s->>1, s->2 "
                "FROM jsonb_array_elements($1::jsonb) AS s ON CONFLICT (kind, subject) DO UPDATE SET days = excluded.days",
                to_json(rows))
            return
        upsert = dialect_insert(self.session, _SUBJECTS)
        upsert = upsert.on_conflict_do_update(index_elements=["kind", "subject"], set_={"days": upsert.excluded.days})
        await self.session.execute(upsert, [{"kind": k, "subject": s, "days": d} for k, s, d in rows])


_EVENTS = MonitoringEvent.__table__
_SUBJECTS = MonitoringSubject.__table__


async def apply(session: AsyncSession, facts: list[Fact], *, store: Store | None = None) -> None:
    """Bring rollups, unique sets and open items up to date with new facts (ingest and rebuild)."""
    if not facts:
        return
    store = store or await Store.open(session)
    counts = Counts()
    for fact in facts:
        counts.add_fact(fact)
    await _count_subjects(store, facts, counts)
    await _track_open_items(session, facts)
    await store.add_to_rollups(counts)


def count_subject(days: set[int], kind: str, fact: Fact, counts: Counts) -> bool:
    """Count a subject in every period of which this is its first day seen; False if the day was seen."""
    grains = first_seen(days, fact.day)
    if not grains:
        return False
    days.add(fact.day.toordinal())
    metric, keep = SUBJECT_KINDS[kind]
    counts.add_subject(metric, fact, grains, keep)
    return True


async def _count_subjects(store: Store, facts: list[Fact], counts: Counts) -> None:
    wanted = [(kind, subject, fact) for fact in facts for kind, subject in subjects(fact)]
    if not wanted:
        return
    known = await store.load_subjects(sorted({(kind, subject) for kind, subject, _ in wanted}))
    changed: set[tuple[str, str]] = set()
    for kind, subject, fact in wanted:
        if count_subject(known.setdefault((kind, subject), set()), kind, fact, counts):
            changed.add((kind, subject))
    if changed:
        await store.save_subjects([(kind, subject, sorted(known[(kind, subject)])) for kind, subject in sorted(changed)])


async def _track_open_items(session: AsyncSession, facts: list[Fact]) -> None:
    changes: dict[tuple[str, str], dict[str, Any]] = {}
    for fact in facts:
        change = open_item_change(fact)
        if change is None:
            continue
        kind, item, values = change
        merged = changes.setdefault((kind, item), {})
        _merge_item(merged, values, dict(zip(DIMENSIONS, fact.dims, strict=True)))
    if not changes:
        return
    rows = await session.execute(
        select(MonitoringOpenItem).where(MonitoringOpenItem.kind.in_({k for k, _ in changes}),
                                         MonitoringOpenItem.item.in_([i for _, i in changes]))
    )
    for row in rows.scalars():
        change = changes.get((row.kind, row.item))
        if change is None:
            continue
        stored = {c: getattr(row, c) for c in _ITEM_COLUMNS}
        _merge_item(stored, change, change)
        changes[(row.kind, row.item)] = stored
    values = []
    for (kind, item), change in sorted(changes.items()):
        values.append({"kind": kind, "item": item, **{c: change.get(c, "") for c in DIMENSIONS},
                       "opened_on": change.get("opened_on"), "due_on": change.get("due_on"), "closed_on": change.get("closed_on")})
    upsert = dialect_insert(session, MonitoringOpenItem.__table__)
    upsert = upsert.on_conflict_do_update(index_elements=["kind", "item"],
                                          set_={c: upsert.excluded[c] for c in _ITEM_COLUMNS})
    await session.execute(upsert, values)


_ITEM_COLUMNS = (*DIMENSIONS, "opened_on", "due_on", "closed_on")


def _merge_item(target: dict[str, Any], values: dict[str, Any], dims: dict[str, Any]) -> None:
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


async def _record_sync(session: AsyncSession, office_code: str, now: datetime, new: list[_Accepted], duplicates: int,
                       rejected: int) -> None:
    """What central last heard from the office, added to atomically (one statement)."""
    table = MonitoringOfficeSync.__table__
    newest = max((e.occurred_at for e in new), default=None)
    upsert = dialect_insert(session, table).values(
        office_code=office_code, first_sync_at=now, last_sync_at=now, last_event_at=newest, events_received=len(new),
        duplicates_received=duplicates, rejected_received=rejected,
        last_lag_seconds=max(0.0, (now - newest).total_seconds()) if newest else None)
    sent = upsert.excluded
    await session.execute(upsert.on_conflict_do_update(index_elements=["office_code"], set_={
        "last_sync_at": sent.last_sync_at,
        "events_received": table.c.events_received + sent.events_received,
        "duplicates_received": table.c.duplicates_received + sent.duplicates_received,
        "rejected_received": table.c.rejected_received + sent.rejected_received,
        "last_lag_seconds": func.coalesce(sent.last_lag_seconds, table.c.last_lag_seconds),  # kept when nothing new came
        "last_event_at": case((or_(table.c.last_event_at.is_(None), sent.last_event_at > table.c.last_event_at),
                               sent.last_event_at), else_=table.c.last_event_at),
    }))


def _chunks(items: Sequence, size: int) -> Iterable[Sequence]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


async def rebuild(session: AsyncSession, *, batch: int = 5000) -> int:
    """Recompute every rollup, unique set and open item from the stored events (after an indicator's
    definition changed). Runs in the caller's transaction; events are applied in the order they happened."""
    for table in (*ROLLUP_TABLES.values(), MonitoringSubject.__table__, MonitoringOpenItem.__table__):
        await session.execute(table.delete())
    total = 0
    last: tuple[datetime, uuid.UUID] | None = None
    while True:
        query = select(MonitoringEvent).order_by(MonitoringEvent.occurred_at, MonitoringEvent.id).limit(batch)
        if last is not None:
            query = query.where(or_(MonitoringEvent.occurred_at > last[0],
                                    and_(MonitoringEvent.occurred_at == last[0], MonitoringEvent.id > last[1])))
        events = (await session.execute(query)).scalars().all()
        if not events:
            return total
        facts = []
        for event in events:
            payload = EVENT_TYPES[(event.type, event.schema_version)].model_validate(event.payload)
            facts.append(Fact(event.type, local_day(event.occurred_at), event_dimensions(event.office_code, payload), payload))
        await apply(session, facts)
        total += len(events)
        last = (events[-1].occurred_at, events[-1].id)


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
    "as the number. Then, within each period and along each group_by dimension, a line of cells (the others held "
    "fixed) that has exactly one suppressed cell gets a second one (its smallest other non-zero cell), repeated until "
    "no line has a lone suppressed cell, so that the line's total (another query) minus the visible cells does not "
    "give a suppressed cell away. A ratio or median is suppressed when a count it is computed from is below k. "
    "Zero cells are not returned."
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


@dataclass
class Cell:
    start: date
    key: tuple[str, ...]
    value: float | int | None
    components: tuple[int, ...] = ()  # counts a derived value is computed from
    suppressed: bool = False


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
            if period in _GRAIN_SERVES[grain]:
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
    stored_filters = {COLUMN_OF.get(d, d): filter_value(d, v) for d, v in filters.items()}
    start, end = period_start(date_from, period), period_end(date_to, period)
    if (end - start).days > 3700 or (period == "day" and (end - start).days > 400):
        raise InvalidInput("The range is too long: at most 10 years, or about a year by day.", field="#/query/to")
    group_columns = [COLUMN_OF.get(d, d) for d in group_by]
    today = today or clock.today()
    if dialect_name(session) == "postgresql":
        await session.execute(text("SET LOCAL jit = off"))  # compiling a plan costs more than these small sums
    if indicator.kind == "overdue":
        cells = await _overdue(session, indicator, period, start, end, group_columns, stored_filters, today)
    else:
        cells = await _from_rollups(session, indicator, period, start, end, group_columns, stored_filters)
    answer = Answer(indicator, period, start, end, group_by, filters, k, cells)
    suppress(answer)
    return answer


async def _sums(session: AsyncSession, indicator: Indicator, period: str, start: date, end: date, columns: list[str],
                filters: dict[str, str], extra: str | None = None) -> list[tuple]:
    wanted = set(columns) | set(filters) | set(indicator.fixed) | ({extra} if extra else set())
    cuboid, grain = choose_cuboid(indicator, period, wanted)
    table = ROLLUP_TABLES[cuboid]
    bucket = _bucket(table.c.period_start, period, grain, dialect_name(session)).label("bucket")
    selected = [bucket, *(table.c[c] for c in columns), *([table.c[extra]] if extra else [])]
    conditions = [table.c.metric == indicator.metric, table.c.grain == grain,
                  table.c.period_start >= start, table.c.period_start <= end]
    conditions += [table.c[c] == v for c, v in {**filters, **indicator.fixed}.items()]
    query = select(*selected, func.sum(table.c.value)).where(*conditions).group_by(*selected)
    return [tuple(row) for row in await session.execute(query)]


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) and not isinstance(value, datetime) else (
        value.date() if isinstance(value, datetime) else date.fromisoformat(str(value)))


async def _from_rollups(session: AsyncSession, indicator: Indicator, period: str, start: date, end: date,
                        columns: list[str], filters: dict[str, str]) -> list[Cell]:
    if indicator.kind in ("count", "unique"):
        rows = await _sums(session, indicator, period, start, end, columns, filters)
        cells = [Cell(_as_date(r[0]), tuple(r[1:-1]), int(r[-1])) for r in rows if r[-1]]
    elif indicator.kind == "ratio":
        rows = await _sums(session, indicator, period, start, end, columns, filters, extra=indicator.split)
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
        rows = await _sums(session, indicator, period, start, end, columns, filters, extra="detail")
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
                   filters: dict[str, str], today: date) -> list[Cell]:
    table = MonitoringOpenItem.__table__
    cells = []
    for bucket in _periods(start, end, period):
        if bucket > today:
            break
        as_of = min(period_end(bucket, period), today)
        selected = [table.c[c] for c in columns]
        conditions = [table.c.kind == indicator.metric, table.c.due_on < as_of, table.c.opened_on <= as_of,
                      or_(table.c.closed_on.is_(None), table.c.closed_on > as_of)]
        conditions += [table.c[c] == v for c, v in {**filters, **indicator.fixed}.items()]
        query = select(*selected, func.count()).where(*conditions)
        if selected:
            query = query.group_by(*selected)
        for row in await session.execute(query):
            if row[-1]:
                cells.append(Cell(bucket, tuple(row[:-1]), int(row[-1])))
    cells.sort(key=lambda c: (c.start, c.key))
    return cells


def suppress(answer: Answer) -> None:
    k = answer.k
    small = lambda n: 0 < n < k  # noqa: E731
    if not answer.indicator.counts_persons:
        for cell in answer.cells:
            cell.suppressed = any(small(n) for n in cell.components)
        return
    cells = answer.cells
    for cell in cells:
        cell.suppressed = small(cell.value)
    if not answer.group_by or k <= 1:
        return
    # Complementary suppression: no line (cells sharing the period and all but one dimension) may hold a
    # lone suppressed cell, or the line's total minus the visible cells would give it away.
    lines: dict[tuple, list[int]] = {}
    lines_of: list[list[tuple]] = [[] for _ in cells]
    for index, cell in enumerate(cells):
        for free in range(len(answer.group_by)):
            line = (free, cell.start, *(v for i, v in enumerate(cell.key) if i != free))
            lines.setdefault(line, []).append(index)
            lines_of[index].append(line)
    hidden = {line: sum(cells[i].suppressed for i in members) for line, members in lines.items()}
    waiting = [line for line, members in lines.items() if hidden[line] == 1 and len(members) > 1]
    position = 0
    while position < len(waiting):
        line = waiting[position]
        position += 1
        if hidden[line] != 1:
            continue
        visible = [i for i in lines[line] if not cells[i].suppressed]
        if not visible:
            continue
        chosen = min(visible, key=lambda i: (cells[i].value, cells[i].key))
        cells[chosen].suppressed = True
        for other in lines_of[chosen]:
            hidden[other] += 1
            if hidden[other] == 1 and len(lines[other]) > 1:
                waiting.append(other)


def catalog() -> list[Indicator]:
    return list(CATALOG.values())


# ---- the offices as central sees them ------------------------------------------------------------------


async def office_sync(session: AsyncSession) -> list[dict[str, Any]]:
    now = utcnow()
    rows = await session.execute(
        select(Office.code, Office.name, MonitoringOfficeSync)
        .outerjoin(MonitoringOfficeSync, MonitoringOfficeSync.office_code == Office.code)
        .order_by(Office.code)
    )
    out = []
    for code, name, sync in rows:
        out.append({
            "office_code": code,
            "name": name,
            "last_event_at": sync.last_event_at if sync else None,
            "last_sync_at": sync.last_sync_at if sync else None,
            "events_received": sync.events_received if sync else 0,
            "duplicates_received": sync.duplicates_received if sync else 0,
            "rejected_received": sync.rejected_received if sync else 0,
            "lag_seconds": sync.last_lag_seconds if sync else None,
            "silent_seconds": round((now - sync.last_sync_at).total_seconds(), 1) if sync else None,
        })
    return out

