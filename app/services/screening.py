"""Eligibility screening: every scheme in force, for the household and each member, in one call.

The facts are derived once from the registry; every adapter reads them concurrently (rules in
process, partners over HTTP at the same time), and what was decided is kept as an immutable record:
who screened, when, the facts the schemes read, and each determination with its rules version. A
partner's failure is an `error` determination for that scheme, never a failed screening."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import clock
from app.bulk import insert_rows
from app.context import request_id_var
from app.principal import Principal
from app.errors import InvalidInput, NotFound
from app.i18n import _
from app.models import ActivityEvent, AuditEvent, Household, Office, Person, Screening, ScreeningDetermination
from app.models.base import new_id, utcnow
from app.schemas.households import HouseholdCreate
from app.schemas.screening import (
    DeterminationRead,
    OutcomeCounts,
    ScreeningRead,
    ScreeningSummary,
)
from app.schemes.base import (
    CheckRequest,
    ChecksInProcess,
    Determination,
    Reason,
    ReasonResult,
    SchemeAdapter,
    SchemeLevel,
    Subject,
)
from app.schemes.facts import FlatMember, household_facts, jsonable, person_facts
from app.schemes.registry import SchemeRegistry
from app.services import activity, audit, consents, scoping
from app.services.households import load_household
from app.vocabulary import EventTrigger, Outcome, Relationship

logger = logging.getLogger("guichet.screening")


# ---- choosing and running the schemes -------------------------------------------------------------


def select_schemes(registry: SchemeRegistry, requested: list[str] | None, on: date, *, pointer: str = "#/schemes") -> list[SchemeAdapter]:
    if requested is None:
        return registry.in_force(on)
    chosen = []
    for i, code in enumerate(requested):
        adapter = registry.get(code)
        if adapter is None:
            raise InvalidInput(f"There is no scheme {code}; GET /api/v1/schemes lists them.", field=f"{pointer}/{i}")
        if adapter.metadata.version_on(on) is None:
            raise InvalidInput(f"Scheme {code} is not in force on {on}.", field=f"{pointer}/{i}")
        chosen.append(adapter)
    return chosen


def build_request(household: Any, members: list[Any], consent_purposes: frozenset[str], on: date) -> CheckRequest:
    """`household` and `members` have the table's attribute names (ORM objects, Core rows, or a
    preview flattened by FlatMember)."""
    member_facts = [person_facts(m, on) for m in members]
    hh_facts = household_facts(household, member_facts, on)
    subjects = tuple(
        Subject(person_id=getattr(m, "id", None), reference=secrets.token_hex(8), facts=hh_facts | facts)
        for m, facts in zip(members, member_facts)
    )
    return CheckRequest(as_of=on, household_facts=hh_facts, members=subjects,
                        household=Subject(person_id=None, reference=secrets.token_hex(8), facts=hh_facts),
                        consent_purposes=consent_purposes, transaction_id=uuid.uuid4().hex)


def _crashed(adapter: SchemeAdapter, request: CheckRequest, exc: BaseException) -> list[Determination]:
    logger.error("scheme %s failed: %s", adapter.metadata.code, type(exc).__name__, exc_info=exc)
    return [Determination(adapter.metadata.code, s.person_id, Outcome.error, None,
                          [Reason("adapter", ReasonResult.unknown, _("{scheme} could not be checked (internal error).",
                                                                    scheme=adapter.metadata.name))],
                          provenance={"error": type(exc).__name__})
            for s in request.subjects(adapter.metadata.level)]


def _is_local(adapter: SchemeAdapter) -> bool:
    return isinstance(adapter, ChecksInProcess)  # the rules adapter: no I/O


# What the partner calls get to themselves before the rules run: a task starts only at the caller's
# next await, and the HTTP client awaits several times before the request is on the wire, so without
# this the rules' CPU (several milliseconds, no I/O) would be added to the partners' wait. It is spent
# inside that wait, not added to it.
PARTNER_HEAD_START = 0.002


async def start_remote(adapters: list[SchemeAdapter], request: CheckRequest) -> list[tuple[SchemeAdapter, asyncio.Future]]:
    """Send every partner call now, each with its own transaction id; they run while we do the rest."""
    pending = [(a, asyncio.ensure_future(a.check(_with_transaction(request)))) for a in adapters if not _is_local(a)]
    if pending:
        await asyncio.sleep(PARTNER_HEAD_START)
    return pending


def run_local(adapters: list[SchemeAdapter], request: CheckRequest) -> list[tuple[SchemeAdapter, list[Determination]]]:
    results = []
    for adapter in adapters:
        if _is_local(adapter):
            try:
                results.append((adapter, adapter.check_now(request)))
            except Exception as exc:  # a bad plug-in must not sink the screening
                results.append((adapter, _crashed(adapter, request, exc)))
    return results


async def finish_remote(pending: list[tuple[SchemeAdapter, asyncio.Future]],
                        request: CheckRequest) -> list[tuple[SchemeAdapter, list[Determination]]]:
    if not pending:
        return []
    answers = await asyncio.gather(*(task for _scheme, task in pending), return_exceptions=True)
    return [(adapter, _crashed(adapter, request, answer) if isinstance(answer, BaseException) else answer)
            for (adapter, _), answer in zip(pending, answers)]


async def run_schemes(adapters: list[SchemeAdapter], request: CheckRequest) -> list[tuple[SchemeAdapter, list[Determination]]]:
    """Every adapter at once: partner calls go out together (the slowest sets the pace, not the sum),
    and rules run in process while they are in flight."""
    pending = await start_remote(adapters, request)
    results = dict((a.metadata.code, r) for a, r in run_local(adapters, request))
    results |= dict((a.metadata.code, r) for a, r in await finish_remote(pending, request))
    return [(adapter, results[adapter.metadata.code]) for adapter in adapters]


def _with_transaction(request: CheckRequest) -> CheckRequest:
    return CheckRequest(request.as_of, request.household_facts, request.members, request.household,
                        request.consent_purposes, uuid.uuid4().hex, request.language)


# ---- shaping and storing ----------------------------------------------------------------------------


@dataclass
class DeterminationRow:
    """A determination ready to store and to answer with."""

    adapter: SchemeAdapter
    determination: Determination
    member_index: int | None
    _columns: dict[str, Any] | None = None

    def columns(self) -> dict[str, Any]:
        if self._columns is not None:
            return self._columns
        d = self.determination
        columns = {
            "person_id": d.person_id, "scheme_code": d.scheme_code, "scheme_name": self.adapter.metadata.name,
            "scheme_kind": self.adapter.metadata.kind.value, "outcome": d.outcome.value, "rules_version": d.rules_version,
            "reasons": [r.as_dict() for r in d.reasons], "missing_facts": list(d.missing_facts), "hints": list(d.hints),
            "benefit": d.benefit.as_dict() if d.benefit else None, "provenance": d.provenance,
            "explanation": d.explanation,
        }
        columns["fingerprint"] = fingerprint(d)
        columns["input_fingerprint"] = d.input_fingerprint
        self._columns = columns
        return columns


def fingerprint(d: Determination) -> str:
    """What a determination says (verdict, version, reasons, missing facts, hints, benefit, explanation)
    as a short digest: a re-screen compares digests instead of reading every stored reason back."""
    reasons = [(r.rule, r.result.value, r.message, sorted(r.facts.items())) for r in d.reasons]
    benefit = sorted(d.benefit.as_dict().items()) if d.benefit else None
    said = (d.outcome.value, d.rules_version, reasons, list(d.missing_facts), list(d.hints), benefit, d.explanation)
    return hashlib.sha256(repr(said).encode()).hexdigest()[:32]


def _row_order(row: DeterminationRow) -> tuple:
    return (-1 if row.member_index is None else row.member_index, row.determination.scheme_code)


def _ordered_rows(results, members: list[Any]) -> list[DeterminationRow]:
    """Household-level verdicts first, then each member in the household's order, schemes by code."""
    index = {m.id: i for i, m in enumerate(members) if getattr(m, "id", None) is not None}
    rows = []
    for adapter, determinations in results:
        for position, d in enumerate(determinations):
            member_index = None
            if adapter.metadata.level is SchemeLevel.person:
                member_index = index.get(d.person_id, position)
            rows.append(DeterminationRow(adapter, d, member_index))
    rows.sort(key=_row_order)
    return rows


def _determination_read(columns: dict[str, Any], member_index: int | None) -> DeterminationRead:
    return DeterminationRead(member_index=member_index, **columns)


def _counts(outcomes) -> OutcomeCounts:
    return OutcomeCounts(**Counter(outcomes))


def facts_used(request: CheckRequest, adapters: list[SchemeAdapter]) -> dict[str, Any]:
    needed = set().union(*(a.metadata.facts for a in adapters)) if adapters else set()
    return {
        "household": jsonable({k: v for k, v in request.household_facts.items() if k in needed}),
        "members": {str(s.person_id): jsonable({k: v for k, v in s.facts.items() if k in needed and k.startswith("person.")})
                    for s in request.members},
    }


class EventBatch:
    """A screening's activity events as outbox rows, to be written with its other rows in one statement."""

    def __init__(self):
        self.rows: list[dict[str, Any]] = []

    def emit(self, event_type: str, **what: Any) -> None:
        self.rows.append(activity.event(event_type, **what))

    def repeat_last(self, **changes: Any) -> None:
        """The last event once more with other values for fields of the same contract (a subject's next
        determination differs from its first only in scheme, scheme_kind and outcome)."""
        last = self.rows[-1]
        self.rows.append(last | {"id": new_id(), "payload": last["payload"] | changes})


def emit_determination_events(collector: EventBatch, *, office_code: str, screening_id: uuid.UUID, household: Any,
                              members: dict[uuid.UUID, Any], head: Any, rows: list[dict[str, Any]], scheme_count: int,
                              on: date, trigger: EventTrigger, completed: bool = True) -> None:
    """A screening's activity events (one per determination, then screening.completed) into `collector`:
    shared by the window's screening and the batch re-screen."""
    household_dims = activity.household_dimensions(household, on, head)
    screening = activity.pseudonym("screening", screening_id)
    by_subject: dict[uuid.UUID | None, list[dict[str, Any]]] = {}
    for row in rows:
        by_subject.setdefault(row["person_id"], []).append(row)
    for person_id, subject_rows in by_subject.items():
        dims = household_dims if person_id is None else activity.person_dimensions(members[person_id], household, on, head)
        first, *others = subject_rows
        collector.emit("screening.determination", office_code=office_code, household_id=household.id,
                      person_id=person_id, dimensions=dims, screening=screening, scheme=first["scheme_code"],
                      scheme_kind=first["scheme_kind"], outcome=first["outcome"], trigger=trigger)
        for row in others:
            collector.repeat_last(scheme=row["scheme_code"], scheme_kind=row["scheme_kind"], outcome=row["outcome"])
    if not completed:
        return
    collector.emit("screening.completed", office_code=office_code, household_id=household.id,
                  dimensions=household_dims, screening=screening, schemes=scheme_count, determinations=len(rows),
                  eligible=sum(1 for r in rows if r["outcome"] == Outcome.eligible), trigger=trigger)


AUDIT_TABLE = AuditEvent.__table__
DETERMINATION_TABLE = ScreeningDetermination.__table__
EVENT_TABLE = ActivityEvent.__table__
SCREENING_TABLE = Screening.__table__


# ---- the endpoints' work ----------------------------------------------------------------------------


async def screen_household(session: AsyncSession, actor: Principal, registry: SchemeRegistry, household_id: uuid.UUID,
                           schemes: list[str] | None) -> ScreeningRead:
    on = clock.today()
    adapters = select_schemes(registry, schemes, on)
    household, members, office_code, purposes = await _load_for_screening(session, actor, household_id)
    request = build_request(household, members, frozenset(purposes or ()), on)
    # Partners are called first; what needs no partner is stored while they answer, so a screening
    # with a 200 ms partner takes about 200 ms, not 200 ms plus the rest.
    pending = await start_remote(adapters, request)
    screening = {
        "id": new_id(), "household_id": household.id, "office_id": household.office_id, "screened_at": utcnow(),
        "screened_by": actor.id, "trigger": "clerk", "as_of": on, "household_version": household.version,
        "schemes": [a.metadata.code for a in adapters], "facts": facts_used(request, adapters),
        "request_id": request_id_var.get(),
    }
    record = [(SCREENING_TABLE, [screening]), (AUDIT_TABLE, [audit.row(
        actor, action="screen", entity_type="screening", entity_id=screening["id"], office_id=household.office_id,
        details={"household_id": str(household.id), "schemes": screening["schemes"], "members": [str(m.id) for m in members]})])]
    head = next((m for m in members if m.relationship == Relationship.head), None)
    store = ScreeningWriter(screening, household, {m.id: m for m in members}, head, office_code, on)
    try:
        local = _ordered_rows(run_local(adapters, request), members)
        remote = []
        reads: dict[int, DeterminationRead] = {}
        if pending:
            await store.write(session, local, leading=record)
            # The answer's share of what needs no partner is made while the partners answer, too.
            reads = {id(r): _determination_read(r.columns(), r.member_index) for r in local}
            record, local = [], []
            remote = _ordered_rows(await finish_remote(pending, request), members)
    except BaseException:
        for _scheme, task in pending:
            task.cancel()
        raise
    rows = sorted(store.written + local + remote, key=_row_order)
    outcomes = [r.determination.outcome for r in rows]
    completed = {"screening": activity.pseudonym("screening", screening["id"]), "schemes": len(adapters),
                 "determinations": len(rows), "eligible": outcomes.count(Outcome.eligible)}
    await store.write(session, local + remote, leading=record, completed=completed)
    return ScreeningRead(
        id=screening["id"], household_id=household.id, screened_at=screening["screened_at"], screened_by=actor.id,
        trigger="clerk", as_of=on, schemes=screening["schemes"], counts=_counts(o.value for o in outcomes),
        determinations=[reads.get(id(r)) or _determination_read(r.columns(), r.member_index) for r in rows],
    )


@dataclass
class ScreeningWriter:
    """Writes a screening's determinations, one activity event each and, last, screening.completed:
    in one statement with the screening and its audit row when no partner is called, else in two
    (what needs no partner while the partners answer, then theirs)."""

    screening: dict[str, Any]
    household: _Household
    members: dict[uuid.UUID, Any]
    head: Any
    office_code: str
    on: date
    written: list[DeterminationRow] = field(default_factory=list)

    async def write(self, session: AsyncSession, rows: list[DeterminationRow], *, leading: list = (),
                    completed: dict[str, Any] | None = None) -> None:
        columns = [r.columns() for r in rows]
        collector = EventBatch()
        emit_determination_events(collector, office_code=self.office_code, screening_id=self.screening["id"],
                                  household=self.household, members=self.members, head=self.head, rows=columns,
                                  scheme_count=0, on=self.on, trigger=EventTrigger.window, completed=False)
        if completed is not None:
            collector.emit("screening.completed", office_code=self.office_code, household_id=self.household.id,
                          dimensions=activity.household_dimensions(self.household, self.on, self.head),
                          trigger=EventTrigger.window, **completed)
        stamp = {"screening_id": self.screening["id"], "household_id": self.household.id,
                 "screened_at": self.screening["screened_at"]}
        await insert_rows(session, *leading, (DETERMINATION_TABLE, [c | stamp for c in columns]), (EVENT_TABLE, collector.rows))
        self.written += rows


# What the schemes and the activity events read of each member (here and in a re-screen).
MEMBER_FACTS = (
    "id", "sex", "birth_date", "birth_year", "birth_date_approximate", "national_id", "relationship",
    "disability_seeing", "disability_hearing", "disability_walking", "disability_remembering", "disability_self_care",
    "disability_communicating", "pregnant", "employment_status", "monthly_income", "school_enrolled",
    "school_attendance_percent", "nssf_member", "nssf_contribution_months", "attributes", "created_at")
MEMBER_COLUMNS = tuple(getattr(Person, c) for c in MEMBER_FACTS)
# And of the household (besides its id).
HOUSEHOLD_FACTS = ("office_id", "version", "village_code", "area_type", "idpoor_level", "idpoor_valid_until")


async def _load_for_screening(session: AsyncSession, actor: Principal,
                              household_id: uuid.UUID) -> tuple[_Household, list[Any], str, list[str] | None]:
    """The household's facts and its members' (if the caller's office may see it), its office's code
    and the consent in force (consents.purposes_in_force) in one round trip, as
    plain rows: partners are called only once this is known, so all of it adds to a screening's latency."""
    params = {"household_id": household_id, **scoping.office_params(actor)}
    members = (await session.execute(_screening_query(scoping.is_scoped(actor)), params)).all()
    if not members:
        raise NotFound("No such household.")
    first = members[0]
    household = _Household(id=household_id, **{c: getattr(first, c) for c in HOUSEHOLD_FACTS})
    return household, members, first.office_code, first.consent_purposes


@cache
def _screening_query(scoped: bool):
    """Built once per shape: building the statement costs more than running it."""
    h = Household
    consent = consents.purposes_in_force(h.id)
    query = (select(*(getattr(h, c) for c in HOUSEHOLD_FACTS), Office.code.label("office_code"),
                    consent.label("consent_purposes"), *MEMBER_COLUMNS)
             .join(Office, Office.id == h.office_id).join(Person, Person.household_id == h.id)
             .where(h.id == bindparam("household_id")).order_by(Person.created_at, Person.id))
    return scoping.where_office_param(query, h.office_id, scoped)


async def preview(session: AsyncSession, actor: Principal, registry: SchemeRegistry, body: HouseholdCreate,
                  schemes: list[str] | None) -> ScreeningRead:
    """"Am I eligible?" for facts typed at the window: nothing about the people is stored. The audit
    row says a preview was run, by whom, for which schemes, and nothing about whom."""
    on = clock.today()
    adapters = select_schemes(registry, schemes, on)
    idpoor = body.idpoor
    household = _Household(village_code=body.village_code, area_type=body.area_type.value,
                                  idpoor_level=idpoor.level if idpoor else None,
                                  idpoor_valid_until=idpoor.valid_until if idpoor else None)
    members = [FlatMember(m) for m in body.members]
    request = build_request(household, members, frozenset(p.value for p in body.consent.purposes), on)
    results = await run_schemes(adapters, request)
    rows = _ordered_rows(results, [])
    columns = [r.columns() for r in rows]
    audit.record(session, actor, action="preview", entity_type="screening", entity_id=None, office_id=actor.office_id,
                 details={"schemes": [a.metadata.code for a in adapters], "members": len(members)})
    return ScreeningRead(
        id=None, household_id=None, screened_at=utcnow(), screened_by=actor.id, trigger="preview", as_of=on,
        schemes=[a.metadata.code for a in adapters], counts=_counts(c["outcome"] for c in columns),
        determinations=[_determination_read(c, r.member_index) for c, r in zip(columns, rows)],
    )


@dataclass
class _Household:
    """What screening reads of a household (a preview's has no id, office or version)."""

    village_code: str
    area_type: str
    idpoor_level: int | None
    idpoor_valid_until: date | None
    id: uuid.UUID | None = None
    office_id: uuid.UUID | None = None
    version: int | None = None


async def _member_positions(session: AsyncSession, household_id: uuid.UUID) -> dict[uuid.UUID, int]:
    ids = (await session.execute(select(Person.id).where(Person.household_id == household_id)
                                 .order_by(Person.created_at, Person.id))).scalars()
    return {pid: i for i, pid in enumerate(ids)}


async def get_screening(session: AsyncSession, actor: Principal, screening_id: uuid.UUID) -> ScreeningRead:
    screening = await scoping.load_scoped(session, actor, Screening, screening_id, missing="No such screening.")
    rows = (await session.execute(select(ScreeningDetermination).where(ScreeningDetermination.screening_id == screening.id)
                                  .order_by(ScreeningDetermination.id))).scalars().all()
    positions = await _member_positions(session, screening.household_id)
    audit.record(session, actor, action="read", entity_type="screening", entity_id=screening.id, office_id=screening.office_id,
                 details={"household_id": str(screening.household_id)})
    return ScreeningRead(
        id=screening.id, household_id=screening.household_id, screened_at=screening.screened_at, screened_by=screening.screened_by,
        trigger=screening.trigger, as_of=screening.as_of, schemes=screening.schemes, counts=_counts(r.outcome for r in rows),
        determinations=sorted((_determination_read(_stored_columns(r), positions.get(r.person_id)) for r in rows),
                              key=lambda d: (-1 if d.member_index is None else d.member_index, d.scheme_code)),
    )


def _stored_columns(row: ScreeningDetermination) -> dict[str, Any]:
    return {"person_id": row.person_id, "scheme_code": row.scheme_code, "scheme_name": row.scheme_name,
            "scheme_kind": row.scheme_kind, "outcome": row.outcome, "rules_version": row.rules_version, "reasons": row.reasons,
            "missing_facts": row.missing_facts, "hints": row.hints, "benefit": row.benefit, "provenance": row.provenance,
            "explanation": row.explanation}


async def list_screenings(session: AsyncSession, actor: Principal, household_id: uuid.UUID, *, limit: int,
                          offset: int) -> tuple[list[ScreeningSummary], int]:
    household = await load_household(session, actor, household_id)
    query = select(Screening).where(Screening.household_id == household.id)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    screenings = (await session.execute(query.order_by(Screening.screened_at.desc(), Screening.id.desc())
                                        .limit(limit).offset(offset))).scalars().all()
    counts: dict[uuid.UUID, Counter] = {s.id: Counter() for s in screenings}
    if screenings:
        for screening_id, outcome, n in (await session.execute(
            select(ScreeningDetermination.screening_id, ScreeningDetermination.outcome, func.count())
            .where(ScreeningDetermination.screening_id.in_(list(counts)))
            .group_by(ScreeningDetermination.screening_id, ScreeningDetermination.outcome)
        )).all():
            counts[screening_id][outcome] = n
    audit.record(session, actor, action="read", entity_type="screening_list", entity_id=household.id,
                 office_id=household.office_id, details={"screenings": [str(s.id) for s in screenings], "total": total})
    return [ScreeningSummary(id=s.id, household_id=s.household_id, screened_at=s.screened_at, screened_by=s.screened_by,
                             trigger=s.trigger, as_of=s.as_of, schemes=s.schemes, counts=OutcomeCounts(**counts[s.id]))
            for s in screenings], total


async def latest_determination(session: AsyncSession, *, household_id: uuid.UUID, person_id: uuid.UUID | None,
                               scheme_code: str) -> ScreeningDetermination | None:
    """The verdict in force for (household, person or None for the household, scheme): the newest
    determination that says something, what an application is checked against. An `error` (the scheme
    could not answer, a partner down) is kept as the record of that screening but does not replace the
    verdict before it. One index range scan (ix_determination_latest)."""
    person = ScreeningDetermination.person_id.is_(None) if person_id is None else ScreeningDetermination.person_id == person_id
    return (await session.execute(
        select(ScreeningDetermination)
        .where(ScreeningDetermination.household_id == household_id, person, ScreeningDetermination.scheme_code == scheme_code,
               ScreeningDetermination.outcome != Outcome.error)
        .order_by(ScreeningDetermination.screened_at.desc(), ScreeningDetermination.id.desc()).limit(1)
    )).scalar_one_or_none()
