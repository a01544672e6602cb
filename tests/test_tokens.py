"""Tokens: what app.security accepts and refuses, and that every refused token is a 401 with
WWW-Authenticate at the API. Forged tokens are built by hand, not with the app's own helpers."""

import base64
import functools
import json
import time
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt

from app.security import MAX_TOKEN_BYTES, InvalidToken, issue_token, verify_token
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
def _rsa_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def forged_tokens(settings, subject) -> dict[str, str]:
    now = int(time.time())
    good = _claims(settings, subject)
    return {
        "expired": _sign(settings, _claims(settings, subject, iat=now - 4000, nbf=now - 4000, exp=now - 3600)),
        "expired beyond the leeway": _sign(settings, _claims(settings, subject, exp=now - 60)),
        "not yet valid": _sign(settings, _claims(settings, subject, nbf=now + 3600)),
        "other secret": _sign(settings, good, key="someone-elses-secret-that-is-long-enough-0123"),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(good)}.",
        "alg none with signature": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(good)}.c2ln",
        "HS512 with the right secret": _sign(settings, good, algorithm="HS512"),
        "RS256": _sign(settings, good, key=_rsa_pem(), algorithm="RS256"),
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
    token, lifetime = issue_token(settings, subject=subject, role="clerk", office="SR-ACH", scheme=None)
    claims = verify_token(settings, token)
    assert claims.subject == subject and claims.role == "clerk"
    assert abs(claims.issued_at - time.time()) < 5
    assert lifetime == settings.token_lifetime_minutes * 60
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "HS256"
    payload = jwt.get_unverified_claims(token)
    assert payload["exp"] - payload["nbf"] == lifetime
    assert {"iss", "aud", "iat", "nbf", "exp", "jti", "sub"} <= payload.keys()


def test_a_token_a_few_seconds_past_expiry_is_within_the_clock_leeway(settings):
    now = int(time.time())
    assert verify_token(settings, _sign(settings, _claims(settings, uuid.uuid4(), exp=now - 5))).role == "clerk"


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
