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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, Uuid, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import clock
from app.errors import InvalidInput
from app.models import ConsentRecord, Household, Office, Person, ScreeningDetermination
from app.schemes.base import SchemeAdapter
from app.schemes.registry import SchemeRegistry
from app.models.base import new_id, utcnow
from app.services import audit
from app.services.screening import (
    _DETERMINATIONS,
    _EVENTS,
    _SCREENINGS,
    _Collector,
    _emit_events,
    _facts_used,
    _Row,
    build_request,
    bulk_insert,
    fingerprint,
    run_schemes,
    select_schemes,
)
from app.vocabulary import Relationship

_HOUSEHOLD_COLUMNS = (Household.id, Household.office_id, Household.version, Household.village_code, Household.area_type,
                      Household.idpoor_level, Household.idpoor_valid_until)
_PERSON_COLUMNS = tuple(getattr(Person, c) for c in (
    "id", "household_id", "sex", "birth_date", "birth_year", "birth_date_approximate", "national_id", "relationship",
    "disability_seeing", "disability_hearing", "disability_walking", "disability_remembering", "disability_self_care",
    "disability_communicating", "pregnant", "employment_status", "monthly_income", "school_enrolled",
    "school_attendance_percent", "nssf_member", "nssf_contribution_months", "attributes", "created_at"))


@dataclass
class RescreenSummary:
    households: int = 0
    screenings_written: int = 0
    determinations_written: int = 0
    changed: Counter = field(default_factory=Counter)  # (scheme, from outcome or None, to outcome) -> count
    seconds: float = 0.0
    total: int = 0


async def _latest_for(session: AsyncSession, household_ids: list[uuid.UUID], codes: list[str]) -> dict[tuple, dict]:
    """The latest stored determination per (household, person, scheme) for a batch of households, as
    {(household, scheme): {person or None: (outcome, fingerprint, input fingerprint)}}: DISTINCT ON per household on
    PostgreSQL, a window function elsewhere."""
    d = ScreeningDetermination
    subject = (d.household_id, d.person_id, d.scheme_code)
    newest = (d.screened_at.desc(), d.id.desc())
    where = (d.household_id.in_(household_ids), d.scheme_code.in_(codes))
    if (await session.connection()).dialect.name == "postgresql":
        # One index range per household (LATERAL), whatever the planner's statistics say: right after a
        # large first run they are stale, and a plan that scans the whole table for every batch makes
        # the re-screen quadratic.
        query = text(
            "SELECT h.id, x.person_id, x.scheme_code, x.outcome, x.fingerprint, x.input_fingerprint FROM unnest(:households) "
            "AS h(id) CROSS JOIN LATERAL (SELECT DISTINCT ON (d.person_id, d.scheme_code) d.person_id, d.scheme_code, d.outcome, "
            "d.fingerprint, d.input_fingerprint FROM determination AS d WHERE d.household_id = h.id AND d.scheme_code = ANY(:codes) "
            "ORDER BY d.person_id, d.scheme_code, d.screened_at DESC, d.id DESC) AS x"
        ).bindparams(bindparam("households", value=list(household_ids), type_=ARRAY(Uuid())),
                     bindparam("codes", value=list(codes), type_=ARRAY(String())))
    else:
        ranked = select(*subject, d.outcome, d.fingerprint, d.input_fingerprint,
                        func.row_number().over(partition_by=subject, order_by=newest).label("rank")).where(*where).subquery()
        query = select(ranked.c.household_id, ranked.c.person_id, ranked.c.scheme_code, ranked.c.outcome,
                       ranked.c.fingerprint, ranked.c.input_fingerprint).where(ranked.c.rank == 1)
    latest: dict[tuple, dict] = {}
    for household_id, person_id, scheme_code, outcome, said, inputs in (await session.execute(query)).all():
        latest.setdefault((household_id, scheme_code), {})[person_id] = (outcome, said, inputs)
    return latest


async def _consents_for(session: AsyncSession, household_ids: list[uuid.UUID]) -> dict[uuid.UUID, frozenset[str]]:
    c = ConsentRecord
    ranked = (select(c.household_id, c.purposes, func.row_number().over(
        partition_by=c.household_id, order_by=(c.recorded_at.desc(), c.id.desc())).label("rank"))
        .where(c.household_id.in_(household_ids)).subquery())
    return {r.household_id: frozenset(r.purposes) for r in (await session.execute(select(ranked).where(ranked.c.rank == 1))).all()}


async def rescreen_batch(session: AsyncSession, registry: SchemeRegistry, adapters: list[SchemeAdapter],
                         household_ids: list[uuid.UUID], summary: RescreenSummary, *, run_id: str) -> None:
    """Re-run the schemes for a batch of households, in the caller's transaction. A screening is
    written only for a household where some determination says something else than its latest one
    (outcome, rules version, reasons, missing facts, hints, benefit), holding just those. A subject
    whose facts and whose scheme's rules (as written) are as they were is not even evaluated."""
    on = clock.today()
    codes = [a.metadata.code for a in adapters]
    if (await session.connection()).dialect.name == "postgresql":
        # The batch's queries are many small index lookups; compiling them (JIT) costs more than it saves.
        await session.execute(text("SET LOCAL jit = off"))
    households = (await session.execute(select(*_HOUSEHOLD_COLUMNS).where(Household.id.in_(household_ids)))).all()
    people: dict[uuid.UUID, list[Any]] = {h.id: [] for h in households}
    for person in (await session.execute(select(*_PERSON_COLUMNS).where(Person.household_id.in_(household_ids))
                                         .order_by(Person.household_id, Person.created_at, Person.id))).all():
        people[person.household_id].append(person)
    offices = dict((await session.execute(select(Office.id, Office.code))).all())
    latest = await _latest_for(session, household_ids, codes)
    needs_consent = any(not hasattr(a, "check_now") for a in adapters)
    consents = await _consents_for(session, household_ids) if needs_consent else {}
    now = utcnow()
    screenings, determinations = [], []
    collector = _Collector()
    for household in households:
        members = people[household.id]
        request = build_request(household, members, consents.get(household.id, frozenset()), on)
        if needs_consent:
            results = await run_schemes(adapters, request)
        else:
            # Subjects whose facts and rules are as at their latest determination are not evaluated.
            results = [(a, a.check_changed(request, {p: known[2] for p, known in latest.get((household.id, a.metadata.code), {}).items()}))
                       if hasattr(a, "check_changed") else (a, a.check_now(request)) for a in adapters]
        changed_rows = []
        for adapter, found in results:
            known = latest.get((household.id, adapter.metadata.code), {})
            for d in found:
                before = known.get(d.person_id)
                if before is not None and before[1] == fingerprint(d):
                    continue  # the rules or facts changed, but not what the determination says
                columns = _Row(adapter, d, None).columns()
                changed_rows.append(columns)
                previous = before[0] if before is not None else None
                if previous != columns["outcome"]:
                    summary.changed[(d.scheme_code, previous, columns["outcome"])] += 1
        summary.households += 1
        if not changed_rows:
            continue
        screening_id = new_id()
        screenings.append({"id": screening_id, "household_id": household.id, "office_id": household.office_id,
                           "screened_at": now, "screened_by": None, "trigger": "rescreen", "as_of": on,
                           "household_version": household.version, "schemes": codes,
                           "facts": _facts_used(request, adapters), "request_id": run_id})
        determinations.extend(c | {"screening_id": screening_id, "household_id": household.id, "screened_at": now}
                              for c in changed_rows)
        head = next((m for m in members if m.relationship == Relationship.head), None)
        _emit_events(collector, office_code=offices[household.office_id], screening_id=screening_id, household=household,
                     members={m.id: m for m in members}, head=head, rows=changed_rows, scheme_count=len(adapters), on=on)
    if screenings:
        await bulk_insert(session, _SCREENINGS, screenings)
        await bulk_insert(session, _DETERMINATIONS, determinations)
        await bulk_insert(session, _EVENTS, collector.rows)
    summary.screenings_written += len(screenings)
    summary.determinations_written += len(determinations)
    # The re-screen read these people's records: one audit row per batch, per office.
    by_office = Counter(h.office_id for h in households)
    for office_id, n in by_office.items():
        audit.record(session, None, action="rescreen", entity_type="office", entity_id=office_id, office_id=office_id,
                     details={"run": run_id, "households": n, "schemes": codes})


async def households_to_rescreen(session: AsyncSession, *, office_code: str | None, after: uuid.UUID | None,
                                 limit: int) -> list[uuid.UUID]:
    query = select(Household.id)
    if office_code is not None:
        query = query.join(Office, Office.id == Household.office_id).where(Office.code == office_code)
    if after is not None:
        query = query.where(Household.id > after)
    return list((await session.execute(query.order_by(Household.id).limit(limit))).scalars())


async def count_households(session: AsyncSession, *, office_code: str | None) -> int:
    query = select(func.count(Household.id))
    if office_code is not None:
        query = query.join(Office, Office.id == Household.office_id).where(Office.code == office_code)
    return (await session.execute(query)).scalar_one()


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
