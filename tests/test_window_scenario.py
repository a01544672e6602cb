"""One household through the whole single window, over real HTTP on loopback: Guichet itself served by
uvicorn on a temporary database of its own, and the reference partner scheme, which decides the
application sent to it by calling Guichet back with its service account. Registration, screening, a
case, two applications (one decided by the partner, one by a supervisor), a referral, a follow-up, an
appeal against the rejection, and the timeline showing all of it in order."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from conftest import PASSWORD
from conftest import _PASSWORD_HASH as PASSWORD_HASH
from conftest import create_postgres_database, drop_postgres_database, migrate
from helpers import household_body
from partner_server import RunningPartner, create_partner_app, free_socket, scheme_yaml

from app import clock
from app.main import create_app
from app.models import Location, Office, User
from app.vocabulary import Role

TOKEN = "partner-secret"


class Served:
    """An ASGI app served by uvicorn on 127.0.0.1 (a free port), with its lifespan, in this event loop."""

    def __init__(self, app):
        self.app = app
        self.sock = free_socket()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1))

    async def __aenter__(self) -> "Served":
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self.task.done():
                self.task.result()  # start-up failed: say why
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.should_exit = True
        await self.task
        self.sock.close()


@pytest.fixture
async def window_database(backend, tmp_path):
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'window.db'}"
        await migrate(url)
        yield url
        return
    url = await create_postgres_database()
    try:
        await migrate(url)
        yield url
    finally:
        await drop_postgres_database(url)


async def seed(app) -> None:
    """The office's corner of the gazetteer, the office, its clerk and supervisor, and the partner scheme's
    service account (one password for all: hashing is slow on purpose)."""
    async with app.state.sessionmaker() as session, session.begin():
        for code, name, level, parent in (("17", "Siem Reap", "province", None), ("1701", "Angkor Chum", "district", "17"),
                                          ("170101", "Char Chhuk", "commune", "1701"),
                                          ("17010101", "Prasat", "village", "170101")):
            session.add(Location(code=code, name=name, level=level, parent_code=parent, source="test"))
            await session.flush()
        office = Office(code="SR-ACH", name="Angkor Chum single window", location_code="1701")
        session.add(office)
        await session.flush()
        since = datetime(2020, 1, 1, tzinfo=UTC)
        session.add_all([
            User(username="sokha", full_name="Sokha Lim", password_hash=PASSWORD_HASH, role=Role.clerk, office_id=office.id,
                 tokens_valid_after=since),
            User(username="vanna", full_name="Vanna Keo", password_hash=PASSWORD_HASH, role=Role.supervisor,
                 office_id=office.id, tokens_valid_after=since),
            User(username="youth-jobs", password_hash=PASSWORD_HASH, role=Role.partner, scheme_code="KH-YOUTH-JOBS",
                 tokens_valid_after=since),
        ])


async def sign_in(http: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await http.post("/api/v1/auth/token", data={"grant_type": "password", "username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def until(predicate, *, seconds: float = 15.0):
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await predicate()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


async def test_one_household_through_the_single_window(settings, window_database, tmp_path):
    async with RunningPartner(create_partner_app(token=TOKEN)) as partner:
        schemes = tmp_path / "schemes"
        schemes.mkdir()
        (schemes / "youth.yaml").write_text(scheme_yaml(partner.url, service_level_days=14))
        office_settings = settings.model_copy(update={
            "database_url": window_database, "schemes_path": str(schemes),
            "partner_tokens": {"KH-YOUTH-JOBS": SecretStr(TOKEN)}})
        async with Served(create_app(office_settings)) as guichet:
            await seed(guichet.app)
            partner.app.state.guichet = {"base_url": guichet.url, "client_id": "youth-jobs", "client_secret": PASSWORD,
                                         "delay": 0.3}
            async with httpx.AsyncClient(base_url=guichet.url, timeout=20) as http:
                await walk_through(http, partner)


async def walk_through(http: httpx.AsyncClient, partner) -> None:
    clerk = await sign_in(http, "sokha")
    supervisor = await sign_in(http, "vanna")

    # 1. Registration: a young woman out of work, and her son; IDPoor level 1.
    body = household_body(members=2)
    body["members"][0] |= {"birth_date": "2002-08-15", "employment_status": "unemployed", "sex": "female"}
    body["members"][1]["birth_year"] = 2020
    body["consent"]["purposes"] = ["registry", "eligibility_sharing", "referral_sharing"]
    response = await http.post("/api/v1/households", json=body, headers=clerk)
    assert response.status_code == 201, response.text
    household = response.json()
    mother = household["members"][0]

    # 2. Screening: every scheme at once, the partner's over HTTP.
    screening = (await http.post(f"/api/v1/households/{household['id']}/screenings", headers=clerk)).json()
    verdicts = {(d["scheme_code"], d["person_id"]): d["outcome"] for d in screening["determinations"]}
    assert verdicts[("KH-YOUTH-JOBS", mother["id"])] == "eligible" and verdicts[("KH-HEF", None)] == "eligible"

    # 3. A case for her.
    response = await http.post("/api/v1/cases", json={"household_id": household["id"], "person_id": mother["id"],
                                                      "summary": "Looking for work; asks about health cover"}, headers=clerk)
    assert response.status_code == 201, response.text
    case = response.json()
    case_url = f"/api/v1/cases/{case['id']}"

    # 4. The youth programme: sent to the partner, which decides and posts the decision back to us.
    response = await http.post(f"{case_url}/applications", json={"scheme_code": "KH-YOUTH-JOBS"},
                               headers=clerk | {"Idempotency-Key": str(uuid.uuid4())})
    assert response.status_code == 201, response.text
    youth = response.json()
    assert youth["route"] == "partner" and youth["decision_due_date"] == (clock.today() + timedelta(days=14)).isoformat()

    async def decided():
        current = (await http.get(f"/api/v1/applications/{youth['id']}", headers=clerk)).json()
        return current if current["status"] != "submitted" else None

    async def answered():
        return partner.app.state.callbacks

    youth = await until(decided)
    [(status, _)] = await until(answered)  # the partner's own record of its call
    assert status == 200, partner.app.state.callbacks
    assert youth["status"] == "approved" and youth["decision"]["decided_by_kind"] == "partner"
    assert youth["decision"]["benefit"]["type"] == "training_stipend" and youth["decision"]["within_service_level"] is True
    assert youth["submission"]["state"] == "sent" and youth["submission"]["partner_reference"] == "YJ-00001"
    [(_, sent)] = partner.app.state.submissions
    assert set(sent["subject"]["facts"]) == {"person.age_years", "person.employment_status"}
    assert mother["given_name"] not in str(sent) and mother["national_id"] not in str(sent)

    # 5. The Health Equity Fund: decided here by the supervisor, who refuses it with written reasons.
    hef = (await http.post(f"{case_url}/applications", json={"scheme_code": "KH-HEF"}, headers=clerk)).json()
    receipt = await http.get(f"/api/v1/applications/{hef['id']}/receipt", headers=clerk | {"Accept": "text/html"})
    assert receipt.status_code == 200 and hef["reference"] in receipt.text and "Angkor Chum single window" in receipt.text
    etag = (await http.get(f"/api/v1/applications/{hef['id']}", headers=supervisor)).headers["ETag"]
    response = await http.post(f"/api/v1/applications/{hef['id']}/decision", headers=supervisor | {"If-Match": etag}, json={
        "decision": "rejected", "reason_code": "card_not_verified",
        "reason_text": "The equity card could not be verified with the Ministry of Planning."})
    assert response.status_code == 200, response.text

    # 6. A referral to the NEA's vocational training.
    response = await http.post(f"{case_url}/referrals", headers=clerk, json={
        "agency": "nea", "service": "vocational_training", "reason": "Wants training in tailoring",
        "due_date": (clock.today() + timedelta(days=21)).isoformat()})
    assert response.status_code == 201, response.text
    referral = response.json()

    # 7. A follow-up, done.
    response = await http.post(f"{case_url}/follow-ups", headers=clerk, json={
        "due_date": (clock.today() + timedelta(days=7)).isoformat(), "action": "Check she went to the NEA"})
    follow_up = response.json()
    queue = (await http.get("/api/v1/follow-ups", params={"due_before": follow_up["due_date"]}, headers=clerk)).json()
    assert [f["id"] for f in queue["items"]] == [follow_up["id"]]
    response = await http.patch(f"/api/v1/follow-ups/{follow_up['id']}", headers=clerk | {"If-Match": '"1"'},
                                json={"status": "completed", "note": "Enrolled for the January course"})
    assert response.status_code == 200, response.text

    # 8. She appeals against the refusal.
    response = await http.post("/api/v1/grievances", headers=clerk, json={
        "category": "appeal", "channel": "in_person", "application_id": hef["id"],
        "complainant": {"kind": "person", "person_id": mother["id"]},
        "description": "My card was renewed in October; here is the new one."})
    assert response.status_code == 201, response.text
    appeal = response.json()
    assert appeal["case_id"] == case["id"] and appeal["reference"].startswith("SR-ACH-")

    # 9. The timeline shows all of it, in order.
    timeline = (await http.get(f"{case_url}/timeline", headers=clerk)).json()
    kinds = [e["kind"] for e in timeline["items"]]
    assert kinds == [
        "screening.completed", "case.opened",
        "application.submitted", "application.sent", "application.decided",
        "application.submitted", "application.decided",
        "referral.issued", "follow_up.created", "follow_up.completed", "grievance.opened"]
    at = [e["at"] for e in timeline["items"]]
    assert at == sorted(at)
    by_kind = {}
    for entry in timeline["items"]:
        by_kind.setdefault(entry["kind"], []).append(entry)
    youth_decision, hef_decision = by_kind["application.decided"]
    assert youth_decision["actor"] == "youth-jobs" and youth_decision["details"]["decision"] == "approved"
    assert hef_decision["actor"] == "vanna" and hef_decision["details"]["reason_text"].startswith("The equity card")
    assert by_kind["referral.issued"][0]["details"]["reference"] == referral["reference"]
    assert by_kind["grievance.opened"][0]["details"]["application_reference"] == hef["reference"]
    assert by_kind["screening.completed"][0]["subject_id"] == screening["id"]
    # And the case cannot close while the appeal and the referral are open.
    case_now = await http.get(case_url, headers=clerk)
    response = await http.patch(case_url, headers=clerk | {"If-Match": case_now.headers["ETag"]},
                                json={"status": "closed", "outcome": "enrolled"})
    assert response.status_code == 409
    assert {i["type"] for i in response.json()["open_items"]} == {"referral", "grievance"}
