"""Writing activity events into the outbox, in the caller's transaction."""

import hashlib
import hmac
import uuid
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.principal import Principal
from app.events import EVENT_TYPES, Dimensions
from app.models import ActivityEvent, Household, Person
from app.models.base import new_id, utcnow
from app.services.demography import has_severe_disability, idpoor_valid, person_age_band
from app.vocabulary import EventTrigger, Role

_pseudonym_key = b""


def configure(pseudonym_key: str) -> None:
    global _pseudonym_key
    _pseudonym_key = pseudonym_key.encode()


def pseudonym(kind: str, entity_id: uuid.UUID) -> str:
    """A stable stand-in for a record id: central can count unique persons without learning who."""
    if not _pseudonym_key:
        raise RuntimeError("activity.configure() was not called")
    return hmac.new(_pseudonym_key, f"{kind}:{entity_id}".encode(), hashlib.sha256).hexdigest()[:32]


def household_dimensions(household: Household, on: date, head: Person | None = None) -> dict[str, Any]:
    code = household.village_code
    return {
        "province": code[:2],
        "district": code[:4],
        "commune": code[:6],
        "village": code,
        "area_type": household.area_type,
        "idpoor_level": household.idpoor_level if idpoor_valid(household, on) else None,
        "female_headed": head.sex == "female" if head is not None else None,
    }


def person_dimensions(person: Person, household: Household, on: date, head: Person | None) -> dict[str, Any]:
    return household_dimensions(household, on, head) | {
        "sex": person.sex,
        "age_band": person_age_band(person, on),
        "disability": has_severe_disability(person),
    }


def trigger_of(actor: Principal | None) -> EventTrigger:
    """What an actor's change is to central: a partner's through the partner API, the office's own
    housekeeping when nobody acted (None), else service at the window."""
    if actor is None:
        return EventTrigger.system
    return EventTrigger.partner if actor.role is Role.partner else EventTrigger.window


def emit(session: AsyncSession, event_type: str, **what: Any) -> None:
    session.add(ActivityEvent(**event(event_type, **what)))


def event(
    event_type: str,
    *,
    office_code: str,
    dimensions: dict[str, Any],
    household_id: uuid.UUID | None = None,
    person_id: uuid.UUID | None = None,
    schema_version: int = 1,
    **facts: Any,
) -> dict[str, Any]:
    """The event's outbox row, its payload checked against the event's contract: `emit` adds it to the
    session, bulk writers (app.bulk.insert_rows) insert it with the rest of their rows."""
    model = EVENT_TYPES[(event_type, schema_version)]
    payload = model(
        household=pseudonym("household", household_id) if household_id else None,
        person=pseudonym("person", person_id) if person_id else None,
        dimensions=Dimensions(**dimensions),
        **facts,
    )
    now = utcnow()
    return {"id": new_id(), "type": event_type, "schema_version": schema_version, "occurred_at": now,
            "office_code": office_code, "payload": payload.model_dump(mode="json", exclude_none=True),
            "next_attempt_at": now, "attempts": 0}
