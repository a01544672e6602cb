"""Events, relay accounts and tokens for the monitoring, relay and sync tests."""

import secrets
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from app.events import EVENT_TYPES
from app.security import issue_token
from app.services import relay as relay_service
from app.vocabulary import Role

DIMS = {"province": "17", "district": "1701", "commune": "170101", "village": "17010101", "area_type": "rural"}


def pseudonym() -> str:
    return secrets.token_hex(16)


def person_dims(sex: str = "female", age_band: str = "18-59", disability: bool = False, idpoor_level: int | None = 1,
                female_headed: bool = True, **geo: str) -> dict[str, Any]:
    dims = {**DIMS, **geo, "sex": sex, "age_band": age_band, "disability": disability, "female_headed": female_headed}
    if idpoor_level is not None:
        dims["idpoor_level"] = idpoor_level
    return dims


def household_dims(female_headed: bool = True, idpoor_level: int | None = 1, **geo: str) -> dict[str, Any]:
    dims = {**DIMS, **geo, "female_headed": female_headed}
    if idpoor_level is not None:
        dims["idpoor_level"] = idpoor_level
    return dims


def event(event_type: str, payload: dict[str, Any], *, office: str = "SR-ACH", at: datetime | None = None,
          version: int = 1, event_id: str | None = None, validate: bool = True) -> dict[str, Any]:
    if validate:  # what the tests send is what an office would emit
        EVENT_TYPES[(event_type, version)].model_validate(payload)
    return {"id": event_id or str(uuid.uuid4()), "type": event_type, "schema_version": version,
            "occurred_at": (at or datetime.now(UTC)).isoformat(), "office_code": office, "payload": payload}


def person_registered(*, person: str | None = None, household: str | None = None, **kwargs) -> dict[str, Any]:
    at = kwargs.pop("at", None)
    office = kwargs.pop("office", "SR-ACH")
    return event("person.registered", {"person": person or pseudonym(), "household": household or pseudonym(),
                                       "dimensions": person_dims(**kwargs)}, at=at, office=office)


def household_registered(*, household: str | None = None, size: int = 3, **kwargs) -> dict[str, Any]:
    at = kwargs.pop("at", None)
    office = kwargs.pop("office", "SR-ACH")
    return event("household.registered", {"household": household or pseudonym(), "size": size,
                                          "dimensions": household_dims(**kwargs)}, at=at, office=office)


def decided(decision: str, *, scheme: str = "KH-HEF", days: int = 10, person: str | None = None, sla: bool = True,
            at: datetime | None = None, reason: str | None = None, **dims) -> dict[str, Any]:
    payload = {"person": person or pseudonym(), "household": pseudonym(), "dimensions": person_dims(**dims),
               "application": pseudonym(), "scheme": scheme, "scheme_kind": "social_protection", "decision": decision,
               "decided_by": "partner", "days_to_decision": days, "within_service_level": sla}
    if reason:
        payload["reason_code"] = reason
    return event("application.decided", payload, at=at)


def at(day: str, hour: int = 3) -> datetime:
    """A moment on a local (Phnom Penh, UTC+7) day: 03:00 local is 20:00 UTC the day before."""
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC) - timedelta(hours=7)


async def relay_token(app, settings, office_code: str) -> dict[str, str]:
    async with app.state.sessionmaker() as session, session.begin():
        user, _ = await relay_service.relay_account(session, office_code, new_secret=False)
    token, _ = issue_token(settings, subject=user.id, role=Role.relay, office=office_code, scheme=None)
    return {"Authorization": f"Bearer {token}"}


def first_of_month(d: date) -> date:
    return d.replace(day=1)


def sample_payload(event_type: str, **facts: Any) -> dict[str, Any]:
    """A valid payload of every event type of the contract (those no office emits yet included)."""
    person, household = facts.pop("person", pseudonym()), facts.pop("household", pseudonym())
    dims = facts.pop("dimensions", None) or person_dims()
    base = {"person": person, "household": household, "dimensions": dims}
    scheme = {"scheme": facts.pop("scheme", "KH-HEF"), "scheme_kind": "social_protection"}
    defaults: dict[str, dict[str, Any]] = {
        "household.registered": {"person": None, "size": 3},
        "household.updated": {"person": None, "fields": ["address"]},
        "person.registered": {},
        "person.updated": {"fields": ["phone"]},
        "consent.changed": {"person": None, "purposes": ["registry"]},
        "screening.completed": {"person": None, "screening": pseudonym(), "schemes": 5, "determinations": 9, "eligible": 2},
        "screening.determination": {"screening": pseudonym(), **scheme, "outcome": "eligible"},
        "case.opened": {"case": pseudonym()},
        "case.closed": {"case": pseudonym(), "outcome": "plan_completed", "days_open": 40},
        "application.submitted": {"application": pseudonym(), **scheme, "against_screening": False},
        "application.decided": {"application": pseudonym(), **scheme, "decision": "approved", "decided_by": "partner",
                                "days_to_decision": 12, "within_service_level": True},
        "referral.issued": {"referral": pseudonym(), "agency": "nea", "due_date": "2026-03-15"},
        "referral.status_changed": {"referral": pseudonym(), "agency": "nea", "status": "completed", "days_open": 5,
                                    "overdue": False},
        "follow_up.completed": {"follow_up": pseudonym(), "overdue": False},
        "grievance.opened": {"grievance": pseudonym(), "category": "payment", "channel": "hotline",
                             "sla_due_date": "2026-03-15"},
        "grievance.status_changed": {"grievance": pseudonym(), "category": "payment", "channel": "hotline",
                                     "status": "resolved", "days_open": 9, "overdue": False},
    }
    payload = {**base, **defaults[event_type], **facts}
    return {k: v for k, v in payload.items() if v is not None}


def sample(event_type: str, *, at: datetime | None = None, office: str = "SR-ACH", **facts: Any) -> dict[str, Any]:
    return event(event_type, sample_payload(event_type, **facts), at=at, office=office)


def bound_socket():
    """A socket bound to a free loopback port, and its URL (known before the server starts)."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


class Loopback:
    """An ASGI app served by uvicorn on 127.0.0.1 (free port) in the test's event loop."""

    def __init__(self, app, sock=None):
        import uvicorn

        self.sock, self.url = (sock, f"http://127.0.0.1:{sock.getsockname()[1]}") if sock else bound_socket()
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=0.1))

    async def __aenter__(self) -> "Loopback":
        import asyncio

        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            await asyncio.sleep(0.005)
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.should_exit = True
        self.server.force_exit = True
        await self.task
        self.sock.close()


def closed_port_url() -> str:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    return f"http://127.0.0.1:{port}"
