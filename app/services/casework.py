"""The casework kit: what the case-management services (cases, applications, referrals, follow-ups,
grievances) share. Case loading, reference numbers, timeline entries, local dates, transition errors,
who a record is about. It imports none of those services, so each of them can import it (and `cases`
can import the others) without a cycle."""

import uuid
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app import clock
from app.errors import Conflict, InvalidInput
from app.models import Case, CaseEvent, Household, Office, Person, ReferenceCounter, User
from app.principal import Principal
from app.services import activity
from app.services.households import head_of
from app.services.scoping import load_scoped
from app.upsert import dialect_insert
from app.vocabulary import ApplicationStatus, CaseStatus, GrievanceStatus, ReferralStatus, Role

OPEN_CASE = (CaseStatus.open, CaseStatus.waiting)
OPEN_APPLICATION = (ApplicationStatus.submitted, ApplicationStatus.pending_information)
OPEN_REFERRAL = (ReferralStatus.issued, ReferralStatus.accepted)
OPEN_GRIEVANCE = (GrievanceStatus.received, GrievanceStatus.in_review, GrievanceStatus.escalated)


def local_date(moment: datetime) -> date:
    """The calendar day of an instant in the offices' time zone: deadlines are judged there."""
    return moment.astimezone(clock.timezone()).date()


def days_since(start: datetime, end: datetime) -> int:
    return max(0, (local_date(end) - local_date(start)).days)


def start_of_local_day(moment: datetime) -> datetime:
    return datetime.combine(local_date(moment), time.min, tzinfo=clock.timezone())


def may_read_confidential(actor: Principal) -> bool:
    return actor.role in (Role.supervisor, Role.admin)


def illegal_transition(what: str, current: str, wanted: str, allowed: set[str]) -> Conflict:
    names = sorted(str(s) for s in allowed)
    then = ", ".join(names) if names else "nothing (it is final)"
    return Conflict(f"A {what} that is {current} cannot become {wanted}; it can become: {then}.",
                    current_status=str(current), allowed_transitions=names)


async def office_of(session: AsyncSession, office_id: uuid.UUID) -> Office:
    return await session.get(Office, office_id)


async def next_reference(session: AsyncSession, office: Office, kind: str, on: date) -> str:
    """SR-ACH-2026-A00042: the office, the year, the kind and the next number. The counter row is taken
    by an upsert that returns the new value: concurrent requests of one office wait for each other on
    that row (PostgreSQL) or on the database's write lock (SQLite), and a failed request gives its
    number back by rolling back."""
    counter = ReferenceCounter.__table__
    statement = (dialect_insert(session, ReferenceCounter)
                 .values(office_id=office.id, kind=kind, year=on.year, last=1)
                 .on_conflict_do_update(index_elements=["office_id", "kind", "year"], set_={"last": counter.c.last + 1})
                 .returning(counter.c.last))
    number = (await session.execute(statement)).scalar_one()
    return f"{office.code}-{on.year}-{kind}{number:05d}"


def add_timeline_entry(session: AsyncSession, case_id: uuid.UUID, actor: Principal | None, kind: str, subject_type: str,
           subject_id: uuid.UUID | None, **details: Any) -> None:
    """A row of the case's timeline. Never a confidential note's text."""
    session.add(CaseEvent(case_id=case_id, at=clock.now(), actor_id=actor.id if actor else None,
                          actor_username=actor.username if actor else None, kind=kind, subject_type=subject_type,
                          subject_id=subject_id, details={k: v for k, v in details.items() if v is not None}))


async def household_with_members(session: AsyncSession, household_id: uuid.UUID) -> Household:
    return (await session.execute(select(Household).options(selectinload(Household.members))
                                  .where(Household.id == household_id))).scalar_one()


def member_of(household: Household, person_id: uuid.UUID | None, pointer: str) -> Person | None:
    if person_id is None:
        return None
    person = next((m for m in household.members if m.id == person_id), None)
    if person is None:
        raise InvalidInput("This person is not a member of the case's household.", field=pointer)
    return person


async def subject_dimensions(session: AsyncSession, household_id: uuid.UUID, person_id: uuid.UUID | None) -> dict[str, Any]:
    """The breakdowns of an event about a person (theirs) or a household (the household's)."""
    household = await household_with_members(session, household_id)
    today = clock.today()
    head = head_of(household)
    person = next((m for m in household.members if m.id == person_id), None) if person_id else None
    if person is not None:
        return activity.person_dimensions(person, household, today, head)
    return activity.household_dimensions(household, today, head)


async def check_assignee(session: AsyncSession, office_id: uuid.UUID, user_id: uuid.UUID, pointer: str) -> uuid.UUID:
    user = await session.get(User, user_id)
    if user is None or not user.is_active or user.office_id != office_id or user.role not in (Role.clerk, Role.supervisor):
        raise InvalidInput("Assign to an active clerk or supervisor of the case's office.", field=pointer)
    return user.id


def person_name(person: Person | None) -> str | None:
    return f"{person.family_name} {person.given_name}" if person is not None else None


async def client_of(session: AsyncSession, household_id: uuid.UUID, person_id: uuid.UUID | None) -> Person | None:
    """Who a record is about, by name: the member, or for a household's record its head."""
    if person_id is not None:
        return await session.get(Person, person_id)
    return head_of(await household_with_members(session, household_id))


async def staff_name(session: AsyncSession, user_id: uuid.UUID) -> str:
    """How a printable names the member of staff who received or issued it."""
    user = await session.get(User, user_id)
    return (user.full_name or user.username) if user else ""


async def load_case(session: AsyncSession, actor: Principal, case_id: uuid.UUID, *, lock: bool = False) -> Case:
    """The case, if the caller's office may see it. With `lock` (for_change): whatever changes the case's
    status, or adds work to it, takes turns on its row."""
    return await load_scoped(session, actor, Case, case_id, missing="No such case.", lock=lock)


async def case_for_new_work(session: AsyncSession, actor: Principal, case_id: uuid.UUID) -> Case:
    """The case an application, a referral or a follow-up is added to: an open one, locked, so that a
    close running at the same moment either sees the new work (and is refused) or has closed the case
    first (and the work is refused): no closed case holds open work."""
    case = await load_case(session, actor, case_id, lock=True)
    if case.status == CaseStatus.closed:
        raise Conflict("The case is closed; reopen it first (PATCH status: open).", current_status=case.status)
    return case


async def lock_client(session: AsyncSession, household_id: uuid.UUID) -> None:
    """A client has one open case, and one open application per scheme: the requests that check and then
    write these take turns on the household's row (PostgreSQL; SQLite's writers take turns anyway), so
    the second sees what the first wrote and is refused as it would be a moment later. Taken after the
    case's row (load_case with lock), never before it."""
    await session.execute(select(Household.id).where(Household.id == household_id).with_for_update(key_share=True))
