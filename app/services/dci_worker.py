"""The DCI worker: delivers callbacks and notifications, outside any request.

Each pass (1) turns new activity events into `notify` messages for the subscriptions that follow the
household (the activity outbox says what changed; its household pseudonyms are resolved against the
households that changed since the subscription's cursor), then (2) posts every due delivery, signed
now, to its client's callback URL; a failure is retried with exponential back-off up to
GUICHET_DCI_DELIVERY_MAX_ATTEMPTS, then given up (`failed_at`). A delivery is claimed by moving its
next attempt forward, so that two workers never send the same one at once. The in-process worker wakes
as soon as a request has left a callback, and polls otherwise; on an instance without DCI clients it
waits, without polling, until one is made."""

import asyncio
import logging
import random
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import and_, delete, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.config import Settings
from app.dci import signing
from app.dci.envelope import ItemRejected, callback_header, new_id
from app.dci.query import compile_query
from app.models import ActivityEvent, Case, DciClient, DciDelivery, DciMessage, DciSubscription, DciTransaction, Household, Person
from app.models.base import utcnow
from app.services import activity, dci_access
from app.services.dci_provider import VERSION, audit_read, enqueue, find

logger = logging.getLogger("guichet.dci")

POLL_SECONDS = 0.5
RETRY_SECONDS = 5.0
STARTUP_DELAY_SECONDS = 2.0
LEASE = timedelta(seconds=60)
BACKOFF_MAX_SECONDS = 300.0
BATCH = 20
EVENTS_PER_PASS = 2000
# Message ids are remembered a week (a replay older than that is refused by its timestamp in practice);
# answers are kept a day for txn/status; delivered callbacks a day.
KEEP_MESSAGE_IDS = timedelta(days=7)
KEEP_ANSWERS = timedelta(days=1)
PRUNE_EVERY = timedelta(minutes=10)


def event_kinds(event_type: str, payload: dict[str, Any], registered: set[str]) -> list[str]:
    """The subscription event types an activity event is (EVENT_TYPES of app.services.dci_provider)."""
    household = payload.get("household")
    if event_type == "person.registered":
        return [] if household in registered else ["NewHouseHoldMember"]
    if event_type == "person.updated":
        return ["MemberUpdated"]
    if event_type == "household.updated":
        fields = set(payload.get("fields") or [])
        return (["HouseholdUpdated"] + (["HouseholdMoved"] if "village_code" in fields else [])
                + (["IDPoorLevelChanged"] if "idpoor" in fields else []))
    if event_type == "case.closed" and payload.get("outcome") == "deceased":
        return ["Death"]
    return []


WATCHED = ("person.registered", "person.updated", "household.updated", "case.closed", "household.registered")


def backoff(attempts: int, base: float) -> float:
    return min(BACKOFF_MAX_SECONDS, base * 2 ** (attempts - 1)) * random.uniform(0.8, 1.2)


class Worker:
    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker, http: httpx.AsyncClient | None = None):
        self.settings = settings
        self.sessionmaker = sessionmaker
        # Made at the first callback, not here: a client's TLS context (the CA bundle, parsed) costs every
        # worker ~2 MiB of memory (bench/footprint.py), and most offices never have a DCI subscriber.
        self._http = http
        self.wake = asyncio.Event()
        self.backoff_base = settings.dci_backoff_base_seconds
        self.in_use = False
        self._next_prune: datetime | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(connect=3, read=10, write=5, pool=2))
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def run(self, stop: asyncio.Event) -> None:
        """Until stopped: a pass, then a wait. An instance with no DCI client does not touch the database
        again until a client is made (the admin route wakes it)."""
        # A moment after start-up (or at the first wake): a server starting has better things to do.
        await self._wait(stop, STARTUP_DELAY_SECONDS)
        while not stop.is_set():
            timeout: float | None = POLL_SECONDS
            try:
                self.in_use = self.in_use or await self._has_clients()
                if self.in_use:
                    await self.run_once()
                else:
                    timeout = None
            except Exception:  # the database may be away: keep trying, never die
                logger.warning("dci worker pass failed", exc_info=True)
                timeout = RETRY_SECONDS
            await self._wait(stop, timeout)

    async def _wait(self, stop: asyncio.Event, timeout: float | None) -> None:
        """Until stopped, woken, or the timeout (None: no timeout)."""
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        self.wake.clear()

    async def _has_clients(self) -> bool:
        async with self.sessionmaker() as session:
            return (await session.execute(select(DciClient.id).limit(1))).first() is not None

    async def run_once(self) -> int:
        notified = await self.notify_changes()
        delivered = await self.deliver_due()
        await self._prune()
        return notified + delivered

    # ---- deliveries ----

    async def _claim(self) -> list[DciDelivery]:
        now = utcnow()
        async with self.sessionmaker() as session, session.begin():
            due = (await session.execute(
                select(DciDelivery.id, DciDelivery.next_attempt_at)
                .where(DciDelivery.delivered_at.is_(None), DciDelivery.failed_at.is_(None), DciDelivery.next_attempt_at <= now)
                .order_by(DciDelivery.next_attempt_at).limit(BATCH))).all()
            claimed = []
            for delivery_id, attempt_at in due:
                moved = await session.execute(update(DciDelivery).where(
                    DciDelivery.id == delivery_id, DciDelivery.next_attempt_at == attempt_at).values(next_attempt_at=now + LEASE))
                if moved.rowcount == 1:
                    claimed.append(delivery_id)
            if not claimed:
                return []
            rows = (await session.execute(select(DciDelivery).where(DciDelivery.id.in_(claimed)))).scalars().all()
            session.expunge_all()
            return list(rows)

    async def deliver_due(self) -> int:
        deliveries = await self._claim()
        if not deliveries:
            return 0
        outcomes = await asyncio.gather(*(self._send(d) for d in deliveries))
        async with self.sessionmaker() as session, session.begin():
            for delivery, error in zip(deliveries, outcomes):
                attempts = delivery.attempts + 1
                if error is None:
                    values = {"delivered_at": utcnow(), "attempts": attempts, "last_error": None}
                elif attempts >= self.settings.dci_delivery_max_attempts:
                    values = {"failed_at": utcnow(), "attempts": attempts, "last_error": error[:300]}
                    logger.warning("dci callback to %s given up after %d attempts: %s", delivery.url, attempts, error)
                else:
                    values = {"next_attempt_at": utcnow() + timedelta(seconds=backoff(attempts, self.backoff_base)), "attempts": attempts,
                              "last_error": error[:300]}
                await session.execute(update(DciDelivery).where(DciDelivery.id == delivery.id).values(**values))
        return sum(1 for error in outcomes if error is None)

    async def _send(self, delivery: DciDelivery) -> str | None:
        """None when the partner took it; else why not (retried)."""
        body = signing.envelope(self.settings, delivery.header, delivery.message)
        try:
            response = await self.http.post(delivery.url, json=body)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: the partner could not be reached"
        if response.status_code not in (200, 201, 202, 204):
            return f"HTTP {response.status_code}"
        try:
            ack = response.json().get("message", {}) if response.content else {}
        except ValueError:
            ack = {}
        if isinstance(ack, dict) and ack.get("ack_status") in ("NACK", "ERR"):
            return f"{ack['ack_status']}: {str(ack.get('error'))[:200]}"
        return None

    # ---- notifications ----

    async def notify_changes(self) -> int:
        async with self.sessionmaker() as session, session.begin():
            subscriptions = (await session.execute(select(DciSubscription).where(DciSubscription.active))).scalars().all()
            if not subscriptions:
                return 0
            since = min(s.events_after for s in subscriptions)
            events = (await session.execute(
                select(ActivityEvent.type, ActivityEvent.occurred_at, ActivityEvent.payload)
                .where(ActivityEvent.occurred_at > since, ActivityEvent.type.in_(WATCHED))
                .order_by(ActivityEvent.occurred_at).limit(EVENTS_PER_PASS))).all()
            if not events:
                return 0
            until = events[-1].occurred_at
            households = await self._resolve(session, since, {e.payload.get("household") for e in events})
            registered = {e.payload.get("household") for e in events if e.type == "household.registered"}
            clients = {c.id: c for c in (await session.execute(
                select(DciClient).where(DciClient.id.in_({s.client_id for s in subscriptions})))).scalars()}
            sent = 0
            for subscription in subscriptions:
                client = clients[subscription.client_id]
                changes: dict[uuid.UUID, list[tuple[str, datetime]]] = {}
                for event in events:
                    household_id = households.get(event.payload.get("household"))
                    if event.occurred_at <= subscription.events_after or household_id is None:
                        continue
                    for kind in event_kinds(event.type, event.payload, registered):
                        if kind in subscription.event_types:
                            changes.setdefault(household_id, []).append((kind, event.occurred_at))
                subscription.events_after = until
                if changes and client.is_active and client.callback_url:
                    sent += await self._notify(session, client, subscription, changes)
            return sent

    async def _resolve(self, session, since: datetime, pseudonyms: set[str]) -> dict[str, uuid.UUID]:
        """Household pseudonyms of the events -> household ids, among the households that changed since."""
        changed = set((await session.execute(select(Household.id).where(Household.updated_at > since))).scalars())
        changed |= set((await session.execute(select(Person.household_id).where(Person.updated_at > since))).scalars())
        changed |= set((await session.execute(select(Case.household_id).where(Case.updated_at > since))).scalars())
        known = {activity.pseudonym("household", household_id): household_id for household_id in changed}
        return {p: known[p] for p in pseudonyms if p in known}

    async def _notify(self, session, client: DciClient, subscription: DciSubscription,
                      changes: dict[uuid.UUID, list[tuple[str, datetime]]]) -> int:
        offices = await dci_access.office_ids(session, client.offices)
        entity = subscription.record_type
        try:
            condition = compile_query(subscription.filter_type, subscription.filter, entity, frozenset(client.fields))
        except ItemRejected:  # the client's scope narrowed since it subscribed
            return 0
        owner = Household.id if entity == "Group" else Person.household_id
        ids = list(changes)
        events = []
        for start in range(0, len(ids), 100):
            chunk = ids[start:start + 100]
            found, _, record_ids, office_ids = await find(
                session, client, offices, entity=entity, condition=and_(owner.in_(chunk), condition),
                order=[Household.id] if entity == "Group" else [Person.household_id, Person.id], page_size=1000,
                page_number=1, locale=subscription.locale)
            if not found:
                continue
            audit_read(session, client, entity_type="household" if entity == "Group" else "person", ids=record_ids,
                       office_ids=office_ids, subscription=subscription.code)
            household_of = await self._households_of(session, entity, record_ids)
            for record, record_id in zip(found, record_ids):
                for kind, at in changes.get(household_of[record_id], []):
                    events.append({"reference_id": new_id(), "timestamp": at.isoformat(timespec="seconds").replace("+00:00", "Z"),
                                   "data": {"version": VERSION, "reg_type": "SR", "reg_event_type": kind,
                                            "reg_record_type": entity, "reg_records": record, "subscription_code": subscription.code},
                                   "locale": subscription.locale})
        if not events:
            return 0
        header = callback_header("notify", "succ", sender_id=self.settings.dci_sender_id, receiver_id=client.client_id,
                                 total_count=len(events), completed_count=len(events))
        enqueue(session, client, client.callback_url.rstrip("/") + "/registry/notify", header,
                {"transaction_id": new_id(), "notify_event": events})
        return 1

    @staticmethod
    async def _households_of(session, entity: str, record_ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        if entity == "Group":
            return {i: i for i in record_ids}
        rows = await session.execute(select(Person.id, Person.household_id).where(Person.id.in_(record_ids)))
        return dict(rows.all())

    async def _prune(self) -> None:
        now = utcnow()
        if self._next_prune is not None and now < self._next_prune:
            return
        self._next_prune = now + PRUNE_EVERY
        async with self.sessionmaker() as session, session.begin():
            await session.execute(delete(DciMessage).where(DciMessage.received_at < now - KEEP_MESSAGE_IDS))
            await session.execute(delete(DciTransaction).where(DciTransaction.created_at < now - KEEP_ANSWERS))
            await session.execute(delete(DciDelivery).where(DciDelivery.delivered_at < now - KEEP_ANSWERS))



class InProcess:
    def __init__(self, worker: Worker, stop: asyncio.Event, task: asyncio.Task):
        self.worker, self.stop, self.task = worker, stop, task


def start_in_process(app) -> InProcess:
    worker = Worker(app.state.settings, app.state.sessionmaker)
    app.state.dci_worker = worker
    stop = asyncio.Event()
    return InProcess(worker, stop, asyncio.create_task(worker.run(stop), name="guichet-dci"))


async def stop_in_process(running: InProcess) -> None:
    running.stop.set()
    try:
        await asyncio.wait_for(running.task, timeout=10)
    except TimeoutError:
        running.task.cancel()  # a send in flight is abandoned; its claim runs out and it is sent again
    await running.worker.aclose()


def wake(app) -> None:
    """Called once a request that left a callback has committed: deliver it now rather than at the next poll."""
    worker = getattr(app.state, "dci_worker", None)
    if worker is not None:
        worker.wake.set()
