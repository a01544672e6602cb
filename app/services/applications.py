"""Applications: enrolment into a scheme, its receipt, its decision, and sending it to a partner.

An application is filed in a case for a person (person-level scheme) or the household. The latest
screening is consulted: filing against a `not_eligible` verdict needs the clerk's reason, which is
kept and reported (`against_screening`). Who decides depends on the scheme: a scheme reached over
HTTP (an adapter that can `submit`) is sent to its agency, which posts the decision back through the
partner API; any other scheme is decided at the office by a supervisor. Sending happens after the
application is committed (a background task of the request): whatever goes wrong there leaves the
application filed and `submitted`, with its submission flagged `failed` for the clerk to retry."""

import logging
import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import clock, printables
from app.principal import Principal
from app.errors import Conflict, InvalidInput, NotFound
from app.etag import check_if_match
from app.i18n import _
from app.models import Application
from app.schemas.cases import (
    ApplicationCreate,
    ApplicationRead,
    ApplicationUpdate,
    DecisionCreate,
    DecisionRead,
    PartnerApplicationRead,
    ReceiptRead,
    SubmissionRead,
)
from app.schemes.base import SchemeLevel, SubmissionRequest, can_submit
from app.schemes.registry import SchemeRegistry
from app.services import activity, audit, consents
from app.services.casework import (
    OPEN_APPLICATION,
    add_timeline_entry,
    case_for_new_work,
    client_of,
    household_with_members,
    illegal_transition,
    local_date,
    lock_client,
    member_of,
    next_reference,
    office_of,
    person_name,
    staff_name,
    subject_dimensions,
)
from app.services.households import head_of
from app.services.scoping import for_change, load_scoped, scoped
from app.services.screening import build_request, latest_determination
from app.vocabulary import ApplicationRoute, ApplicationStatus, ConsentPurpose, Outcome, SubmissionState

logger = logging.getLogger("guichet.applications")

TRANSITIONS: dict[str, set[str]] = {
    ApplicationStatus.submitted: {ApplicationStatus.pending_information, ApplicationStatus.approved,
                                  ApplicationStatus.rejected, ApplicationStatus.withdrawn},
    ApplicationStatus.pending_information: {ApplicationStatus.submitted, ApplicationStatus.withdrawn},
    ApplicationStatus.approved: set(),
    ApplicationStatus.rejected: set(),
    ApplicationStatus.withdrawn: set(),
}


# ---- reading ----------------------------------------------------------------------------------------------


def is_overdue(application: Application, today: date) -> bool:
    return application.status in OPEN_APPLICATION and today > application.decision_due_date


async def application_read(session: AsyncSession, application: Application) -> ApplicationRead:
    office = await office_of(session, application.office_id)
    decision = None
    if application.decided_at is not None:
        decision = DecisionRead(
            decided_at=application.decided_at, decided_by=application.decided_by, decided_by_kind=application.decided_by_kind,
            days_to_decision=application.days_to_decision, within_service_level=application.within_service_level,
            reason_code=application.reason_code, reason_text=application.reason_text, benefit=application.benefit)
    submission = None
    if application.submission_state is not None:
        submission = SubmissionRead(state=application.submission_state, attempts=application.submission_attempts,
                                    error=application.submission_error, sent_at=application.sent_at,
                                    partner_reference=application.partner_reference)
    return ApplicationRead(
        id=application.id, version=application.version, reference=application.reference, case_id=application.case_id,
        office_code=office.code, household_id=application.household_id, person_id=application.person_id,
        scheme_code=application.scheme_code, scheme_name=application.scheme_name, scheme_kind=application.scheme_kind,
        agency=application.agency, route=application.route, status=application.status, submitted_at=application.submitted_at,
        submitted_by=application.submitted_by, service_level_days=application.service_level_days,
        decision_due_date=application.decision_due_date, overdue=is_overdue(application, clock.today()),
        screening_id=application.screening_id, screening_outcome=application.screening_outcome,
        against_screening=application.against_screening, screening_override_reason=application.screening_override_reason,
        decision=decision, submission=submission)


async def load_application(session: AsyncSession, actor: Principal, application_id: uuid.UUID, *,
                           lock: bool = False) -> Application:
    return await load_scoped(session, actor, Application, application_id, missing="No such application.", lock=lock)


async def get_application(session: AsyncSession, actor: Principal, application_id: uuid.UUID) -> ApplicationRead:
    application = await load_application(session, actor, application_id)
    audit.record(session, actor, action="read", entity_type="application", entity_id=application.id,
                 office_id=application.office_id, details={"case_id": str(application.case_id)})
    return await application_read(session, application)


async def list_applications(session: AsyncSession, actor: Principal, *, status: ApplicationStatus | None,
                            scheme_code: str | None, overdue: bool | None, case_id: uuid.UUID | None,
                            household_id: uuid.UUID | None, submission: SubmissionState | None, limit: int,
                            offset: int) -> tuple[list[ApplicationRead], int]:
    query = scoped(select(Application), Application, actor)
    for column, value in ((Application.status, status), (Application.scheme_code, scheme_code),
                          (Application.case_id, case_id), (Application.household_id, household_id),
                          (Application.submission_state, submission)):
        if value is not None:
            query = query.where(column == value)
    if overdue is not None:
        late = Application.status.in_(OPEN_APPLICATION) & (Application.decision_due_date < clock.today())
        query = query.where(late if overdue else ~late)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = list((await session.execute(query.order_by(Application.submitted_at.desc(), Application.id.desc())
                                       .limit(limit).offset(offset))).scalars())
    audit.record(session, actor, action="search", entity_type="application", entity_id=None, office_id=actor.office_id,
                 details={"filters": {"status": status, "scheme_code": scheme_code, "overdue": overdue,
                                      "case_id": str(case_id) if case_id else None, "submission": submission},
                          "results": [str(a.id) for a in rows], "total": total})
    return [await application_read(session, a) for a in rows], total


# ---- filing ----------------------------------------------------------------------------------------------


async def file_application(session: AsyncSession, actor: Principal, settings, registry: SchemeRegistry, case_id: uuid.UUID,
                           body: ApplicationCreate) -> ApplicationRead:
    case = await case_for_new_work(session, actor, case_id)
    adapter = registry.get(body.scheme_code)
    today = clock.today()
    if adapter is None:
        raise InvalidInput(f"There is no scheme {body.scheme_code}; GET /api/v1/schemes lists them.", field="#/scheme_code")
    meta = adapter.metadata
    if meta.version_on(today) is None:
        raise InvalidInput(f"Scheme {meta.code} is not in force today.", field="#/scheme_code")
    household = await household_with_members(session, case.household_id)
    if meta.level is SchemeLevel.person:
        person_id = body.person_id or case.person_id
        if person_id is None:
            raise InvalidInput(f"{meta.name} is for a person: name the applicant (person_id).", field="#/person_id")
        member_of(household, person_id, "#/person_id")
    else:
        if body.person_id is not None:
            raise InvalidInput(f"{meta.name} is for the whole household: leave person_id out.", field="#/person_id")
        person_id = None
    await lock_client(session, household.id)
    duplicate = (await session.execute(select(Application.id, Application.reference).where(
        Application.household_id == household.id, Application.scheme_code == meta.code,
        Application.person_id == person_id if person_id else Application.person_id.is_(None),
        Application.status.in_(OPEN_APPLICATION)).limit(1))).first()
    if duplicate is not None:
        raise Conflict(f"This applicant already has an open application to {meta.name} ({duplicate.reference}).",
                       existing_application=str(duplicate.id), existing_reference=duplicate.reference)
    latest = await latest_determination(session, household_id=household.id, person_id=person_id, scheme_code=meta.code)
    against = latest is not None and latest.outcome == Outcome.not_eligible
    if against and body.against_screening_reason is None:
        failed = [r["message"] for r in latest.reasons if r.get("result") == "failed"]
        raise InvalidInput(
            f"The latest screening ({local_date(latest.screened_at)}) found the applicant not eligible for {meta.name}"
            + (f": {'; '.join(failed)}" if failed else "") + ". File it anyway only with a reason (against_screening_reason).",
            field="#/against_screening_reason", screening_id=str(latest.screening_id),
            failed_reasons=failed)
    office = await office_of(session, case.office_id)
    now = clock.now()
    submitted_on = local_date(now)
    service_level = meta.service_level_days or settings.default_service_level_days
    route = ApplicationRoute.partner if can_submit(adapter) else ApplicationRoute.office
    application = Application(
        reference=await next_reference(session, office, "A", submitted_on), case_id=case.id, office_id=case.office_id,
        household_id=household.id, person_id=person_id, scheme_code=meta.code, scheme_name=meta.name,
        scheme_kind=meta.kind.value, agency=meta.agency, route=route, status=ApplicationStatus.submitted, submitted_at=now,
        submitted_by=actor.id, service_level_days=service_level,
        decision_due_date=submitted_on + timedelta(days=service_level),
        screening_id=latest.screening_id if latest else None, screening_outcome=latest.outcome if latest else None,
        against_screening=against, screening_override_reason=body.against_screening_reason,
        submission_state=SubmissionState.pending if route is ApplicationRoute.partner else None, submission_attempts=0)
    session.add(application)
    await session.flush()
    add_timeline_entry(session, case.id, actor, "application.submitted", "application", application.id,
                       reference=application.reference,
                       scheme_code=meta.code, scheme_name=meta.name, person_id=str(person_id) if person_id else None, route=route,
                       against_screening=against, decision_due_date=application.decision_due_date.isoformat())
    audit.record(session, actor, action="create", entity_type="application", entity_id=application.id, office_id=case.office_id,
                 details={"reference": application.reference, "scheme_code": meta.code, "against_screening": against,
                          "case_id": str(case.id)})
    head = head_of(household)
    person = next((m for m in household.members if m.id == person_id), None)
    dimensions = (activity.person_dimensions(person, household, today, head) if person
                  else activity.household_dimensions(household, today, head))
    activity.emit(session, "application.submitted", office_code=office.code, household_id=household.id, person_id=person_id,
                  dimensions=dimensions, application=activity.pseudonym("application", application.id), scheme=meta.code,
                  scheme_kind=meta.kind, against_screening=against)
    return await application_read(session, application)


# ---- decisions and other transitions ---------------------------------------------------------------------


def _check_transition(application: Application, wanted: str) -> None:
    if wanted not in TRANSITIONS[application.status]:
        raise illegal_transition("application", application.status, wanted, TRANSITIONS[application.status])


async def _decided(session: AsyncSession, actor: Principal, application: Application, status: str, decided_by: str, *,
                   reason_code: str | None, reason_text: str | None, benefit: dict[str, Any] | None) -> None:
    now = clock.now()
    decided_on = local_date(now)
    days = max(0, (decided_on - local_date(application.submitted_at)).days)
    within = decided_on <= application.decision_due_date
    application.status = status
    application.decided_at, application.decided_by, application.decided_by_kind = now, actor.id, decided_by
    application.days_to_decision, application.within_service_level = days, within
    application.reason_code, application.reason_text, application.benefit = reason_code, reason_text, benefit
    application.updated_at = now
    await session.flush()
    add_timeline_entry(session, application.case_id, actor, "application.decided", "application", application.id,
                       reference=application.reference, scheme_code=application.scheme_code, decision=status, decided_by=decided_by,
                       reason_code=reason_code, reason_text=reason_text, benefit=benefit, days_to_decision=days,
                       within_service_level=within)
    audit.record(session, actor, action="decide", entity_type="application", entity_id=application.id,
                 office_id=application.office_id, details={"decision": status, "reason_code": reason_code})
    office = await office_of(session, application.office_id)
    event_benefit = None
    if benefit is not None:
        event_benefit = {k: benefit[k] for k in ("type", "amount", "currency", "frequency") if benefit.get(k) is not None}
    activity.emit(session, "application.decided", office_code=office.code, household_id=application.household_id,
                  person_id=application.person_id,
                  dimensions=await subject_dimensions(session, application.household_id, application.person_id),
                  application=activity.pseudonym("application", application.id), scheme=application.scheme_code,
                  scheme_kind=application.scheme_kind, decision=status, decided_by=decided_by, reason_code=reason_code,
                  days_to_decision=days, within_service_level=within, benefit=event_benefit,
                  trigger=activity.trigger_of(actor))


async def decide(session: AsyncSession, actor: Principal, application_id: uuid.UUID, body: DecisionCreate,
                 if_match: str | None) -> ApplicationRead:
    """A supervisor decides an application of a scheme decided at the office."""
    application = await load_application(session, actor, application_id, lock=True)
    if application.route == ApplicationRoute.partner:
        raise Conflict(f"{application.agency} decides {application.scheme_name}; its decision comes back through the "
                       "partner API.", route=application.route)
    return await _decide(session, actor, application, body, if_match, decided_by="supervisor")


async def decide_as_partner(session: AsyncSession, actor: Principal, application_id: uuid.UUID, body: DecisionCreate,
                            if_match: str | None) -> PartnerApplicationRead:
    """The partner bound to the scheme decides; an application not sent to it is not found."""
    application = await _partner_application(session, actor, application_id, lock=True)
    await _decide(session, actor, application, body, if_match, decided_by="partner")
    return partner_read(application)


async def _decide(session: AsyncSession, actor: Principal, application: Application, body: DecisionCreate,
                  if_match: str | None, *, decided_by: str) -> ApplicationRead:
    check_if_match(if_match, application.version)
    _check_transition(application, body.decision)
    benefit = body.benefit.model_dump(mode="json") if body.benefit else None
    await _decided(session, actor, application, body.decision, decided_by, reason_code=body.reason_code,
                   reason_text=body.reason_text, benefit=benefit)
    return await application_read(session, application)


async def change_status(session: AsyncSession, actor: Principal, application_id: uuid.UUID, body: ApplicationUpdate,
                        if_match: str | None) -> ApplicationRead:
    """The office's transitions: information asked for and received, and the applicant's withdrawal."""
    application = await load_application(session, actor, application_id, lock=True)
    check_if_match(if_match, application.version)
    _check_transition(application, body.status)
    if body.status == ApplicationStatus.withdrawn:
        await _decided(session, actor, application, body.status, "applicant", reason_code=None, reason_text=body.note,
                       benefit=None)
        return await application_read(session, application)
    previous = application.status
    application.status = body.status
    application.updated_at = clock.now()
    await session.flush()
    add_timeline_entry(session, application.case_id, actor, "application.status_changed", "application", application.id,
                       reference=application.reference, previous=previous, status=body.status, note=body.note)
    audit.record(session, actor, action="update", entity_type="application", entity_id=application.id,
                 office_id=application.office_id, details={"status": body.status})
    return await application_read(session, application)


# ---- receipts ----------------------------------------------------------------------------------------------


async def receipt(session: AsyncSession, actor: Principal, settings, application_id: uuid.UUID) -> ReceiptRead:
    application = await load_application(session, actor, application_id)
    office = await office_of(session, application.office_id)
    applicant = await client_of(session, application.household_id, application.person_id)
    due = application.decision_due_date
    # Messages (app/i18n.py): English here and in the record, said in the reader's language when rendered.
    if application.route == ApplicationRoute.partner:
        next_step = _("Your application has been sent to {agency}, which decides on it. A decision is due by {due} "
                      "({days} days).", agency=application.agency, due=due, days=application.service_level_days)
    else:
        next_step = _("A supervisor at {office} decides on your application. A decision is due by {due} ({days} days).",
                      office=office.name, due=due, days=application.service_level_days)
    steps = [
        next_step,
        _("You will be told the decision. If your application is refused, you will be given the reasons in writing."),
        _("You may appeal against the decision within {days} days, free of charge, at any single-window office.",
          days=settings.appeal_window_days),
        _("Keep this receipt: it is your proof of application. Quote the reference {reference} whenever you ask about "
          "it.", reference=application.reference),
    ]
    local = application.submitted_at.astimezone(clock.timezone())
    audit.record(session, actor, action="read", entity_type="application", entity_id=application.id,
                 office_id=application.office_id, details={"receipt": True})
    return ReceiptRead(
        reference=application.reference, application_id=application.id, scheme_code=application.scheme_code,
        scheme_name=application.scheme_name, agency=application.agency, applicant_name=person_name(applicant),
        household_id=application.household_id, submitted_at=application.submitted_at, submitted_on=local.date(),
        submitted_time=local.strftime("%H:%M"), office_code=office.code, office_name=office.name,
        received_by=await staff_name(session, application.submitted_by), status=application.status, decision_due_date=due,
        what_happens_next=steps, appeal_window_days=settings.appeal_window_days)


def render_receipt(receipt: ReceiptRead) -> str:
    return printables.render(
        "receipt.html", reference=receipt.reference, scheme_name=receipt.scheme_name, scheme_code=receipt.scheme_code,
        agency=receipt.agency, applicant=receipt.applicant_name,
        submitted=f"{printables.long_date(receipt.submitted_on)}, {receipt.submitted_time}",
        office=f"{receipt.office_name} ({receipt.office_code})", received_by=receipt.received_by,
        status=receipt.status.replace("_", " "), decision_due=printables.long_date(receipt.decision_due_date),
        next_steps=receipt.what_happens_next)


# ---- sending to a partner ------------------------------------------------------------------------------------


async def request_resend(session: AsyncSession, actor: Principal, application_id: uuid.UUID) -> ApplicationRead:
    """The clerk asks for a failed (or stuck) submission to be sent again."""
    application = await load_application(session, actor, application_id, lock=True)
    if application.route != ApplicationRoute.partner:
        raise Conflict("This application is decided at the office; there is nothing to send.", route=application.route)
    if application.status not in OPEN_APPLICATION:
        raise Conflict(f"The application is {application.status}; there is nothing to send.", current_status=application.status)
    if application.submission_state == SubmissionState.sent:
        raise Conflict(f"{application.agency} already acknowledged this application "
                       f"({application.partner_reference or 'no reference'}).", submission_state=application.submission_state)
    application.submission_state, application.submission_error = SubmissionState.pending, None
    application.updated_at = clock.now()
    await session.flush()
    audit.record(session, actor, action="resend", entity_type="application", entity_id=application.id,
                 office_id=application.office_id, details={"attempts": application.submission_attempts})
    return await application_read(session, application)


async def send_to_partner(sessionmaker: async_sessionmaker, registry: SchemeRegistry, application_id: uuid.UUID,
                          actor: Principal) -> None:
    """Send a committed application to its partner: read what to send in one short transaction, call the
    partner outside any transaction, record the answer in another. Never raises (it runs after the
    answer to the clerk has gone): a failure is recorded on the application."""
    try:
        prepared = await _prepare_submission(sessionmaker, registry, application_id, actor)
        if prepared is None:
            return
        adapter, request = prepared
        result = await adapter.submit(request)
        state = SubmissionState.sent if result.accepted else SubmissionState.failed
        error = None if result.accepted else (result.message or "the partner did not accept the application")
        await _record_submission(sessionmaker, application_id, actor, state, error=error,
                                 partner_reference=result.partner_reference, retryable=result.retryable,
                                 provenance=result.provenance)
    except Exception:  # a bug here must not go unseen, nor lose the application: it stays pending
        logger.exception("sending application %s to its partner failed", application_id)


async def _prepare_submission(sessionmaker: async_sessionmaker, registry: SchemeRegistry, application_id: uuid.UUID,
                              actor: Principal):
    """What to send and to whom, in one short transaction; None when there is nothing to send (then a
    reason not to send has been recorded, or another attempt got there first)."""
    async with sessionmaker() as session, session.begin():
        application = await session.get(Application, application_id)
        if (application is None or application.route != ApplicationRoute.partner
                or application.submission_state != SubmissionState.pending or application.status not in OPEN_APPLICATION):
            return None
        await session.execute(update(Application).where(Application.id == application_id)
                              .values(submission_attempts=Application.submission_attempts + 1))
        adapter = registry.get(application.scheme_code)
        consent = await consents.purposes(session, application.household_id)
        failure = None
        if adapter is None or not can_submit(adapter):
            failure = f"Scheme {application.scheme_code} cannot take applications here any more."
        elif ConsentPurpose.eligibility_sharing not in consent:
            failure = ("Not sent: the household has not consented to sharing facts with partner schemes "
                       "(eligibility_sharing). Record the consent, then send it again.")
        else:
            household = await household_with_members(session, application.household_id)
            check = build_request(household, list(household.members), frozenset(consent), local_date(application.submitted_at))
            subject = check.household
            if application.person_id is not None:
                subject = next((s for s in check.members if s.person_id == application.person_id), None)
            if subject is None:
                failure = "Not sent: the applicant is no longer a member of the household."
            else:
                audit.record(session, actor, action="share", entity_type="application", entity_id=application.id,
                             office_id=application.office_id,
                             details={"scheme_code": application.scheme_code, "facts": sorted(adapter.metadata.facts)})
    if failure is not None:
        await _record_submission(sessionmaker, application_id, actor, SubmissionState.failed, error=failure,
                                 partner_reference=None, retryable=False, provenance={})
        return None
    return adapter, SubmissionRequest(application_id=application.id, scheme_code=application.scheme_code, subject=subject,
                                      household_facts=check.household_facts, transaction_id=application.id.hex,
                                      reference=application.reference, submitted_on=local_date(application.submitted_at))


async def _record_submission(sessionmaker: async_sessionmaker, application_id: uuid.UUID, actor: Principal, state: str, *,
                             error: str | None, partner_reference: str | None, retryable: bool,
                             provenance: dict[str, Any]) -> None:
    """Only the submission's columns change (a decision may have come back meanwhile); the version moves
    on so that a stale ETag is refused."""
    now = clock.now()
    async with sessionmaker() as session, session.begin():
        values: dict[str, Any] = {"submission_state": state, "submission_error": error[:500] if error else None,
                                  "version": Application.version + 1, "updated_at": now}
        if state == SubmissionState.sent:
            values |= {"sent_at": now, "partner_reference": partner_reference}
        await session.execute(update(Application).where(Application.id == application_id).values(**values))
        application = await session.get(Application, application_id)
        kind = "application.sent" if state == SubmissionState.sent else "application.submission_failed"
        add_timeline_entry(session, application.case_id, actor, kind, "application", application.id,
                           reference=application.reference,
                           agency=application.agency, partner_reference=partner_reference, error=error,
                           retryable=retryable if state == SubmissionState.failed else None,
                           http_status=provenance.get("http_status"), attempts=application.submission_attempts)


# ---- the partner's view ------------------------------------------------------------------------------------


def _sent_to(actor: Principal):
    """The applications a partner account may see: its scheme's, of the partner route (an application its
    scheme's agency decides). One that a supervisor decides at the office is none of its business."""
    return (Application.scheme_code == actor.scheme_code) & (Application.route == ApplicationRoute.partner)


async def _partner_application(session: AsyncSession, actor: Principal, application_id: uuid.UUID, *,
                               lock: bool = False) -> Application:
    query = select(Application).where(Application.id == application_id, _sent_to(actor))
    application = (await session.execute(for_change(query, lock))).scalar_one_or_none()
    if application is None:
        raise NotFound("No such application for your scheme to decide.")
    return application


def partner_read(application: Application) -> PartnerApplicationRead:
    return PartnerApplicationRead(
        id=application.id, version=application.version, reference=application.reference, scheme_code=application.scheme_code,
        status=application.status, submitted_on=local_date(application.submitted_at),
        decision_due_date=application.decision_due_date, partner_reference=application.partner_reference,
        decided_at=application.decided_at)


async def get_for_partner(session: AsyncSession, actor: Principal, application_id: uuid.UUID) -> PartnerApplicationRead:
    application = await _partner_application(session, actor, application_id)
    audit.record(session, actor, action="read", entity_type="application", entity_id=application.id,
                 office_id=application.office_id, details={"partner": actor.scheme_code})
    return partner_read(application)


async def list_for_partner(session: AsyncSession, actor: Principal, *, status: ApplicationStatus | None, limit: int,
                           offset: int) -> tuple[list[PartnerApplicationRead], int]:
    query = select(Application).where(_sent_to(actor))
    if status is not None:
        query = query.where(Application.status == status)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (await session.execute(query.order_by(Application.submitted_at, Application.id).limit(limit).offset(offset))).scalars().all()
    audit.record_partner_search(session, actor, "application", rows, total)
    return [partner_read(a) for a in rows], total

