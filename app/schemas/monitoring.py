"""Central monitoring (ingest, indicators, offices) and the office's sync status."""

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.i18n import LocalisedName
from app.schemas.common import ReadModel

MAX_BATCH = 1000


class EventBatch(BaseModel):
    """Activity events of one office, as its relay sends them. Each event is checked on its own against
    the contract of `app/events.py` (its type and schema_version); a bad one is rejected, not the batch.

    Not an InputModel: its walk of every string for U+0000 would cost more than the ingest itself,
    and is not needed here, since every string of an accepted event is an enum or matches a pattern."""

    model_config = ConfigDict(extra="forbid")

    events: list[Any] = Field(min_length=1, max_length=MAX_BATCH,
                                         description=f"1 to {MAX_BATCH} events (envelopes: id, type, schema_version, "
                                                     "occurred_at, office_code, payload).")


class RejectedEvent(BaseModel):
    id: str | None = Field(description="The event's id as sent (null when it had none).")
    index: int = Field(description="Position of the event in the batch.")
    problem: str


class IngestResult(BaseModel):
    accepted: int = Field(description="Events stored now.")
    duplicates: int = Field(description="Events central already had (a re-send); not counted again.")
    rejected: list[RejectedEvent]


class IndicatorRow(BaseModel):
    period: str = Field(description="2026-01-31, 2026-W05, 2026-01 or 2026-Q1.")
    period_start: date
    value: float | int | None = Field(description="Null when suppressed (or when there is nothing to compute).")
    suppressed: bool = False
    model_config = {"extra": "allow"}  # one field per group_by dimension


class IndicatorResult(BaseModel):
    indicator: str
    unit: str
    period: str
    from_: date = Field(alias="from", description="Start of the first whole period.")
    to: date = Field(description="End of the last whole period.")
    group_by: list[str]
    filters: dict[str, str]
    k: int = Field(description="Person counts below k are suppressed.")
    suppressed: int = Field(description="How many cells were suppressed (small cells and their complements).")
    rows: list[IndicatorRow]
    model_config = {"populate_by_name": True}


class IndicatorDefinition(BaseModel):
    name: str
    title: LocalisedName  # in the request's language; `name` is the machine one
    definition: LocalisedName
    unit: str
    kind: str = Field(description="count, unique (distinct per period), ratio, median or overdue (as of each period's end).")
    breakdowns: list[str] = Field(description="Allowed in group_by and as filters.")
    periods: list[str]


class IndicatorCatalog(BaseModel):
    k: int
    suppression: str
    items: list[IndicatorDefinition]


class OfficeSyncRead(ReadModel):
    office_code: str
    name: str
    last_event_at: datetime | None = Field(description="When the newest event central has from this office happened.")
    last_sync_at: datetime | None = Field(description="When central last received a batch from this office.")
    events_received: int
    duplicates_received: int
    rejected_received: int
    lag_seconds: float | None = Field(description="In the last batch: how long the newest event took to reach central.")
    silent_seconds: float | None = Field(description="How long since central last heard from the office.")


class RelayStatusRead(BaseModel):
    office_code: str
    backlog: int = Field(description="Events not yet sent (parked ones excluded).")
    oldest_unsent_at: datetime | None
    next_attempt_at: datetime | None = Field(description="When the earliest waiting event may be tried again.")
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error_at: datetime | None
    last_error: str | None
    events_sent: int
    parked: int = Field(description="Events central refused as invalid; see GET /sync/parked.")


class SyncStatus(BaseModel):
    central_url: str | None
    relay_in_process: bool
    offices: list[RelayStatusRead]


class ParkedEventRead(ReadModel):
    id: str
    type: str
    schema_version: int
    occurred_at: datetime
    office_code: str
    parked_at: datetime | None
    park_reason: str | None
    attempts: int
