"""Grievances and appeals (R202 para. 7: impartial, transparent, simple, rapid, accessible, free).

received -> in_review -> resolved | escalated | rejected; escalated -> in_review at the next level.
Each category has its answer deadline in days (GUICHET_GRIEVANCE_SLA_DAYS), counted again from each
escalation. An appeal contests a decided application within GUICHET_APPEAL_WINDOW_DAYS of its
decision; it is resolved (upheld or not) or rejected by a supervisor who did not take the decision."""

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import case as when
from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import clock, printables
from app.principal import Principal
from app.errors import Conflict, Forbidden, InvalidInput
from app.etag import check_if_match
from app.models import Application, Case, Grievance, Office, Person, User
from app.schemas.cases import (
    ComplainantRead,
    GrievanceAcknowledgementRead,
    GrievanceCreate,
    GrievanceRead,
    GrievanceUpdate,
)
from app.services import activity, audit
from app.services.casework import (
    OPEN_GRIEVANCE,
    add_timeline_entry,
    illegal_transition,
    load_case,
    local_date,
    may_read_confidential,
    next_reference,
    office_of,
    person_name,
    staff_name,
    subject_dimensions,
)
from app.services.persons import load_person
from app.services.scoping import load_scoped, scoped
from app.vocabulary import ApplicationStatus, ComplainantKind, GrievanceCategory, GrievanceStatus, Role, WaitingWith

TRANSITIONS: dict[str, set[str]] = {
    GrievanceStatus.received: {GrievanceStatus.in_review},
    GrievanceStatus.in_review: {GrievanceStatus.resolved, GrievanceStatus.escalated, GrievanceStatus.rejected},
    GrievanceStatus.escalated: {GrievanceStatus.in_review},
    GrievanceStatus.resolved: set(),
    GrievanceStatus.rejected: set(),
}
CLOSING = (GrievanceStatus.resolved, GrievanceStatus.rejected)


def is_overdue(grievance: Grievance) -> bool:
    return grievance.status in OPEN_GRIEVANCE and clock.today() > grievance.sla_due_date


def _waiting_with():
    """Who acts next on an open grievance, as SQL (the read and the list's filter): an appeal waits with an
    admin when its office has no active supervisor besides the one who took the decision under appeal
    (impartiality bars that one, and nobody else there may decide it); anything else open, with the office.
    Judged now, from the office's staff now: a supervisor who joins takes the appeal back to the office."""
    decider = (select(Application.decided_by).where(Application.id == Grievance.application_id)
               .correlate(Grievance).scalar_subquery())
    no_supervisor = ~exists().where(User.office_id == Grievance.office_id, User.role == Role.supervisor,
                                    User.is_active.is_(True), User.id != decider)
    is_open = Grievance.status.in_(OPEN_GRIEVANCE)
    return when((is_open & (Grievance.category == GrievanceCategory.appeal) & no_supervisor, WaitingWith.admin.value),
                (is_open, WaitingWith.office.value), else_=None)


WAITING_WITH = _waiting_with()


async def waiting_with(session: AsyncSession, grievance: Grievance) -> WaitingWith | None:
    found = await session.scalar(select(WAITING_WITH).where(Grievance.id == grievance.id))
    return WaitingWith(found) if found else None


async def grievance_read(session: AsyncSession, grievance: Grievance) -> GrievanceRead:
    office = await office_of(session, grievance.office_id)
    application_reference = None
    if grievance.application_id is not None:
        application_reference = (await session.get(Application, grievance.application_id)).reference
    return GrievanceRead(
        id=grievance.id, version=grievance.version, reference=grievance.reference, office_code=office.code,
        case_id=grievance.case_id, category=grievance.category, channel=grievance.channel,
        complainant=ComplainantRead(kind=grievance.complainant_kind, person_id=grievance.person_id,
                                    name=grievance.complainant_name, contact=grievance.complainant_contact),
        description=grievance.description, application_id=grievance.application_id,
        application_reference=application_reference, status=grievance.status,
        waiting_with=await waiting_with(session, grievance), level=grievance.level,
        sla_due_date=grievance.sla_due_date, overdue=is_overdue(grievance), received_at=grievance.received_at,
        received_by=grievance.received_by, resolution=grievance.resolution, upheld=grievance.upheld,
        closed_at=grievance.closed_at)


async def load_grievance(session: AsyncSession, actor: Principal, grievance_id: uuid.UUID, *, lock: bool = False) -> Grievance:
    return await load_scoped(session, actor, Grievance, grievance_id, missing="No such grievance.", lock=lock)


async def _dimensions(session: AsyncSession, grievance: Grievance) -> dict[str, Any]:
    """A registered complainant's breakdowns; otherwise the office's place only (nothing about who)."""
    if grievance.household_id is not None:
        return await subject_dimensions(session, grievance.household_id, grievance.person_id)
    location = (await session.get(Office, grievance.office_id)).location_code
    return {"province": location[:2], "district": location[:4] if len(location) >= 4 else None}


async def lodge(session: AsyncSession, actor: Principal, settings, body: GrievanceCreate) -> GrievanceRead:
    complainant = body.complainant
    person = None
    if complainant.kind is ComplainantKind.person:
        person = await load_person(session, actor, complainant.person_id)
    application = None
    case: Case | None = None
    if body.application_id is not None:
        application = await load_scoped(session, actor, Application, body.application_id, missing="No such application.")
        if application.status not in (ApplicationStatus.approved, ApplicationStatus.rejected):
            raise Conflict(f"Only a decided application can be appealed; {application.reference} is {application.status}.",
                           current_status=application.status)
        last_day = local_date(application.decided_at) + timedelta(days=settings.appeal_window_days)
        if clock.today() > last_day:
            raise Conflict(f"The appeal window ({settings.appeal_window_days} days) against {application.reference} "
                           f"closed on {last_day}.", appeal_window_closed_on=last_day.isoformat())
        if person is not None and person.household_id != application.household_id:
            raise InvalidInput("The appellant is not a member of the applicant's household.", field="#/complainant/person_id")
        case = await load_case(session, actor, application.case_id)
    elif body.case_id is not None:
        case = await load_case(session, actor, body.case_id)
        if person is not None and person.household_id != case.household_id:
            raise InvalidInput("The complainant is not a member of the case's household.", field="#/complainant/person_id")
    office_id = (case.office_id if case else person.office_id if person else actor.office_id)
    if office_id is None:
        raise InvalidInput("Name the case (case_id) or the registered complainant: it says which office answers.",
                           field="#/case_id")
    office = await office_of(session, office_id)
    now = clock.now()
    today = local_date(now)
    sla_due = today + timedelta(days=settings.grievance_sla_days[body.category])
    grievance = Grievance(
        reference=await next_reference(session, office, "G", today), office_id=office_id, case_id=case.id if case else None,
        category=body.category, channel=body.channel, complainant_kind=complainant.kind,
        person_id=person.id if person else None, household_id=person.household_id if person else None,
        complainant_name=complainant.name, complainant_contact=complainant.contact, description=body.description,
        application_id=application.id if application else None, status=GrievanceStatus.received, level=1,
        sla_due_date=sla_due, received_at=now, received_by=actor.id)
    session.add(grievance)
    await session.flush()
    if case is not None:  # recorded in the case, whose status it leaves as it is (cases.change_status)
        add_timeline_entry(session, case.id, actor, "grievance.opened", "grievance", grievance.id,
                           reference=grievance.reference,
                           category=body.category, channel=body.channel, sla_due_date=sla_due.isoformat(),
                           application_reference=application.reference if application else None)
    audit.record(session, actor, action="create", entity_type="grievance", entity_id=grievance.id, office_id=office_id,
                 details={"reference": grievance.reference, "category": body.category, "complainant": complainant.kind})
    activity.emit(session, "grievance.opened", office_code=office.code, household_id=grievance.household_id,
                  person_id=grievance.person_id, dimensions=await _dimensions(session, grievance),
                  grievance=activity.pseudonym("grievance", grievance.id), category=body.category, channel=body.channel,
                  level=1, sla_due_date=sla_due, appeal_scheme=application.scheme_code if application else None)
    return await grievance_read(session, grievance)


async def get_grievance(session: AsyncSession, actor: Principal, grievance_id: uuid.UUID) -> GrievanceRead:
    grievance = await load_grievance(session, actor, grievance_id)
    audit.record(session, actor, action="read", entity_type="grievance", entity_id=grievance.id, office_id=grievance.office_id)
    return await grievance_read(session, grievance)


async def acknowledgement(session: AsyncSession, actor: Principal, grievance_id: uuid.UUID) -> GrievanceAcknowledgementRead:
    """What the complainant takes home: the reference, what was received, and by when it is answered."""
    grievance = await load_grievance(session, actor, grievance_id)
    office = await office_of(session, grievance.office_id)
    if grievance.person_id is not None:
        complainant = person_name(await session.get(Person, grievance.person_id))
    else:
        complainant = grievance.complainant_name  # none when anonymous
    application = await session.get(Application, grievance.application_id) if grievance.application_id else None
    local = grievance.received_at.astimezone(clock.timezone())
    audit.record(session, actor, action="read", entity_type="grievance", entity_id=grievance.id, office_id=grievance.office_id,
                 details={"acknowledgement": True})
    return GrievanceAcknowledgementRead(
        reference=grievance.reference, grievance_id=grievance.id, category=grievance.category, channel=grievance.channel,
        complainant_name=complainant, description=grievance.description,
        application_reference=application.reference if application else None,
        scheme_name=application.scheme_name if application else None, received_at=grievance.received_at,
        received_on=local.date(), received_time=local.strftime("%H:%M"),
        received_by=await staff_name(session, grievance.received_by), office_code=office.code, office_name=office.name,
        status=grievance.status, answer_due_date=grievance.sla_due_date)


def render_acknowledgement(acknowledgement: GrievanceAcknowledgementRead) -> str:
    a = acknowledgement
    appealed = f"{a.application_reference} ({a.scheme_name})" if a.application_reference else None
    return printables.render(
        "grievance_acknowledgement.html", reference=a.reference, category=a.category.replace("_", " "),
        channel=a.channel.replace("_", " "), complainant=a.complainant_name, appealed=appealed, description=a.description,
        received=f"{printables.long_date(a.received_on)}, {a.received_time}", received_by=a.received_by,
        office=f"{a.office_name} ({a.office_code})", status=a.status.replace("_", " "),
        answer_due=printables.long_date(a.answer_due_date))


async def list_grievances(session: AsyncSession, actor: Principal, *, status: GrievanceStatus | None,
                          category: GrievanceCategory | None, overdue: bool | None, case_id: uuid.UUID | None,
                          application_id: uuid.UUID | None, waiting_with: WaitingWith | None, limit: int,
                          offset: int) -> tuple[list[GrievanceRead], int]:
    query = scoped(select(Grievance), Grievance, actor)
    for column, value in ((Grievance.status, status), (Grievance.category, category), (Grievance.case_id, case_id),
                          (Grievance.application_id, application_id), (WAITING_WITH, waiting_with)):
        if value is not None:
            query = query.where(column == value)
    if overdue is not None:
        late = Grievance.status.in_(OPEN_GRIEVANCE) & (Grievance.sla_due_date < clock.today())
        query = query.where(late if overdue else ~late)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    soonest_due = query.order_by(Grievance.sla_due_date, Grievance.received_at, Grievance.id)
    rows = list((await session.execute(soonest_due.limit(limit).offset(offset))).scalars())
    audit.record(session, actor, action="search", entity_type="grievance", entity_id=None, office_id=actor.office_id,
                 details={"filters": {"status": status, "category": category, "overdue": overdue, "waiting_with": waiting_with},
                          "results": [str(g.id) for g in rows], "total": total})
    return [await grievance_read(session, g) for g in rows], total


async def update(session: AsyncSession, actor: Principal, settings, grievance_id: uuid.UUID, body: GrievanceUpdate,
                 if_match: str | None) -> GrievanceRead:
    grievance = await load_grievance(session, actor, grievance_id, lock=True)
    check_if_match(if_match, grievance.version)
    wanted = body.status
    if wanted is None:
        if body.note is None:
            return await grievance_read(session, grievance)
        if grievance.case_id is not None:
            add_timeline_entry(session, grievance.case_id, actor, "grievance.note", "grievance", grievance.id,
                               reference=grievance.reference, note=body.note)
        audit.record(session, actor, action="update", entity_type="grievance", entity_id=grievance.id,
                     office_id=grievance.office_id, details={"note": True})
        return await grievance_read(session, grievance)
    if wanted not in TRANSITIONS[grievance.status]:
        raise illegal_transition("grievance", grievance.status, wanted, TRANSITIONS[grievance.status])
    appeal = grievance.category == GrievanceCategory.appeal
    if appeal and wanted == GrievanceStatus.resolved and body.upheld is None:
        raise InvalidInput("Say whether the appeal is upheld.", field="#/upheld")
    if not appeal and body.upheld is not None:
        raise InvalidInput("Only an appeal is upheld or not.", field="#/upheld")
    if appeal and wanted in CLOSING:
        if not may_read_confidential(actor):  # supervisors and admins
            raise Forbidden("An appeal is decided by a supervisor.")
        decided_by = (await session.get(Application, grievance.application_id)).decided_by
        if decided_by == actor.id:
            waiting = await waiting_with(session, grievance)
            raise Forbidden("You took the decision under appeal; another supervisor decides the appeal"
                            + ("." if waiting == WaitingWith.office else
                               ", and the office has none, so it waits with an admin."), waiting_with=waiting)
    now = clock.now()
    overdue = local_date(now) > grievance.sla_due_date  # at the level that answers now
    if wanted == GrievanceStatus.escalated:
        if grievance.level >= settings.grievance_max_level:
            raise Conflict(f"The grievance is already at the highest level ({grievance.level}).", level=grievance.level)
        grievance.level += 1
        grievance.sla_due_date = local_date(now) + timedelta(days=settings.grievance_sla_days[grievance.category])
    grievance.status = wanted
    if wanted in CLOSING:
        grievance.resolution, grievance.closed_at = body.resolution, now
        grievance.upheld = body.upheld if appeal and wanted == GrievanceStatus.resolved else None
    grievance.updated_at = now
    await session.flush()
    days_open = max(0, (local_date(now) - local_date(grievance.received_at)).days)
    if grievance.case_id is not None:
        add_timeline_entry(session, grievance.case_id, actor, "grievance.status_changed", "grievance", grievance.id,
                           reference=grievance.reference, status=wanted, level=grievance.level, resolution=body.resolution,
                           upheld=grievance.upheld, note=body.note, sla_due_date=grievance.sla_due_date.isoformat())
    audit.record(session, actor, action="update", entity_type="grievance", entity_id=grievance.id, office_id=grievance.office_id,
                 details={"status": wanted, "level": grievance.level})
    office = await office_of(session, grievance.office_id)
    activity.emit(session, "grievance.status_changed", office_code=office.code, household_id=grievance.household_id,
                  person_id=grievance.person_id, dimensions=await _dimensions(session, grievance),
                  grievance=activity.pseudonym("grievance", grievance.id), category=grievance.category,
                  channel=grievance.channel, status=wanted, level=grievance.level, days_open=days_open, overdue=overdue,
                  upheld=grievance.upheld if appeal and wanted == GrievanceStatus.resolved else None,
                  appeal_scheme=(await session.get(Application, grievance.application_id)).scheme_code if appeal else None)
    return await grievance_read(session, grievance)
