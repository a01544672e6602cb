"""Follow-ups: the clerk's work queue. A follow-up is a dated task in a case (call the client back,
check that the NEA saw them...); open -> completed (with a note of what was done) | cancelled."""

import uuid
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import clock
from app.principal import Principal
from app.errors import InvalidInput
from app.etag import check_if_match
from app.models import FollowUp
from app.schemas.cases import FollowUpCreate, FollowUpRead, FollowUpUpdate
from app.services import activity, audit
from app.services.casework import (
    add_timeline_entry,
    case_for_new_work,
    check_assignee,
    illegal_transition,
    load_case,
    local_date,
    office_of,
    subject_dimensions,
)
from app.services.scoping import load_scoped, scoped
from app.vocabulary import FollowUpStatus, Role

TRANSITIONS: dict[str, set[str]] = {
    FollowUpStatus.open: {FollowUpStatus.completed, FollowUpStatus.cancelled},
    FollowUpStatus.completed: set(),
    FollowUpStatus.cancelled: set(),
}


async def follow_up_read(session: AsyncSession, follow_up: FollowUp) -> FollowUpRead:
    office = await office_of(session, follow_up.office_id)
    return FollowUpRead(
        id=follow_up.id, version=follow_up.version, case_id=follow_up.case_id, office_code=office.code,
        due_date=follow_up.due_date, action=follow_up.action, assigned_to=follow_up.assigned_to, status=follow_up.status,
        overdue=follow_up.status == FollowUpStatus.open and clock.today() > follow_up.due_date,
        created_by=follow_up.created_by, created_at=follow_up.created_at, completed_at=follow_up.completed_at,
        completed_by=follow_up.completed_by, note=follow_up.note)


async def load_follow_up(session: AsyncSession, actor: Principal, follow_up_id: uuid.UUID, *, lock: bool = False) -> FollowUp:
    return await load_scoped(session, actor, FollowUp, follow_up_id, missing="No such follow-up.", lock=lock)


def _check_due(due: date) -> None:
    if due < clock.today():
        raise InvalidInput("The due date is in the past.", field="#/due_date")


async def create(session: AsyncSession, actor: Principal, case_id: uuid.UUID, body: FollowUpCreate) -> FollowUpRead:
    case = await case_for_new_work(session, actor, case_id)
    _check_due(body.due_date)
    if body.assigned_to is not None:
        assignee = await check_assignee(session, case.office_id, body.assigned_to, "#/assigned_to")
    else:
        assignee = case.assigned_to or (actor.id if actor.role in (Role.clerk, Role.supervisor) else None)
    now = clock.now()
    follow_up = FollowUp(case_id=case.id, office_id=case.office_id, due_date=body.due_date, action=body.action,
                         assigned_to=assignee, status=FollowUpStatus.open, created_by=actor.id, created_at=now, updated_at=now)
    session.add(follow_up)
    await session.flush()
    add_timeline_entry(session, case.id, actor, "follow_up.created", "follow_up", follow_up.id,
                       due_date=body.due_date.isoformat(),
                       action=body.action, assigned_to=str(assignee) if assignee else None)
    audit.record(session, actor, action="create", entity_type="follow_up", entity_id=follow_up.id, office_id=case.office_id,
                 details={"case_id": str(case.id), "due_date": body.due_date.isoformat()})
    return await follow_up_read(session, follow_up)


async def get_follow_up(session: AsyncSession, actor: Principal, follow_up_id: uuid.UUID) -> FollowUpRead:
    follow_up = await load_follow_up(session, actor, follow_up_id)
    audit.record(session, actor, action="read", entity_type="follow_up", entity_id=follow_up.id, office_id=follow_up.office_id,
                 details={"case_id": str(follow_up.case_id)})
    return await follow_up_read(session, follow_up)


async def list_follow_ups(session: AsyncSession, actor: Principal, *, due_before: date | None, status: FollowUpStatus | None,
                          assigned_to: str | None, case_id: uuid.UUID | None, overdue: bool | None, limit: int,
                          offset: int) -> tuple[list[FollowUpRead], int]:
    """The office's queue, soonest due first. `due_before` includes that day (what is due by then)."""
    query = scoped(select(FollowUp), FollowUp, actor)
    if due_before is not None:
        query = query.where(FollowUp.due_date <= due_before)
    if status is not None:
        query = query.where(FollowUp.status == status)
    if assigned_to is not None:
        query = query.where(FollowUp.assigned_to == (actor.id if assigned_to == "me" else uuid.UUID(assigned_to)))
    if case_id is not None:
        query = query.where(FollowUp.case_id == case_id)
    if overdue is not None:
        late = (FollowUp.status == FollowUpStatus.open) & (FollowUp.due_date < clock.today())
        query = query.where(late if overdue else ~late)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = list((await session.execute(query.order_by(FollowUp.due_date, FollowUp.created_at, FollowUp.id)
                                       .limit(limit).offset(offset))).scalars())
    audit.record(session, actor, action="search", entity_type="follow_up", entity_id=None, office_id=actor.office_id,
                 details={"filters": {"due_before": due_before.isoformat() if due_before else None, "status": status,
                                      "assigned_to": assigned_to, "case_id": str(case_id) if case_id else None},
                          "results": [str(f.id) for f in rows], "total": total})
    return [await follow_up_read(session, f) for f in rows], total


async def update(session: AsyncSession, actor: Principal, follow_up_id: uuid.UUID, body: FollowUpUpdate,
                 if_match: str | None) -> FollowUpRead:
    follow_up = await load_follow_up(session, actor, follow_up_id, lock=True)
    check_if_match(if_match, follow_up.version)
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        return await follow_up_read(session, follow_up)
    if follow_up.status != FollowUpStatus.open:
        raise illegal_transition("follow-up", follow_up.status, changes.get("status") or "changed", set())
    now = clock.now()
    if "due_date" in changes:
        if body.due_date is None:
            raise InvalidInput("A follow-up keeps a due date.", field="#/due_date")
        _check_due(body.due_date)
        follow_up.due_date = body.due_date
    if "action" in changes:
        if body.action is None:
            raise InvalidInput("A follow-up says what to do.", field="#/action")
        follow_up.action = body.action
    if "assigned_to" in changes:
        follow_up.assigned_to = (await check_assignee(session, follow_up.office_id, body.assigned_to, "#/assigned_to")
                                 if body.assigned_to is not None else None)
    if body.note is not None:
        follow_up.note = body.note
    if body.status is not None:
        if body.status not in TRANSITIONS[follow_up.status]:
            raise illegal_transition("follow-up", follow_up.status, body.status, TRANSITIONS[follow_up.status])
        follow_up.status = body.status
        follow_up.completed_at, follow_up.completed_by = now, actor.id
        overdue = local_date(now) > follow_up.due_date
        add_timeline_entry(session, follow_up.case_id, actor, f"follow_up.{body.status}", "follow_up", follow_up.id,
                           note=body.note, due_date=follow_up.due_date.isoformat(), overdue=overdue)
        if body.status == FollowUpStatus.completed:
            case = await load_case(session, actor, follow_up.case_id)
            office = await office_of(session, follow_up.office_id)
            activity.emit(session, "follow_up.completed", office_code=office.code, household_id=case.household_id,
                          person_id=case.person_id, dimensions=await subject_dimensions(session, case.household_id, case.person_id),
                          follow_up=activity.pseudonym("follow_up", follow_up.id), overdue=overdue)
    else:
        add_timeline_entry(session, follow_up.case_id, actor, "follow_up.changed", "follow_up", follow_up.id,
                           fields=sorted(changes), due_date=follow_up.due_date.isoformat())
    follow_up.updated_at = now
    await session.flush()
    audit.record(session, actor, action="update", entity_type="follow_up", entity_id=follow_up.id,
                 office_id=follow_up.office_id, details={"fields": sorted(changes)})
    return await follow_up_read(session, follow_up)
