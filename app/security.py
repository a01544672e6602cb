"""Every use of python-jose and of the password hasher lives here.

Also the DCI message signatures (ES256/RS256 JWS, at the end). Tokens are HS256 only (one algorithm, pinned, so the token header cannot choose), must carry
exp, iat, nbf, iss, aud, sub and jti, and are refused above a size cap before any parsing.
Swapping the JWT library is a change to this module alone."""

import asyncio
import base64
import functools
import hashlib
import json
import os
import secrets
import time
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from jose import JWTError, jwt

from app.config import Settings

ALGORITHM = "HS256"
MAX_TOKEN_BYTES = 4096
CLOCK_LEEWAY_SECONDS = 30

_hasher = PasswordHasher()


# Verified against when the username is unknown, so that both paths cost the same time.
# Made on first use, not at import: hashing costs a fifth of a second, which every CLI command paid.
@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


class InvalidToken(Exception):
    pass


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: uuid.UUID
    issued_at: float
    role: str


def issue_token(settings: Settings, *, subject: uuid.UUID, role: str, office: str | None, scheme: str | None) -> tuple[str, int]:
    now = datetime.now(UTC)
    lifetime = settings.token_lifetime_minutes * 60
    claims = {
        "sub": str(subject),
        "role": role,
        "office": office,
        "scheme": scheme,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        # Sub-second, so that a token issued just before a password change or a deactivation (which
        # revoke tokens issued before that instant) is not taken for one issued just after it.
        "iat": now.timestamp(),
        "nbf": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=lifetime)).timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm=ALGORITHM), lifetime


# A worker sees the same few hundred tokens all day, and checking a signature again proves nothing
# new: a token verified once is remembered, under the key and claims it was checked against, and only
# its validity window (nbf, exp) is checked again on each use. Revocation is the caller's database
# check (deps.current_principal), made every time.
_VERIFIED_MAX = 4096
_verified: OrderedDict[tuple, tuple[TokenClaims, float, float]] = OrderedDict()


def verify_token(settings: Settings, token: str) -> TokenClaims:
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken("token too large")
    key = (token, settings.secret_key.get_secret_value(), settings.jwt_issuer, settings.jwt_audience)
    known = _verified.get(key)
    if known is not None:
        claims, not_before, expires = known
        if not_before - CLOCK_LEEWAY_SECONDS <= time.time() < expires + CLOCK_LEEWAY_SECONDS:
            _verified.move_to_end(key)
            return claims
    claims, not_before, expires = _decode(settings, token)
    _verified[key] = (claims, not_before, expires)
    if len(_verified) > _VERIFIED_MAX:
        _verified.popitem(last=False)
    return claims


def _decode(settings: Settings, token: str) -> tuple[TokenClaims, float, float]:
    try:
        claims = jwt.decode(
            token,
            settings.secret_key.get_secret_value(),
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={
                "require_exp": True,
                "require_iat": True,
                "require_nbf": True,
                "require_iss": True,
                "require_aud": True,
                "require_sub": True,
                "require_jti": True,
                "leeway": CLOCK_LEEWAY_SECONDS,
            },
        )
        # python-jose accepts a token without "aud" even when an audience is expected; check it here.
        if claims.get("aud") != settings.jwt_audience:
            raise InvalidToken("wrong audience")
        verified = TokenClaims(subject=uuid.UUID(claims["sub"]), issued_at=float(claims["iat"]), role=str(claims["role"]))
        return verified, float(claims["nbf"]), float(claims["exp"])
    except (JWTError, KeyError, ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from None


# A hash costs tens of milliseconds of CPU, on purpose. On the event loop it stalled every other request
# of the worker (8 sign-in loops took /auth/me from 24 to 190 ms); here it runs in threads of its own
# (argon2 releases the GIL), at most HASH_THREADS at once, half the machine's cores, so hashing never
# takes every core. The others wait their turn in the pool's queue without holding the loop.
HASH_THREADS = max(1, (os.cpu_count() or 2) // 2)
_hash_pool = ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix="password-hash")


async def hash_password(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_hash_pool, _hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(_hash_pool, _verify, password_hash, password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_refresh_token() -> tuple[str, str]:
    """A refresh token and the digest it is stored and looked up by. It is 256 random bits, so a fast
    hash is enough: nobody can guess one to try against a stolen digest."""
    token = secrets.token_urlsafe(32)
    return token, refresh_token_digest(token)


def refresh_token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# ---- DCI message signatures (docs/dci.md, "Signing profile") ------------------------------------------
# A compact JWS (ES256 or RS256, the algorithm pinned by the key) whose payload is the UTF-8 JSON of
# {"header": ..., "message": ...}; the protected header carries kid, iat and exp (at most 5 minutes).

SIGNING_ALGORITHMS = ("ES256", "RS256")
MAX_SIGNATURE_BYTES = 2 * 1024 * 1024
SIGNATURE_LIFETIME_SECONDS = 300


class InvalidSignature(Exception):
    pass


def generate_signing_key(algorithm: str) -> str:
    """A new private key as PEM: P-256 for ES256, RSA 2048 for RS256."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key = ec.generate_private_key(ec.SECP256R1()) if algorithm == "ES256" else rsa.generate_private_key(65537, 2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@functools.lru_cache(maxsize=16)
def public_jwk(private_pem: str, algorithm: str) -> dict:
    """The public half of a signing key as a JWK, its kid the RFC 7638 thumbprint."""
    from jose import jwk

    public = jwk.construct(private_pem, algorithm).public_key().to_dict()
    members = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}[public["kty"]]
    canonical = json.dumps({m: public[m] for m in members}, separators=(",", ":"), sort_keys=True).encode()
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    return {**public, "kid": kid, "use": "sig", "alg": algorithm}


def sign_jws(payload: bytes, private_pem: str, algorithm: str) -> str:
    from jose import jws

    now = int(time.time())
    headers = {"kid": public_jwk(private_pem, algorithm)["kid"], "iat": now, "exp": now + SIGNATURE_LIFETIME_SECONDS}
    return jws.sign(payload, private_pem, headers=headers, algorithm=algorithm)


def verify_jws(token: str, jwks: dict | None) -> bytes:
    """The payload of a compact JWS made by one of these keys (its `kid`, its own `alg` only), within
    its validity window. Raises InvalidSignature."""
    from jose import JOSEError, jws

    if not isinstance(token, str) or len(token) > MAX_SIGNATURE_BYTES or token.count(".") != 2:
        raise InvalidSignature("not a compact JWS")
    try:
        header = jws.get_unverified_header(token)
    except (JOSEError, ValueError, TypeError):
        raise InvalidSignature("unreadable JWS header") from None
    keys = [k for k in (jwks or {}).get("keys", []) if isinstance(k, dict) and k.get("kid") == header.get("kid")]
    if len(keys) != 1:
        raise InvalidSignature("unknown key id")
    key = keys[0]
    algorithm = key.get("alg") or ("ES256" if key.get("kty") == "EC" else "RS256")
    if algorithm not in SIGNING_ALGORITHMS or header.get("alg") != algorithm:
        raise InvalidSignature("algorithm not allowed for this key")
    now = time.time()
    iat, exp = header.get("iat"), header.get("exp")
    if not isinstance(iat, int | float) or not isinstance(exp, int | float) or isinstance(iat, bool) or isinstance(exp, bool):
        raise InvalidSignature("iat and exp are required in the protected header")
    if exp - iat > SIGNATURE_LIFETIME_SECONDS or iat > now + CLOCK_LEEWAY_SECONDS or exp < now - CLOCK_LEEWAY_SECONDS:
        raise InvalidSignature("signature expired or not yet valid")
    try:
        return jws.verify(token, key, algorithms=[algorithm])
    except (JOSEError, ValueError, TypeError):
        raise InvalidSignature("signature does not verify") from None
