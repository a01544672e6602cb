"""Synthetic activity events for the monitoring benchmarks: many offices over a year, a realistic mix of
event types, persons who come back (registered, screened, applying, referred), and the dimensions of a
Cambodian caseload. Plain dicts, made fast; every one valid against app/events.py."""

import random
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

SCHEMES = ["KH-HEF", "KH-CTP", "KH-DISAB", "KH-OAP", "KH-NSSF-HC", "KH-SCHOOL", "KH-NEA", "KH-IDPOOR"]
AGENCIES = ["nea", "moh", "mosvy", "ngo-care", "nssf"]
CATEGORIES = ["exclusion_error", "payment", "staff_conduct", "data_correction", "appeal", "other"]
CHANNELS = ["in_person", "phone", "letter", "hotline"]


def _weighted(rng: random.Random, pairs):
    values, weights = zip(*pairs, strict=True)
    return lambda: rng.choices(values, weights)[0]


@dataclass
class Office:
    code: str
    province: str
    district: str
    households: list[dict[str, Any]] = field(default_factory=list)


def offices(count: int) -> list[Office]:
    """count offices spread over the 25 provinces, each in its own district."""
    out = []
    for i in range(count):
        province = f"{1 + i % 25:02d}"
        out.append(Office(code=f"OF-{i:03d}", province=province, district=f"{province}{1 + i // 25:02d}"))
    return out


class Generator:
    def __init__(self, seed: int = 7):
        self.rng = rng = random.Random(seed)
        self.sex = _weighted(rng, [("female", 52), ("male", 47), ("other", 1)])
        self.age = _weighted(rng, [("0-4", 10), ("5-17", 25), ("18-59", 50), ("60+", 15)])
        self.idpoor = _weighted(rng, [(None, 70), (1, 15), (2, 15)])

    def pseudonym(self) -> str:
        return "%032x" % self.rng.getrandbits(128)

    def household(self, office: Office) -> dict[str, Any]:
        rng = self.rng
        commune = f"{office.district}{1 + rng.randrange(10):02d}"
        dims = {"province": office.province, "district": office.district, "commune": commune,
                "village": f"{commune}{1 + rng.randrange(15):02d}", "area_type": "rural" if rng.random() < 0.75 else "urban",
                "female_headed": rng.random() < 0.25}
        idpoor = self.idpoor()
        if idpoor:
            dims["idpoor_level"] = idpoor
        members = [{"person": self.pseudonym(), "sex": self.sex(), "age_band": self.age(), "disability": rng.random() < 0.08}
                   for _ in range(1 + rng.randrange(6))]
        household = {"household": self.pseudonym(), "dims": dims, "members": members}
        office.households.append(household)
        return household

    def visit(self, office: Office, day: date) -> list[tuple[str, dict[str, Any], dict[str, Any] | None]]:
        """What one visit to the single window records, as (type, payload) pairs: a new household
        registered and screened (every member for every scheme), or a return visit (an application
        decided, a referral, a grievance, an update...)."""
        rng = self.rng
        out: list[tuple[str, dict[str, Any]]] = []
        new = not office.households or rng.random() < 0.35
        household = self.household(office) if new else office.households[
            rng.randrange(max(0, len(office.households) - 2000), len(office.households))]
        hh = {"household": household["household"], "dimensions": household["dims"]}

        def person(member):
            return {"household": household["household"], "person": member["person"],
                    "dimensions": {**household["dims"], "sex": member["sex"], "age_band": member["age_band"],
                                   "disability": member["disability"]}}

        def kinds(scheme):
            return {"scheme": scheme, "scheme_kind": "employment" if scheme == "KH-NEA" else "social_protection"}

        if new:
            out.append(("household.registered", {**hh, "size": len(household["members"])}))
            out += [("person.registered", person(m)) for m in household["members"]]
        if new or rng.random() < 0.2:  # screened at registration, or again after a change
            screening = self.pseudonym()
            eligible = 0
            for scheme in SCHEMES:
                for member in household["members"] if scheme not in ("KH-HEF", "KH-IDPOOR") else [None]:
                    outcome = rng.choices(["eligible", "not_eligible", "needs_information", "error"], [25, 60, 13, 2])[0]
                    eligible += outcome == "eligible"
                    base = person(member) if member else hh
                    out.append(("screening.determination", {**base, "screening": screening, **kinds(scheme), "outcome": outcome}))
            out.append(("screening.completed", {**hh, "screening": screening, "schemes": len(SCHEMES),
                                                "determinations": len(out), "eligible": eligible}))
            for member in rng.sample(household["members"], min(2, len(household["members"]))):
                if rng.random() < 0.5:
                    out.append(("application.submitted", {**person(member), "application": self.pseudonym(),
                                                          **kinds(rng.choice(SCHEMES)), "against_screening": rng.random() < 0.05}))
            return out
        member = rng.choice(household["members"])
        match rng.choices(["decided", "referral", "referral_closed", "grievance", "grievance_closed", "update", "case",
                           "follow_up", "consent"], [40, 10, 8, 4, 3, 15, 6, 8, 6])[0]:
            case "decided":
                decision = rng.choices(["approved", "rejected", "withdrawn"], [70, 25, 5])[0]
                payload = {**person(member), "application": self.pseudonym(), **kinds(rng.choice(SCHEMES)), "decision": decision,
                           "decided_by": "partner", "days_to_decision": int(rng.expovariate(1 / 18)),
                           "within_service_level": rng.random() < 0.8, "trigger": "partner"}
                if decision == "rejected":
                    payload["reason_code"] = rng.choice(["income_above_threshold", "documents_missing", "not_resident"])
                out.append(("application.decided", payload))
            case "referral":
                out.append(("referral.issued", {**person(member), "referral": self.pseudonym(), "agency": rng.choice(AGENCIES),
                                                "due_date": (day + timedelta(days=14)).isoformat()}))
            case "referral_closed":
                out.append(("referral.status_changed", {**person(member), "referral": self.pseudonym(),
                                                        "agency": rng.choice(AGENCIES),
                                                        "status": rng.choice(["accepted", "completed", "declined", "expired"]),
                                                        "days_open": rng.randrange(40), "overdue": rng.random() < 0.2}))
            case "grievance":
                out.append(("grievance.opened", {**person(member), "grievance": self.pseudonym(), "category": rng.choice(CATEGORIES),
                                                 "channel": rng.choice(CHANNELS),
                                                 "sla_due_date": (day + timedelta(days=30)).isoformat()}))
            case "grievance_closed":
                out.append(("grievance.status_changed", {**person(member), "grievance": self.pseudonym(),
                                                         "category": rng.choice(CATEGORIES), "channel": rng.choice(CHANNELS),
                                                         "status": rng.choice(["in_review", "resolved", "escalated", "rejected"]),
                                                         "days_open": rng.randrange(60), "overdue": rng.random() < 0.15}))
            case "update":
                out.append(("person.updated", {**person(member), "fields": ["phone"]}))
                out.append(("household.updated", {**hh, "fields": ["address"]}))
            case "case":
                out.append(("case.opened" if rng.random() < 0.6 else "case.closed",
                            {**person(member), "case": self.pseudonym()}))
                if out[-1][0] == "case.closed":
                    out[-1][1].update(outcome="plan_completed", days_open=rng.randrange(200))
            case "follow_up":
                out.append(("follow_up.completed", {**person(member), "follow_up": self.pseudonym(), "overdue": rng.random() < 0.1}))
            case _:
                out.append(("consent.changed", {**hh, "purposes": ["registry", "eligibility_sharing"]}))
        return out

    def envelope(self, office: Office, day: date, event_type: str, payload: dict[str, Any], second: int) -> dict[str, Any]:
        moment = datetime(day.year, day.month, day.day, 1, tzinfo=UTC) + timedelta(seconds=second)
        return {"id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)), "type": event_type, "schema_version": 1,
                "occurred_at": moment.isoformat(), "office_code": office.code, "payload": {"trigger": "window", **payload}}

    def events(self, office: Office, *, count: int, first_day: date, days: int) -> list[dict[str, Any]]:
        """About `count` events of one office, visit by visit, spread evenly over `days` days."""
        out: list[dict[str, Any]] = []
        while len(out) < count:
            day = first_day + timedelta(days=len(out) * days // count)
            second = self.rng.randrange(30000)
            out += [self.envelope(office, day, t, p, second + i) for i, (t, p) in enumerate(self.visit(office, day))]
        return out[:count]

    def batches(self, office: Office, *, count: int, size: int, first_day: date, days: int) -> list[list[dict[str, Any]]]:
        """count batches of one office's events, in time order over `days` days."""
        events = self.events(office, count=count * size, first_day=first_day, days=days)
        return [events[i:i + size] for i in range(0, len(events), size)]


def fresh_ids(batches: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    return [[{**e, "id": str(uuid.uuid4())} for e in batch] for batch in batches]


__all__ = ["Generator", "fresh_ids", "offices", "secrets"]


async def register_offices(url: str, codes: list[tuple[str, str]]) -> dict[str, dict[str, str]]:
    """At central: the gazetteer, each office and its relay's client credentials (as GUICHET_ variables)."""
    from pathlib import Path

    from app.config import Settings
    from app.db import create_engine, create_sessionmaker
    from app.services import locations
    from app.services import offices as office_service
    from app.services.relay import relay_account

    engine = create_engine(Settings(database_url=url, var_dir=Path("var/bench")))
    credentials = {}
    async with create_sessionmaker(engine)() as session, session.begin():
        await locations.load_national_gazetteer(session)
        for code, province in codes:
            await office_service.create_office(session, None, code=code, name=code, location_code=province)
            user, secret = await relay_account(session, code, new_secret=True)
            credentials[code] = {"GUICHET_RELAY_CLIENT_ID": user.username, "GUICHET_RELAY_CLIENT_SECRET": secret}
    await engine.dispose()
    return credentials
