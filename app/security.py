"""Every use of python-jose and of the password hasher lives here.

Tokens are HS256 only (one algorithm, pinned, so the token header cannot choose), must carry
exp, iat, nbf, iss, aud, sub and jti, and are refused above a size cap before any parsing.
Swapping the JWT library is a change to this module alone."""

import asyncio
import functools
import hashlib
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
