"""The office's relay: sends the activity-event outbox to central monitoring.

A cycle claims due events with a lease in a short transaction (PostgreSQL: FOR UPDATE SKIP LOCKED, so
several relays share the work; SQLite: the single writer lock, one relay per file), POSTs them to
GUICHET_CENTRAL_URL outside any transaction, then marks them in another short transaction: sent when
central stored them (or already had them), parked with central's reason when central refused them as
invalid, due again after a backoff of their own when central failed on one of them alone, and due at
once when central could not take them: the relay as a whole then probes central at a bounded interval
(exponential with jitter, at most GUICHET_RELAY_PROBE_MAX_SECONDS) with one event, and sends the
backlog at full speed as soon as a probe gets through.
A relay killed anywhere leaves its claimed events to be claimed again when the lease runs out: central
counts a re-sent event as a duplicate, so nothing is lost and nothing is counted twice."""

import asyncio
import functools
import json
import logging
import random
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Row, Text, and_, any_, bindparam, cast, func, or_, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import clock
from app.config import InstanceRole, Settings
from app.context import request_id_var
from app.models import ActivityEvent, Office, RelayStatus, User
from app.models.base import utcnow
from app.security import hash_password, issue_token
from app.upsert import dialect_name, insert_ignore
from app.vocabulary import Role

logger = logging.getLogger("guichet.relay")

EVENTS_PATH = "/api/v1/monitoring/events"
TOKEN_PATH = "/api/v1/auth/token"
MAX_BATCH_BYTES = 900_000  # under central's 1 MiB body limit
MAX_REASON = 1000
IN_FLIGHT = 2  # batches in flight: central checks one while it writes the other; the relay reads and marks meanwhile

_outbox = ActivityEvent.__table__


def backoff(attempts: int, base: float, cap: float) -> float:
    """Exponential, capped, with "equal jitter": at least half the step, so retries neither hammer
    nor all fall on the same instant."""
    step = min(cap, base * 2 ** max(0, attempts - 1))
    return step / 2 + random.uniform(0, step / 2)


# ---- the outbox side -----------------------------------------------------------------------------------


async def claim(session: AsyncSession, *, limit: int, lease: timedelta) -> list[Row]:
    now = utcnow()
    due = (
        select(_outbox.c.id)
        .where(_outbox.c.sent_at.is_(None), _outbox.c.parked_at.is_(None), _outbox.c.next_attempt_at <= now,
               or_(_outbox.c.claimed_until.is_(None), _outbox.c.claimed_until < now))
        .order_by(_outbox.c.next_attempt_at)
        .limit(limit)
    )
    if dialect_name(session) == "postgresql":
        due = due.with_for_update(skip_locked=True)  # other relays skip what this one holds
    claimed = await session.execute(
        update(_outbox)
        .where(_outbox.c.id.in_(due.scalar_subquery()))
        .values(claimed_until=now + lease, attempts=_outbox.c.attempts + 1)
        # The payload as its JSON text: spliced into the body as it is, never decoded and encoded again.
        .returning(_outbox.c.id, _outbox.c.type, _outbox.c.schema_version, _outbox.c.occurred_at, _outbox.c.office_code,
                   cast(_outbox.c.payload, Text).label("payload_json"), _outbox.c.attempts)
    )
    return sorted(claimed.all(), key=lambda e: (e.occurred_at, str(e.id)))


def envelope(event: Row) -> dict[str, Any]:
    return {"id": str(event.id), "type": event.type, "schema_version": event.schema_version,
            "occurred_at": event.occurred_at.isoformat(), "office_code": event.office_code, "payload": event.payload}


@functools.lru_cache(maxsize=256)
def _json_string(value: str) -> str:
    return json.dumps(value)


def envelope_json(event: Row) -> str:
    """A claimed event's envelope as JSON text (the same fields as envelope()), its payload as stored."""
    return (f'{{"id":"{event.id}","type":{_json_string(event.type)},"schema_version":{int(event.schema_version)},'
            f'"occurred_at":"{event.occurred_at.isoformat()}","office_code":{_json_string(event.office_code)},'
            f'"payload":{event.payload_json}}}')


@dataclass
class BatchResult:
    """What became of one attempt's events at central: sent, parked, failed, or left for the next probe."""

    sent: list[Row]
    parked: list[tuple[Row, str]]
    failed: list[Row]  # central failed on these alone: each waits a backoff of its own
    unsent: list[Row] = field(default_factory=list)  # central could not take them: due at the relay's next probe
    error: str | None = None
    reachable: bool = True


async def save_batch_result(session: AsyncSession, office_code: str, outcome: BatchResult, settings: Settings) -> None:
    """Mark the events of one office's attempt, and what the relay did, in one short transaction."""
    now = utcnow()
    for chunk in _chunks([e.id for e in outcome.sent], 1000):
        await session.execute(update(_outbox).where(_among(session, chunk)).values(sent_at=now, claimed_until=None))
    for event, reason in outcome.parked:
        # central's words are stored as text; PostgreSQL refuses U+0000 in text
        await session.execute(update(_outbox).where(_outbox.c.id == event.id)
                              .values(parked_at=now, park_reason=reason.replace("\x00", "")[:MAX_REASON], claimed_until=None))
    for event in outcome.failed:
        delay = backoff(event.attempts, settings.relay_backoff_base_seconds, settings.relay_backoff_max_seconds)
        await session.execute(update(_outbox).where(_outbox.c.id == event.id)
                              .values(claimed_until=None, next_attempt_at=now + timedelta(seconds=delay)))
    # Not the events' fault: they keep their place and go with the first probe that gets through, rather
    # than each waiting out a backoff grown while central was away.
    for chunk in _chunks([e.id for e in outcome.unsent], 1000):
        await session.execute(update(_outbox).where(_among(session, chunk)).values(claimed_until=None))
    # Several relays may record for one office at once (PostgreSQL): insert once, then add atomically.
    await session.execute(insert_ignore(session, RelayStatus, ["office_code"]).values(
        office_code=office_code, events_sent=0, events_parked=0))
    values: dict[str, Any] = {"last_attempt_at": now, "events_sent": RelayStatus.events_sent + len(outcome.sent),
                              "events_parked": RelayStatus.events_parked + len(outcome.parked)}
    if outcome.sent or outcome.parked:
        values["last_success_at"] = now
    if outcome.error:
        values["last_error_at"], values["last_error"] = now, outcome.error.replace("\x00", "")[:MAX_REASON]
    await session.execute(update(RelayStatus).where(RelayStatus.office_code == office_code).values(**values))


def _among(session: AsyncSession, ids: list):
    # PostgreSQL: one array parameter, not a thousand (each bound, typed and sent on its own)
    if dialect_name(session) == "postgresql":
        return _outbox.c.id == any_(bindparam("ids", ids, type_=postgresql.ARRAY(_outbox.c.id.type)))
    return _outbox.c.id.in_(ids)


def _chunks(items: Sequence, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


# ---- tokens --------------------------------------------------------------------------------------------


class RelayNotConfigured(Exception):
    pass


def relay_username(office_code: str) -> str:
    return f"relay.{office_code.lower()}"


async def relay_account(session: AsyncSession, office_code: str, *, new_secret: bool) -> tuple[User, str | None]:
    """The office's relay service account (made if missing); with new_secret, a fresh secret is set, the
    old one and its tokens stop working, and the secret is returned (shown once, never stored)."""
    office = (await session.execute(select(Office).where(Office.code == office_code))).scalar_one_or_none()
    if office is None:
        raise RelayNotConfigured(f"no office {office_code}")
    username = relay_username(office_code)
    user = (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()
    secret = secrets.token_urlsafe(32) if new_secret or user is None else None
    now = utcnow()
    if user is None:
        user = User(username=username, full_name=f"Relay of office {office_code}", password_hash=await hash_password(secret),
                    role=Role.relay, office_id=office.id, tokens_valid_after=now - timedelta(seconds=1))
        session.add(user)
    elif secret is not None:
        user.password_hash = await hash_password(secret)
        user.tokens_valid_after = now
    await session.flush()
    return user, secret if new_secret else None


class Tokens:
    """Bearer tokens for central: client_credentials at central's token endpoint, or, in a standalone
    instance without credentials, issued directly for the office's own relay account (same signing key)."""

    def __init__(self, settings: Settings, client: httpx.AsyncClient, sessionmaker: async_sessionmaker):
        self.settings = settings
        self.client = client
        self.sessionmaker = sessionmaker
        self.cache: dict[str, tuple[str, float]] = {}
        # The lanes share one token: one fetch at a time (one secret hashed at central, one relay account
        # made in a standalone instance), the others wait for it.
        self.fetching = asyncio.Lock()

    def forget(self, office_code: str) -> None:
        self.cache.pop(self._key(office_code), None)

    def _key(self, office_code: str) -> str:
        return "credentials" if self.settings.relay_client_id else office_code

    async def get(self, office_code: str) -> str:
        key = self._key(office_code)
        cached = self.cache.get(key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        async with self.fetching:
            cached = self.cache.get(key)
            if cached and cached[1] > time.monotonic():
                return cached[0]
            return await self._fetch(key, office_code)

    async def _fetch(self, key: str, office_code: str) -> str:
        if self.settings.relay_client_id and self.settings.relay_client_secret:
            # Its own timeout: hashing the secret at a busy central may take longer than half a lease.
            response = await self.client.post(TOKEN_PATH, timeout=max(10.0, self.settings.relay_lease_seconds / 2), data={
                "grant_type": "client_credentials", "client_id": self.settings.relay_client_id,
                "client_secret": self.settings.relay_client_secret.get_secret_value()})
            if response.status_code != 200:
                raise RelayNotConfigured(f"central refused the relay's credentials: HTTP {response.status_code} "
                                         f"{_problem_detail(response)}")
            body = response.json()
            token, lifetime = body["access_token"], int(body["expires_in"])
        elif self.settings.role is InstanceRole.standalone:
            async with self.sessionmaker() as session, session.begin():
                user, _ = await relay_account(session, office_code, new_secret=False)
            token, lifetime = issue_token(self.settings, subject=user.id, role=Role.relay, office=office_code, scheme=None)
        else:
            raise RelayNotConfigured("GUICHET_RELAY_CLIENT_ID and GUICHET_RELAY_CLIENT_SECRET are not set "
                                     "(run `guichet offices credentials` at central)")
        self.cache[key] = (token, time.monotonic() + max(30, lifetime - 60))
        return token


def _problem_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("detail") or body.get("title") or "")[:300]
    except ValueError:
        return response.text[:300]


# ---- the relay -----------------------------------------------------------------------------------------


class Relay:
    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker, *, transport: httpx.AsyncBaseTransport | None = None):
        if not settings.central_url:
            raise RelayNotConfigured("GUICHET_CENTRAL_URL is not set")
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.client = httpx.AsyncClient(base_url=settings.central_url.rstrip("/"), transport=transport,
                                        timeout=httpx.Timeout(settings.relay_lease_seconds / 2, connect=5.0),
                                        event_hooks={"request": [_with_request_id]})
        self.tokens = Tokens(settings, self.client, sessionmaker)
        self.lease = timedelta(seconds=settings.relay_lease_seconds)
        self.last_error: str | None = None

    async def aclose(self) -> None:
        await self.client.aclose()

    async def cycle(self, *, limit: int | None = None) -> tuple[int, bool]:
        """Claim one batch (of `limit` events; default RELAY_BATCH_SIZE), send it, mark it: (events handled,
        whether central could be reached)."""
        async with self.sessionmaker() as session, session.begin():
            events = await claim(session, limit=limit or self.settings.relay_batch_size, lease=self.lease)
        if not events:
            return 0, True
        reachable = True
        by_office: dict[str, list[Row]] = {}
        for event in events:
            by_office.setdefault(event.office_code, []).append(event)
        for office_code, office_events in by_office.items():
            outcome = BatchResult([], [], [])
            for chunk, parts in _by_size(office_events):
                await self._send(office_code, chunk, outcome, parts=parts)
            reachable = reachable and outcome.reachable
            self.last_error = outcome.error or self.last_error
            async with self.sessionmaker() as session, session.begin():
                await save_batch_result(session, office_code, outcome, self.settings)
        return len(events), reachable

    async def _send(self, office_code: str, events: list[Row], outcome: BatchResult, *, parts: list[str] | None = None,
                    retried: bool = False) -> None:
        parts = parts if parts is not None else [envelope_json(e) for e in events]
        try:
            token = await self.tokens.get(office_code)
            response = await self.client.post(
                EVENTS_PATH, content=('{"events":[' + ",".join(parts) + "]}").encode(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        except (httpx.HTTPError, OSError) as exc:
            outcome.unsent += events
            outcome.error, outcome.reachable = f"central unreachable: {type(exc).__name__}: {exc}"[:MAX_REASON], False
            return
        except RelayNotConfigured as exc:
            outcome.unsent += events
            outcome.error, outcome.reachable = str(exc), False
            return
        status = response.status_code
        if status == 200:
            rejected = {r["index"]: r["problem"] for r in response.json().get("rejected", [])}
            for i, event in enumerate(events):
                if i in rejected:
                    outcome.parked.append((event, f"central refused it: {rejected[i]}"))
                else:
                    outcome.sent.append(event)
            return
        if status == 401 and not retried:  # expired or revoked: one fresh token, then give up for now
            self.tokens.forget(office_code)
            await self._send(office_code, events, outcome, parts=parts, retried=True)
            return
        if status in (413, 500) and len(events) > 1:
            # Too big, or something in this batch breaks central: halve it, so that one bad event
            # cannot hold back the ones beside it.
            middle = len(events) // 2
            await self._send(office_code, events[:middle], outcome, parts=parts[:middle])
            await self._send(office_code, events[middle:], outcome, parts=parts[middle:])
            return
        if status == 413:
            outcome.parked.append((events[0], "central refused it: the event alone is over the size limit"))
            return
        outcome.error, outcome.reachable = f"central answered HTTP {status}: {_problem_detail(response)}", False
        if status == 500:  # central broke on this event alone (its batch halved down to it): it waits on its own
            outcome.failed += events
        else:
            # Central down or overloaded (5xx, 429), or the relay misconfigured (401, 403, 404...): not the
            # events' fault, so they wait for the relay, which backs off as a whole.
            outcome.unsent += events

    async def cycles(self, stop: asyncio.Event | None = None) -> tuple[int, bool]:
        """Send until nothing is due, central cannot be reached or `stop` is set, in IN_FLIGHT lanes that
        each claim, send and mark one batch after another (so central always has the next batch while it
        writes one): (events handled, whether central could be reached). The first batch goes alone: were
        central away, a second lane would only take the same events again once the first let them go."""
        handled, reachable = await self._cycle_with_id()
        done = not handled or not reachable

        async def lane() -> None:
            nonlocal handled, reachable, done
            while not done and not (stop is not None and stop.is_set()):
                try:
                    count, ok = await self._cycle_with_id()
                except BaseException:
                    done = True
                    raise
                handled += count
                reachable = reachable and ok
                done = done or not count or not ok

        results = await asyncio.gather(*(lane() for _ in range(IN_FLIGHT)), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return handled, reachable

    async def _cycle_with_id(self, *, limit: int | None = None) -> tuple[int, bool]:
        # One id per cycle: on this relay's log lines and, as X-Request-ID, on central's for the same batch.
        request_id_var.set(f"relay-{secrets.token_hex(8)}")
        return await self.cycle(limit=limit)

    def next_probe(self, failures: int) -> float:
        """Seconds to wait after `failures` cycles in a row that could not reach central: exponential from
        RELAY_BACKOFF_BASE_SECONDS, with jitter, never more than RELAY_PROBE_MAX_SECONDS (10 s): central is
        probed at least that often, so a backlog starts draining at most that long after central is back."""
        return backoff(failures, self.settings.relay_backoff_base_seconds, self.settings.relay_probe_max_seconds)

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                handled, reachable = 0, True
                if failures:
                    # Central was away: one event tells whether it is back, without pushing whole batches
                    # into a dead link (or a proxy's 503) at every probe.
                    handled, reachable = await self._cycle_with_id(limit=1)
                if reachable:
                    more, reachable = await self.cycles(stop)
                    handled += more
            except Exception as exc:  # the database may be down too; never die, keep trying
                logger.exception("relay cycle failed")
                handled, reachable, self.last_error = 0, False, f"relay cycle failed: {type(exc).__name__}"
            if reachable:
                if failures:
                    logger.info("central reached again after %d failed attempts", failures)
                failures = 0
                if handled:
                    continue
                wait = self.settings.relay_poll_seconds
            else:
                failures += 1
                wait = self.next_probe(failures)
                logger.log(logging.WARNING if failures == 1 else logging.INFO,
                           "relay attempt %d failed (%s); next in %.2f s", failures, self.last_error, wait)
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
            except TimeoutError:
                pass

    async def drain(self) -> int:
        """Send everything due now (stops when central cannot be reached)."""
        total = 0
        while True:
            handled, reachable = await self.cycles()
            total += handled
            if not handled or not reachable:
                return total


async def _with_request_id(request: httpx.Request) -> None:
    request_id = request_id_var.get()
    if request_id and "x-request-id" not in request.headers:
        request.headers["X-Request-ID"] = request_id


def _by_size(events: list[Row]) -> list[tuple[list[Row], list[str]]]:
    """The events, with their envelopes' JSON, in bodies of at most 1,000 events and MAX_BATCH_BYTES."""
    parts = [envelope_json(e) for e in events]
    sizes = [len(part) if part.isascii() else len(part.encode()) for part in parts]
    chunks: list[tuple[list[Row], list[str]]] = []
    start, size = 0, 20  # '{"events":[...]}'
    for i, part_size in enumerate(sizes):
        if i > start and (size + part_size + 1 > MAX_BATCH_BYTES or i - start >= 1000):
            chunks.append((events[start:i], parts[start:i]))
            start, size = i, 20
        size += part_size + 1
    if start < len(events):
        chunks.append((events[start:], parts[start:]))
    return chunks


# ---- in the server, and the status an operator sees ---------------------------------------------------


@dataclass
class InProcess:
    relay: Relay
    stop: asyncio.Event
    task: asyncio.Task


def start_in_process(app) -> InProcess | None:
    settings: Settings = app.state.settings
    try:
        relay = Relay(settings, app.state.sessionmaker)
    except RelayNotConfigured as exc:
        logger.warning("in-process relay not started: %s", exc)
        return None
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop), name="guichet-relay")
    logger.info("in-process relay sending to %s", settings.central_url)
    return InProcess(relay, stop, task)


async def stop_in_process(running: InProcess) -> None:
    running.stop.set()
    try:
        await asyncio.wait_for(running.task, timeout=10)
    except TimeoutError:
        running.task.cancel()  # a send in flight is abandoned; its lease runs out and it is sent again
    await running.relay.aclose()


async def status(session: AsyncSession, *, office_code: str | None) -> list[dict[str, Any]]:
    """Backlog, oldest unsent, last success and error, parked count: per office, or the caller's own."""
    waiting = and_(_outbox.c.sent_at.is_(None), _outbox.c.parked_at.is_(None))
    query = (select(_outbox.c.office_code, func.count(), func.min(_outbox.c.occurred_at), func.min(_outbox.c.next_attempt_at))
             .where(waiting).group_by(_outbox.c.office_code))
    parked_query = (select(_outbox.c.office_code, func.count()).where(_outbox.c.sent_at.is_(None), _outbox.c.parked_at.is_not(None))
                    .group_by(_outbox.c.office_code))
    statuses = select(RelayStatus)
    offices = select(Office.code)
    if office_code is not None:
        query = query.where(_outbox.c.office_code == office_code)
        parked_query = parked_query.where(_outbox.c.office_code == office_code)
        statuses = statuses.where(RelayStatus.office_code == office_code)
        offices = offices.where(Office.code == office_code)
    backlog = {code: (n, oldest, next_at) for code, n, oldest, next_at in await session.execute(query)}
    parked = dict((await session.execute(parked_query)).all())
    relayed = {s.office_code: s for s in (await session.execute(statuses)).scalars()}
    codes = sorted(set((await session.execute(offices)).scalars()) | set(backlog) | set(parked) | set(relayed))
    out = []
    for code in codes:
        n, oldest, next_at = backlog.get(code, (0, None, None))
        s = relayed.get(code)
        out.append({
            "office_code": code, "backlog": n, "oldest_unsent_at": clock.aware(oldest), "next_attempt_at": clock.aware(next_at),
            "last_attempt_at": s.last_attempt_at if s else None, "last_success_at": s.last_success_at if s else None,
            "last_error_at": s.last_error_at if s else None, "last_error": s.last_error if s else None,
            "events_sent": s.events_sent if s else 0, "parked": parked.get(code, 0),
        })
    return out


async def parked_events(session: AsyncSession, *, office_code: str | None, limit: int, offset: int) -> tuple[list[dict], int]:
    condition = [_outbox.c.parked_at.is_not(None), _outbox.c.sent_at.is_(None)]
    if office_code is not None:
        condition.append(_outbox.c.office_code == office_code)
    total = (await session.execute(select(func.count()).select_from(_outbox).where(*condition))).scalar_one()
    rows = await session.execute(
        select(_outbox.c.id, _outbox.c.type, _outbox.c.schema_version, _outbox.c.occurred_at, _outbox.c.office_code,
               _outbox.c.parked_at, _outbox.c.park_reason, _outbox.c.attempts)
        .where(*condition).order_by(_outbox.c.parked_at, _outbox.c.id).limit(limit).offset(offset)
    )
    return [dict(r._mapping, id=str(r.id)) for r in rows], total


async def replay(session: AsyncSession, *, office_code: str | None, since: datetime | None, until: datetime | None,
                 parked: bool) -> int:
    """Make events due again: parked ones after central was fixed, or sent ones (central counts the
    re-sent ones it already has as duplicates, e.g. after central was restored from a backup)."""
    conditions = [_outbox.c.parked_at.is_not(None)] if parked else [_outbox.c.sent_at.is_not(None)]
    if office_code:
        conditions.append(_outbox.c.office_code == office_code)
    if since:
        conditions.append(_outbox.c.occurred_at >= since)
    if until:
        conditions.append(_outbox.c.occurred_at < until)
    result = await session.execute(
        update(_outbox).where(*conditions).values(sent_at=None, parked_at=None, park_reason=None, claimed_until=None,
                                                  next_attempt_at=utcnow(), attempts=0)
    )
    return result.rowcount
