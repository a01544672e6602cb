"""Tokens: what app.security accepts and refuses, and that every refused token is a 401 with
WWW-Authenticate at the API. Forged tokens are built by hand, not with the app's own helpers."""

import base64
import functools
import hashlib
import hmac
import json
import time
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt

from sqlalchemy import delete, update

from app.models import User
from app.security import CLOCK_LEEWAY_SECONDS, MAX_TOKEN_BYTES, InvalidToken, issue_token, verify_token
from helpers import assert_problem

ME = "/api/v1/auth/me"


def _claims(settings, subject, **changes) -> dict:
    now = int(time.time())
    claims = {"sub": str(subject), "role": "clerk", "office": "SR-ACH", "scheme": None, "iss": settings.jwt_issuer,
              "aud": settings.jwt_audience, "iat": now, "nbf": now, "exp": now + 600, "jti": uuid.uuid4().hex}
    for key, value in changes.items():
        if value is ...:
            claims.pop(key)
        else:
            claims[key] = value
    return claims


def _sign(settings, claims, *, key=None, algorithm="HS256") -> str:
    return jwt.encode(claims, key or settings.secret_key.get_secret_value(), algorithm=algorithm)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@functools.cache
def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _rsa_pem() -> bytes:
    return _rsa_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())


def _hs256_with_public_key(claims: dict) -> str:
    """The classic HS/RS confusion: HS256 with an RSA public key (which an attacker can know) as the
    HMAC secret. Signed by hand: python-jose itself refuses to use a public key as a secret."""
    public_pem = _rsa_key().public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(claims)}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def forged_tokens(settings, subject) -> dict[str, str]:
    now = int(time.time())
    good = _claims(settings, subject)
    return {
        "expired": _sign(settings, _claims(settings, subject, iat=now - 4000, nbf=now - 4000, exp=now - 3600)),
        "expired beyond the leeway": _sign(settings, _claims(settings, subject, exp=now - 60)),
        "not yet valid": _sign(settings, _claims(settings, subject, nbf=now + 3600)),
        "not yet valid beyond the leeway": _sign(settings, _claims(settings, subject, nbf=now + CLOCK_LEEWAY_SECONDS + 15)),
        "other secret": _sign(settings, good, key="someone-elses-secret-that-is-long-enough-0123"),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(good)}.",
        "alg none with signature": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(good)}.c2ln",
        "alg None": f"{_b64({'alg': 'None', 'typ': 'JWT'})}.{_b64(good)}.",
        "alg NONE": f"{_b64({'alg': 'NONE', 'typ': 'JWT'})}.{_b64(good)}.",
        "signature stripped": _sign(settings, good).rsplit(".", 1)[0] + ".",
        "HS512 with the right secret": _sign(settings, good, algorithm="HS512"),
        "RS256": _sign(settings, good, key=_rsa_pem(), algorithm="RS256"),
        "HS256 with the public key as the secret": _hs256_with_public_key(good),
        "wrong issuer": _sign(settings, _claims(settings, subject, iss="someone-else")),
        "wrong audience": _sign(settings, _claims(settings, subject, aud="another-api")),
        "no audience": _sign(settings, _claims(settings, subject, aud=...)),
        "no expiry": _sign(settings, _claims(settings, subject, exp=...)),
        "no issued-at": _sign(settings, _claims(settings, subject, iat=...)),
        "no jti": _sign(settings, _claims(settings, subject, jti=...)),
        "no subject": _sign(settings, _claims(settings, subject, sub=...)),
        "subject not a uuid": _sign(settings, _claims(settings, subject, sub="clerk.a")),
        "payload tampered": ".".join([_sign(settings, good).split(".")[0], _b64(good | {"role": "admin"}),
                                      _sign(settings, good).split(".")[2]]),
        "oversized": _sign(settings, good | {"pad": "x" * MAX_TOKEN_BYTES}),
        "not a jwt": "not-a-token",
        "empty segments": "..",
    }


def test_an_issued_token_verifies(settings):
    subject = uuid.uuid4()
    before = time.time()
    token, lifetime = issue_token(settings, subject=subject, role="clerk", office="SR-ACH", scheme=None)
    after = time.time()
    claims = verify_token(settings, token)
    assert claims.subject == subject and claims.role == "clerk"
    assert before <= claims.issued_at <= after  # issued now
    assert lifetime == settings.token_lifetime_minutes * 60
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "HS256"
    payload = jwt.get_unverified_claims(token)
    assert payload["exp"] - payload["nbf"] == lifetime
    assert {"iss", "aud", "iat", "nbf", "exp", "jti", "sub"} <= payload.keys()


def test_a_token_a_few_seconds_past_expiry_or_before_its_start_is_within_the_clock_leeway(settings):
    now = int(time.time())
    assert verify_token(settings, _sign(settings, _claims(settings, uuid.uuid4(), exp=now - 5))).role == "clerk"
    assert verify_token(settings, _sign(settings, _claims(settings, uuid.uuid4(), nbf=now + 5))).role == "clerk"


def test_forged_tokens_are_refused(settings):
    for case, token in forged_tokens(settings, uuid.uuid4()).items():
        with pytest.raises(InvalidToken):
            verify_token(settings, token)
            pytest.fail(f"{case} was accepted")


async def test_every_forged_token_is_a_401_with_www_authenticate(client, world, settings):
    for case, token in forged_tokens(settings, world.admin.id).items():
        response = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
        problem = assert_problem(response, 401, "unauthenticated")
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), case
        assert "traceback" not in response.text.lower() and problem["detail"], case


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer ", "Basic Y2xlcms6cGFzcw==", "bearer  x.y.z",
                                           "Token abc"])
async def test_missing_or_malformed_authorization_is_401(client, world, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.get(ME, headers=headers)
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_the_token_of_a_deleted_or_deactivated_user_is_a_401_everywhere(client, world, app, make_account):
    """Well signed and unexpired, but its user is gone or may no longer sign in: refused on every
    kind of route (the user is read from the database on each request, not from the token)."""
    deleted, deactivated, kept = await make_account(), await make_account(), await make_account()
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(delete(User).where(User.id == deleted.id))
        await session.execute(update(User).where(User.id == deactivated.id).values(is_active=False))
    for path in (ME, "/api/v1/households", "/api/v1/locations"):
        assert (await client.get(path, headers=kept.headers)).status_code == 200, path
        for account in (deleted, deactivated):
            response = await client.get(path, headers=account.headers)
            assert_problem(response, 401, "unauthenticated")
            assert response.headers["WWW-Authenticate"].startswith("Bearer"), path
