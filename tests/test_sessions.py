"""Sessions (docs/sessions.md): refresh tokens that rotate, end at reuse, idle and absolute lifetimes; the
browser's HttpOnly cookie and its same-origin rule; sign-out; the self-service password change; and a
password change or deactivation ending every session."""

import asyncio
import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from app.models import AuditEvent, LoginThrottle, RefreshToken
from app.vocabulary import Role
from conftest import PASSWORD
from helpers import assert_problem, db_rows
from test_tokens import forged_tokens

TOKEN = "/api/v1/auth/token"
REVOKE = "/api/v1/auth/revoke"
PASSWORD_CHANGE = "/api/v1/auth/password"
ME = "/api/v1/auth/me"
NEW_PASSWORD = "a brand new passphrase"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _cookie(token: str) -> dict[str, str]:
    # Set by hand: the test client keeps no Secure cookie over http://.
    return {"Cookie": f"guichet_refresh={token}"}


async def _sign_in(client, username: str, password: str = PASSWORD, **form) -> dict:
    response = await client.post(TOKEN, data={"grant_type": "password", "username": username, "password": password, **form})
    assert response.status_code == 200, response.text
    return response.json()


async def _renew(client, refresh_token: str):
    return await client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": refresh_token})


def _set_cookie(response) -> dict[str, str]:
    """The refresh cookie's value and attributes, as the browser would read Set-Cookie."""
    [header] = [v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("guichet_refresh=")]
    name_value, *attributes = [part.strip() for part in header.split(";")]
    found = {"value": name_value.split("=", 1)[1].strip('"')}
    for attribute in attributes:
        key, _, value = attribute.partition("=")
        found[key.lower()] = value or True
    return found


# ---- refresh tokens -----------------------------------------------------------------------------------------


async def test_a_persons_sign_in_gives_a_refresh_token_that_renews_the_session_once(client, world, app, settings):
    response = await client.post(TOKEN, data={"grant_type": "password", "username": "clerk.a", "password": PASSWORD})
    assert response.headers["Cache-Control"] == "no-store"
    first = response.json()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", first["refresh_token"])
    assert first["refresh_expires_in"] == settings.refresh_idle_minutes * 60
    renewed = await _renew(client, first["refresh_token"])
    assert renewed.status_code == 200 and renewed.headers["Cache-Control"] == "no-store"
    second = renewed.json()
    assert second["refresh_token"] != first["refresh_token"] and second["token_type"] == "bearer"
    me = await client.get(ME, headers=_bearer(second["access_token"]))
    assert me.status_code == 200 and me.json()["username"] == "clerk.a"
    # Stored as digests only, and the two belong to one family (one sign-in).
    rows = await db_rows(app, RefreshToken, order_by=RefreshToken.created_at)
    assert [r.token_hash for r in rows] == [hashlib.sha256(t.encode()).hexdigest()
                                            for t in (first["refresh_token"], second["refresh_token"])]
    assert rows[0].family_id == rows[1].family_id and rows[0].used_at is not None and rows[1].used_at is None
    # Used once only; presented again, it ends the family: the token that replaced it stops working too.
    assert_problem(await _renew(client, first["refresh_token"]), 401, "session-ended")
    assert_problem(await _renew(client, second["refresh_token"]), 401, "session-ended")
    # Another sign-in of the same person is another family, untouched.
    third = await _sign_in(client, "clerk.a")
    assert (await _renew(client, third["refresh_token"])).status_code == 200


async def test_parallel_renewals_with_one_token_let_one_through_and_end_the_family(client, world, backend):
    """Two holders of one refresh token (one of them a thief) renew at the same moment: one renewal wins,
    and the reuse ends the whole sign-in, the winner's new token included."""
    token = (await _sign_in(client, "clerk.a"))["refresh_token"]
    answers = await asyncio.gather(*(_renew(client, token) for _ in range(20)))
    assert sorted(r.status_code for r in answers) == [200] + [401] * 19, backend
    [winner] = [r.json() for r in answers if r.status_code == 200]
    assert_problem(await _renew(client, winner["refresh_token"]), 401, "session-ended")


async def test_service_accounts_get_no_refresh_token(client, world):
    response = await client.post(TOKEN, data={"grant_type": "client_credentials", "client_id": "partner",
                                              "client_secret": PASSWORD})
    assert response.status_code == 200 and set(response.json()) == {"access_token", "token_type", "expires_in"}


async def test_a_refresh_token_ends_when_unused_for_the_idle_time_and_a_session_at_its_lifetime(client, world, app, settings):
    idle = (await _sign_in(client, "clerk.a"))["refresh_token"]
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(update(RefreshToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert_problem(await _renew(client, idle), 401, "session-ended")
    # Renewing never reaches past the sign-in's lifetime, and after it nothing renews.
    late = (await _sign_in(client, "clerk.a"))["refresh_token"]
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(update(RefreshToken).where(RefreshToken.used_at.is_(None), RefreshToken.revoked_at.is_(None),
                                                         RefreshToken.expires_at > datetime.now(UTC))
                              .values(session_expires_at=datetime.now(UTC) + timedelta(minutes=5)))
    renewed = (await _renew(client, late)).json()
    assert 0 < renewed["refresh_expires_in"] <= 300
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(update(RefreshToken).values(session_expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert_problem(await _renew(client, renewed["refresh_token"]), 401, "session-ended")
    # Ended sign-ins are dropped at the person's next sign-in.
    await _sign_in(client, "clerk.a")
    assert len(await db_rows(app, RefreshToken)) == 1


@pytest.mark.parametrize("form, status, slug", [
    ({"grant_type": "refresh_token"}, 400, "bad-request"),
    ({"grant_type": "refresh_token", "refresh_token": "x" * 65}, 422, "validation"),
    ({"grant_type": "refresh_token", "refresh_token": "not-a-token-we-issued"}, 401, "session-ended"),
    ({"grant_type": "password", "username": "clerk.a", "password": PASSWORD, "refresh_token_delivery": "jar"}, 422,
     "validation"),
])
async def test_bad_renewals(client, world, form, status, slug):
    assert_problem(await client.post(TOKEN, data=form), status, slug)


# ---- sign-out ---------------------------------------------------------------------------------------------


async def test_sign_out_ends_the_session(client, world, app):
    tokens = await _sign_in(client, "clerk.a")
    response = await client.post(REVOKE, data={"token": tokens["refresh_token"]})
    assert response.status_code == 200 and response.content == b""
    assert_problem(await _renew(client, tokens["refresh_token"]), 401, "session-ended")
    assert all(row.revoked_at is not None for row in await db_rows(app, RefreshToken))
    # RFC 7009: a token that is unknown (or already revoked) is no error.
    assert (await client.post(REVOKE, data={"token": tokens["refresh_token"]})).status_code == 200
    assert (await client.post(REVOKE, data={"token": "never-issued"})).status_code == 200
    assert_problem(await client.post(REVOKE), 400, "bad-request")
    assert_problem(await client.post(REVOKE, data={"token": "x" * 65}), 422, "validation")
    assert_problem(await client.post(REVOKE, json={"token": tokens["refresh_token"]}), 415, "unsupported-media-type")


# ---- the browser: the refresh token in an HttpOnly cookie --------------------------------------------------------


async def test_a_browser_keeps_the_refresh_token_in_an_httponly_cookie(client, world, settings):
    same_origin = {"Origin": "http://guichet.test", "Sec-Fetch-Site": "same-origin"}
    response = await client.post(TOKEN, headers=same_origin, data={
        "grant_type": "password", "username": "clerk.a", "password": PASSWORD, "refresh_token_delivery": "cookie"})
    assert response.status_code == 200, response.text
    assert "refresh_token" not in response.json() and response.json()["refresh_expires_in"] == settings.refresh_idle_minutes * 60
    cookie = _set_cookie(response)
    assert {k: cookie.get(k) for k in ("httponly", "secure", "samesite", "path", "max-age")} == {
        "httponly": True, "secure": True, "samesite": "strict", "path": "/api/v1/auth",
        "max-age": str(settings.refresh_idle_minutes * 60)}
    # Renewed with the cookie alone; the new token comes back as a cookie again.
    renewed = await client.post(TOKEN, data={"grant_type": "refresh_token"}, headers={**_cookie(cookie["value"]), **same_origin})
    assert renewed.status_code == 200, renewed.text
    assert "refresh_token" not in renewed.json()
    newer = _set_cookie(renewed)["value"]
    assert newer != cookie["value"]
    assert (await client.get(ME, headers=_bearer(renewed.json()["access_token"]))).status_code == 200
    # A browser that sends no Origin on a same-origin request (older ones) is fine too.
    renewed = await client.post(TOKEN, data={"grant_type": "refresh_token"}, headers=_cookie(newer))
    assert renewed.status_code == 200
    newest = _set_cookie(renewed)["value"]
    # Sign-out with the cookie: the session ends and the cookie is cleared.
    out = await client.post(REVOKE, headers={**_cookie(newest), **same_origin})
    assert out.status_code == 200 and _set_cookie(out)["max-age"] == "0"
    assert_problem(await client.post(TOKEN, data={"grant_type": "refresh_token"}, headers=_cookie(newest)), 401,
                   "session-ended")


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site", "Origin": "http://guichet.test"},
])
async def test_another_site_cannot_use_or_set_the_session_cookie(client, world, headers):
    token = (await _sign_in(client, "clerk.a"))["refresh_token"]
    assert_problem(await client.post(TOKEN, data={"grant_type": "refresh_token"}, headers={**_cookie(token), **headers}),
                   403, "forbidden")
    assert_problem(await client.post(REVOKE, headers={**_cookie(token), **headers}), 403, "forbidden")
    for form in ({"grant_type": "password", "username": "clerk.a", "password": PASSWORD},
                 {"grant_type": "refresh_token", "refresh_token": token}):  # another site planting a session
        assert_problem(await client.post(TOKEN, headers=headers, data={**form, "refresh_token_delivery": "cookie"}),
                       403, "forbidden")
    assert (await _renew(client, token)).status_code == 200  # nothing was used up


# ---- password changes and deactivation end every session --------------------------------------------------------


async def test_a_person_changes_their_own_password_and_every_session_ends(client, world, app, make_account):
    account = await make_account()
    tokens = await _sign_in(client, account.username)
    other_session = await _sign_in(client, account.username)
    response = await client.post(PASSWORD_CHANGE, headers=_bearer(tokens["access_token"]),
                                 json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 204 and response.content == b""
    assert _set_cookie(response)["max-age"] == "0"
    for access in (tokens["access_token"], account.token):
        assert_problem(await client.get(ME, headers=_bearer(access)), 401, "unauthenticated")
    for refresh in (tokens["refresh_token"], other_session["refresh_token"]):
        assert_problem(await _renew(client, refresh), 401, "session-ended")
    assert_problem(await client.post(TOKEN, data={"grant_type": "password", "username": account.username,
                                                  "password": PASSWORD}), 401, "invalid-credentials")
    assert (await _sign_in(client, account.username, NEW_PASSWORD))["refresh_token"]
    [row] = await db_rows(app, AuditEvent, AuditEvent.entity_id == str(account.id))
    assert (row.action, row.actor_id, row.details) == ("update", account.id, {"fields": ["password"], "by": "self"})


@pytest.mark.parametrize("body, pointer", [
    ({"current_password": "not the password", "new_password": NEW_PASSWORD}, "#/current_password"),
    ({"current_password": PASSWORD, "new_password": PASSWORD}, "#/new_password"),
    ({"current_password": PASSWORD, "new_password": "short"}, "#/new_password"),
    ({"current_password": PASSWORD, "new_password": "x" * 129}, "#/new_password"),
    ({"current_password": PASSWORD, "new_password": 1234567890123}, "#/new_password"),
    ({"current_password": PASSWORD}, "#/new_password"),
    ({"current_password": PASSWORD, "new_password": NEW_PASSWORD, "role": "admin"}, "#/role"),
])
async def test_a_refused_password_change_changes_nothing(client, world, make_account, body, pointer):
    account = await make_account()
    problem = assert_problem(await client.post(PASSWORD_CHANGE, headers=account.headers, json=body), 422, "validation")
    assert pointer in [e["pointer"] for e in problem["errors"]], problem
    if pointer == "#/new_password" and isinstance(body.get("new_password"), str):  # said in words
        assert "password" in problem["errors"][0]["detail"] and "items" not in problem["errors"][0]["detail"]
    assert (await client.get(ME, headers=account.headers)).status_code == 200
    assert (await _sign_in(client, account.username))["access_token"]


async def test_the_password_change_is_for_signed_in_people_only(client, world, make_account, settings):
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert_problem(await client.post(PASSWORD_CHANGE, json=body), 401, "unauthenticated")
    assert_problem(await client.post(PASSWORD_CHANGE, json=body, headers=world.partner.headers), 403, "forbidden")
    relay = await make_account(Role.relay, "SR-ACH")
    assert_problem(await client.post(PASSWORD_CHANGE, json=body, headers=relay.headers), 403, "forbidden")
    expired = forged_tokens(settings, world.clerk_a.id)["expired"]
    assert_problem(await client.post(PASSWORD_CHANGE, json=body, headers=_bearer(expired)), 401, "unauthenticated")
    assert_problem(await client.post(PASSWORD_CHANGE, content=b"{", headers={**world.clerk_a.headers,
                                                                           "Content-Type": "application/json"}),
                   400, "malformed-json")


async def test_guessing_the_current_password_with_a_stolen_token_is_throttled(client, world, app, settings, make_account):
    account = await make_account()
    wrong = {"current_password": "not the password", "new_password": NEW_PASSWORD}
    for _ in range(settings.login_max_failures):
        assert_problem(await client.post(PASSWORD_CHANGE, headers=account.headers, json=wrong), 422)
    assert_problem(await client.post(PASSWORD_CHANGE, headers=account.headers,
                                     json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}), 429,
                   "too-many-attempts")
    [row] = await db_rows(app, LoginThrottle, LoginThrottle.username == account.username, LoginThrottle.source != "*")
    assert row.failures == settings.login_max_failures


async def test_deactivation_and_a_password_reset_by_an_admin_end_every_session(client, world, make_account):
    for change in ({"is_active": False}, {"password": NEW_PASSWORD}):
        account = await make_account()
        refresh = (await _sign_in(client, account.username))["refresh_token"]
        current = await client.get(f"/api/v1/users/{account.id}", headers=world.admin.headers)
        assert (await client.patch(f"/api/v1/users/{account.id}", json=change, headers={
            **world.admin.headers, "If-Match": current.headers["ETag"]})).status_code == 200
        assert_problem(await _renew(client, refresh), 401, "session-ended")
        if change == {"is_active": False}:  # reactivation does not revive them
            current = await client.get(f"/api/v1/users/{account.id}", headers=world.admin.headers)
            await client.patch(f"/api/v1/users/{account.id}", json={"is_active": True},
                               headers={**world.admin.headers, "If-Match": current.headers["ETag"]})
            assert_problem(await _renew(client, refresh), 401, "session-ended")
