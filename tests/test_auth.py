"""Signing in (password and client_credentials), throttling bad passwords, revocation, and who may
call what."""

import asyncio
import threading
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn
from sqlalchemy import update

from app import security
from app.main import create_app
from app.models import AuditEvent, LoginThrottle, User
from app.security import issue_token
from app.services import relay as relay_service
from app.services import throttle
from app.vocabulary import Role
from conftest import PASSWORD
from helpers import assert_problem, db_rows
from monitoring_support import bound_socket

TOKEN = "/api/v1/auth/token"
ME = "/api/v1/auth/me"


def _password(username: str, password: str = PASSWORD) -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password}


def _credentials(client_id: str, secret: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}


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


# ---- throttling (app/services/throttle.py) ------------------------------------------------------------------


def _from(app, address: str) -> httpx.AsyncClient:
    """A client whose requests come from this address (as uvicorn gives it: the peer, or a trusted proxy's
    X-Forwarded-For)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url="http://guichet.test")


@pytest.fixture
async def strict(settings):
    """An app with small thresholds, to keep the hashing short: 2 free failures per account and address
    (then 4 s, 8 s, ... at most a minute), 3 per person's account from every address (then up to 30 s)."""
    strict = create_app(settings.model_copy(update={"login_max_failures": 2, "login_max_delay_minutes": 1,
                                                    "login_account_max_failures": 3, "login_account_delay_seconds": 30}))
    async with strict.router.lifespan_context(strict):
        yield strict


async def _time_passes(app, username: str) -> None:
    """Every wait on the account has run out (the clock is not what the test waits for)."""
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(update(LoginThrottle).where(LoginThrottle.username == username)
                              .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))


async def test_parallel_wrong_passwords_check_no_more_than_the_limit(client, app, settings, world, backend):
    """The count is taken before the password is checked: of 30 guesses at once from one address, exactly
    LOGIN_MAX_FAILURES are checked (401), the others wait (429); a right password in a burst after them
    gets no token."""
    guesses = await asyncio.gather(*(client.post(TOKEN, data=_password("clerk.b", f"guess {i}")) for i in range(30)))
    statuses = sorted(r.status_code for r in guesses)
    assert statuses == [401] * settings.login_max_failures + [429] * (30 - settings.login_max_failures), backend
    [here] = await db_rows(app, LoginThrottle, LoginThrottle.username == "clerk.b", LoginThrottle.source == "127.0.0.1")
    assert here.failures == settings.login_max_failures
    burst = [_password("clerk.b", f"guess {i}") for i in range(30)]
    burst[9] = _password("clerk.b")
    answers = await asyncio.gather(*(client.post(TOKEN, data=form) for form in burst))
    assert {r.status_code for r in answers} == {429}
    [here] = await db_rows(app, LoginThrottle, LoginThrottle.username == "clerk.b", LoginThrottle.source == "127.0.0.1")
    assert here.failures == settings.login_max_failures  # none of them was checked


@pytest.mark.parametrize("username", ["clerk.b", "no.such.user"])
async def test_each_further_failure_from_an_address_doubles_its_wait_up_to_a_bound(client, strict, username):
    async with _from(strict, "198.51.100.4") as http:
        for _ in range(2):
            assert_problem(await http.post(TOKEN, data=_password(username, "guess")), 401, "invalid-credentials")
        waits = []
        for _ in range(6):
            [row] = await db_rows(strict, LoginThrottle, LoginThrottle.username == username, LoginThrottle.source != "*")
            wait = (row.next_attempt_at - row.last_failure_at).total_seconds()
            waits.append(wait)
            waiting = assert_problem(response := await http.post(TOKEN, data=_password(username)), 429, "too-many-attempts")
            assert "try again in" in waiting["detail"] and 0 < int(response.headers["Retry-After"]) <= wait
            await _time_passes(strict, username)
            assert_problem(await http.post(TOKEN, data=_password(username, "guess")), 401)
        assert waits == [4, 8, 16, 32, 60, 60]
        if username == "clerk.b":
            await _time_passes(strict, username)
            assert (await http.post(TOKEN, data=_password(username))).status_code == 200
            assert (await http.post(TOKEN, data=_password(username, "guess"))).status_code == 401  # the count began again


async def test_a_service_account_is_not_slowed_by_strangers_guessing_its_secret(client, strict, app, world):
    """Six wrong client_credentials for an office's relay (a predictable id) and for a partner, from a
    stranger's address: the stranger waits; the relay and the partner sign in from theirs at once."""
    async with app.state.sessionmaker() as session, session.begin():
        relay, secret = await relay_service.relay_account(session, "SR-ACH", new_secret=True)
    accounts = {relay.username: secret, "partner": PASSWORD}
    async with _from(strict, "203.0.113.66") as stranger:
        for client_id in accounts:
            statuses = [(await stranger.post(TOKEN, data=_credentials(client_id, "guess"))).status_code for _ in range(6)]
            assert statuses == [401, 401, 429, 429, 429, 429]
    for client_id, right in accounts.items():
        async with _from(strict, "192.0.2.20") as own:
            response = await own.post(TOKEN, data=_credentials(client_id, right))
            assert response.status_code == 200, response.text
        # Counted per address only: there is no count across addresses for strangers to fill.
        rows = await db_rows(app, LoginThrottle, LoginThrottle.username == client_id, order_by=LoginThrottle.source)
        assert [(row.source, row.failures) for row in rows] == [("192.0.2.20", 0), ("203.0.113.66", 2)]


async def test_strangers_guessing_a_persons_password_slow_it_down_a_bounded_while_never_at_a_known_address(
        client, strict, app, make_account):
    """Guesses from many addresses for an admin: beyond LOGIN_ACCOUNT_MAX_FAILURES, a new address waits,
    never more than LOGIN_ACCOUNT_DELAY_SECONDS; the admin's own usual address is not slowed at all."""
    admin = await make_account(Role.admin, office=None)
    async with _from(strict, "192.0.2.10") as usual:
        assert (await usual.post(TOKEN, data=_password(admin.username))).status_code == 200
    answers = []
    for n in range(8):
        async with _from(strict, f"203.0.113.{n + 1}") as stranger:
            answers.append((await stranger.post(TOKEN, data=_password(admin.username, "guess"))).status_code)
    assert answers == [401, 401, 401, 429, 429, 429, 429, 429]
    async with app.state.sessionmaker() as session, session.begin():  # a long campaign
        await session.execute(update(LoginThrottle).where(LoginThrottle.username == admin.username,
                                                          LoginThrottle.source == "*").values(failures=1000))
    async with _from(strict, "198.51.100.99") as new_place:
        assert_problem(response := await new_place.post(TOKEN, data=_password(admin.username, "guess")), 429)
        assert 0 < int(response.headers["Retry-After"]) <= 30
        await _time_passes(strict, admin.username)
        assert (await new_place.post(TOKEN, data=_password(admin.username))).status_code == 200
    async with _from(strict, "192.0.2.10") as usual:
        assert (await usual.post(TOKEN, data=_password(admin.username))).status_code == 200
    # IPv6 addresses count by their /64 (one subscriber's share), and nobody else's address is touched.
    async with _from(strict, "2001:db8:1:2::5") as v6:
        await v6.post(TOKEN, data=_password("clerk.b", "guess"))
    assert [row.source for row in await db_rows(app, LoginThrottle, LoginThrottle.username == "clerk.b")] \
        == ["*", "2001:db8:1:2::/64"]


@pytest.mark.parametrize("trusted, counted_as", [("127.0.0.1", "198.51.100.23"), ("192.0.2.250", "127.0.0.1")])
async def test_the_address_counted_is_a_trusted_proxys_x_forwarded_for_never_anyones(client, app, trusted, counted_as):
    """Served as `guichet serve` serves it (uvicorn, proxy headers on, FORWARDED_ALLOW_IPS): behind a trusted
    proxy the client's address is the one it forwards; from any other peer X-Forwarded-For is ignored, so
    nobody chooses the address they are counted under."""
    sock, url = bound_socket()
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", proxy_headers=True,
                                           forwarded_allow_ips=trusted, timeout_graceful_shutdown=0.1))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.005)
        async with httpx.AsyncClient(base_url=url) as http:
            response = await http.post(TOKEN, data=_password("clerk.b", "guess"),
                                       headers={"X-Forwarded-For": "198.51.100.23"})
            assert response.status_code == 401
    finally:
        server.should_exit = True
        await task
        sock.close()
    assert [row.source for row in await db_rows(app, LoginThrottle, LoginThrottle.username == "clerk.b",
                                                LoginThrottle.source != "*")] == [counted_as]


async def test_an_admin_unlocks_an_account(client, strict, app, world, make_account):
    clerk = await make_account()
    async with _from(strict, "198.51.100.4") as http:
        for _ in range(3):
            await http.post(TOKEN, data=_password(clerk.username, "guess"))
        assert_problem(await http.post(TOKEN, data=_password(clerk.username)), 429)
        unlock = f"/api/v1/users/{clerk.id}/unlock"
        assert_problem(await client.post(unlock, headers=world.supervisor_a.headers), 403, "forbidden")
        assert_problem(await client.post(unlock), 401)
        assert_problem(await client.post(f"/api/v1/users/{uuid.uuid4()}/unlock", headers=world.admin.headers), 404)
        assert_problem(await client.post("/api/v1/users/not-an-id/unlock", headers=world.admin.headers), 422)
        response = await client.post(unlock, headers=world.admin.headers)
        assert response.status_code == 204 and response.content == b""
        assert (await http.post(TOKEN, data=_password(clerk.username))).status_code == 200
    [row] = await db_rows(app, AuditEvent, AuditEvent.action == "unlock")
    assert (row.actor_id, row.entity_id, row.details) == (world.admin.id, str(clerk.id),
                                                          {"username": clerk.username, "cleared": 2})


async def test_failures_older_than_a_day_are_pruned_so_probing_names_cannot_grow_the_table(client, strict, app):
    """Now and then an attempt drops the rows whose failures are forgotten; a wait still running and an
    address that signed in lately are kept."""
    long_ago = datetime.now(UTC) - timedelta(days=2)
    async with app.state.sessionmaker() as session, session.begin():
        session.add_all([
            LoginThrottle(username="probe.1", source="203.0.113.1", failures=1, last_failure_at=long_ago),
            LoginThrottle(username="probe.2", source="*", failures=3, last_failure_at=long_ago, next_attempt_at=long_ago),
            LoginThrottle(username="still.waiting", source="*", failures=3, last_failure_at=long_ago,
                          next_attempt_at=datetime.now(UTC) + timedelta(hours=1)),
            LoginThrottle(username="known", source="192.0.2.1", failures=0, last_failure_at=long_ago,
                          last_success_at=datetime.now(UTC) - timedelta(days=3)),
        ])
    throttle._next_prune = None
    assert_problem(await client.post(TOKEN, data=_password("probe.3", "guess")), 401, "invalid-credentials")
    assert sorted(row.username for row in await db_rows(app, LoginThrottle)) == ["known", "probe.3", "probe.3", "still.waiting"]


# ---- password hashing off the event loop --------------------------------------------------------------------


async def test_hashing_leaves_the_event_loop_free_and_runs_at_most_hash_threads_at_once(client, world, make_account,
                                                                                         monkeypatch, app):
    """While sign-ins' passwords are being checked (held here until the test lets them go), the worker
    answers other requests; and of more sign-ins than the pool's threads, only HASH_THREADS hash at once."""
    real, lock, started, enough, release = security._hasher, threading.Lock(), [], threading.Event(), threading.Event()

    class HeldHasher:
        def verify(self, password_hash, password):
            with lock:
                started.append(password)
                if len(started) >= security.HASH_THREADS:
                    enough.set()
            release.wait(5)  # a guard: on the event loop, nothing else could release it
            return real.verify(password_hash, password)

    monkeypatch.setattr(security, "_hasher", HeldHasher())
    accounts = [await make_account() for _ in range(security.HASH_THREADS + 2)]
    done = []
    sign_ins = [asyncio.create_task(client.post(TOKEN, data=_password(a.username))) for a in accounts]
    for task in sign_ins:
        task.add_done_callback(lambda _: done.append("sign-in"))
    await asyncio.to_thread(enough.wait, 10)
    me = await client.get(ME, headers=world.clerk_a.headers)
    done.append("me")
    while len(await db_rows(app, LoginThrottle)) < len(accounts):  # every attempt is counted, so it waits its turn
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert len(started) == security.HASH_THREADS
    release.set()
    assert [r.status_code for r in await asyncio.gather(*sign_ins)] == [200] * len(accounts)
    assert me.status_code == 200 and done[0] == "me", done


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
