"""Referrals to another agency or service, and the receiving agency's side of them.

issued -> accepted | declined | expired; accepted -> completed | declined | expired. The office records
what happens (or the agency does, through a partner account bound to it, see `agencies_of`). A
referral still open `referral_expiry_days` after its due date expires; the expiry is a lazy
transition: it is applied, with its events, whenever referrals are read or changed (a list, a
referral, its case), so no scheduler is needed and nobody sees a referral that should have expired."""

import uuid
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import clock, printables
from app.principal import Principal
from app.errors import InvalidInput, NotFound
from app.etag import check_if_match
from app.models import Referral
from app.schemas.cases import (
    AgencyRead,
    PartnerReferralRead,
    PartnerReferralUpdate,
    ReferralCreate,
    ReferralRead,
    ReferralSlipRead,
    ReferralUpdate,
    ReferredClient,
)
from app.services import activity, audit, consents
from app.services.casework import (
    OPEN_REFERRAL,
    add_timeline_entry,
    case_for_new_work,
    client_of,
    household_with_members,
    illegal_transition,
    local_date,
    member_of,
    next_reference,
    office_of,
    person_name,
    staff_name,
    subject_dimensions,
)
from app.services.households import head_of
from app.services.scoping import for_change, load_scoped, scoped
from app.upsert import dialect_name
from app.vocabulary import ConsentPurpose, ReferralStatus

TRANSITIONS: dict[str, set[str]] = {
    ReferralStatus.issued: {ReferralStatus.accepted, ReferralStatus.declined, ReferralStatus.expired},
    ReferralStatus.accepted: {ReferralStatus.completed, ReferralStatus.declined, ReferralStatus.expired},
    ReferralStatus.completed: set(),
    ReferralStatus.declined: set(),
    ReferralStatus.expired: set(),
}
LONGEST_DUE = timedelta(days=366)


def agencies(settings) -> list[AgencyRead]:
    return [AgencyRead(code=code, name=a.name, services=dict(a.services)) for code, a in settings.referral_agencies.items()]


def agencies_of(settings, actor: Principal) -> list[str]:
    """The agencies a partner account acts for: the one whose code is its scheme code (any case), and
    those that list its scheme code among their partners (the NEA's KH-NEA-JOB account, say)."""
    code = actor.scheme_code or ""
    return [name for name, agency in settings.referral_agencies.items() if name == code.lower() or code in agency.partners]


def is_overdue(referral: Referral) -> bool:
    return referral.status in OPEN_REFERRAL and clock.today() > referral.due_date


async def referral_read(session: AsyncSession, settings, referral: Referral) -> ReferralRead:
    office = await office_of(session, referral.office_id)
    agency = settings.referral_agencies.get(referral.agency)
    return ReferralRead(
        id=referral.id, version=referral.version, reference=referral.reference, case_id=referral.case_id, office_code=office.code,
        household_id=referral.household_id, person_id=referral.person_id, agency=referral.agency,
        agency_name=agency.name if agency else None, service=referral.service,
        service_name=agency.services.get(referral.service) if agency and referral.service else None, reason=referral.reason,
        due_date=referral.due_date, status=referral.status, overdue=is_overdue(referral), issued_at=referral.issued_at,
        issued_by=referral.issued_by, accepted_at=referral.accepted_at, closed_at=referral.closed_at,
        outcome_note=referral.outcome_note)


async def load_referral(session: AsyncSession, actor: Principal, referral_id: uuid.UUID, *, lock: bool = False) -> Referral:
    return await load_scoped(session, actor, Referral, referral_id, missing="No such referral.", lock=lock)


# ---- issuing and changing -----------------------------------------------------------------------------------


async def issue(session: AsyncSession, actor: Principal, settings, case_id: uuid.UUID, body: ReferralCreate) -> ReferralRead:
    case = await case_for_new_work(session, actor, case_id)
    agency = settings.referral_agencies.get(body.agency)
    if agency is None:
        raise InvalidInput(f"There is no agency {body.agency}; GET /api/v1/referral-agencies lists them.", field="#/agency")
    if body.service is not None and body.service not in agency.services:
        raise InvalidInput(f"{agency.name} offers: {', '.join(agency.services)}.", field="#/service")
    today = clock.today()
    if body.due_date < today:
        raise InvalidInput("The due date is in the past.", field="#/due_date")
    if body.due_date > today + LONGEST_DUE:
        raise InvalidInput("The due date is more than a year away.", field="#/due_date")
    household = await household_with_members(session, case.household_id)
    person_id = body.person_id or case.person_id
    person = member_of(household, person_id, "#/person_id")
    office = await office_of(session, case.office_id)
    now = clock.now()
    referral = Referral(reference=await next_reference(session, office, "R", local_date(now)), case_id=case.id,
                        office_id=case.office_id, household_id=household.id, person_id=person_id, agency=body.agency,
                        service=body.service, reason=body.reason, due_date=body.due_date, status=ReferralStatus.issued,
                        issued_at=now, issued_by=actor.id)
    session.add(referral)
    await session.flush()
    add_timeline_entry(session, case.id, actor, "referral.issued", "referral", referral.id,
                       reference=referral.reference, agency=body.agency,
                       service=body.service, due_date=body.due_date.isoformat(), person_id=str(person_id) if person_id else None)
    audit.record(session, actor, action="create", entity_type="referral", entity_id=referral.id, office_id=case.office_id,
                 details={"reference": referral.reference, "agency": body.agency, "case_id": str(case.id)})
    head = head_of(household)
    dimensions = (activity.person_dimensions(person, household, today, head) if person
                  else activity.household_dimensions(household, today, head))
    activity.emit(session, "referral.issued", office_code=office.code, household_id=household.id, person_id=person_id,
                  dimensions=dimensions, referral=activity.pseudonym("referral", referral.id), agency=body.agency,
                  service=body.service, due_date=body.due_date)
    return await referral_read(session, settings, referral)


async def _move(session: AsyncSession, actor: Principal | None, referral: Referral, status: str, note: str | None) -> None:
    if status not in TRANSITIONS[referral.status]:
        raise illegal_transition("referral", referral.status, status, TRANSITIONS[referral.status])
    now = clock.now()
    overdue = local_date(now) > referral.due_date
    referral.status = status
    if status == ReferralStatus.accepted:
        referral.accepted_at = now
    else:
        referral.closed_at = now
    if note is not None:
        referral.outcome_note = note
    referral.updated_at = now
    await session.flush()
    days_open = max(0, (local_date(now) - local_date(referral.issued_at)).days)
    add_timeline_entry(session, referral.case_id, actor, "referral.status_changed", "referral", referral.id,
                       reference=referral.reference, agency=referral.agency, status=status, note=note, overdue=overdue)
    audit.record(session, actor, action="update", entity_type="referral", entity_id=referral.id, office_id=referral.office_id,
                 details={"status": status})
    office = await office_of(session, referral.office_id)
    activity.emit(session, "referral.status_changed", office_code=office.code, household_id=referral.household_id,
                  person_id=referral.person_id, dimensions=await subject_dimensions(session, referral.household_id, referral.person_id),
                  referral=activity.pseudonym("referral", referral.id), agency=referral.agency, status=status,
                  days_open=days_open, overdue=overdue, trigger=activity.trigger_of(actor))


async def update(session: AsyncSession, actor: Principal, settings, referral_id: uuid.UUID, body: ReferralUpdate,
                 if_match: str | None) -> ReferralRead:
    """The office records what the agency did (or moves the due date while the referral is open)."""
    await expire_due(session, settings, office_id=actor.office_scope)
    referral = await load_referral(session, actor, referral_id, lock=True)
    check_if_match(if_match, referral.version)
    if body.due_date is not None:
        if referral.status not in OPEN_REFERRAL:
            raise illegal_transition("referral", referral.status, "re-dated", set())
        if body.due_date < clock.today():
            raise InvalidInput("The due date is in the past.", field="#/due_date")
        if body.due_date > clock.today() + LONGEST_DUE:
            raise InvalidInput("The due date is more than a year away.", field="#/due_date")
        add_timeline_entry(session, referral.case_id, actor, "referral.redated", "referral", referral.id,
                           reference=referral.reference,
                           previous=referral.due_date.isoformat(), due_date=body.due_date.isoformat())
        referral.due_date = body.due_date
        referral.updated_at = clock.now()
        audit.record(session, actor, action="update", entity_type="referral", entity_id=referral.id,
                     office_id=referral.office_id, details={"due_date": body.due_date.isoformat()})
    if body.status is not None:
        await _move(session, actor, referral, body.status, body.note)
    await session.flush()
    return await referral_read(session, settings, referral)


async def expire_due(session: AsyncSession, settings, *, office_id: uuid.UUID | None = None, case_id: uuid.UUID | None = None,
                     agencies: list[str] | None = None) -> int:
    """The lazy expiry: open referrals past due by more than referral_expiry_days become expired, with
    their events, in the caller's transaction. On PostgreSQL rows another request is expiring are
    skipped (it writes their events); SQLite runs one writer at a time."""
    cutoff = clock.today() - timedelta(days=settings.referral_expiry_days)
    query = select(Referral).where(Referral.status.in_(OPEN_REFERRAL), Referral.due_date < cutoff)
    if office_id is not None:
        query = query.where(Referral.office_id == office_id)
    if case_id is not None:
        query = query.where(Referral.case_id == case_id)
    if agencies is not None:
        query = query.where(Referral.agency.in_(agencies))
    if dialect_name(session) == "postgresql":
        query = query.with_for_update(skip_locked=True)
    due = (await session.execute(query.order_by(Referral.due_date, Referral.id).limit(500))).scalars().all()
    for referral in due:
        await _move(session, None, referral, ReferralStatus.expired,
                    f"Expired: still {referral.status} {settings.referral_expiry_days} days after the due date.")
    return len(due)


async def get_referral(session: AsyncSession, actor: Principal, settings, referral_id: uuid.UUID) -> ReferralRead:
    referral = await load_referral(session, actor, referral_id)
    await expire_due(session, settings, case_id=referral.case_id)
    audit.record(session, actor, action="read", entity_type="referral", entity_id=referral.id, office_id=referral.office_id,
                 details={"case_id": str(referral.case_id)})
    return await referral_read(session, settings, referral)


async def list_referrals(session: AsyncSession, actor: Principal, settings, *, status: ReferralStatus | None,
                         agency: str | None, overdue: bool | None, case_id: uuid.UUID | None, limit: int,
                         offset: int) -> tuple[list[ReferralRead], int]:
    await expire_due(session, settings, office_id=actor.office_scope)
    query = scoped(select(Referral), Referral, actor)
    for column, value in ((Referral.status, status), (Referral.agency, agency), (Referral.case_id, case_id)):
        if value is not None:
            query = query.where(column == value)
    if overdue is not None:
        late = Referral.status.in_(OPEN_REFERRAL) & (Referral.due_date < clock.today())
        query = query.where(late if overdue else ~late)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    soonest_first = query.order_by(Referral.due_date, Referral.issued_at, Referral.id)
    rows = list((await session.execute(soonest_first.limit(limit).offset(offset))).scalars())
    audit.record(session, actor, action="search", entity_type="referral", entity_id=None, office_id=actor.office_id,
                 details={"filters": {"status": status, "agency": agency, "overdue": overdue,
                                      "case_id": str(case_id) if case_id else None},
                          "results": [str(r.id) for r in rows], "total": total})
    return [await referral_read(session, settings, r) for r in rows], total


async def slip(session: AsyncSession, actor: Principal, settings, referral_id: uuid.UUID) -> ReferralSlipRead:
    """The referral slip the client carries to the agency: who is referred, to whom, why, and by when."""
    referral = await load_referral(session, actor, referral_id)
    await expire_due(session, settings, case_id=referral.case_id)
    office = await office_of(session, referral.office_id)
    agency = settings.referral_agencies.get(referral.agency)
    audit.record(session, actor, action="read", entity_type="referral", entity_id=referral.id, office_id=referral.office_id,
                 details={"slip": True})
    return ReferralSlipRead(
        reference=referral.reference, referral_id=referral.id, agency=referral.agency,
        agency_name=agency.name if agency else None, service=referral.service,
        service_name=agency.services.get(referral.service) if agency and referral.service else None,
        client_name=person_name(await client_of(session, referral.household_id, referral.person_id)), reason=referral.reason,
        issued_at=referral.issued_at, issued_on=local_date(referral.issued_at),
        issued_by=await staff_name(session, referral.issued_by), office_code=office.code, office_name=office.name,
        due_date=referral.due_date, status=referral.status)


def render_slip(slip: ReferralSlipRead) -> str:
    return printables.render(
        "referral_slip.html", reference=slip.reference, agency=slip.agency_name or slip.agency,
        service=slip.service_name or slip.service, client=slip.client_name, reason=slip.reason,
        issued=printables.long_date(slip.issued_on), issued_by=slip.issued_by, office=f"{slip.office_name} ({slip.office_code})",
        due=printables.long_date(slip.due_date), status=slip.status)


# ---- the receiving agency -----------------------------------------------------------------------------------


async def _partner_referral(session: AsyncSession, actor: Principal, settings, referral_id: uuid.UUID, *,
                            lock: bool = False) -> Referral:
    mine = agencies_of(settings, actor)
    await expire_due(session, settings, agencies=mine)
    query = select(Referral).where(Referral.id == referral_id, Referral.agency.in_(mine))
    referral = (await session.execute(for_change(query, lock))).scalar_one_or_none()
    if referral is None:
        raise NotFound("No such referral to your agency.")
    return referral


async def _partner_read(session: AsyncSession, referral: Referral) -> tuple[PartnerReferralRead, bool]:
    """The client's name and phone go to the agency only with the household's referral_sharing consent."""
    client = None
    if ConsentPurpose.referral_sharing in await consents.purposes(session, referral.household_id):
        person = await client_of(session, referral.household_id, referral.person_id)
        if person is not None:
            client = ReferredClient(name=person_name(person), phone=person.phone)
    office = await office_of(session, referral.office_id)
    return PartnerReferralRead(
        id=referral.id, version=referral.version, reference=referral.reference, office_code=office.code, agency=referral.agency,
        service=referral.service, reason=referral.reason, due_date=referral.due_date, status=referral.status,
        issued_on=local_date(referral.issued_at), client=client), client is not None


async def get_for_partner(session: AsyncSession, actor: Principal, settings, referral_id: uuid.UUID) -> PartnerReferralRead:
    referral = await _partner_referral(session, actor, settings, referral_id)
    read, shared = await _partner_read(session, referral)
    audit.record(session, actor, action="read", entity_type="referral", entity_id=referral.id, office_id=referral.office_id,
                 details={"partner": actor.scheme_code, "client_shared": shared})
    return read


async def list_for_partner(session: AsyncSession, actor: Principal, settings, *, status: ReferralStatus | None, limit: int,
                           offset: int) -> tuple[list[PartnerReferralRead], int]:
    mine = agencies_of(settings, actor)
    await expire_due(session, settings, agencies=mine)
    query = select(Referral).where(Referral.agency.in_(mine))
    query = query.where(Referral.status == status) if status is not None else query.where(Referral.status.in_(OPEN_REFERRAL))
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    soonest_first = query.order_by(Referral.due_date, Referral.issued_at, Referral.id)
    rows = (await session.execute(soonest_first.limit(limit).offset(offset))).scalars().all()
    reads, shared_with = [], []
    for referral in rows:
        read, shared = await _partner_read(session, referral)
        reads.append(read)
        if shared:
            shared_with.append(str(referral.id))
    audit.record_partner_search(session, actor, "referral", rows, total, client_shared=shared_with)
    return reads, total


async def update_as_partner(session: AsyncSession, actor: Principal, settings, referral_id: uuid.UUID,
                            body: PartnerReferralUpdate, if_match: str | None) -> PartnerReferralRead:
    referral = await _partner_referral(session, actor, settings, referral_id, lock=True)
    check_if_match(if_match, referral.version)
    await _move(session, actor, referral, body.status, body.note)
    read, _ = await _partner_read(session, referral)
    return read
