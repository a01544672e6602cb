"""Every error is application/problem+json with a stable type from the catalogue, never a 500 for a
client's mistake, never internals; a failed request changes nothing. Plus health and readiness."""

import json
import re
import sqlite3

import httpx
import pytest

from app.deps import OfficeUser, SessionDep
from app.errors import PROBLEM_TYPES
from app.main import create_app
from app.routers import api_router
from app.schemas.households import HouseholdCreate
from app.services import households
from helpers import assert_problem, household_body, register, table_counts

HOUSEHOLDS = "/api/v1/households"


async def test_each_status_is_a_problem_with_a_stable_type(client, world):
    household = await register(client, world.clerk_a)
    url = f"{HOUSEHOLDS}/{household['id']}"
    h = world.clerk_a.headers
    cases = [
        (await client.get("/api/v1/no-such-thing", headers=h), 404, "not-found"),
        (await client.get("/nowhere"), 404, "not-found"),
        (await client.delete(HOUSEHOLDS, headers=h), 405, "method-not-allowed"),
        (await client.post(HOUSEHOLDS, json={}, headers=h), 422, "validation"),
        (await client.post(HOUSEHOLDS, content=b"{", headers={**h, "Content-Type": "application/json"}), 400,
         "malformed-json"),
        (await client.post(HOUSEHOLDS, json=household_body() | {"members": [
            household["members"][0] | {k: None for k in ("id", "household_id")}]}, headers=h), 422, "validation"),
        (await client.patch(url, json={"address": "x"}, headers=h), 428, "precondition-required"),
        (await client.patch(url, json={"address": "x"}, headers={**h, "If-Match": '"9"'}), 412, "precondition-failed"),
        (await client.get(url), 401, "unauthenticated"),
        (await client.get(url, headers=world.monitor.headers), 403, "forbidden"),
        (await client.get(url, headers=world.clerk_b.headers), 404, "not-found"),
    ]
    body = household_body()
    body["members"][0]["national_id"] = household["members"][0]["national_id"]
    cases.append((await client.post(HOUSEHOLDS, json=body, headers=h), 409, "national-id-registered"))
    for response, status, slug in cases:
        problem = assert_problem(response, status, slug)
        assert problem["instance"] == response.request.url.path
        assert problem["request_id"] == response.headers["X-Request-ID"]
        assert problem["title"] == PROBLEM_TYPES[slug][1]
        assert problem["detail"]
        for error in problem.get("errors") or []:
            assert error["pointer"].startswith("#/") and error["detail"]


async def test_405_names_every_allowed_method(client, world):
    for method, path, allow in (("DELETE", HOUSEHOLDS, "GET, POST"),
                                ("PUT", "/api/v1/persons/00000000-0000-4000-8000-000000000000", "GET, PATCH"),
                                ("POST", "/healthz", "GET")):
        response = await client.request(method, path, headers=world.clerk_a.headers)
        assert_problem(response, 405, "method-not-allowed")
        assert response.headers["Allow"] == allow


@pytest.mark.parametrize("content_type, body", [
    ("application/x-www-form-urlencoded", b"village_code=17010101"),
    ("text/plain", None),  # a JSON document under the wrong label is refused too
    ("multipart/form-data; boundary=x", b"--x--"),
])
async def test_a_body_of_another_media_type_is_415(client, world, app, content_type, body):
    before = await table_counts(app)
    response = await client.post(HOUSEHOLDS, content=body or json.dumps(household_body()).encode(), headers={
        **world.clerk_a.headers, "Content-Type": content_type})
    problem = assert_problem(response, 415, "unsupported-media-type")
    assert content_type.split(";")[0] in problem["detail"]
    assert await table_counts(app) == before


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON", "application/problem+json"])
async def test_json_under_any_json_media_type_is_read(client, world, content_type):
    response = await client.post(HOUSEHOLDS, content=json.dumps(household_body()).encode(), headers={
        **world.clerk_a.headers, "Content-Type": content_type})
    assert response.status_code == 201, response.text


# ---- size limit -----------------------------------------------------------------------------------------


async def test_a_body_over_one_mib_is_413(client, world, app):
    before = await table_counts(app)
    big = household_body()
    big["address"] = "x" * (1024 * 1024)
    response = await client.post(HOUSEHOLDS, json=big, headers=world.clerk_a.headers)
    problem = assert_problem(response, 413, "payload-too-large")
    assert problem["request_id"] == response.headers["X-Request-ID"]

    async def chunks():  # no Content-Length: the limit is found while reading
        for _ in range(20):
            yield b" " * 65536

    response = await client.post(HOUSEHOLDS, content=chunks(), headers={**world.clerk_a.headers,
                                                                       "Content-Type": "application/json"})
    assert_problem(response, 413, "payload-too-large")
    assert await table_counts(app) == before


async def test_a_body_just_under_the_limit_is_read(client, world):
    body = household_body()
    body["address"] = "x" * (1024 * 1024 - 2000)
    problem = assert_problem(await client.post(HOUSEHOLDS, json=body, headers=world.clerk_a.headers), 422)
    assert [e["pointer"] for e in problem["errors"]] == ["#/address"]  # too long a string, not too large a body


# ---- 500 ------------------------------------------------------------------------------------------------


@pytest.fixture
async def exploding_app(settings):
    """A test-only app: the real one plus a route that registers a household, then fails."""
    application = create_app(settings)
    router = api_router(tags=["test"])

    @router.post("/_test/explode")
    async def explode(session: SessionDep, actor: OfficeUser) -> dict:
        await households.register_household(session, actor, HouseholdCreate.model_validate(household_body()))
        raise RuntimeError("secret internals: SELECT * FROM person WHERE password='hunter2'")

    application.include_router(router)
    async with application.router.lifespan_context(application):
        yield application


async def test_an_unhandled_exception_is_a_500_without_internals_and_changes_nothing(client, world, app, exploding_app):
    before = await table_counts(app)
    transport = httpx.ASGITransport(app=exploding_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://guichet.test") as http:
        response = await http.post("/api/v1/_test/explode", headers=world.clerk_a.headers)
    problem = assert_problem(response, 500, "internal")
    assert problem["detail"] == "The request failed and changed nothing."
    assert problem["request_id"] == response.headers["X-Request-ID"]
    for secret in ("secret", "hunter2", "SELECT", "RuntimeError", "Traceback", ".py", "line "):
        assert secret not in response.text
    assert await table_counts(app) == before


# ---- the catalogue, health and readiness ----------------------------------------------------------------


async def test_the_problem_catalogue(client):
    catalogue = (await client.get("/problems")).json()
    assert {p["type"] for p in catalogue} == {f"/problems/{slug}" for slug in PROBLEM_TYPES}
    for entry in catalogue:
        one = await client.get(entry["type"])
        assert one.status_code == 200 and one.json() == entry
        assert 400 <= entry["status"] < 600 and entry["title"] and entry["description"]
    assert_problem(await client.get("/problems/no-such-problem"), 404, "not-found")


async def test_openapi_declares_problem_json_for_every_error(client):
    schema = (await client.get("/openapi.json")).json()
    assert "Problem" in schema["components"]["schemas"]
    checked = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.isdigit() and int(status) >= 400:
                    assert list(response["content"]) == ["application/problem+json"], (method, path, status)
                    checked += 1
    assert checked > 100


async def test_health_and_readiness(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"  # the relay's part: tests/test_operations.py
    assert ready.json()["checks"] == {"database": "ok", "migrations": "ok"}


async def _with_app(settings, **changes):
    application = create_app(settings.model_copy(update=changes))
    async with application.router.lifespan_context(application):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://guichet.test") as http:
            yield http


async def test_not_ready_when_the_schema_is_behind(settings, tmp_path, world):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        db.execute("INSERT INTO alembic_version VALUES ('0001_foundation')")
    async for http in _with_app(settings, database_url=f"sqlite+aiosqlite:///{path}"):
        response = await http.get("/readyz")
        assert response.status_code == 503
        assert response.json()["status"] == "not ready"
        assert response.json()["checks"]["database"] == "ok"
        assert response.json()["checks"]["migrations"].startswith("at 0001_foundation, code expects")


async def test_an_unreachable_database_is_503_not_500(settings, tmp_path, world):
    async for http in _with_app(settings, database_url=f"sqlite+aiosqlite:///{tmp_path}/missing/dir/guichet.db"):
        ready = await http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("unreachable")
        assert (await http.get("/healthz")).status_code == 200  # alive, just not ready
        response = await http.get(HOUSEHOLDS, headers=world.clerk_a.headers)
        problem = assert_problem(response, 503, "service-unavailable")
        assert response.headers["Retry-After"] and "missing" not in response.text


# ---- limits ---------------------------------------------------------------------------------------------

LIST_ENDPOINTS = ["/api/v1/households", "/api/v1/persons", "/api/v1/locations", "/api/v1/offices", "/api/v1/users",
                  "/api/v1/audit"]


@pytest.mark.parametrize("path", LIST_ENDPOINTS)
async def test_no_list_pages_more_than_200(client, world, path):
    problem = assert_problem(await client.get(path, params={"limit": 201}, headers=world.admin.headers), 422, "validation")
    assert [e["pointer"] for e in problem["errors"]] == ["#/query/limit"]
    assert (await client.get(path, params={"limit": 200}, headers=world.admin.headers)).status_code == 200


def _unbounded_strings(schema: dict, components: dict, where: str, seen: set[str]) -> list[str]:
    """Places in a request schema where a string of any length would be accepted."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        return _unbounded_strings(components[name], components, f"{where}", seen | {name})
    found = []
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            found += _unbounded_strings(option, components, where, seen)
    if schema.get("type") == "string":
        pattern = re.sub(r"\\.", "", schema.get("pattern", ""))  # escaped characters are literals
        bounded_pattern = pattern.startswith("^") and pattern.endswith("$") and not any(q in pattern for q in "+*")
        if not ("maxLength" in schema or "enum" in schema or "const" in schema or bounded_pattern
                or schema.get("format") in ("date", "date-time", "uuid")):
            found.append(where)
    for name, prop in schema.get("properties", {}).items():
        found += _unbounded_strings(prop, components, f"{where}/{name}", seen)
    for key in ("items", "additionalProperties", "propertyNames"):
        if isinstance(schema.get(key), dict):
            found += _unbounded_strings(schema[key], components, f"{where}/{key}", seen)
    return found


async def test_every_string_a_client_sends_has_a_maximum_length(client):
    schema = (await client.get("/openapi.json")).json()
    components = schema["components"]["schemas"]
    unbounded = []
    checked = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                checked += 1
                unbounded += _unbounded_strings(parameter["schema"], components,
                                                f"{method.upper()} {path} {parameter['in']} {parameter['name']}", set())
            for content in operation.get("requestBody", {}).get("content", {}).values():
                checked += 1
                unbounded += _unbounded_strings(content["schema"], components, f"{method.upper()} {path} body", set())
    assert checked > 50
    assert unbounded == [], "\n".join(unbounded)


# ---- what one database takes and the other cannot ------------------------------------------------------


async def test_nul_characters_and_infinite_numbers_are_422_on_both_databases(client, world, app):
    before = await table_counts(app)
    h = world.clerk_a.headers
    for edit, pointer in ((lambda m: m.update(given_name="So\u0000k"), "#/members/0/given_name"),
                          (lambda m: m.update(attributes={"note": "a\u0000b"}), "#/members/0/attributes/note")):
        body = household_body()
        edit(body["members"][0])
        problem = assert_problem(await client.post(HOUSEHOLDS, json=body, headers=h), 422, "validation")
        assert pointer in [e["pointer"] for e in problem["errors"]]
    for number in ("1e999", "NaN", "-Infinity"):
        raw = json.dumps(household_body() | {"members": [household_body()["members"][0] | {"attributes": {"x": 0}}]})
        raw = raw.replace('"x": 0', f'"x": {number}')
        problem = assert_problem(await client.post(HOUSEHOLDS, content=raw, headers={**h, "Content-Type": "application/json"}),
                                 422, "validation")
        assert [e["pointer"] for e in problem["errors"]] == ["#/members/0/attributes/x"]
    assert await table_counts(app) == before
    # Searches and sign-ins carry no body to refuse; PostgreSQL's refusal is the client's 422, not a 500.
    for path, params in ((HOUSEHOLDS, {"name": "a\u0000b"}), (HOUSEHOLDS, {"national_id": "1\u00002"}),
                         ("/api/v1/persons", {"name": "\u0000"}), ("/api/v1/locations", {"name": "a\u0000"})):
        response = await client.get(path, params=params, headers=h)
        assert response.status_code in (200, 422), response.text  # no match on SQLite, refused by PostgreSQL
        if response.status_code == 422:
            assert_problem(response, 422, "validation")
    response = await client.post("/api/v1/auth/token", data={"grant_type": "password", "username": "clerk\u0000a",
                                                             "password": "x"})
    assert response.status_code in (401, 422), response.text


async def test_long_inputs_fit_their_columns_on_both_databases(client, world, app):
    # Hangul syllables decompose into two or three letters when folded for search: 99 of them fold to 297
    # (a name needs a Khmer or Latin letter too).
    body = household_body()
    body["members"][0] |= {"given_name": "K" + "한" * 99, "family_name": "K" + "김" * 99}
    household = await register(client, world.clerk_a, body)
    found = await client.get(HOUSEHOLDS, params={"name": "김김"}, headers=world.clerk_a.headers)
    assert [h["id"] for h in found.json()["items"]] == [household["id"]]
    before = await table_counts(app)
    # A path far longer than any real one, on an idempotent POST: refused, nothing kept.
    response = await client.post(f"{HOUSEHOLDS}/{'x' * 400}/members", json={},
                                 headers={**world.clerk_a.headers, "Idempotency-Key": "long-path"})
    assert_problem(response, 422, "validation")
    assert await table_counts(app) == before
    # No username is longer than 64 characters; a longer one is refused before any lookup.
    token = "/api/v1/auth/token"
    assert_problem(await client.post(token, data={"grant_type": "password", "username": "u" * 65, "password": "x"}), 422)
    assert_problem(await client.post(token, data={"grant_type": "password", "username": "u" * 64, "password": "x"}), 401)
