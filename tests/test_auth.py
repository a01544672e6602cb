"""Signing in (password and client_credentials), throttling bad passwords, revocation, and who may
call what."""

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update

from app.main import create_app
from app.models import LoginThrottle, User
from app.security import issue_token
from app.vocabulary import Role
from conftest import PASSWORD
from helpers import assert_problem, db_rows

TOKEN = "/api/v1/auth/token"
ME = "/api/v1/auth/me"


def _password(username: str, password: str = PASSWORD) -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password}


# ---- the token endpoint ---------------------------------------------------------------------------------


async def test_password_grant_gives_a_bearer_token_for_me(client, world, settings):
    response = await client.post(TOKEN, data=_password("clerk.a"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.token_lifetime_minutes * 60
    me = await client.get(ME, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json() == {"id": str(world.clerk_a.id), "username": "clerk.a", "full_name": None, "role": "clerk",
                         "office_code": "SR-ACH", "scheme_code": None}


async def test_client_credentials_are_for_service_accounts_only(client, world):
    response = await client.post(TOKEN, data={"grant_type": "client_credentials", "client_id": "partner",
                                              "client_secret": PASSWORD})
    assert response.status_code == 200, response.text
    me = await client.get(ME, headers={"Authorization": f"Bearer {response.json()['access_token']}"})
    assert me.json()["role"] == "partner" and me.json()["scheme_code"] == "KH-HEF"
    # A person may not use client credentials, nor a service account the password grant.
    assert_problem(await client.post(TOKEN, data={"grant_type": "client_credentials", "client_id": "clerk.a",
                                                  "client_secret": PASSWORD}), 401, "invalid-credentials")
    assert_problem(await client.post(TOKEN, data=_password("partner")), 401, "invalid-credentials")


async def test_wrong_password_and_unknown_user_are_the_same_401(client, world):
    wrong = assert_problem(await client.post(TOKEN, data=_password("clerk.a", "not the password")), 401,
                           "invalid-credentials")
    unknown = assert_problem(await client.post(TOKEN, data=_password("nobody.here")), 401, "invalid-credentials")
    assert wrong["detail"] == unknown["detail"]


@pytest.mark.parametrize("form, status, pointer", [
    ({"username": "clerk.a", "password": PASSWORD}, 422, "#/grant_type"),
    ({"grant_type": "authorization_code", "code": "x"}, 422, "#/grant_type"),
    ({"grant_type": "password", "username": "clerk.a"}, 400, None),
    ({"grant_type": "client_credentials", "client_id": "partner"}, 400, None),
    ({"grant_type": "password", "username": "u" * 129, "password": "p"}, 422, "#/username"),
])
async def test_bad_token_requests(client, world, form, status, pointer):
    problem = assert_problem(await client.post(TOKEN, data=form), status)
    if pointer:
        assert pointer in [e["pointer"] for e in problem["errors"]]


async def test_the_token_endpoint_says_it_takes_a_form_not_json(client, world):
    problem = assert_problem(await client.post(TOKEN, json=_password("clerk.a")), 415, "unsupported-media-type")
    assert "form-encoded" in problem["detail"] and "application/x-www-form-urlencoded" in problem["detail"]
    # A form still works, with or without a charset, and so does multipart.
    assert (await client.post(TOKEN, content="grant_type=password&username=clerk.a&password=correct+horse+battery",
                              headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})).status_code == 200
    assert (await client.post(TOKEN, files={k: (None, v) for k, v in _password("clerk.a").items()})).status_code == 200


# ---- throttling -----------------------------------------------------------------------------------------


@pytest.fixture
async def strict_client(settings):
    """An app that locks a username after 2 failed sign-ins (the default is 5), to keep the hashing short."""
    strict = create_app(settings.model_copy(update={"login_max_failures": 2, "login_lock_minutes": 3}))
    async with strict.router.lifespan_context(strict):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=strict), base_url="http://guichet.test") as http:
            yield http


@pytest.mark.parametrize("username", ["clerk.b", "no.such.user"])
async def test_repeated_bad_passwords_lock_the_username_for_a_while(client, strict_client, app, username):
    for _ in range(2):
        assert_problem(await strict_client.post(TOKEN, data=_password(username, "guess")), 401, "invalid-credentials")
    locked = await strict_client.post(TOKEN, data=_password(username))  # even the right password now
    assert_problem(locked, 429, "too-many-attempts")
    assert 0 < int(locked.headers["Retry-After"]) <= 180
    [row] = await db_rows(app, LoginThrottle, LoginThrottle.username == username)
    assert row.failures == 2 and row.locked_until is not None
    # Another username is not affected.
    assert (await strict_client.post(TOKEN, data=_password("supervisor.a"))).status_code == 200


async def test_a_lock_that_has_run_out_lets_the_user_in_and_clears_the_count(client, strict_client, app):
    for _ in range(2):
        await strict_client.post(TOKEN, data=_password("clerk.b", "guess"))
    assert (await strict_client.post(TOKEN, data=_password("clerk.b"))).status_code == 429
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(update(LoginThrottle).values(locked_until=LoginThrottle.last_failure_at))
    assert (await strict_client.post(TOKEN, data=_password("clerk.b"))).status_code == 200
    assert await db_rows(app, LoginThrottle) == []



async def test_failures_older_than_the_window_are_pruned_so_probing_names_cannot_grow_the_table(strict_client, app):
    """Every failed sign-in drops the rows of other usernames whose failures are past the window (they
    are forgiven anyway); a lock still running is kept."""
    long_ago = datetime.now(UTC) - timedelta(days=2)
    async with app.state.sessionmaker() as session, session.begin():
        session.add_all([
            LoginThrottle(username="probe.1", failures=1, last_failure_at=long_ago),
            LoginThrottle(username="probe.2", failures=3, last_failure_at=long_ago, locked_until=long_ago),
            LoginThrottle(username="still.locked", failures=3, last_failure_at=long_ago,
                          locked_until=datetime.now(UTC) + timedelta(hours=1)),
        ])
    assert_problem(await strict_client.post(TOKEN, data=_password("probe.3", "guess")), 401, "invalid-credentials")
    assert sorted(row.username for row in await db_rows(app, LoginThrottle)) == ["probe.3", "still.locked"]


# ---- revocation -----------------------------------------------------------------------------------------


async def _patch_user(client, world, user_id, change):
    current = await client.get(f"/api/v1/users/{user_id}", headers=world.admin.headers)
    response = await client.patch(f"/api/v1/users/{user_id}", json=change,
                                  headers={**world.admin.headers, "If-Match": current.headers["ETag"]})
    assert response.status_code == 200, response.text
    return response


async def test_deactivation_revokes_tokens_and_sign_in(client, world, settings, make_account):
    account = await make_account()
    assert (await client.get(ME, headers=account.headers)).status_code == 200
    await _patch_user(client, world, account.id, {"is_active": False})
    problem = assert_problem(await client.get(ME, headers=account.headers), 401, "unauthenticated")
    assert "revoked" in problem["detail"]
    assert_problem(await client.post(TOKEN, data=_password(account.username)), 401, "invalid-credentials")
    await _patch_user(client, world, account.id, {"is_active": True})
    assert_problem(await client.get(ME, headers=account.headers), 401)  # reactivation does not revive old tokens
    response = await client.post(TOKEN, data=_password(account.username))
    assert response.status_code == 200
    assert (await client.get(ME, headers={"Authorization": f"Bearer {response.json()['access_token']}"})).status_code == 200


async def test_a_password_change_revokes_tokens_issued_before_it_even_within_the_second(client, world, make_account):
    account = await make_account()
    assert (await client.get(ME, headers=account.headers)).status_code == 200
    await _patch_user(client, world, account.id, {"password": "a brand new passphrase"})
    assert_problem(await client.get(ME, headers=account.headers), 401, "unauthenticated")
    assert_problem(await client.post(TOKEN, data=_password(account.username)), 401, "invalid-credentials")
    response = await client.post(TOKEN, data=_password(account.username, "a brand new passphrase"))
    assert response.status_code == 200
    assert (await client.get(ME, headers={"Authorization": f"Bearer {response.json()['access_token']}"})).status_code == 200


async def test_a_token_of_a_changed_role_or_a_removed_user_is_refused(client, world, app, settings, make_account):
    account = await make_account()
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(update(User).where(User.id == account.id).values(role=Role.supervisor))
    assert_problem(await client.get(ME, headers=account.headers), 401, "unauthenticated")
    ghost = issue_token(settings, subject=uuid.uuid4(), role="admin", office=None, scheme=None)[0]
    assert_problem(await client.get(ME, headers={"Authorization": f"Bearer {ghost}"}), 401, "unauthenticated")


# ---- who may call what ----------------------------------------------------------------------------------

ANY = {"admin", "supervisor_a", "clerk_a", "monitor", "partner"}
OFFICE = {"admin", "supervisor_a", "clerk_a"}
SOME_ID = "00000000-0000-4000-8000-000000000000"
ROLE_MATRIX = [
    ("GET", "/api/v1/auth/me", ANY),
    ("GET", "/api/v1/locations", ANY),
    ("GET", "/api/v1/locations/17", ANY),
    ("GET", "/api/v1/offices", ANY),
    ("GET", "/api/v1/offices/SR-ACH", ANY),
    ("POST", "/api/v1/offices", {"admin"}),
    ("GET", "/api/v1/users", {"admin"}),
    ("POST", "/api/v1/users", {"admin"}),
    ("GET", f"/api/v1/users/{SOME_ID}", {"admin"}),
    ("PATCH", f"/api/v1/users/{SOME_ID}", {"admin"}),
    ("GET", "/api/v1/audit", {"admin", "supervisor_a"}),
    ("GET", "/api/v1/households", OFFICE),
    ("POST", "/api/v1/households", OFFICE),
    ("GET", f"/api/v1/households/{SOME_ID}", OFFICE),
    ("PATCH", f"/api/v1/households/{SOME_ID}", OFFICE),
    ("POST", f"/api/v1/households/{SOME_ID}/members", OFFICE),
    ("GET", f"/api/v1/households/{SOME_ID}/consent", OFFICE),
    ("POST", f"/api/v1/households/{SOME_ID}/consent", OFFICE),
    ("GET", "/api/v1/persons", OFFICE),
    ("GET", f"/api/v1/persons/{SOME_ID}", OFFICE),
    ("PATCH", f"/api/v1/persons/{SOME_ID}", OFFICE),
    ("POST", "/api/v1/persons/matches", OFFICE),
]


@pytest.mark.parametrize("method, path, allowed", ROLE_MATRIX, ids=[f"{m} {p}" for m, p, _ in ROLE_MATRIX])
async def test_role_matrix(client, world, method, path, allowed):
    body = {"json": {}} if method in ("POST", "PATCH") else {}
    for name in ANY:
        response = await client.request(method, path, headers=getattr(world, name).headers, **body)
        if name in allowed:
            assert response.status_code not in (401, 403), (name, response.text)
        else:
            assert_problem(response, 403, "forbidden")
    assert_problem(await client.request(method, path, **body), 401, "unauthenticated")
