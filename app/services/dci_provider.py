"""Guichet as a DCI Social Registry: search, txn status, subscribe/unsubscribe and IBR's `enrolled`.

A message is checked in the order the standard implies: the signature (against the keys pinned for
the client), the header (version, action, sender, receiver), then its id, which is recorded so that a
replay is refused. Each item of a batch is answered on its own: `succ` (an empty list when nothing
matched) or `rjct` with its reason code. Everything a partner finds is office-scoped, limited to
households whose consent covers sharing (app.services.dci_access), cut to the client's field scope
(app.dci.records) and audited as a read, one row per search item naming every record returned.

Sync endpoints answer inline. Async ones do the same work in the request, acknowledge it, and leave
the answer in the delivery outbox for the worker (app.services.dci_worker), which signs it and posts it
to the client's callback URL with retries: no callback is ever sent from inside a request."""

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.dci import records, signing
from app.dci.envelope import (
    ERR_BAD_REQUEST,
    ERR_RECEIVER_ID,
    ERR_SENDER_ID,
    ERR_SENDER_URI,
    MAX_PAGE_SIZE,
    RJCT_CRITERIA,
    RJCT_MESSAGE_ID_DUPLICATE,
    RJCT_NOTIFY_DETAILS,
    RJCT_NOTIFY_TYPES,
    RJCT_REFERENCE_ID,
    RJCT_REFERENCE_ID_DUPLICATE,
    RJCT_SUBSCRIPTION_CODE,
    RJCT_TIMESTAMP,
    RJCT_TOO_MANY,
    RJCT_TOTAL_COUNT,
    VERSION,
    EnrolledRequest,
    ItemRejected,
    MsgHeader,
    Rejected,
    SearchItem,
    SearchRequest,
    SubscribeItem,
    SubscribeRequest,
    TxnStatusRequest,
    UnsubscribeRequest,
    callback_header,
    item_reason,
    new_id,
    parse_header,
    timestamp,
)
from app.dci.query import compile_query, order_by
from app.models import (
    Application,
    AuditEvent,
    DciClient,
    DciDelivery,
    DciMessage,
    DciSubscription,
    DciTransaction,
    Household,
    Location,
    Person,
)
from app.models.base import utcnow
from app.services import audit, dci_access
from app.upsert import insert_ignore
from app.vocabulary import ApplicationStatus

# A query matching more records than this is refused (rjct.search.too_many_records_found): narrow it.
MAX_MATCHES = 10_000
# What a subscription may follow, and the activity events that say it happened (app.services.dci_worker).
EVENT_TYPES = ("NewHouseHoldMember", "HouseholdMoved", "IDPoorLevelChanged", "HouseholdUpdated", "MemberUpdated", "Death")
# The request action of each kind of message, the callback's action and the client's endpoint for it.
ACTIONS = {"search": ("search", "on-search", "/registry/on-search"),
           "txn-status": ("txn-status", "txn-on-status", "/registry/txn/on-status"),
           "subscribe": ("subscribe", "on-subscribe", "/registry/on-subscribe"),
           "unsubscribe": ("unsubscribe", "on-unsubscribe", "/registry/on-unsubscribe"),
           "enrolled": (("search", "enrolled"), "on-search", None)}


@dataclass
class Answer:
    message: dict[str, Any] | None  # None: nothing to say but the header's status
    status: str  # the header's: succ, or rjct when every item was refused
    completed: int
    total: int
    reason: str | None = None  # the header's status_reason_message

    @property
    def correlation_id(self) -> str:
        return (self.message or {}).get("correlation_id") or new_id()


def audit_read(session: AsyncSession, client: DciClient, *, entity_type: str, ids: list[uuid.UUID],
               office_ids: set[uuid.UUID], **details: Any) -> None:
    """A partner's read, like every read of personal data: who (the client), what (every record id)."""
    row = audit.row(None, action="dci_read", entity_type=entity_type, entity_id=None,
                    office_id=next(iter(office_ids)) if len(office_ids) == 1 else None,
                    details={"client": client.client_id, "results": [str(i) for i in ids]} | details)
    row |= {"actor_id": client.id, "actor_username": f"dci:{client.client_id}"[:64], "actor_role": "dci_client"}
    session.add(AuditEvent(**row))


# ---- the envelope -----------------------------------------------------------------------------------


async def receive(session: AsyncSession, settings: Settings, client: DciClient, body: Any, kind: str) -> MsgHeader:
    if not isinstance(body, dict):
        raise Rejected(ERR_BAD_REQUEST, "The body is a JSON object {signature, header, message}.")
    signing.verify(body, client.jwks, required=client.signature_required)
    header = parse_header(body.get("header"), ACTIONS[kind][0])
    if header.sender_id != client.client_id:
        raise Rejected(ERR_SENDER_ID, f"sender_id must be your client id ({client.client_id}).")
    if header.receiver_id and header.receiver_id != settings.dci_sender_id:
        raise Rejected(ERR_RECEIVER_ID, f"receiver_id must be {settings.dci_sender_id}.")
    inserted = await session.execute(insert_ignore(session, DciMessage, ["client_id", "message_id"]).values(
        client_id=client.id, message_id=header.message_id, received_at=utcnow()))
    if inserted.rowcount != 1:
        raise Rejected(RJCT_MESSAGE_ID_DUPLICATE, f"Message {header.message_id} was received before.")
    if not isinstance(body.get("message"), dict):
        raise Rejected(ERR_BAD_REQUEST, "The message is missing, or not an object (encrypted messages are not accepted).")
    return header


def callback_url(client: DciClient, header: MsgHeader, kind: str) -> str:
    """Where an async answer goes: the client's registered callback base, or its sender_uri when that is
    under the registered base (never anywhere else: no callback to an address a message names)."""
    base = (client.callback_url or "").rstrip("/")
    if not base:
        raise Rejected(ERR_SENDER_URI, "No callback URL is registered for this client; ask the registry's admin.")
    if header.sender_uri:
        if not (header.sender_uri == base or header.sender_uri.startswith(base + "/")):
            raise Rejected(ERR_SENDER_URI, f"sender_uri must be under the registered callback URL {base}.")
        return header.sender_uri
    return base + ACTIONS[kind][2]


def reply_header(settings: Settings, client: DciClient, kind: str, answer: Answer) -> dict[str, Any]:
    return callback_header(ACTIONS[kind][1], answer.status, sender_id=settings.dci_sender_id,
                           receiver_id=client.client_id, total_count=answer.total, completed_count=answer.completed,
                           reason_message=answer.reason)


def enqueue(session: AsyncSession, client: DciClient, url: str, header: dict[str, Any], message: dict[str, Any] | None) -> None:
    session.add(DciDelivery(client_id=client.id, url=url, header=header, message=message))


def _check_total(header: MsgHeader, count: int) -> None:
    if header.total_count != count:
        raise Rejected(RJCT_TOTAL_COUNT, f"header.total_count is {header.total_count} but the message holds {count} requests.")


def _model(model, message: dict[str, Any]):
    try:
        return model.model_validate(message)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise Rejected(ERR_BAD_REQUEST, f"message.{'.'.join(str(p) for p in error['loc'])}: {error['msg']}") from None


def _rejected_item(raw: Any, reason: ItemRejected, **extra: Any) -> dict[str, Any]:
    reference = raw.get("reference_id") if isinstance(raw, dict) else None
    return {"reference_id": str(reference)[:99] if isinstance(reference, str | int) else "", "timestamp": timestamp(),
            "status": "rjct", "status_reason_code": reason.code, "status_reason_message": reason.message, **extra}


def _answer(message: dict[str, Any], items: list[dict[str, Any]]) -> Answer:
    done = sum(1 for i in items if i["status"] == "succ")
    return Answer(message, "succ" if done or not items else "rjct", done, len(items))


# ---- search -----------------------------------------------------------------------------------------


async def _places(session: AsyncSession, village_codes: set[str]) -> dict[str, tuple[str, str | None]]:
    rows = await session.execute(select(Location.code, Location.name, Location.name_km)
                                 .where(Location.code.in_(records.place_codes(village_codes))))
    return {code: (name, name_km) for code, name, name_km in rows}


async def _count(session: AsyncSession, query: Select, id_column) -> int:
    """How many match, counted no further than MAX_MATCHES + 1: a broad query costs what a narrow one does."""
    limited = query.with_only_columns(id_column)
    return (await session.execute(select(func.count()).select_from(limited.limit(MAX_MATCHES + 1).subquery()))).scalar_one()


async def find(session: AsyncSession, client: DciClient, offices: list[uuid.UUID], *, entity: str, condition,
               order: list, page_size: int, page_number: int, locale: str) -> tuple[list[dict[str, Any]], int, list, set]:
    """One page of records (Group or Member) in the client's reach, and the total that matched."""
    fields = frozenset(client.fields)
    if entity == "Group":
        query = select(Household).where(dci_access.shareable(offices), condition)
    else:
        query = select(Person).join(Household, Household.id == Person.household_id).where(dci_access.shareable(offices), condition)
    total = await _count(session, query, Household.id if entity == "Group" else Person.id)
    if total > MAX_MATCHES:
        raise ItemRejected(RJCT_TOO_MANY, f"More than {MAX_MATCHES} records match; narrow the query.")
    offset = (page_number - 1) * page_size
    if offset >= total:
        return [], total, [], set()
    rows = list((await session.execute(query.order_by(*order).limit(page_size).offset(offset))).scalars())
    if entity == "Group":
        members = list((await session.execute(select(Person).where(Person.household_id.in_([h.id for h in rows]))
                                              .order_by(Person.created_at, Person.id))).scalars())
        by_household: dict[uuid.UUID, list[Person]] = {}
        for person in members:
            by_household.setdefault(person.household_id, []).append(person)
        places = await _places(session, {h.village_code for h in rows}) if "place" in fields else {}
        found = [records.group(h, by_household.get(h.id, []), places, fields, locale) for h in rows]
    else:
        found = [records.member(p, fields, locale) for p in rows]
    return found, total, [r.id for r in rows], {r.office_id for r in rows}


async def _search_item(session: AsyncSession, client: DciClient, raw: Any, seen: set[str],
                       offices: list[uuid.UUID]) -> dict[str, Any]:
    try:
        try:
            item = SearchItem.model_validate(raw)
        except ValidationError as exc:
            raise item_reason(exc) from None
        if item.reference_id in seen:
            raise ItemRejected(RJCT_REFERENCE_ID_DUPLICATE, f"reference_id {item.reference_id} appears twice.")
        seen.add(item.reference_id)
        criteria = item.search_criteria
        if criteria.query_type not in client.query_types:
            raise ItemRejected(RJCT_CRITERIA, f"Query type {criteria.query_type} is outside this client's scope.")
        fields = frozenset(client.fields)
        condition = compile_query(criteria.query_type, criteria.query, criteria.response_entity, fields)
        order = order_by(criteria.sort, criteria.response_entity, fields)
        pagination = criteria.pagination
        locale = records.locale_of(item.locale)
        found, total, ids, office_ids = await find(
            session, client, offices, entity=criteria.response_entity, condition=condition, order=order,
            page_size=pagination.page_size if pagination else MAX_PAGE_SIZE,
            page_number=pagination.page_number if pagination else 1, locale=locale)
        if pagination is None and total > MAX_PAGE_SIZE:
            raise ItemRejected(RJCT_TOO_MANY, f"{total} records match: ask for them by pages (pagination).")
    except ItemRejected as reason:
        return _rejected_item(raw, reason)
    audit_read(session, client, entity_type="household" if criteria.response_entity == "Group" else "person", ids=ids,
               office_ids=office_ids, reference_id=item.reference_id, query_type=criteria.query_type, total=total)
    return {"reference_id": item.reference_id, "timestamp": timestamp(), "status": "succ",
            "data": {"version": VERSION, "reg_records": found},
            "pagination": {"page_size": pagination.page_size if pagination else MAX_PAGE_SIZE,
                           "page_number": pagination.page_number if pagination else 1, "total_count": total},
            "locale": locale}


def _store(session: AsyncSession, client: DciClient, action: str, transaction_id: str, answer: Answer,
           reference_ids: list[str]) -> None:
    session.add(DciTransaction(client_id=client.id, transaction_id=transaction_id, correlation_id=answer.message["correlation_id"],
                               action=action, reference_ids=reference_ids, status=answer.status, response=answer.message))


async def search(session: AsyncSession, settings: Settings, client: DciClient, header: MsgHeader,
                 message: dict[str, Any]) -> Answer:
    request = _model(SearchRequest, message)
    _check_total(header, len(request.search_request))
    offices = await dci_access.office_ids(session, client.offices)
    seen: set[str] = set()
    items = [await _search_item(session, client, raw, seen, offices) for raw in request.search_request]
    answer = _answer({"transaction_id": request.transaction_id, "correlation_id": new_id(), "search_response": items}, items)
    _store(session, client, "search", request.transaction_id, answer, [i["reference_id"] for i in items])
    return answer


# ---- txn status -------------------------------------------------------------------------------------


async def txn_status(session: AsyncSession, settings: Settings, client: DciClient, header: MsgHeader,
                     message: dict[str, Any]) -> Answer:
    request = _model(TxnStatusRequest, message)
    _check_total(header, 1)
    asked = request.txnstatus_request
    value = asked.attribute_value
    query = select(DciTransaction).where(DciTransaction.client_id == client.id)
    if asked.attribute_type == "transaction_id":
        query = query.where(DciTransaction.transaction_id == str(value))
    elif asked.attribute_type == "correlation_id":
        query = query.where(DciTransaction.correlation_id == str(value))
    elif asked.attribute_type == "subscription_code_list":
        codes = value if isinstance(value, list) else [value]
        subscriptions = (await session.execute(select(DciSubscription).where(
            DciSubscription.client_id == client.id, DciSubscription.code.in_(codes)))).scalars().all()
        status = {"transaction_id": request.transaction_id, "correlation_id": new_id(),
                  "subscribe_response": [{"reference_id": s.reference_id, "timestamp": timestamp(), "status": "succ",
                                          "subscriptions": [_subscription_info(s)]} for s in subscriptions]}
        if not subscriptions:
            return Answer(None, "rjct", 0, 1, reason="No subscription of yours has these codes.")
        return Answer({"transaction_id": request.transaction_id, "correlation_id": status["correlation_id"],
                       "txnstatus_response": {"txn_type": "subscribe", "txn_status": status}}, "succ", 1, 1)
    transactions = (await session.execute(query.order_by(DciTransaction.created_at.desc()).limit(20))).scalars().all()
    if asked.attribute_type == "reference_id_list":
        wanted = set(value if isinstance(value, list) else [value])
        transactions = [t for t in transactions if wanted & set(t.reference_ids)]
    if not transactions:
        return Answer(None, "rjct", 0, 1, reason="No transaction of yours matches.")
    found = transactions[0]
    status = dict(found.response or {})
    if asked.attribute_type == "reference_id_list" and "search_response" in status:
        status["search_response"] = [i for i in status["search_response"] if i.get("reference_id") in wanted]
    returned = [r for item in status.get("search_response", []) for r in (item.get("data") or {}).get("reg_records", [])]
    if returned:
        # What was read once is read again: audited like the search that found it.
        audit_read(session, client, entity_type="dci_transaction", ids=[found.id], office_ids=set(),
                   correlation_id=found.correlation_id, records=len(returned))
    return Answer({"transaction_id": request.transaction_id, "correlation_id": found.correlation_id,
                   "txnstatus_response": {"txn_type": found.action, "txn_status": status}}, "succ", 1, 1)


# ---- subscribe / unsubscribe (registry core API) ----------------------------------------------------


def _subscription_info(subscription: DciSubscription) -> dict[str, Any]:
    return {"version": VERSION, "code": subscription.code,
            "status": "subscribe" if subscription.active else "unsubscribe",
            "timestamp": subscription.created_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "reg_event_type": ",".join(subscription.event_types), "filter_type": subscription.filter_type,
            "filter": subscription.filter, "notify_record_type": subscription.record_type,
            "locale": subscription.locale}


async def subscribe(session: AsyncSession, settings: Settings, client: DciClient, header: MsgHeader,
                    message: dict[str, Any]) -> Answer:
    request = _model(SubscribeRequest, message)
    _check_total(header, len(request.subscribe_request))
    items = []
    seen: set[str] = set()
    for raw in request.subscribe_request:
        try:
            try:
                item = SubscribeItem.model_validate(raw)
            except ValidationError as exc:
                raise item_reason(exc) from None
            if item.reference_id in seen:
                raise ItemRejected(RJCT_REFERENCE_ID_DUPLICATE, f"reference_id {item.reference_id} appears twice.")
            seen.add(item.reference_id)
            criteria = item.subscribe_criteria
            # One string in the spec (RegistryEventType): several are sent comma-separated; a list is taken too.
            events = [e.strip() for e in (criteria.reg_event_type.split(",") if isinstance(criteria.reg_event_type, str)
                                          else criteria.reg_event_type)]
            unknown = [e for e in events if e not in EVENT_TYPES]
            if unknown or not events:
                raise ItemRejected(RJCT_NOTIFY_TYPES, f"reg_event_type is one or more of {', '.join(EVENT_TYPES)}.")
            if criteria.filter_type not in client.query_types:
                raise ItemRejected(RJCT_CRITERIA, f"Query type {criteria.filter_type} is outside this client's scope.")
            compile_query(criteria.filter_type, criteria.filter, criteria.notify_record_type, frozenset(client.fields))
        except ItemRejected as reason:
            # Subscriptions have their own reason codes: a filter that is wrong or out of scope is "notify details".
            if reason.code not in (RJCT_REFERENCE_ID, RJCT_REFERENCE_ID_DUPLICATE, RJCT_TIMESTAMP, RJCT_NOTIFY_TYPES):
                reason = ItemRejected(RJCT_NOTIFY_DETAILS, reason.message)
            items.append(_rejected_item(raw, reason))
            continue
        subscription = DciSubscription(code=new_id(), client_id=client.id, reference_id=item.reference_id,
                                       event_types=events, filter_type=criteria.filter_type, filter=criteria.filter,
                                       record_type=criteria.notify_record_type, locale=records.locale_of(item.locale))
        session.add(subscription)
        await session.flush()
        items.append({"reference_id": item.reference_id, "timestamp": timestamp(), "status": "succ",
                      "subscriptions": [_subscription_info(subscription)]})
    answer = _answer({"transaction_id": request.transaction_id, "correlation_id": new_id(), "subscribe_response": items}, items)
    _store(session, client, "subscribe", request.transaction_id, answer, [i["reference_id"] for i in items])
    return answer


async def unsubscribe(session: AsyncSession, settings: Settings, client: DciClient, header: MsgHeader,
                      message: dict[str, Any]) -> Answer:
    request = _model(UnsubscribeRequest, message)
    _check_total(header, 1)
    subscriptions = {s.code: s for s in (await session.execute(select(DciSubscription).where(
        DciSubscription.client_id == client.id, DciSubscription.code.in_(request.subscription_codes)))).scalars()}
    unknown = [c for c in request.subscription_codes if c not in subscriptions or not subscriptions[c].active]
    correlation_id = new_id()
    if unknown:
        body = {"transaction_id": request.transaction_id, "correlation_id": correlation_id, "timestamp": timestamp(),
                "status": "rjct", "status_reason_code": RJCT_SUBSCRIPTION_CODE,
                "status_reason_message": f"Not active subscriptions of yours: {', '.join(unknown)[:900]}"}
        return Answer(body, "rjct", 0, 1)
    now = utcnow()
    for subscription in subscriptions.values():
        subscription.active = False
        subscription.ended_at = now
    await session.flush()
    body = {"transaction_id": request.transaction_id, "correlation_id": correlation_id, "timestamp": timestamp(),
            "status": "succ", "subscription_status": [{"code": c, "status": "unsubscribe"} for c in request.subscription_codes]}
    return Answer(body, "succ", 1, 1)


# ---- IBR: is this person enrolled? ------------------------------------------------------------------


def _enrolled_query(query_type: str, query: Any) -> tuple[str, Any, str | None]:
    """(query type, query for the person, programme) from the spec's two shapes: {type, value}, or the
    IBR sample's {"person_identifier": {"eq": ...}, "programme_identifier.programme.programme_identifier": {"eq": ...}}."""
    if query_type == "idtype-value" or (isinstance(query, dict) and set(query) == {"type", "value"}):
        return "idtype-value", query, None
    if not isinstance(query, dict) or not isinstance(query.get("person_identifier"), dict):
        raise ItemRejected(RJCT_CRITERIA, "An enrolled query names person_identifier (and optionally the programme).")
    programme = None
    for key, value in query.items():
        if key.startswith("programme_identifier.") and isinstance(value, dict):
            programme = value.get("eq")
        elif key != "person_identifier":
            raise ItemRejected(RJCT_CRITERIA, f"Unknown enrolled criterion {key[:60]!r}.")
    identifier = query["person_identifier"].get("eq")
    return "idtype-value", {"type": "NID", "value": identifier}, str(programme)[:40] if programme is not None else None


async def enrolled(session: AsyncSession, settings: Settings, client: DciClient, header: MsgHeader,
                   message: dict[str, Any]) -> Answer:
    request = _model(EnrolledRequest, message)
    _check_total(header, 1)
    criteria = request.enrolled_criteria
    reference_id = str(message["enrolled_criteria"].get("reference_id") or request.transaction_id)[:99]
    try:
        if criteria.query_type not in client.query_types:
            raise ItemRejected(RJCT_CRITERIA, f"Query type {criteria.query_type} is outside this client's scope.")
        query_type, query, programme = _enrolled_query(criteria.query_type, criteria.query)
        condition = compile_query(query_type, query, "Member", frozenset(client.fields))
    except ItemRejected as reason:
        item = {"reference_id": reference_id, "timestamp": timestamp(), "status": "rjct", "enrolled_status": "no",
                "status_reason_message": f"{reason.code}: {reason.message}"[:999]}
        return Answer({"transaction_id": request.transaction_id, "correlation_id": new_id(), "enrolled_response": [item]},
                      "rjct", 0, 1)
    offices = await dci_access.office_ids(session, client.offices)
    person = (await session.execute(select(Person).join(Household, Household.id == Person.household_id)
                                    .where(dci_access.shareable(offices), condition).limit(1))).scalar_one_or_none()
    programmes = []
    if person is not None:
        approved = select(Application.scheme_code, Application.scheme_name, Application.decided_at).where(
            Application.status == ApplicationStatus.approved,
            (Application.person_id == person.id) | ((Application.person_id.is_(None)) & (Application.household_id == person.household_id)))
        if programme is not None:
            approved = approved.where(Application.scheme_code == programme)
        programmes = [{"programme_identifier": code, "programme_name": name,
                       "enrolment_date": decided.isoformat(timespec="seconds").replace("+00:00", "Z") if decided else None}
                      for code, name, decided in (await session.execute(approved.order_by(Application.scheme_code))).all()]
        audit_read(session, client, entity_type="person", ids=[person.id], office_ids={person.office_id},
                   reference_id=reference_id, query="enrolled", programmes=[p["programme_identifier"] for p in programmes])
    item = {"reference_id": reference_id, "timestamp": timestamp(), "status": "succ",
            "enrolled_status": "yes" if programmes else "no", "programmes": programmes}
    answer = Answer({"transaction_id": request.transaction_id, "correlation_id": new_id(), "enrolled_response": [item]},
                    "succ", 1, 1)
    _store(session, client, "enrolled", request.transaction_id, answer, [reference_id])
    return answer


HANDLERS = {"search": search, "txn-status": txn_status, "subscribe": subscribe, "unsubscribe": unsubscribe,
            "enrolled": enrolled}
