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
from collections import Counter, namedtuple
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import clock
from app.bulk import insert_rows
from app.errors import InvalidInput
from app.models import Household, Office, Person, ScreeningDetermination
from app.schemes.base import CheckRequest, Fingerprinted, SchemeAdapter
from app.schemes.registry import SchemeRegistry
from app.models.base import new_id, utcnow
from app.services import audit, consents
from app.services.screening import (
    AUDIT_TABLE,
    DETERMINATION_TABLE,
    EVENT_TABLE,
    HOUSEHOLD_FACTS,
    MEMBER_FACTS,
    SCREENING_TABLE,
    DeterminationRow,
    EventBatch,
    build_request,
    emit_determination_events,
    facts_used,
    run_schemes,
    select_schemes,
)
from app.vocabulary import EventTrigger, Outcome, Relationship

# Core columns, not the ORM's attributes: a batch's rows are read without the ORM's loading machinery.
_HOUSEHOLD, _PERSON = Household.__table__, Person.__table__
_HOUSEHOLD_COLUMNS = tuple(_HOUSEHOLD.c[c] for c in ("id", *HOUSEHOLD_FACTS))
_PERSON_COLUMNS = tuple(_PERSON.c[c] for c in ("household_id", *MEMBER_FACTS))
# A named tuple reads a field several times faster than a Row (facts and events read each one or more).
_HouseholdRow = namedtuple("_HouseholdRow", [c.name for c in _HOUSEHOLD_COLUMNS])
_PersonRow = namedtuple("_PersonRow", [c.name for c in _PERSON_COLUMNS])


@dataclass
class RescreenSummary:
    households: int = 0
    screenings_written: int = 0
    determinations_written: int = 0
    changed: Counter = field(default_factory=Counter)  # (scheme, from outcome or None, to outcome) -> count
    unreached: Counter = field(default_factory=Counter)  # scheme -> subjects it could not decide (error)
    seconds: float = 0.0
    total: int = 0


async def _stale(session: AsyncSession, household_ids: list[uuid.UUID], codes: list[str],
                 subjects: list[tuple]) -> dict[int, tuple[str, str] | None]:
    """Of `subjects` [(household, person or None, scheme, input fingerprint or None)], by position, those
    whose verdict in force (the latest determination that is not an `error`, as latest_determination) was
    made from other inputs (or unknown ones, None), each with that determination's (outcome, fingerprint),
    or None when there is none. On PostgreSQL the server compares the fingerprints, so a batch where
    nothing changed sends nothing back."""
    d = ScreeningDetermination
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        households, persons, schemes, inputs = zip(*subjects) if subjects else ((), (), (), ())
        driver = (await connection.get_raw_connection()).driver_connection
        rows = await driver.fetch(_STALE, list(households), list(persons), list(schemes), list(inputs), household_ids, codes)
        return {n - 1: None if outcome is None else (outcome, said) for n, outcome, said in rows}
    subject = (d.household_id, d.person_id, d.scheme_code)
    ranked = select(*subject, d.outcome, d.fingerprint, d.input_fingerprint, func.row_number().over(
        partition_by=subject, order_by=(d.screened_at.desc(), d.id.desc())).label("rank")
    ).where(d.household_id.in_(household_ids), d.scheme_code.in_(codes), d.outcome != Outcome.error).subquery()
    query = select(ranked.c.household_id, ranked.c.person_id, ranked.c.scheme_code, ranked.c.outcome,
                   ranked.c.fingerprint, ranked.c.input_fingerprint).where(ranked.c.rank == 1)
    latest = {(h, p, c): (outcome, said, inputs) for h, p, c, outcome, said, inputs in (await session.execute(query)).all()}
    stale = {}
    for n, (household_id, person_id, code, inputs) in enumerate(subjects):
        known = latest.get((household_id, person_id, code))
        if inputs is None or known is None or known[2] != inputs:
            stale[n] = None if known is None else known[:2]
    return stale


# The verdict in force per subject by one index range per household (LATERAL), whatever the
# planner's statistics say: right after a large first run they are stale, and a plan that scans the
# whole table for every batch makes the re-screen quadratic. A household's own subject is its id.
_STALE = """
SELECT s.n, x.outcome, x.fingerprint
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]) WITH ORDINALITY AS s(household_id, person_id, scheme_code, input, n)
LEFT JOIN (
    SELECT coalesce(x.person_id, h.id) AS subject, x.scheme_code, x.outcome, x.fingerprint, x.input_fingerprint
    FROM unnest($5::uuid[]) AS h(id) CROSS JOIN LATERAL (
        SELECT DISTINCT ON (d.person_id, d.scheme_code) d.person_id, d.scheme_code, d.outcome, d.fingerprint, d.input_fingerprint
        FROM determination AS d WHERE d.household_id = h.id AND d.scheme_code = ANY($6::text[]) AND d.outcome <> 'error'
        ORDER BY d.person_id, d.scheme_code, d.screened_at DESC, d.id DESC) AS x
) AS x ON x.subject = coalesce(s.person_id, s.household_id) AND x.scheme_code = s.scheme_code
WHERE s.input IS NULL OR x.input_fingerprint IS DISTINCT FROM s.input
"""


async def _consents_for(session: AsyncSession, household_ids: list[uuid.UUID]) -> dict[uuid.UUID, frozenset[str]]:
    return {r.household_id: frozenset(r.purposes) for r in (await session.execute(consents.in_force_of(household_ids))).all()}


async def rescreen_batch(session: AsyncSession, registry: SchemeRegistry, adapters: list[SchemeAdapter],
                         household_ids: list[uuid.UUID], summary: RescreenSummary, *, run_id: str,
                         said: dict | None = None) -> None:
    """Re-run the schemes for a batch of households, in the caller's transaction. A screening is
    written only for a household where some determination says something else than its latest one
    (outcome, rules version, reasons, missing facts, hints, benefit, explanation), holding just those. A
    subject whose facts and whose scheme's rules (as written) are as they were is not even evaluated.
    `said` keeps what was evaluated by input fingerprint across the batches of a run."""
    said = {} if said is None else said
    on = clock.today()
    codes = [a.metadata.code for a in adapters]
    if (await session.connection()).dialect.name == "postgresql":
        # The batch's queries are many small index lookups; compiling them (JIT) costs more than it saves.
        await session.execute(text("SET LOCAL jit = off"))
    households = [_HouseholdRow._make(h) for h in (await session.execute(
        select(*_HOUSEHOLD_COLUMNS).where(_HOUSEHOLD.c.id.in_(household_ids)))).all()]
    people: dict[uuid.UUID, list[Any]] = {h.id: [] for h in households}
    for person in (await session.execute(select(*_PERSON_COLUMNS).where(_PERSON.c.household_id.in_(household_ids))
                                         .order_by(_PERSON.c.household_id, _PERSON.c.created_at, _PERSON.c.id))).all():
        person = _PersonRow._make(person)
        people[person.household_id].append(person)
    offices = dict((await session.execute(select(Office.id, Office.code))).all())
    # Partners are asked about every subject (their answers may change without anything here changing).
    partners = any(not isinstance(a, Fingerprinted) for a in adapters)
    in_force = await _consents_for(session, household_ids) if partners else {}
    screened, subjects = [], []
    for household in households:
        members = people[household.id]
        request = build_request(household, members, in_force.get(household.id, frozenset()), on)
        screened.append((household, members, request))
        for adapter in adapters:
            code = adapter.metadata.code
            if partners:
                subjects.extend((household.id, s.person_id, code, None) for s in request.subjects(adapter.metadata.level))
            else:
                subjects.extend((household.id, person_id, code, inputs) for person_id, inputs in adapter.input_fingerprints(request))
    stale: dict[tuple, dict] = {}  # (household, scheme) -> {person or None: (latest (outcome, fingerprint) or None, inputs)}
    for n, before in (await _stale(session, household_ids, codes, subjects)).items():
        household_id, person_id, code, inputs = subjects[n]
        stale.setdefault((household_id, code), {})[person_id] = (before, inputs)
    if len(said) > 10_000:
        said.clear()
    now = utcnow()
    screenings, determinations = [], []
    collector = EventBatch()
    for household, members, request in screened:
        summary.households += 1
        if partners:
            results = [(a, [(stale.get((household.id, a.metadata.code), {}).get(d.person_id, (None,))[0], DeterminationRow(a, d, None).columns())
                            for d in found]) for a, found in await run_schemes(adapters, request)]
        else:
            results = [(a, _evaluate(a, request, known, said)) for a in adapters
                       if (known := stale.get((household.id, a.metadata.code)))]
        changed_rows = []
        for adapter, found in results:
            for before, columns in found:
                if columns["outcome"] == Outcome.error:
                    # A scheme that could not answer (a partner down after its retries) says nothing new:
                    # its latest verdict stays the one in force, and the run says who was not reached.
                    summary.unreached[columns["scheme_code"]] += 1
                    continue
                if before is not None and before[1] == columns["fingerprint"]:
                    continue  # the rules or facts changed, but not what the determination says
                changed_rows.append(columns)
                previous = before[0] if before is not None else None
                if previous != columns["outcome"]:
                    summary.changed[(columns["scheme_code"], previous, columns["outcome"])] += 1
        if not changed_rows:
            continue
        screening_id = new_id()
        screenings.append({"id": screening_id, "household_id": household.id, "office_id": household.office_id,
                           "screened_at": now, "screened_by": None, "trigger": "rescreen", "as_of": on,
                           "household_version": household.version, "schemes": codes,
                           "facts": facts_used(request, adapters), "request_id": run_id})
        determinations.extend(c | {"screening_id": screening_id, "household_id": household.id, "screened_at": now}
                              for c in changed_rows)
        head = next((m for m in members if m.relationship == Relationship.head), None)
        emit_determination_events(collector, office_code=offices[household.office_id], screening_id=screening_id,
                                  household=household, members={m.id: m for m in members}, head=head, rows=changed_rows,
                                  scheme_count=len(adapters), on=on, trigger=EventTrigger.rescreen)
    # The re-screen read these people's records: one audit row per batch, per office.
    audits = [audit.row(None, action="rescreen", entity_type="office", entity_id=office_id, office_id=office_id,
                        details={"run": run_id, "households": n, "schemes": codes})
              for office_id, n in Counter(h.office_id for h in households).items()]
    await insert_rows(session, (SCREENING_TABLE, screenings), (DETERMINATION_TABLE, determinations), (EVENT_TABLE, collector.rows),
                      (AUDIT_TABLE, audits))
    summary.screenings_written += len(screenings)
    summary.determinations_written += len(determinations)


def _evaluate(adapter: SchemeAdapter, request: CheckRequest, known: dict, said: dict) -> list[tuple]:
    """(latest, determination's columns) of the subjects in `known` ({person or None: (latest, input
    fingerprint)}), in the request's order. Equal input fingerprints mean equal determinations, so one
    evaluation serves every subject with the same facts: `said` keeps their columns by (scheme, inputs)."""
    code = adapter.metadata.code
    todo = {person_id for person_id, (_, inputs) in known.items() if inputs is None or (code, inputs) not in said}
    evaluated = {d.person_id: DeterminationRow(adapter, d, None).columns() for d in adapter.check_subjects(request, todo)} if todo else {}
    rows = []
    for subject in request.subjects(adapter.metadata.level):
        if subject.person_id not in known:
            continue
        before, inputs = known[subject.person_id]
        columns = evaluated.get(subject.person_id)
        if columns is None:
            columns = said[(code, inputs)] | {"person_id": subject.person_id}
        elif inputs is not None:
            said[(code, inputs)] = columns
        rows.append((before, columns))
    return rows


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
    said: dict = {}

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
                await rescreen_batch(session, registry, adapters, ids, summary, run_id=run_id, said=said)
            if on_progress:
                on_progress(len(ids))

    await asyncio.gather(list_batches(), *(work() for _ in range(jobs)))
    summary.seconds = time.perf_counter() - started
    summary.total = total
    return summary
