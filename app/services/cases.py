"""Cases: a client's journey at the window, its notes and its timeline. What the case-management
services share (case loading, references, the timeline row, local dates, transition errors) is in
`app/services/casework.py`.

Every function runs in the request's transaction, scopes what it reads to the caller's office (another
office's case is "not found", like a missing one), audits reads and changes, writes a timeline row for
everything that happens in a case, and an activity event for the changes central counts."""

import uuid
from datetime import date
from typing import Any

from sqlalchemy import and_, exists, func, literal, not_, or_, select, union_all
from sqlalchemy import case as when
from sqlalchemy.ext.asyncio import AsyncSession

from app import clock
from app.principal import Principal
from app.errors import Conflict, Forbidden
from app.etag import check_if_match
from app.models import (
    Application,
    Case,
    CaseEvent,
    CaseNote,
    FollowUp,
    Grievance,
    Office,
    Person,
    Referral,
    Screening,
    ScreeningDetermination,
    User,
)
from app.schemas.cases import CaseCreate, CaseRead, CaseUpdate, NoteCreate, NoteRead, OpenItems, TimelineEntry
from app.services import activity, audit, referrals
from app.services.casework import (
    OPEN_APPLICATION,
    OPEN_CASE,
    OPEN_GRIEVANCE,
    OPEN_REFERRAL,
    add_timeline_entry,
    check_assignee,
    days_since,
    illegal_transition,
    load_case,
    lock_client,
    may_read_confidential,
    member_of,
    office_of,
    person_name,
    start_of_local_day,
    subject_dimensions,
)
from app.services.households import head_of, load_household
from app.services.scoping import scoped
from app.vocabulary import (
    CaseStatus,
    FollowUpStatus,
    Role,
)

CASE_TRANSITIONS: dict[str, set[str]] = {
    CaseStatus.open: {CaseStatus.waiting, CaseStatus.closed},
    CaseStatus.waiting: {CaseStatus.open, CaseStatus.closed},
    CaseStatus.closed: {CaseStatus.open},  # reopening: REOPENERS only
}
REOPENERS = (Role.supervisor, Role.admin)


async def _refuse_a_second_open_case(session: AsyncSession, household_id: uuid.UUID, person_id: uuid.UUID | None) -> None:
    await lock_client(session, household_id)
    existing = (await session.execute(select(Case.id).where(
        Case.household_id == household_id, Case.person_id == person_id if person_id else Case.person_id.is_(None),
        Case.status.in_(OPEN_CASE)).limit(1))).scalar_one_or_none()
    if existing is not None:
        raise Conflict("This client already has an open case; work in it, or close it first.", existing_case=str(existing))


def _overdue_conditions(today: date) -> list:
    """For a case: something inside past its due date."""
    return [
        exists().where(Application.case_id == Case.id, Application.status.in_(OPEN_APPLICATION),
                       Application.decision_due_date < today),
        exists().where(Referral.case_id == Case.id, Referral.status.in_(OPEN_REFERRAL), Referral.due_date < today),
        exists().where(FollowUp.case_id == Case.id, FollowUp.status == FollowUpStatus.open, FollowUp.due_date < today),
        exists().where(Grievance.case_id == Case.id, Grievance.status.in_(OPEN_GRIEVANCE), Grievance.sla_due_date < today),
    ]


_OPEN_ITEM_SOURCES = (
    ("applications", Application, Application.status.in_(OPEN_APPLICATION), Application.decision_due_date),
    ("referrals", Referral, Referral.status.in_(OPEN_REFERRAL), Referral.due_date),
    ("follow_ups", FollowUp, FollowUp.status == FollowUpStatus.open, FollowUp.due_date),
    ("grievances", Grievance, Grievance.status.in_(OPEN_GRIEVANCE), Grievance.sla_due_date),
)


async def _open_items(session: AsyncSession, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[dict[str, int], bool]]:
    """Per case: how many of each kind of item are open, and whether one of them is late (one round trip)."""
    today = clock.today()
    found: dict[uuid.UUID, tuple[dict[str, int], bool]] = {i: ({name: 0 for name, *_ in _OPEN_ITEM_SOURCES}, False) for i in case_ids}
    if not case_ids:
        return found
    counts = union_all(*(
        select(literal(name).label("kind"), model.case_id.label("case_id"), func.count().label("open"),
               func.sum(when((due < today, 1), else_=0)).label("late"))
        .where(model.case_id.in_(case_ids), is_open).group_by(model.case_id)
        for name, model, is_open, due in _OPEN_ITEM_SOURCES))
    for kind, case_id, count, late in await session.execute(select(counts.subquery())):
        items, already = found[case_id]
        items[kind] = count
        found[case_id] = (items, already or bool(late))
    return found


async def _client_names(session: AsyncSession, cases: list[Case]) -> dict[uuid.UUID, str | None]:
    person_ids = [c.person_id for c in cases if c.person_id]
    households = [c.household_id for c in cases if not c.person_id]
    people = (await session.execute(select(Person).where(or_(
        Person.id.in_(person_ids), and_(Person.household_id.in_(households), Person.relationship == "head"))))).scalars().all()
    by_id = {p.id: p for p in people}
    heads = {p.household_id: p for p in people if p.relationship == "head"}
    return {c.id: person_name(by_id.get(c.person_id) if c.person_id else heads.get(c.household_id)) for c in cases}


async def case_reads(session: AsyncSession, cases: list[Case]) -> list[CaseRead]:
    items = await _open_items(session, [c.id for c in cases])
    names = await _client_names(session, cases)
    offices = {o.id: o.code for o in (await session.execute(select(Office).where(
        Office.id.in_({c.office_id for c in cases})))).scalars()}
    return [CaseRead(
        id=c.id, version=c.version, office_code=offices[c.office_id], household_id=c.household_id, person_id=c.person_id,
        client_name=names[c.id], summary=c.summary, status=c.status, opened_at=c.opened_at, opened_by=c.opened_by,
        assigned_to=c.assigned_to, closed_at=c.closed_at, closed_by=c.closed_by, outcome=c.outcome, outcome_note=c.outcome_note,
        overdue=items[c.id][1], open_items=OpenItems(**items[c.id][0]),
    ) for c in cases]


async def case_read(session: AsyncSession, case: Case) -> CaseRead:
    return (await case_reads(session, [case]))[0]


async def open_case(session: AsyncSession, actor: Principal, body: CaseCreate) -> CaseRead:
    household = await load_household(session, actor, body.household_id)
    person = member_of(household, body.person_id, "#/person_id")
    if body.assigned_to is not None:
        assignee = await check_assignee(session, household.office_id, body.assigned_to, "#/assigned_to")
    else:
        assignee = actor.id if actor.role in (Role.clerk, Role.supervisor) else None
    await _refuse_a_second_open_case(session, household.id, body.person_id)
    now = clock.now()
    case = Case(office_id=household.office_id, household_id=household.id, person_id=body.person_id, summary=body.summary,
                status=CaseStatus.open, opened_at=now, opened_by=actor.id, assigned_to=assignee)
    session.add(case)
    await session.flush()
    add_timeline_entry(session, case.id, actor, "case.opened", "case", case.id, summary=body.summary,
                       assigned_to=str(assignee) if assignee else None)
    audit.record(session, actor, action="create", entity_type="case", entity_id=case.id, office_id=case.office_id,
                 details={"household_id": str(household.id), "person_id": str(body.person_id) if body.person_id else None})
    office = await office_of(session, case.office_id)
    today = clock.today()
    head = head_of(household)
    dimensions = (activity.person_dimensions(person, household, today, head) if person
                  else activity.household_dimensions(household, today, head))
    activity.emit(session, "case.opened", office_code=office.code, household_id=household.id, person_id=body.person_id,
                  dimensions=dimensions, case=activity.pseudonym("case", case.id))
    # A new case has nothing in it yet: no need to count.
    return CaseRead(
        id=case.id, version=case.version, office_code=office.code, household_id=household.id, person_id=case.person_id,
        client_name=person_name(person or head), summary=case.summary, status=case.status, opened_at=case.opened_at,
        opened_by=case.opened_by, assigned_to=case.assigned_to, closed_at=None, closed_by=None, outcome=None, outcome_note=None,
        overdue=False, open_items=OpenItems(applications=0, referrals=0, follow_ups=0, grievances=0))


async def get_case(session: AsyncSession, actor: Principal, settings, case_id: uuid.UUID) -> CaseRead:
    case = await load_case(session, actor, case_id)
    await referrals.expire_due(session, settings, case_id=case.id)
    audit.record(session, actor, action="read", entity_type="case", entity_id=case.id, office_id=case.office_id,
                 details={"household_id": str(case.household_id)})
    return await case_read(session, case)


async def list_cases(session: AsyncSession, actor: Principal, *, status: CaseStatus | None, assigned_to: str | None,
                     overdue: bool | None, household_id: uuid.UUID | None, person_id: uuid.UUID | None,
                     limit: int, offset: int) -> tuple[list[CaseRead], int]:
    query = scoped(select(Case), Case, actor)
    if status is not None:
        query = query.where(Case.status == status)
    if assigned_to is not None:
        query = query.where(Case.assigned_to == (actor.id if assigned_to == "me" else uuid.UUID(assigned_to)))
    if household_id is not None:
        query = query.where(Case.household_id == household_id)
    if person_id is not None:
        query = query.where(Case.person_id == person_id)
    if overdue is not None:
        late = or_(*_overdue_conditions(clock.today()))
        query = query.where(late if overdue else not_(late))
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    cases = list((await session.execute(query.order_by(Case.opened_at.desc(), Case.id.desc()).limit(limit).offset(offset))).scalars())
    audit.record(session, actor, action="search", entity_type="case", entity_id=None, office_id=actor.office_id,
                 details={"filters": {"status": status, "assigned_to": assigned_to, "overdue": overdue,
                                      "household_id": str(household_id) if household_id else None,
                                      "person_id": str(person_id) if person_id else None},
                          "results": [str(c.id) for c in cases], "total": total})
    return await case_reads(session, cases), total


async def open_items_of(session: AsyncSession, case_id: uuid.UUID) -> list[dict[str, Any]]:
    """What keeps a case from closing, each named."""
    items: list[dict[str, Any]] = []
    for row in (await session.execute(select(Application.id, Application.reference, Application.scheme_code, Application.status)
                                      .where(Application.case_id == case_id, Application.status.in_(OPEN_APPLICATION)))):
        items.append({"type": "application", "id": str(row.id), "reference": row.reference, "scheme_code": row.scheme_code,
                      "status": row.status})
    for row in (await session.execute(select(Referral.id, Referral.reference, Referral.agency, Referral.status)
                                      .where(Referral.case_id == case_id, Referral.status.in_(OPEN_REFERRAL)))):
        items.append({"type": "referral", "id": str(row.id), "reference": row.reference, "agency": row.agency, "status": row.status})
    for row in (await session.execute(select(FollowUp.id, FollowUp.due_date, FollowUp.status)
                                      .where(FollowUp.case_id == case_id, FollowUp.status == FollowUpStatus.open))):
        items.append({"type": "follow_up", "id": str(row.id), "due_date": row.due_date.isoformat(), "status": row.status})
    for row in (await session.execute(select(Grievance.id, Grievance.reference, Grievance.status)
                                      .where(Grievance.case_id == case_id, Grievance.status.in_(OPEN_GRIEVANCE)))):
        items.append({"type": "grievance", "id": str(row.id), "reference": row.reference, "status": row.status})
    return items


def _describe(items: list[dict[str, Any]]) -> str:
    parts = []
    for item in items:
        label = item.get("reference") or f"due {item.get('due_date')}"
        parts.append(f"{item['type'].replace('_', '-')} {label} ({item['status']})")
    return "; ".join(parts)


async def update_case(session: AsyncSession, actor: Principal, settings, case_id: uuid.UUID, body: CaseUpdate,
                      if_match: str | None) -> CaseRead:
    case = await load_case(session, actor, case_id, lock=True)
    check_if_match(if_match, case.version)
    changes = body.model_dump(exclude_unset=True)
    wanted = changes.get("status")
    if case.status == CaseStatus.closed and wanted != CaseStatus.open:
        raise Conflict("The case is closed; reopen it first (status: open).", current_status=case.status)
    if not changes:
        return await case_read(session, case)
    if "assigned_to" in changes and changes["assigned_to"] != case.assigned_to:
        assignee = changes["assigned_to"]
        if assignee is not None:
            await check_assignee(session, case.office_id, assignee, "#/assigned_to")
        case.assigned_to = assignee
        add_timeline_entry(session, case.id, actor, "case.assigned", "case", case.id,
                           assigned_to=str(assignee) if assignee else None)
    if "summary" in changes:
        case.summary = changes["summary"]
    if wanted is not None:
        await change_status(session, actor, settings, case, wanted, outcome=body.outcome, outcome_note=body.outcome_note)
    case.updated_at = clock.now()
    await session.flush()
    audit.record(session, actor, action="update", entity_type="case", entity_id=case.id, office_id=case.office_id,
                 details={"fields": sorted(changes)})
    return await case_read(session, case)


async def change_status(session: AsyncSession, actor: Principal, settings, case: Case, wanted: CaseStatus, *,
                        outcome: str | None = None, outcome_note: str | None = None) -> None:
    """The one way a case's status changes, whoever asks and through whichever route: the state machine
    (CASE_TRANSITIONS), who may (reopening: supervisors and admins), and what must hold first (closing:
    nothing open inside; reopening: no other open case for the client). `case` is loaded with lock=True."""
    if wanted not in CASE_TRANSITIONS[case.status]:
        raise illegal_transition("case", case.status, wanted, CASE_TRANSITIONS[case.status])
    now = clock.now()
    if wanted == CaseStatus.closed:
        await referrals.expire_due(session, settings, case_id=case.id)
        still_open = await open_items_of(session, case.id)
        if still_open:
            raise Conflict(f"The case cannot close while something in it is open: {_describe(still_open)}.",
                           open_items=still_open)
        case.status, case.closed_at, case.closed_by = CaseStatus.closed, now, actor.id
        case.outcome, case.outcome_note = outcome, outcome_note
        add_timeline_entry(session, case.id, actor, "case.closed", "case", case.id, outcome=outcome, note=outcome_note)
        office = await office_of(session, case.office_id)
        activity.emit(session, "case.closed", office_code=office.code, household_id=case.household_id,
                      person_id=case.person_id, dimensions=await subject_dimensions(session, case.household_id, case.person_id),
                      case=activity.pseudonym("case", case.id), outcome=outcome, days_open=days_since(case.opened_at, now))
    elif case.status == CaseStatus.closed:
        if actor.role not in REOPENERS:
            raise Forbidden("Only a supervisor may reopen a closed case.")
        await _refuse_a_second_open_case(session, case.household_id, case.person_id)
        case.status, case.closed_at, case.closed_by, case.outcome, case.outcome_note = CaseStatus.open, None, None, None, None
        add_timeline_entry(session, case.id, actor, "case.reopened", "case", case.id)
    else:
        add_timeline_entry(session, case.id, actor,
                           "case.waiting" if wanted == CaseStatus.waiting else "case.resumed", "case", case.id)
        case.status = wanted


# ---- notes ----------------------------------------------------------------------------------------------


def note_read(note: CaseNote, actor: Principal) -> NoteRead:
    withheld = note.confidential and not may_read_confidential(actor)
    return NoteRead(id=note.id, case_id=note.case_id, author_id=note.author_id, created_at=note.created_at,
                    confidential=note.confidential, text=None if withheld else note.text, withheld=withheld)


async def add_note(session: AsyncSession, actor: Principal, case_id: uuid.UUID, body: NoteCreate) -> NoteRead:
    case = await load_case(session, actor, case_id)
    note = CaseNote(case_id=case.id, office_id=case.office_id, author_id=actor.id, text=body.text,
                    confidential=body.confidential, created_at=clock.now())
    session.add(note)
    await session.flush()
    add_timeline_entry(session, case.id, actor, "note.added", "note", note.id, confidential=body.confidential)
    audit.record(session, actor, action="create", entity_type="case_note", entity_id=note.id, office_id=case.office_id,
                 details={"case_id": str(case.id), "confidential": body.confidential})
    return note_read(note, actor)


async def list_notes(session: AsyncSession, actor: Principal, case_id: uuid.UUID) -> list[NoteRead]:
    case = await load_case(session, actor, case_id)
    notes = (await session.execute(select(CaseNote).where(CaseNote.case_id == case.id)
                                   .order_by(CaseNote.created_at, CaseNote.id))).scalars().all()
    audit.record(session, actor, action="read", entity_type="case_note", entity_id=None, office_id=case.office_id,
                 details={"case_id": str(case.id), "notes": [str(n.id) for n in notes]})
    return [note_read(n, actor) for n in notes]


# ---- the timeline ----------------------------------------------------------------------------------------


async def timeline(session: AsyncSession, actor: Principal, settings, case_id: uuid.UUID, *, limit: int,
                   offset: int) -> tuple[list[TimelineEntry], int]:
    """Everything that happened in the case, oldest first: its own rows, and the household's screenings
    from the day the case was opened until it closed (a client is screened, then the case is opened,
    on the same visit)."""
    case = await load_case(session, actor, case_id)
    await referrals.expire_due(session, settings, case_id=case.id)
    events = (await session.execute(select(CaseEvent).where(CaseEvent.case_id == case.id)
                                    .order_by(CaseEvent.at, CaseEvent.id))).scalars().all()
    entries = [(e.at, 1, e.id, TimelineEntry(at=e.at, kind=e.kind, subject_type=e.subject_type, subject_id=e.subject_id,
                                             actor=e.actor_username, details=dict(e.details))) for e in events]
    notes = {n.id: n for n in (await session.execute(select(CaseNote).where(CaseNote.case_id == case.id))).scalars()}
    for _, _, _, entry in entries:
        if entry.kind == "note.added" and entry.subject_id in notes:
            read = note_read(notes[entry.subject_id], actor)
            entry.details |= {"text": read.text, "withheld": read.withheld}
    screenings = select(Screening.id, Screening.screened_at, User.username).outerjoin(User, User.id == Screening.screened_by).where(
        Screening.household_id == case.household_id, Screening.screened_at >= start_of_local_day(case.opened_at))
    if case.closed_at is not None:
        screenings = screenings.where(Screening.screened_at <= case.closed_at)
    screened = (await session.execute(screenings)).all()
    if screened:
        counts: dict[uuid.UUID, dict[str, int]] = {}
        for screening_id, outcome, count in await session.execute(
                select(ScreeningDetermination.screening_id, ScreeningDetermination.outcome, func.count())
                .where(ScreeningDetermination.screening_id.in_([s.id for s in screened]))
                .group_by(ScreeningDetermination.screening_id, ScreeningDetermination.outcome)):
            counts.setdefault(screening_id, {})[outcome] = count
        for s in screened:
            entries.append((s.screened_at, 0, 0, TimelineEntry(
                at=s.screened_at, kind="screening.completed", subject_type="screening", subject_id=s.id, actor=s.username,
                details={"outcomes": counts.get(s.id, {})})))
    entries.sort(key=lambda e: e[:3])
    audit.record(session, actor, action="read", entity_type="case_timeline", entity_id=case.id, office_id=case.office_id,
                 details={"entries": len(entries)})
    return [e[3] for e in entries[offset:offset + limit]], len(entries)

