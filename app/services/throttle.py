"""Sign-in throttling: growing waits per account and source address, never a lock a stranger controls.

Every attempt is counted as a failure in its own committed transaction *before* its password is
checked (a success un-counts it afterwards), with the account's rows locked while counting: however
many attempts arrive at once, no more passwords are checked than the counts allow.

- Per account and source address: LOGIN_MAX_FAILURES free failures, then each further attempt waits
  2^failures seconds after the last (32 s, 64 s, ... at the default 5), at most LOGIN_MAX_DELAY_MINUTES.
- Per account, for people (and unknown usernames, which look the same): beyond
  LOGIN_ACCOUNT_MAX_FAILURES failures from every address together, an attempt waits
  LOGIN_ACCOUNT_DELAY_SECONDS after the account's last failure; except from an address the account
  signed in from in the last KNOWN_FOR, so a clerk at the office's usual address is not slowed by
  guesses from elsewhere, and nobody is kept out longer than that bound.
- Service accounts (partner schemes, office relays) hold long random secrets, which guessing cannot
  find: they are throttled per source address only, so a stranger slows nobody but himself.

Failures are forgotten a day after the last one, or at a success from that address."""

import asyncio
import math
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.errors import DomainError
from app.models import LoginThrottle
from app.models.base import utcnow
from app.upsert import insert_ignore

ACCOUNT = "*"  # the source of an account's row counting every address
FORGIVEN_AFTER = timedelta(days=1)
KNOWN_FOR = timedelta(days=30)
PRUNE_EVERY = timedelta(minutes=10)
_next_prune: datetime | None = None
_turns: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


@dataclass(frozen=True, slots=True)
class Attempt:
    """An attempt counted before its password is checked."""

    username: str
    source: str
    account_counted: bool


def _wait_seconds(failures: int, *, free: int, longest: float) -> float:
    """The wait after `failures` failures: none within the free ones, then 2^failures seconds, capped."""
    return 0.0 if failures < free else min(2.0 ** min(failures, 30), longest)


def turn(username: str) -> asyncio.Lock:
    """Attempts on one account take turns in the worker before they reach the database (reading the
    account, counting the attempt), so that a flood of guesses waits in memory rather than holding a
    connection each while it waits for the account's row lock, which would empty the pool for everyone.
    The database's lock still orders the workers. A lock lives while someone holds or waits for it."""
    lock = _turns.get(username)
    if lock is None:
        lock = _turns[username] = asyncio.Lock()
    return lock


async def take(sessionmaker: async_sessionmaker, settings: Settings, *, username: str, source: str,
               person: bool) -> Attempt:
    """Count an attempt before its password is checked (in the account's turn); 429 with Retry-After
    when it must wait."""
    now = utcnow()
    sources = [source, ACCOUNT] if person else [source]
    async with sessionmaker() as session, session.begin():
        await _prune(session, now)
        await session.execute(insert_ignore(session, LoginThrottle, ["username", "source"]).values(
            [{"username": username, "source": s, "failures": 0} for s in sources]))
        # Locked in one order (the account's row "*" sorts before any address), so that two attempts
        # never wait for each other in a circle. (SQLite: BEGIN IMMEDIATE already serialises them.)
        rows = {row.source: row for row in (await session.execute(
            select(LoginThrottle).where(LoginThrottle.username == username, LoginThrottle.source.in_(sources))
            .order_by(LoginThrottle.source).with_for_update())).scalars()}
        here = rows[source]
        known = here.last_success_at is not None and here.last_success_at > now - KNOWN_FOR
        counted = [(here, settings.login_max_failures, settings.login_max_delay_minutes * 60.0)]
        if person and not known:
            counted.append((rows[ACCOUNT], settings.login_account_max_failures, float(settings.login_account_delay_seconds)))
        waits = [row.next_attempt_at for row, _, _ in counted if row.next_attempt_at is not None and row.next_attempt_at > now]
        if waits:
            seconds = math.ceil((max(waits) - now).total_seconds())
            raise DomainError(f"Too many failed sign-ins for this account; try again in {seconds} seconds.",
                              slug="too-many-attempts", headers={"Retry-After": str(seconds)})
        for row, free, longest in counted:
            if row.last_failure_at is not None and row.last_failure_at < now - FORGIVEN_AFTER:
                row.failures = 0
            row.failures += 1
            row.last_failure_at = now
            row.next_attempt_at = now + timedelta(seconds=_wait_seconds(row.failures, free=free, longest=longest))
    return Attempt(username=username, source=source, account_counted=len(counted) == 2)


async def succeeded(session: AsyncSession, attempt: Attempt) -> None:
    """The password was right: this address's failures are forgiven and it becomes a known address;
    the account's row forgets this attempt only (others' failures stand)."""
    now = utcnow()
    await session.execute(update(LoginThrottle).where(
        LoginThrottle.username == attempt.username, LoginThrottle.source == attempt.source,
    ).values(failures=0, next_attempt_at=None, last_success_at=now))
    if attempt.account_counted:
        await session.execute(update(LoginThrottle).where(
            LoginThrottle.username == attempt.username, LoginThrottle.source == ACCOUNT, LoginThrottle.failures > 0,
        ).values(failures=LoginThrottle.failures - 1))


async def clear(session: AsyncSession, username: str) -> int:
    """Lift every wait on an account (an administrator's unlock); known addresses stay known. The
    number of rows (addresses, and the account's own) that had failures."""
    result = await session.execute(update(LoginThrottle).where(
        LoginThrottle.username == username, or_(LoginThrottle.failures > 0, LoginThrottle.next_attempt_at.is_not(None)),
    ).values(failures=0, next_attempt_at=None))
    return result.rowcount


async def _prune(session: AsyncSession, now: datetime) -> None:
    """Rows of forgotten failures and long-unused addresses go now and then, so that probing random
    usernames cannot grow the table without end."""
    global _next_prune
    if _next_prune is not None and now < _next_prune:
        return
    _next_prune = now + PRUNE_EVERY
    await session.execute(delete(LoginThrottle).where(
        or_(LoginThrottle.last_failure_at.is_(None), LoginThrottle.last_failure_at < now - FORGIVEN_AFTER),
        or_(LoginThrottle.last_success_at.is_(None), LoginThrottle.last_success_at < now - KNOWN_FOR),
        or_(LoginThrottle.next_attempt_at.is_(None), LoginThrottle.next_attempt_at < now),
    ))
