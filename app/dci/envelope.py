"""The DCI envelope: `{signature, header, message}`, its acknowledgement and its status codes.

Lenient in what we accept (the spec's own samples send `total_count: "1"`, and implementations spell
the encryption flag three ways), strict in what we send (tests validate every answer against the
spec's schemas)."""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

VERSION = "1.0.0"
Text = Annotated[str, StringConstraints(min_length=1, max_length=99)]
Locale = Annotated[str, StringConstraints(pattern=r"^[a-z]{3}$")]
MAX_BATCH = 100  # search_request items in one message
MAX_PAGE_SIZE = 100

# Header status reason codes (MsgHeaderStatusReasonCode).
RJCT_VERSION = "rjct.version.invalid"
RJCT_MESSAGE_ID_DUPLICATE = "rjct.message_id.duplicate"
RJCT_MESSAGE_TS = "rjct.message_ts.invalid"
RJCT_ACTION = "rjct.action.invalid"
RJCT_TOTAL_COUNT = "rjct.total_count.invalid"
RJCT_TOTAL_COUNT_LIMIT = "rjct.total_count.limit_exceeded"
# Per-item reason codes (SearchStatusReasonCode, SubscribeStatusReasonCode, UnSubscribeStatusReasonCode).
RJCT_REFERENCE_ID = "rjct.reference_id.invalid"
RJCT_REFERENCE_ID_DUPLICATE = "rjct.reference_id.duplicate"
RJCT_TIMESTAMP = "rjct.timestamp.invalid"
RJCT_CRITERIA = "rjct.search_criteria.invalid"
RJCT_FILTER = "rjct.filter.invalid"
RJCT_SORT = "rjct.sort.invalid"
RJCT_PAGINATION = "rjct.pagination.invalid"
RJCT_TOO_MANY = "rjct.search.too_many_records_found"
RJCT_NOTIFY_TYPES = "rjct.notify_types.invalid"
RJCT_NOTIFY_DETAILS = "rjct.notify_details.invalid"
RJCT_SUBSCRIPTION_CODE = "rjct.subscription_code.invalid"
# Communication errors (Error.code): in an ERR acknowledgement, or in an HTTP error's `errors`.
ERR_BAD_REQUEST = "err.request.bad"
ERR_UNAUTHORIZED = "err.request.unauthorized"
ERR_FORBIDDEN = "err.request.forbidden"
ERR_VERSION = "err.version.not_supported"
ERR_SENDER_ID = "err.sender_id.invalid"
ERR_SENDER_URI = "err.sender_uri.invalid"
ERR_RECEIVER_ID = "err.receiver_id.invalid"
ERR_SIGNATURE_MISSING = "err.signature.missing"
ERR_SIGNATURE_INVALID = "err.signature.invalid"
ERR_ENCRYPTION = "err.encryption.invalid"


class Rejected(Exception):
    """The message as a whole is refused: `code` is an rjct.* header code or an err.* error code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message[:999]


class ItemRejected(Exception):
    """One item of a batch is refused (rjct.* of SearchStatusReasonCode and its siblings)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message[:999]


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class MsgHeader(Lenient):
    version: Annotated[str, StringConstraints(max_length=20)] = VERSION
    message_id: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    message_ts: AwareDatetime
    action: Annotated[str, StringConstraints(max_length=40)]
    sender_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    sender_uri: Annotated[str, StringConstraints(max_length=500)] | None = None
    receiver_id: Annotated[str, StringConstraints(max_length=200)] | None = None
    total_count: int = Field(ge=0, le=10_000)  # samples send it as a string: coerced
    is_msg_encrypted: bool = Field(default=False, validation_alias=AliasChoices(
        "is_msg_encrypted", "is_encrypted", "is_message_encrypted"))
    meta: dict[str, Any] | None = None


def parse_header(raw: Any, action: str | tuple[str, ...]) -> MsgHeader:
    """The request header, or Rejected with the header reason code the spec has for the fault."""
    if not isinstance(raw, dict):
        raise Rejected(ERR_BAD_REQUEST, "The message has no header object.")
    try:
        header = MsgHeader.model_validate(raw)
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0]) if exc.errors() and exc.errors()[0]["loc"] else ""
        codes = {"message_ts": RJCT_MESSAGE_TS, "total_count": RJCT_TOTAL_COUNT, "action": RJCT_ACTION,
                 "version": RJCT_VERSION}
        raise Rejected(codes.get(field, ERR_BAD_REQUEST), f"header.{field}: {exc.errors()[0]['msg']}") from None
    if header.version != VERSION:
        raise Rejected(RJCT_VERSION, f"Only version {VERSION} is spoken here.")
    allowed = (action,) if isinstance(action, str) else action
    if header.action not in allowed:
        raise Rejected(RJCT_ACTION, f"This endpoint takes action {' or '.join(allowed)}, not {header.action!r}.")
    if header.is_msg_encrypted:
        raise Rejected(ERR_ENCRYPTION, "Encrypted messages are not accepted; TLS protects the transport.")
    return header


def timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    return str(uuid.uuid4())


def callback_header(action: str, status: Literal["rcvd", "pdng", "succ", "rjct"], *, sender_id: str,
                    receiver_id: str | None, total_count: int, completed_count: int,
                    reason_code: str | None = None, reason_message: str | None = None) -> dict[str, Any]:
    header: dict[str, Any] = {
        "version": VERSION, "message_id": new_id(), "message_ts": timestamp(), "action": action, "status": status,
        "total_count": total_count, "completed_count": completed_count, "sender_id": sender_id,
        "is_msg_encrypted": False,
    }
    if receiver_id:
        header["receiver_id"] = receiver_id
    if reason_code:
        header["status_reason_code"] = reason_code
    if reason_message:
        header["status_reason_message"] = reason_message[:999]
    return header


def request_header(action: str, *, sender_id: str, receiver_id: str | None, total_count: int,
                   sender_uri: str | None = None) -> dict[str, Any]:
    """The header of a message we send as a client (or a notify we push)."""
    header: dict[str, Any] = {"version": VERSION, "message_id": new_id(), "message_ts": timestamp(), "action": action,
                              "sender_id": sender_id, "total_count": total_count, "is_msg_encrypted": False}
    if receiver_id:
        header["receiver_id"] = receiver_id
    if sender_uri:
        header["sender_uri"] = sender_uri
    return header


def ack(status: Literal["ACK", "NACK", "ERR"], correlation_id: str, *, code: str | None = None,
        message: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"ack_status": status, "timestamp": timestamp(), "correlation_id": correlation_id}
    if code:
        body["error"] = {"code": code, "message": (message or code)[:999]}
    return {"message": body}


# ---- message payloads -------------------------------------------------------------------------------


class Pagination(Lenient):
    page_size: int = Field(ge=1, le=MAX_PAGE_SIZE)
    page_number: int = Field(default=1, ge=1, le=1_000_000)


class Sort(Lenient):
    attribute_name: Annotated[str, StringConstraints(min_length=1, max_length=60)]
    sort_order: Literal["asc", "desc"] = "asc"


class SearchCriteria(Lenient):
    version: Annotated[str, StringConstraints(max_length=20)] = VERSION
    reg_event_type: Annotated[str, StringConstraints(max_length=60)] | None = None
    query_type: Literal["idtype-value", "expression", "predicate"]
    response_entity: Literal["Group", "Member"] = "Group"
    query: Any
    sort: list[Sort] = Field(default_factory=list, max_length=5)
    pagination: Pagination | None = None
    consent: dict[str, Any] | None = None
    authorize: dict[str, Any] | None = None


class SearchItem(Lenient):
    reference_id: Text
    timestamp: AwareDatetime
    search_criteria: SearchCriteria
    locale: Locale | None = None


class SearchRequest(Lenient):
    transaction_id: Text
    search_request: list[Any] = Field(min_length=1, max_length=MAX_BATCH)


class TxnStatusItem(Lenient):
    reference_id: Text
    txn_type: Literal["search", "subscribe", "subscibe", "unsubscribe", "receipt", "enrolled"] = "search"
    attribute_type: Literal["transaction_id", "reference_id_list", "correlation_id", "subscription_code_list"]
    attribute_value: Text | list[Text]
    locale: Locale | None = None


class TxnStatusRequest(Lenient):
    transaction_id: Text
    txnstatus_request: TxnStatusItem


class EventFrequency(Lenient):
    start_time: AwareDatetime | None = None
    end_time: AwareDatetime | None = None
    frequency: Annotated[str, StringConstraints(max_length=60)] | None = None


class SubscribeCriteria(Lenient):
    version: Annotated[str, StringConstraints(max_length=20)] = VERSION
    reg_type: Annotated[str, StringConstraints(max_length=60)] | None = None
    reg_event_type: Annotated[str, StringConstraints(max_length=60)] | list[Annotated[str, StringConstraints(max_length=60)]]
    frequency: EventFrequency | None = None
    filter_type: Literal["idtype-value", "expression", "predicate"] = "predicate"
    filter: Any
    notify_record_type: Literal["Group", "Member"] = Field(default="Group", validation_alias=AliasChoices(
        "notify_record_type", "response_entity"))
    authorize: dict[str, Any] | None = None


class SubscribeItem(Lenient):
    reference_id: Text
    timestamp: AwareDatetime
    subscribe_criteria: SubscribeCriteria
    locale: Locale | None = None


class SubscribeRequest(Lenient):
    transaction_id: Text
    subscribe_request: list[Any] = Field(min_length=1, max_length=MAX_BATCH)


class UnsubscribeRequest(Lenient):
    transaction_id: Text
    # The spec's own property is "timesstamp" and its required list says "timestamp" and
    # "sunscription_codes": every spelling is taken.
    timestamp: AwareDatetime | None = Field(default=None, validation_alias=AliasChoices("timestamp", "timesstamp"))
    subscription_codes: list[Text] = Field(min_length=1, max_length=MAX_BATCH, validation_alias=AliasChoices(
        "subscription_codes", "sunscription_codes"))


class EnrolledCriteria(Lenient):
    query_type: Literal["idtype-value", "expression", "predicate"] = "idtype-value"
    response_entity: Annotated[str, StringConstraints(max_length=20)] | None = None
    query: Any


class EnrolledRequest(Lenient):
    transaction_id: Text
    enrolled_criteria: EnrolledCriteria
    locale: Locale | None = None


def item_reason(exc: ValidationError) -> ItemRejected:
    """The per-item reason code for what was wrong with one item of a batch."""
    error = exc.errors()[0]
    loc = tuple(str(p) for p in error.get("loc", ()))
    if loc[:1] == ("reference_id",):
        code = RJCT_REFERENCE_ID
    elif loc[:1] == ("timestamp",):
        code = RJCT_TIMESTAMP
    elif loc[1:2] == ("pagination",):
        code = RJCT_PAGINATION
    elif loc[1:2] == ("sort",):
        code = RJCT_SORT
    elif loc[1:2] in (("filter",), ("filter_type",)):
        code = RJCT_FILTER
    elif loc[1:2] == ("reg_event_type",):
        code = RJCT_NOTIFY_TYPES
    else:
        code = RJCT_CRITERIA
    return ItemRejected(code, f"{'.'.join(loc) or 'item'}: {error.get('msg', 'invalid')}")
