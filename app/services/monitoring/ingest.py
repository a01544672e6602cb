"""Central monitoring's ingest: an office relay's batch of activity events checked one by one against
the contract of app/events.py, stored once each by id, and counted into the rollups, the unique sets
(`monitoring_subject`) and the open items (`monitoring_open_item`) in the same transaction; and what
central last heard from each office (docs/monitoring.md)."""

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import and_, case, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.bulk import to_json
from app.db import advisory_key
from app.principal import Principal
from app.events import EVENT_TYPES, ActivityEventEnvelope, EventPayload
from app.models import MonitoringEvent, MonitoringOfficeSync, MonitoringOpenItem, MonitoringSubject, Office
from app.models.base import utcnow
from app.schemas.monitoring import IngestResult, RejectedEvent
from app.services.monitoring.rollups import (
    APPEND_ONLY,
    DIMENSIONS,
    ROLLUP_STATEMENT,
    ROLLUP_TABLES,
    Counts,
    Fact,
    Increments,
    count_subject,
    event_dimensions,
    local_day,
    merge_open_item,
    open_item_change,
    rollup_columns,
    subjects,
)
from app.upsert import dialect_insert, dialect_name

FUTURE_TOLERANCE = timedelta(days=1)  # an office clock a little ahead is tolerated, a date in the future is not
PERSONAL_FIELDS = frozenset({
    "name", "given_name", "family_name", "full_name", "national_id", "phone", "phone_number", "email", "birth_date",
    "date_of_birth", "birth_year", "address", "card_number", "equity_card", "idpoor_card_number", "latitude",
    "longitude", "gps", "given_by", "note", "notes", "comment", "description", "monthly_income", "income",
})

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


def plain_envelope(raw: dict) -> tuple[str, str, int, datetime, str, dict] | None:
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
    plain = plain_envelope(raw)
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
            await self.pg.execute(ROLLUP_STATEMENT, to_json([(metric, day.isoformat(), mask, *dims)
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
        merge_open_item(merged, values, dict(zip(DIMENSIONS, fact.dims, strict=True)))
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
        merge_open_item(stored, change, change)
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

