"""The synthetic population: deterministic for a seed, shaped like Cambodia's, and loaded so that search
and duplicate matching find its people exactly like registered ones (on SQLite and PostgreSQL)."""

import os
import statistics
import subprocess
import sys
import uuid
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app import clock
from app.models import ActivityEvent, AuditEvent, ConsentRecord, Household, Office, Person
from app.schemas.households import HouseholdCreate
from app.services import synthetic
from app.services.demography import age_in_years
from app.services.locations import national_gazetteer
from app.services.names import name_keys, search_name
from app.vocabulary import DISABILITY_DOMAINS
from helpers import assert_problem

AS_OF = date(2026, 6, 15)
ROOT = Path(__file__).resolve().parent.parent


def siem_reap() -> synthetic.Area:
    """Every village of Siem Reap province, served by one made-up office (no database needed)."""
    rows = national_gazetteer()
    names = {r["code"]: r["name"] for r in rows}
    office = uuid.UUID(int=1)
    return synthetic.Area.of("TEST", [
        (r["code"], office, synthetic.is_municipal("17", names[r["code"][:4]], names["17"]))
        for r in rows if r["level"] == "village" and r["code"].startswith("17")
    ])


@pytest.fixture(scope="module")
def population() -> list[synthetic.SyntheticHousehold]:
    return synthetic.generate_range(siem_reap(), seed=11, start=0, stop=3000, as_of=AS_OF)


def test_a_seed_always_gives_the_same_households():
    area = siem_reap()
    first = synthetic.generate_range(area, seed=7, start=0, stop=40, as_of=AS_OF)
    assert synthetic.generate_range(area, seed=7, start=0, stop=40, as_of=AS_OF) == first
    # Household i does not depend on how many are made around it: a bigger run extends a smaller one.
    assert synthetic.generate_range(area, seed=7, start=30, stop=60, as_of=AS_OF)[:10] == first[30:]
    other = synthetic.generate_range(area, seed=8, start=0, stop=40, as_of=AS_OF)
    assert {h.household["id"] for h in other}.isdisjoint(h.household["id"] for h in first)
    assert [h.persons[0]["search_name"] for h in other] != [h.persons[0]["search_name"] for h in first]


def test_households_look_like_cambodian_households(population):
    households = [h.household for h in population]
    sizes = [len(h.persons) for h in population]
    assert 4.2 <= statistics.mean(sizes) <= 4.7
    assert 0.02 <= sizes.count(1) / len(sizes) <= 0.08 and max(sizes) <= 13
    for h in population:
        assert [p["relationship"] for p in h.persons].count("head") == 1 and h.persons[0]["relationship"] == "head"
    heads = [h.persons[0] for h in population]
    assert 0.18 <= sum(p["sex"] == "female" for p in heads) / len(heads) <= 0.30
    idpoor = [h for h in households if h["idpoor_level"] is not None]
    assert 0.15 <= len(idpoor) / len(households) <= 0.20
    assert 0.25 <= sum(h["idpoor_level"] == 1 for h in idpoor) / len(idpoor) <= 0.45
    assert all(h["idpoor_valid_until"] is not None for h in idpoor)
    assert sum(h["idpoor_card_number"] is not None for h in idpoor) / len(idpoor) > 0.8
    assert all(h["idpoor_card_number"] is None for h in households if h["idpoor_level"] is None)
    urban = [h for h in households if h["area_type"] == "urban"]
    assert 0.15 <= len(urban) / len(households) <= 0.45
    in_town = sum(h["village_code"].startswith("1710") for h in urban) / len(urban)
    assert 0.5 < in_town < 1  # mostly Siem Reap town, some district centres
    assert all(h["village_code"].startswith("17") for h in households)
    assert len({h["village_code"] for h in households}) > 500  # spread over the province


def test_people_follow_the_age_pyramid_and_sex_ratio(population):
    people = [p for h in population for p in h.persons]
    ages = [age_in_years(p["birth_date"], p["birth_year"], AS_OF) for p in people]
    share = lambda test: sum(map(test, ages)) / len(ages)  # noqa: E731
    assert 0.25 <= share(lambda a: a < 15) <= 0.33  # census 2019: 29%
    assert 0.07 <= share(lambda a: a >= 60) <= 0.12  # 9%
    assert 0.60 <= share(lambda a: 15 <= a < 65) <= 0.70  # 65%
    assert max(ages) <= 100
    men = sum(p["sex"] == "male" for p in people)
    assert 0.90 <= men / (len(people) - men) <= 1.0  # 95 men for 100 women
    approximate = [p for p in people if p["birth_date_approximate"]]
    assert 0.05 <= len(approximate) / len(people) <= 0.3
    assert all(p["birth_date"] is None for p in approximate)
    assert all(p["birth_date"].year == p["birth_year"] for p in people if p["birth_date"])


def test_disability_pregnancy_school_and_work(population):
    people = [(p, age_in_years(p["birth_date"], p["birth_year"], AS_OF)) for h in population for p in h.persons]
    severe = lambda p: any(p[f"disability_{d}"] in ("a_lot", "cannot") for d in DISABILITY_DOMAINS)  # noqa: E731
    rate = lambda group: sum(severe(p) for p, _ in group) / len(group)  # noqa: E731
    assert 0.02 <= rate(people) <= 0.05  # Washington Group cut-off: a few percent
    assert not any(severe(p) for p, age in people if age < 5)
    assert rate([x for x in people if x[1] >= 60]) > 3 * rate([x for x in people if 18 <= x[1] < 40])
    assert any(p[f"disability_{d}"] == "some" for p, _ in people for d in DISABILITY_DOMAINS)

    pregnant = [(p, age) for p, age in people if p["pregnant"]]
    assert all(p["sex"] == "female" and 15 <= age <= 46 for p, age in pregnant)
    assert all(p["expected_delivery_date"] > AS_OF for p, _ in pregnant)
    women = [x for x in people if x[0]["sex"] == "female" and 15 <= x[1] <= 45]
    assert 0.03 <= len(pregnant) / len(women) <= 0.10

    school_age = [p for p, age in people if 6 <= age <= 14]
    assert 0.75 <= sum(bool(p["school_enrolled"]) for p in school_age) / len(school_age) <= 0.95
    assert all(p["school_attendance_percent"] is not None for p in school_age if p["school_enrolled"])
    assert all(p["school_attendance_percent"] is None for p, _ in people if not p["school_enrolled"])

    status = Counter(p["employment_status"] for p, age in people if 15 <= age < 65)
    working_age = sum(status.values())
    assert status["informal"] + status["self_employed"] > 0.4 * working_age
    assert 0.04 <= status["formal"] / working_age <= 0.2
    assert 0.01 <= status["unemployed"] / working_age <= 0.06
    assert all(p["employment_status"] is None for p, age in people if age < 15)
    assert all(age >= 60 for p, age in people if p["employment_status"] == "retired")
    formal = [p for p, _ in people if p["employment_status"] == "formal"]
    assert all(p["nssf_member"] and p["nssf_contribution_months"] >= 1 and p["monthly_income"] > 0 for p in formal)


def test_names_are_khmer_in_latin_and_in_khmer_script(population):
    pools = synthetic.name_pools()
    latin = {n for pool in pools.values() for n in (*pool.latin, *(v for vs in pool.variants for v in vs))}
    khmer = {n for pool in pools.values() for n in pool.khmer}
    heads = [h.persons[0] for h in population]
    in_khmer = [p for p in heads if p["family_name"] in khmer]
    assert 0.15 <= len(in_khmer) / len(heads) <= 0.25
    assert all(p["family_name"] in latin | khmer and p["given_name"] in latin | khmer for h in population for p in h.persons)
    assert all("\u1780" <= p["given_name"][0] <= "\u17ff" for p in in_khmer)
    assert Counter(p["family_name"] for p in heads).most_common(1)[0][0] == "Sok"
    # Children carry the head's family name.
    assert all(p["family_name"] == h.persons[0]["family_name"] for h in population for p in h.persons if p["relationship"] == "child")


def test_every_household_is_a_valid_registration(population, monkeypatch):
    monkeypatch.setattr(clock, "today", lambda: AS_OF)  # the day the population was made for
    for household in population[:300]:
        body = synthetic.registration_body(household) | {"confirm_new": True}
        HouseholdCreate.model_validate(body)  # raises on anything the API would refuse


# ---- loaded into the database -------------------------------------------------------------------


async def counts(app) -> dict[str, int]:
    async with app.state.sessionmaker() as session:
        return {model.__name__: (await session.execute(select(func.count()).select_from(model))).scalar_one()
                for model in (Household, Person, ConsentRecord, AuditEvent, ActivityEvent)}


async def test_loaded_people_are_found_like_registered_ones(client, world, app):
    summary = await synthetic.load(app.state.engine, households=120, office_code="SR-ACH", seed=3, as_of=AS_OF)
    assert (summary.households, summary.skipped, summary.offices) == (120, 0, ["SR-ACH"])
    after = await counts(app)
    assert after == {"Household": 120, "Person": summary.persons, "ConsentRecord": 120, "AuditEvent": 0, "ActivityEvent": 0}

    async with app.state.sessionmaker() as session:
        area = await synthetic.resolve_area(session, "SR-ACH")
    generated = synthetic.generate_range(area, seed=3, start=0, stop=120, as_of=AS_OF)
    person, household = next((p, h) for h in generated for p in h.persons
                             if p["national_id"] and p["birth_date"] and p["family_name"].isascii())
    headers = world.clerk_a.headers

    typed = f"{person['family_name'][:3]} {person['given_name'][:4]}".lower()
    found = (await client.get("/api/v1/persons", params={"name": typed, "limit": 200}, headers=headers)).json()
    assert str(person["id"]) in [p["id"] for p in found["items"]]
    found = (await client.get("/api/v1/households", params={"name": typed, "limit": 200}, headers=headers)).json()
    assert str(household.household["id"]) in [h["id"] for h in found["items"]]
    found = (await client.get("/api/v1/persons", params={"national_id": person["national_id"]}, headers=headers)).json()
    assert [p["id"] for p in found["items"]] == [str(person["id"])]

    read = await client.get(f"/api/v1/households/{household.household['id']}", headers=headers)
    assert read.status_code == 200 and read.headers["ETag"] == '"1"'
    assert read.json()["size"] == len(household.persons) and read.json()["consent"]["purposes"][0] == "registry"
    screened = await client.post(f"/api/v1/households/{household.household['id']}/screenings", headers=headers)
    assert screened.status_code == 201, screened.text

    facts = {"given_name": person["given_name"], "family_name": person["family_name"], "sex": person["sex"],
             "birth_date": person["birth_date"].isoformat(), "village_code": household.household["village_code"]}
    matches = (await client.post("/api/v1/persons/matches", json=facts, headers=headers)).json()["items"]
    assert matches[0]["person_id"] == str(person["id"]) and matches[0]["score"] >= 0.85

    again = synthetic.registration_body(household)
    response = await client.post("/api/v1/households", json=again, headers=headers)
    assert_problem(response, 409, "national-id-registered")
    for member in again["members"]:
        member.pop("national_id", None)
    response = await client.post("/api/v1/households", json=again, headers=headers)
    assert_problem(response, 409, "possible-duplicate")
    assert str(person["id"]) in str(response.json()["duplicates"])

    # Another office sees none of them.
    other = world.clerk_b.headers
    assert (await client.get("/api/v1/persons", params={"name": typed}, headers=other)).json()["total"] == 0
    assert (await client.get(f"/api/v1/households/{household.household['id']}", headers=other)).status_code == 404


async def test_loaded_rows_carry_what_registration_derives(client, world, app):
    """A generated household registered through the API and the same household loaded in bulk give the
    same derived columns."""
    async with app.state.sessionmaker() as session:
        area = await synthetic.resolve_area(session, "SR-ACH")
    [household] = synthetic.generate_range(area, seed=99, start=0, stop=1, as_of=AS_OF)
    response = await client.post("/api/v1/households", json=synthetic.registration_body(household) | {"confirm_new": True},
                                 headers=world.clerk_a.headers)
    assert response.status_code == 201, response.text
    async with app.state.sessionmaker() as session:
        registered = (await session.execute(
            select(Person).where(Person.household_id == uuid.UUID(response.json()["id"])).order_by(Person.created_at)
        )).scalars().all()
        office_id = (await session.execute(select(Office.id).where(Office.code == "SR-ACH"))).scalar_one()
    skip = {"id", "household_id", "created_at", "updated_at", "registered_by"}
    for loaded, row in zip(household.persons, registered, strict=True):
        assert {k: v for k, v in loaded.items() if k not in skip} == {
            c: getattr(row, c) for c in loaded if c not in skip}
        assert loaded["office_id"] == office_id


async def test_broad_searches_count_to_the_limit_and_stay_in_name_order(client, world, app):
    await synthetic.load(app.state.engine, households=450, office_code="SR-ACH", seed=21, as_of=AS_OF)
    headers = world.clerk_a.headers

    async def search(path, **params):
        response = await client.get(f"/api/v1/{path}", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    everyone = await search("persons", limit=200)
    assert (everyone["total"], everyone["total_exact"]) == (1000, False)  # 450 households are ~2,000 people
    broad = [await search("persons", name="a", limit=200, offset=offset) for offset in range(0, 1200, 200)]
    assert [(page["total"], page["total_exact"]) for page in broad] == [(1000, False)] * 6
    sample = [(p["family_name"], p["given_name"], p["id"]) for page in broad for p in page["items"]]
    assert len(sample) == 1000 and len({p[2] for p in sample}) == 1000  # the same sample on every page
    folded = [search_name(g, f) for f, g, _ in sample]
    # A name is found by its keys too: a Khmer one by its romanised form ("a" of សុភា Sophea), Khiev by its
    # sound (ie is a's vowel class: Khieu, Khiev, Khea).
    latin = {p["id"]: f"{p['family_name_latin']} {p['given_name_latin']}" for page in broad for p in page["items"]
             if p["family_name_latin"]}
    assert folded == sorted(folded) and all("a" in name_keys(f"{f} {g}", latin.get(i)) for f, g, i in sample)

    narrow = (await search("persons", name=sample[0][1]))
    assert narrow["total_exact"] is True and narrow["total"] == len(narrow["items"]) < 1000

    households = await search("households", name="a", limit=200)
    assert households["total_exact"] is False and 200 <= households["total"] <= 1000
    created = [h["created_at"] for h in households["items"]]
    assert created == sorted(created, reverse=True)
    assert (await search("households", limit=1))["total"] == 450 and (await search("households"))["total_exact"] is True


async def test_office_scope_and_running_again(client, world, app):
    engine = app.state.engine
    first = await synthetic.load(engine, households=40, office_code="SR-ACH", seed=5, as_of=AS_OF)
    assert (first.households, first.skipped) == (40, 0)
    again = await synthetic.load(engine, households=40, office_code="SR-ACH", seed=5, as_of=AS_OF)
    assert (again.households, again.persons, again.skipped) == (0, 0, 40)
    more = await synthetic.load(engine, households=60, office_code="SR-ACH", seed=5, as_of=AS_OF, batch_size=7)
    assert (more.households, more.skipped) == (20, 40)
    other_seed = await synthetic.load(engine, households=10, office_code="SR-ACH", seed=6, as_of=AS_OF)
    assert other_seed.households == 10
    everywhere = await synthetic.load(engine, households=80, seed=5, as_of=AS_OF)
    assert everywhere.households == 80 and everywhere.offices == ["SR-ACH", "SR-SSN"]

    async with app.state.sessionmaker() as session:
        rows = (await session.execute(
            select(Office.code, Office.location_code, Household.village_code).join(Office, Office.id == Household.office_id)
        )).all()
        persons_off_scope = (await session.execute(
            select(func.count()).select_from(Person).join(Household, Household.id == Person.household_id)
            .where(Person.office_id != Household.office_id)
        )).scalar_one()
    assert len(rows) == 150 and persons_off_scope == 0
    assert all(village.startswith(location) for _, location, village in rows)
    assert Counter(code for code, _, _ in rows)["SR-SSN"] > 0

    with pytest.raises(synthetic.SyntheticError, match="no office NOPE"):
        await synthetic.load(engine, households=1, office_code="NOPE", seed=1, as_of=AS_OF)


def test_the_command_loads_and_explains_its_errors(tmp_path):
    """`guichet seed synthetic` on a fresh SQLite file: a progress-bar run, then a one-line error."""
    import asyncio

    from alembic import command

    from app.config import Settings
    from app.db import create_engine, create_sessionmaker
    from app.migrations_state import alembic_config
    from app.services import locations

    url = f"sqlite+aiosqlite:///{tmp_path / 'guichet.db'}"
    config = alembic_config(url)
    config.attributes["skip_logging_config"] = True
    command.upgrade(config, "head")

    async def prepare() -> None:
        engine = create_engine(Settings(database_url=url, var_dir=tmp_path, secret_key="k" * 40, pseudonym_key="p"))
        async with create_sessionmaker(engine)() as session, session.begin():
            await locations.load_national_gazetteer(session)
            session.add(Office(code="BB-BAN", name="Banan", location_code="0201"))
        await engine.dispose()

    asyncio.run(prepare())
    env = {**os.environ, "GUICHET_DATABASE_URL": url, "GUICHET_VAR_DIR": str(tmp_path)}

    def guichet(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "app.cli", "seed", "synthetic", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)

    done = guichet("--households", "25", "--office", "BB-BAN", "--seed", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("added 25 households (") and "at BB-BAN" in done.stdout
    refused = guichet("--households", "5", "--office", "NOPE")
    assert refused.returncode == 1 and refused.stderr.strip() == "error: there is no office NOPE"
