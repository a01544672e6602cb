"""`guichet rescreen`: re-runs every household's screening in batches, writes only what changed,
and counts the verdicts that changed."""

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import func, select

from helpers import household_body

from app.models import ActivityEvent, AuditEvent, Screening, ScreeningDetermination
from app.schemes.registry import CATALOGUE_DIR, load_registry
from app.services.rescreen import rescreen
from app.services.screening import latest_determination


async def count(app, model, *where):
    async with app.state.sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one()


async def test_rescreen_writes_what_changed_and_counts_it(client, world, app, tmp_path):
    ids = []
    for i in range(5):
        body = household_body(members=2)
        body["members"][1].update(birth_year=2014, school_enrolled=True, school_attendance_percent=70)
        ids.append((await client.post("/api/v1/households", json=body, headers=world.clerk_a.headers)).json()["id"])
    other = household_body(members=1, village_code="17120101")
    await client.post("/api/v1/households", json=other, headers=world.clerk_b.headers)
    await client.post(f"/api/v1/households/{ids[0]}/screenings", headers=world.clerk_a.headers)
    registry = app.state.schemes
    progress = []

    first = await rescreen(app.state.sessionmaker, registry, office_code="SR-ACH", scheme_codes=None, batch_size=2,
                           on_progress=progress.append)
    assert first.households == 5 and sum(progress) == 5 and len(progress) == 3
    # The household screened a moment ago is up to date: nothing is written for it.
    assert first.screenings_written == 4 and first.determinations_written == 4 * (6 * 2 + 2)
    assert first.changed[("KH-SCHOLAR", None, "not_eligible")] == 8  # both members of 4 households
    assert await count(app, Screening, Screening.trigger == "rescreen") == 4
    # The households have the same facts (one evaluation serves them all), each keeps its own people.
    async with app.state.sessionmaker() as session:
        subjects = (await session.execute(select(ScreeningDetermination.household_id, ScreeningDetermination.person_id,
                                                 ScreeningDetermination.scheme_code)
                                          .join(Screening).where(Screening.trigger == "rescreen"))).all()
    assert len(subjects) == len(set(subjects)) == first.determinations_written
    assert await count(app, AuditEvent, AuditEvent.action == "rescreen") == 3  # one per batch

    again = await rescreen(app.state.sessionmaker, registry, office_code="SR-ACH", scheme_codes=None, batch_size=50)
    assert again.households == 5 and again.screenings_written == 0 and not again.changed

    # A rules change: the scholarship's attendance threshold drops to 60%.
    (tmp_path / "scholar.yaml").write_text(
        (CATALOGUE_DIR / "kh-scholar.yaml").read_text().replace("minimum_attendance_percent: 80", "minimum_attendance_percent: 60"))
    changed_registry = load_registry(SimpleNamespace(schemes_path=str(tmp_path), partner_tokens={}, partner_urls={}))
    events_before = await count(app, ActivityEvent)
    third = await rescreen(app.state.sessionmaker, changed_registry, office_code="SR-ACH", scheme_codes=["KH-SCHOLAR"],
                           batch_size=50)
    assert third.changed == {("KH-SCHOLAR", "not_eligible", "eligible"): 5}
    # Only the children's scholarship determinations say something new (verdict, and reasons quoting the
    # new threshold); the heads' say the same as before and are not written again.
    assert third.screenings_written == 5 and third.determinations_written == 5
    assert await count(app, ActivityEvent) - events_before == 5 * 2  # one per determination, one completed per screening
    async with app.state.sessionmaker() as session:
        import uuid

        household = uuid.UUID(ids[0])
        child = (await client.get(f"/api/v1/households/{ids[0]}", headers=world.clerk_a.headers)).json()["members"][1]["id"]
        latest = await latest_determination(session, household_id=household, person_id=uuid.UUID(child), scheme_code="KH-SCHOLAR")
        assert latest.outcome == "eligible"
        hef = await latest_determination(session, household_id=household, person_id=None, scheme_code="KH-HEF")
        assert hef.outcome == "eligible"
    assert await count(app, ScreeningDetermination, ScreeningDetermination.household_id.in_([])) == 0


def test_rescreen_command(tmp_path):
    """The command as an operator runs it, on a fresh SQLite database with the demo data."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUICHET_")}
    env |= {"GUICHET_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'g.db'}", "GUICHET_VAR_DIR": str(tmp_path)}
    guichet = [sys.executable, "-c", "from app.cli import main; main()"]
    cwd = Path(__file__).resolve().parent.parent
    for command in (["db", "upgrade"], ["seed", "demo"]):
        subprocess.run(guichet + command, env=env, cwd=cwd, check=True, capture_output=True, timeout=120)
    done = subprocess.run(guichet + ["rescreen", "--office", "SR-ACH"], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "re-screened 4 households" in done.stdout and "KH-HEF" in done.stdout
    again = subprocess.run(guichet + ["rescreen", "--scheme", "KH-HEF"], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert "no verdict changed" in again.stdout
    unknown = subprocess.run(guichet + ["rescreen", "--office", "NOPE"], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 1 and "no office NOPE" in unknown.stderr
    bad = subprocess.run(guichet + ["rescreen", "--scheme", "KH-NOPE"], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "no scheme KH-NOPE" in bad.stderr

    # A partner scheme that nobody answers for: the run ends with exit status 3 and says who was not reached.
    from partner_server import free_socket, scheme_yaml

    with free_socket() as closed:  # a port bound but not listening: every connection is refused
        schemes = tmp_path / "schemes"
        schemes.mkdir()
        (schemes / "youth.yaml").write_text(scheme_yaml(f"http://127.0.0.1:{closed.getsockname()[1]}/eligibility",
                                                         timeouts="{connect: 0.5, read: 0.5, overall: 2}", backoff=0.01))
        down = subprocess.run(guichet + ["rescreen", "--scheme", "KH-YOUTH-JOBS"], env=env | {"GUICHET_SCHEMES_PATH": str(schemes)},
                              cwd=cwd, capture_output=True, text=True, timeout=120)
    assert down.returncode == 3, down.stderr
    assert re.search(r"KH-YOUTH-JOBS: [1-9]\d* subjects not reached", down.stderr), down.stderr
    assert "-> error" not in down.stdout  # no error recorded as a verdict (a household without consent gets
    # needs_information: it is not asked about)


def test_input_fingerprint_is_the_same_whether_remembered_or_not():
    """The rules engine remembers input fingerprints by the values of the facts they read: a
    remembered one is the one computed afresh, and values that are equal but of other types (an
    attribute recorded as true, or as 1) keep digests of their own."""
    adapter = load_registry(SimpleNamespace(schemes_path=None, partner_tokens={}, partner_urls={})).get("KH-NEA-JOB")
    version = adapter.versions[-1]
    facts = {name: None for name in version.fact_order} | {"person.age_years": 30, "person.employment_status": "unemployed"}
    digests = {}
    for value in (True, 1, 1.0, ["a list"], None):
        version.fingerprints.clear()
        fresh = version.input_fingerprint(facts | {"person.attributes.seeking_work": value}, "en")
        assert version.input_fingerprint(facts | {"person.attributes.seeking_work": value}, "en") == fresh
        digests[repr(value)] = fresh
    for value in (True, 1, 1.0, None):  # now all remembered together
        assert version.input_fingerprint(facts | {"person.attributes.seeking_work": value}, "en") == digests[repr(value)]
    assert len(set(digests.values())) == 5
    assert version.input_fingerprint(facts, "km") != version.input_fingerprint(facts, "en")
    # Facts without some the version reads (a caller's own dictionary): computed, not remembered.
    version.fingerprints.clear()
    assert version.input_fingerprint({}, "en") == version.input_fingerprint({name: None for name in version.fact_order}, "en")


async def test_rescreen_asks_partners_again_and_keeps_their_verdict_while_they_are_down(client, world, app, monkeypatch):
    """A partner's answers can change with nothing changing here, so a re-screen asks it about every
    subject again and writes what it now says differently. A partner that cannot answer (down, after the
    adapter's retries) leaves the latest verdict in place: the run counts those subjects as not reached
    instead of recording an error over a verdict."""
    import partner_server
    from partner_server import RunningPartner, create_partner_app
    from test_schemes_http import TOKEN, partner_scheme

    from app.schemes.http import PartnerDetermination, PartnerReason
    from app.schemes.registry import SchemeRegistry

    ids = []
    for _ in range(3):
        body = household_body(members=2)
        body["members"][0].update(birth_date="2002-03-14", employment_status="unemployed", monthly_income=None)
        body["members"][1].update(birth_year=2015)  # aged 11: not in the programme's ages
        ids.append((await client.post("/api/v1/households", json=body, headers=world.clerk_a.headers)).json()["id"])

    async def verdicts():
        async with app.state.sessionmaker() as session:
            rows = (await session.execute(select(ScreeningDetermination.person_id, ScreeningDetermination.outcome)
                                          .where(ScreeningDetermination.scheme_code == "KH-YOUTH-JOBS")
                                          .order_by(ScreeningDetermination.screened_at))).all()
        return dict(rows)  # the latest per person

    async with RunningPartner(create_partner_app(token=TOKEN)) as partner:
        youth = partner_scheme(partner.url, failures=100)
        registry = SchemeRegistry()
        registry.register(youth)

        async def run():
            return await rescreen(app.state.sessionmaker, registry, office_code="SR-ACH", scheme_codes=None, batch_size=2)

        try:
            first = await run()
            assert first.households == 3 and first.screenings_written == 3 and first.determinations_written == 6
            # The young unemployed heads are eligible, their children are not.
            assert first.changed == {("KH-YOUTH-JOBS", None, "eligible"): 3, ("KH-YOUTH-JOBS", None, "not_eligible"): 3}
            assert len(partner.app.state.received) == 3  # one call per household, with both members

            again = await run()
            assert len(partner.app.state.received) == 6  # asked again: only the partner knows whether it changed
            assert again.screenings_written == 0 and not again.changed and not again.unreached

            closed = PartnerReason(code="closed", message="The programme takes no new entrants", result="failed")
            monkeypatch.setattr(partner_server, "decide", lambda facts, reference_id: PartnerDetermination(
                reference_id=reference_id, outcome="not_eligible", reasons=[closed]))
            changed = await run()
            # The children's verdict stays, with the new reason: written, but not counted as a changed verdict.
            assert changed.changed == {("KH-YOUTH-JOBS", "eligible", "not_eligible"): 3}
            assert changed.determinations_written == 6
            before_outage = await verdicts()
            assert set(before_outage.values()) == {"not_eligible"}

            partner.app.state.script.extend({"status": 503} for _ in range(3 * 3))  # every try of every household
            down = await run()
            assert down.households == 3 and down.unreached == {"KH-YOUTH-JOBS": 6}
            assert down.screenings_written == 0 and down.determinations_written == 0 and not down.changed
            assert await verdicts() == before_outage

            # A clerk screens a household while the partner is still down: the screening records the error...
            original, app.state.schemes = app.state.schemes, registry
            try:
                partner.app.state.script.extend({"status": 503} for _ in range(3))
                seen = (await client.post(f"/api/v1/households/{ids[0]}/screenings", headers=world.clerk_a.headers)).json()
            finally:
                app.state.schemes = original
            assert {d["outcome"] for d in seen["determinations"]} == {"error"}
            # ...but the verdicts in force are unchanged, and the next re-screen finds nothing to write.
            back = await run()
            assert back.screenings_written == 0 and not back.changed and not back.unreached
        finally:
            await youth.aclose()
