"""Issue 15, names in two scripts and places: a person's Khmer and Latin names, search across scripts,
duplicate matching across scripts, Khmer collation, places found by either name, and the migration that
keys the rows already registered. On SQLite and PostgreSQL."""

import asyncio
import uuid

import pytest
from alembic import command
from sqlalchemy import column, insert, select, table
from sqlalchemy.ext.asyncio import create_async_engine

from app.migrations_state import alembic_config
from app.models import Household, Location, Office, Person
from app.services.names import name_keys, part_key, prefers_khmer
from conftest import create_postgres_database, drop_postgres_database
from helpers import assert_problem, db_rows, household_body, pointers, register, table_counts

HOUSEHOLDS = "/api/v1/households"
PERSONS = "/api/v1/persons"
MATCHES = "/api/v1/persons/matches"
LOCATIONS = "/api/v1/locations"
MAO_TYPED = "\u1798\u17c5\u17c9"  # ម៉ៅ with the vowel typed before the shifter
MAO = "ម៉ៅ"


def _household(given: str, family: str, *, given_latin=None, family_latin=None, village="17010101", **head) -> dict:
    body = household_body(members=1, village_code=village)
    body["members"][0] |= {"given_name": given, "family_name": family, **head}
    if given_latin or family_latin:
        body["members"][0] |= {"given_name_latin": given_latin, "family_name_latin": family_latin}
    return body


async def _found(client, account, path: str, name: str, **headers) -> list[str]:
    params = {"name": name, "limit": 200} if name else {"limit": 200}
    response = await client.get(path, params=params, headers={**account.headers, **headers})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


# ---- a person's two names -------------------------------------------------------------------------------


async def test_a_person_has_a_khmer_and_a_latin_name_and_the_khmer_is_stored_normalised(client, world, app):
    household = await register(client, world.clerk_a, _household("សុភា", MAO_TYPED, given_latin="Sophea",
                                                                  family_latin="Mao"))
    [head] = household["members"]
    assert (head["family_name"], head["given_name"]) == (MAO, "សុភា")
    assert (head["family_name_latin"], head["given_name_latin"]) == ("Mao", "Sophea")
    read = (await client.get(f"{PERSONS}/{head['id']}", headers=world.clerk_a.headers)).json()
    assert (read["family_name"], read["given_name_latin"]) == (MAO, "Sophea")
    [summary] = (await client.get(HOUSEHOLDS, params={"name": "sophea"}, headers=world.clerk_a.headers)).json()["items"]
    assert (summary["head_name"], summary["head_name_latin"]) == (f"{MAO} សុភា", "Mao Sophea")
    [row] = await db_rows(app, Person, Person.id == uuid.UUID(head["id"]))
    assert row.family_name == MAO and row.family_key == part_key("Mao") and "|sopa" in row.name_keys


async def test_a_name_known_only_in_latin_keeps_its_place_and_has_no_latin_pair(client, world):
    household = await register(client, world.clerk_a, _household("Sophea", "Mao"))
    [head] = household["members"]
    assert (head["given_name"], head["given_name_latin"], head["family_name_latin"]) == ("Sophea", None, None)


async def test_khmer_script_in_a_latin_name_is_refused_and_nothing_is_kept(client, world, app):
    before = await table_counts(app)
    problem = assert_problem(await client.post(HOUSEHOLDS, headers=world.clerk_a.headers, json=_household(
        "សុភា", MAO, given_latin="សុភា", family_latin="Mao")), 422, "validation")
    assert pointers(problem) == ["#/members/0/given_name_latin"]
    assert await table_counts(app) == before


async def test_editing_the_names_rekeys_the_search_and_a_bad_edit_changes_nothing(client, world, app):
    household = await register(client, world.clerk_a, _household("សុភា", MAO))
    person = household["members"][0]["id"]
    url, headers = f"{PERSONS}/{person}", {**world.clerk_a.headers, "If-Match": '"1"'}
    assert await _found(client, world.clerk_a, PERSONS, "Chanthou") == []
    response = await client.patch(url, json={"given_name_latin": "Chanthou", "family_name_latin": "Sok"}, headers=headers)
    assert response.status_code == 200, response.text
    assert (response.json()["given_name_latin"], response.json()["given_name"]) == ("Chanthou", "សុភា")
    assert await _found(client, world.clerk_a, PERSONS, "Chanthu") == [person]
    assert await _found(client, world.clerk_a, PERSONS, "Sophia") == [person]  # the Khmer name romanised
    headers["If-Match"] = '"2"'
    response = await client.patch(url, json={"given_name": "ដារា"}, headers=headers)
    assert response.status_code == 200, response.text
    assert await _found(client, world.clerk_a, PERSONS, "dara") == [person]
    assert await _found(client, world.clerk_a, PERSONS, "Sophia") == []
    before = await table_counts(app)
    headers["If-Match"] = '"3"'
    problem = assert_problem(await client.patch(url, json={"family_name_latin": "សុខ"}, headers=headers), 422, "validation")
    assert pointers(problem) == ["#/family_name_latin"]
    assert await table_counts(app) == before
    [row] = await db_rows(app, Person, Person.id == uuid.UUID(person))
    assert (row.version, row.family_name_latin) == (3, "Sok")


# ---- search across scripts ------------------------------------------------------------------------------


async def test_search_finds_a_person_by_khmer_or_latin_input_whichever_script_was_registered(client, world):
    khmer = (await register(client, world.clerk_a, _household("សុភា", MAO)))["members"][0]["id"]
    latin = (await register(client, world.clerk_a, _household("Sophia", "Mao")))["members"][0]["id"]
    both = (await register(client, world.clerk_a, _household("ចន្ធូ", "សុខ", given_latin="Chanthou",
                                                             family_latin="Sok")))["members"][0]["id"]
    mao_sophea = {khmer, latin}
    for query in ("Sophea", "Sophia", "SÓPHÉA", "soph", "phea", "សុភា", "ម៉ៅ សុភា", MAO_TYPED, "Mao Sophea", "sophea mao"):
        assert set(await _found(client, world.clerk_a, PERSONS, query)) == mao_sophea, query
    for query in ("Chantho", "chanthu", "ចន្ធូ", "Sok Chanthou", "សុខ", "hou"):
        assert await _found(client, world.clerk_a, PERSONS, query) == [both], query
    assert await _found(client, world.clerk_a, PERSONS, "Vibol") == []
    # Households by their members' names, the same way.
    households = await _found(client, world.clerk_a, HOUSEHOLDS, "សុភា")
    assert len(households) == 2
    # Another office's clerk finds none of them.
    assert await _found(client, world.clerk_b, PERSONS, "Sophea") == []
    assert await _found(client, world.clerk_b, HOUSEHOLDS, "ចន្ធូ") == []


async def test_search_refuses_a_name_of_punctuation_and_a_caller_without_a_token(client, world):
    problem = assert_problem(await client.get(PERSONS, params={"name": "!!"}, headers=world.clerk_a.headers), 422)
    assert problem["field"] == "#/query/name" if "field" in problem else pointers(problem) == ["#/query/name"]
    assert_problem(await client.get(PERSONS, params={"name": "សុភា"}), 401)
    assert_problem(await client.get(LOCATIONS, params={"name": "អង្គរ"}), 401)


async def test_khmer_first_sorts_names_in_khmer_collation(client, world, backend):
    # ICU's Khmer order puts ក៏ before កា and ignores case; code points put កា (U+17B6) before ក៏ (U+17CF).
    ids = {}
    for family in ("កា", "ក៏", "sam", "Sok"):
        ids[family] = (await register(client, world.clerk_a, _household("ដារា", family)))["members"][0]["id"]
    khmer = await _found(client, world.clerk_a, PERSONS, "dara", **{"Accept-Language": "km-KH, en;q=0.5"})
    listed = await _found(client, world.clerk_a, PERSONS, "", **{"Accept-Language": "km"})
    expected = ["ក៏", "កា", "sam", "Sok"] if backend == "postgres" else ["Sok", "sam", "កា", "ក៏"]
    assert khmer == listed == [ids[f] for f in expected]
    # Otherwise the folded name's order, as before.
    english = await _found(client, world.clerk_a, PERSONS, "dara", **{"Accept-Language": "en, km;q=0.9"})
    assert english == [ids[f] for f in ("sam", "Sok", "កា", "ក៏")]


@pytest.mark.parametrize("header, khmer", [
    ("km", True), ("km-KH", True), ("KM", True), ("fr;q=0.2, km;q=0.8", True), ("en, km;q=0.9", False),
    ("en", False), (None, False), ("", False), ("km;q=x, en", False),
])
def test_khmer_first_is_the_language_of_highest_quality(header, khmer):
    assert prefers_khmer(header) is khmer


# ---- duplicates across scripts --------------------------------------------------------------------------


async def test_a_khmer_registration_flags_the_same_person_registered_in_latin(client, world, app):
    existing = await register(client, world.clerk_a, _household("Sophea", "Mao", sex="female", birth_date="1990-04-02",
                                                                 national_id=None))
    before = await table_counts(app)
    newcomer = _household("សុភា", MAO, sex="female", birth_date=None, birth_year=1990, national_id=None)
    problem = assert_problem(await client.post(HOUSEHOLDS, json=newcomer, headers=world.clerk_a.headers), 409,
                             "possible-duplicate")
    [flagged] = problem["duplicates"]
    [candidate] = flagged["candidates"]
    assert candidate["person_id"] == existing["members"][0]["id"]
    assert {"name", "birth_year", "village"} <= set(candidate["matched_fields"])
    assert await table_counts(app) == before


async def test_matches_meet_a_latin_newcomer_and_a_khmer_registration_and_stay_in_the_office(client, world):
    existing = await register(client, world.clerk_a, _household("សុភា", MAO, sex="female", birth_date="1990-04-02",
                                                                 national_id=None))
    query = {"given_name": "Sophia", "family_name": "Mao", "sex": "female", "birth_year": 1990, "village_code": "17010101"}
    response = await client.post(MATCHES, json=query, headers=world.clerk_a.headers)
    assert response.status_code == 200, response.text
    [candidate] = response.json()["items"]
    assert candidate["person_id"] == existing["members"][0]["id"] and candidate["score"] >= 0.85
    assert (candidate["given_name"], candidate["given_name_latin"]) == ("សុភា", None)
    # A Khmer newcomer with a Latin pair is looked for under both.
    both = query | {"given_name": "សុភា", "family_name": MAO, "given_name_latin": "Sopheap", "family_name_latin": "Mao"}
    response = await client.post(MATCHES, json=both, headers=world.clerk_a.headers)
    assert [c["person_id"] for c in response.json()["items"]] == [existing["members"][0]["id"]]
    response = await client.post(MATCHES, json=query | {"village_code": "17120101"}, headers=world.clerk_b.headers)
    assert response.json()["items"] == []
    bad = await client.post(MATCHES, json=query | {"given_name_latin": "សុភា"}, headers=world.clerk_a.headers)
    assert pointers(assert_problem(bad, 422, "validation")) == ["#/given_name_latin"]


# ---- places ---------------------------------------------------------------------------------------------


async def test_places_are_found_by_khmer_or_latin_name_at_every_level_and_carry_both(client, world):
    async def codes(name, **params):
        response = await client.get(LOCATIONS, params={"name": name, "limit": 200, **params}, headers=world.clerk_a.headers)
        assert response.status_code == 200, response.text
        return {item["code"]: item for item in response.json()["items"]}

    district = (await codes("អង្គរជុំ"))["1701"]
    assert (district["name"], district["name_km"], district["level"]) == ("Angkor Chum", "អង្គរជុំ", "district")
    assert "1701" in await codes("អង្គរ") and "1701" in await codes("angkor") and "1701" in await codes("ANGKOR chum")
    assert "1701" in await codes("chum", level="district")
    assert "17" in await codes("សៀមរាប") and "17" in await codes("siem reap", level="province")
    assert "170101" in await codes("ចារឈូក")  # a commune
    assert "17010101" in await codes("ប្រាសាទ", parent="170101")  # a village
    assert "1701" not in await codes("ngkor")  # from the start of a word
    assert await codes("!!") == {}


async def test_khmer_first_lists_places_by_khmer_name(client, world, app, backend):
    from app.services.locations import import_rows

    villages = [{"code": f"170101{n}", "name": latin, "name_km": km, "level": "village", "parent_code": "170101",
                 "source": "test"} for n, latin, km in (("97", "A Test", "កាថ្មី"), ("98", "B Test", "ក៏ថ្មី"),
                                                         ("99", "C Test", None))]
    async with app.state.sessionmaker() as session, session.begin():
        await import_rows(session, villages)
    try:
        response = await client.get(LOCATIONS, params={"parent": "170101", "name": "test"},
                                    headers={**world.clerk_a.headers, "Accept-Language": "km"})
        # ICU's Khmer order puts ក៏ before កា, and Khmer before Latin; code points put កា (U+17B6) before ក៏ (U+17CF).
        expected = ["17010198", "17010197", "17010199"] if backend == "postgres" else ["17010199", "17010197", "17010198"]
        assert [item["code"] for item in response.json()["items"]] == expected
        codes = [item["code"] for item in (await client.get(LOCATIONS, params={"parent": "170101", "name": "test"},
                                                            headers=world.clerk_a.headers)).json()["items"]]
        assert codes == ["17010197", "17010198", "17010199"]  # otherwise in code order
    finally:
        async with app.state.sessionmaker() as session, session.begin():
            for village in villages:
                await session.delete(await session.get(Location, village["code"]))


async def test_an_imported_place_is_found_by_its_new_names(client, world, app):
    from app.services.locations import import_rows

    async with app.state.sessionmaker() as session, session.begin():
        await import_rows(session, [{"code": "17010199", "name": "Phum Thmei Test", "name_km": "ភូមិថ្មីសាកល្បង",
                                     "level": "village", "parent_code": "170101", "source": "test"}])
    assert [i["code"] for i in (await client.get(LOCATIONS, params={"name": "ភូមិថ្មីសាក"},
                                                  headers=world.clerk_a.headers)).json()["items"]] == ["17010199"]
    async with app.state.sessionmaker() as session, session.begin():
        await import_rows(session, [{"code": "17010199", "name": "Phum Chas Test", "name_km": None,
                                     "level": "village", "parent_code": "170101", "source": "test"}])
        assert (await session.get(Location, "17010199")).name_keys == name_keys("Phum Chas Test", phonetic=False)
        await session.delete(await session.get(Location, "17010199"))


# ---- the migration --------------------------------------------------------------------------------------


async def test_0030_keys_the_people_and_places_already_registered(backend, tmp_path):
    url = (f"sqlite+aiosqlite:///{tmp_path / 'upgrade.db'}" if backend == "sqlite" else await create_postgres_database())
    config = alembic_config(url)
    config.attributes["skip_logging_config"] = True
    engine = create_async_engine(url)
    try:
        await asyncio.to_thread(command.upgrade, config, "0020_dci")
        office_id, household_id = uuid.uuid4(), uuid.uuid4()
        location = table("location", *map(column, ("code", "name", "level", "parent_code", "source", "name_km")))
        # The models' tables: an insert names only the columns given and those with defaults, none of them new.
        person = Person.__table__
        async with engine.begin() as connection:
            await connection.execute(insert(location), [
                {"code": code, "name": name, "name_km": km, "level": level, "parent_code": parent, "source": "test"}
                for code, name, km, level, parent in [("17", "Siem Reap", "សៀមរាប", "province", None),
                                                      ("1701", "Angkor Chum", "អង្គរជុំ", "district", "17"),
                                                      ("170101", "Char Chhuk", None, "commune", "1701"),
                                                      ("17010101", "Prasat", "ប្រាសាទ", "village", "170101")]])
            await connection.execute(insert(Office.__table__).values(id=office_id, code="SR-ACH", name="Office",
                                                                      location_code="1701"))
            await connection.execute(insert(Household.__table__).values(
                id=household_id, office_id=office_id, village_code="17010101", area_type="rural", version=1))
            await connection.execute(insert(person), [{
                "id": uuid.uuid4(), "household_id": household_id, "office_id": office_id, "village_code": "17010101",
                "given_name": given, "family_name": family, "search_name": f"{family} {given}".lower(),
                "family_key": family.lower(), "given_key": given.lower(), "sex": "female", "birth_year": 1990,
                "relationship": relationship, "version": 1}
                for given, family, relationship in (("សុភា", "ម៉ៅ", "head"), ("Chanthou", "Sok", "child"))])
        await asyncio.to_thread(command.upgrade, config, "head")
        async with engine.connect() as connection:
            people = {row.given_name: row for row in (await connection.execute(select(
                Person.given_name, Person.family_key, Person.given_key, Person.name_keys, Person.given_name_latin))).all()}
            places = dict((await connection.execute(select(Location.code, Location.name_keys))).all())
        assert people["សុភា"].family_key == part_key("Mao") and people["សុភា"].given_key == part_key("Sophea")
        assert people["សុភា"].name_keys == name_keys("ម៉ៅ សុភា") and people["សុភា"].given_name_latin is None
        assert people["Chanthou"].name_keys == name_keys("Sok Chanthou") and people["Chanthou"].given_key == "canto"
        assert places["1701"] == name_keys("Angkor Chum", "អង្គរជុំ", phonetic=False)
        assert places["170101"] == "|char|chhuk"
    finally:
        await engine.dispose()
        if backend == "postgres":
            await drop_postgres_database(url)


def test_dci_records_name_a_person_in_the_locales_script():
    from types import SimpleNamespace

    from app.dci.records import _name

    both = SimpleNamespace(given_name="សុភា", family_name=MAO, given_name_latin="Sophea", family_name_latin="Mao")
    assert _name(both, "khm") == {"@type": "Name", "given_name": "សុភា", "surname": MAO}
    assert _name(both, "eng") == {"@type": "Name", "given_name": "Sophea", "surname": "Mao"}
    khmer_only = SimpleNamespace(given_name="សុភា", family_name=MAO, given_name_latin=None, family_name_latin=None)
    assert _name(khmer_only, "fra") == {"@type": "Name", "given_name": "សុភា", "surname": MAO}
