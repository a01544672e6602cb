"""Prometheus metrics, served at /metrics (docs/operations.md says who may read them).

Labels are route templates, scheme codes, office codes, statuses and exception class names: bounded
sets, and nothing personal (never a URL, whose query may hold a name typed into a search).

Several workers (`guichet serve --workers N`) share their counters through prometheus_client's
multiprocess mode: PROMETHEUS_MULTIPROC_DIR names an empty directory where each worker writes its
values; `guichet serve` makes one under GUICHET_VAR_DIR when it starts more than one worker and the
variable is unset. Facts of the database (outbox backlog, relay times) are read at each scrape by the
worker that answers it, so they never go stale."""

import asyncio
import logging
import os
import re
import time
import weakref
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from app import clock

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
SCRAPE_QUERY_SECONDS = 2.0  # a scrape must answer even when the database does not

logger = logging.getLogger("guichet.metrics")

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Latency buckets: a search answers in milliseconds, a screening with partners in up to a few seconds.
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_PARTNER_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)

HTTP_REQUESTS = Counter("guichet_http_requests_total", "Requests answered, by method, route template and status.",
                        ["method", "route", "status"])
HTTP_DURATION = Histogram("guichet_http_request_duration_seconds",
                          "Time to answer (to the end of the response), by method, route template and status.",
                          ["method", "route", "status"], buckets=_REQUEST_BUCKETS)
DB_UNAVAILABLE = Counter("guichet_database_unavailable_total",
                         "Requests answered 503 because the database could not be used, by exception class.",
                         ["error"])
POOL_SIZE = Gauge("guichet_db_pool_size", "Connections the pool keeps (per worker, summed).",
                  multiprocess_mode="livesum")
POOL_MAX = Gauge("guichet_db_pool_max", "Connections the pool may open, overflow included (per worker, summed).",
                 multiprocess_mode="livesum")
POOL_CHECKED_OUT = Gauge("guichet_db_pool_checked_out", "Connections in use by requests right now.",
                         multiprocess_mode="livesum")
PARTNER_DURATION = Histogram("guichet_scheme_call_duration_seconds",
                             "Calls to partner schemes over HTTP (retries included), by scheme and outcome.",
                             ["scheme", "outcome"], buckets=_PARTNER_BUCKETS)
PARTNER_ERRORS = Counter("guichet_scheme_call_errors_total",
                         "Failed partner calls, by scheme and reason (timeout, connect, http_503, circuit_open...).",
                         ["scheme", "reason"])
CIRCUIT_STATE = Gauge("guichet_scheme_circuit_state",
                      "Circuit breaker of a partner scheme: 0 closed, 1 half-open, 2 open (the worst worker).",
                      ["scheme"], multiprocess_mode="livemax")
_CIRCUIT_VALUES = {"closed": 0, "half_open": 1, "open": 2}
_REASON = re.compile(r"^[a-z0-9_]{1,40}$")
# Per engine (one in a server; several in the tests): the (size, max) it added, and its connections in use.
_pool_gauges: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_in_use: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


# ---- recording (called from the middleware, the error handlers, the engine and the HTTP adapter) ---------


_request_children: dict[tuple[str, str, int], tuple] = {}  # bounded: methods x route templates x statuses


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    key = (method if method in _METHODS else "OTHER", route, status)
    children = _request_children.get(key)
    if children is None:
        labels = (key[0], route, str(status))
        children = _request_children[key] = (HTTP_REQUESTS.labels(*labels), HTTP_DURATION.labels(*labels))
    children[0].inc()
    children[1].observe(seconds)


def database_unavailable(exc: BaseException) -> None:
    DB_UNAVAILABLE.labels(type(exc).__name__).inc()


def partner_call(scheme: str, seconds: float | None, outcome: str, reason: str | None, circuit: str) -> None:
    """One partner call's end (seconds is None when the circuit refused it without calling)."""
    if seconds is not None:
        PARTNER_DURATION.labels(scheme, outcome).observe(seconds)
    if outcome != "ok":
        PARTNER_ERRORS.labels(scheme, reason if reason and _REASON.match(reason) else "other").inc()
    CIRCUIT_STATE.labels(scheme).set(_CIRCUIT_VALUES.get(circuit, 2))


def instrument_engine(engine) -> None:
    """Pool gauges kept up to date by the pool's own events. The count in use is read from the pool
    (not counted up and down): a checkout that fails to connect still fires a checkin."""
    from sqlalchemy import event

    sync_engine = engine.sync_engine
    pool = sync_engine.pool
    size = pool.size() if hasattr(pool, "size") else 1
    overflow = max(0, getattr(pool, "_max_overflow", 0))
    POOL_SIZE.inc(size)
    POOL_MAX.inc(size + overflow)
    _pool_gauges[sync_engine] = (size, size + overflow)

    def in_use(still_counted: int):
        def update(*_args) -> None:
            current = sync_engine.pool  # a new pool after dispose(), with the same listeners
            if hasattr(current, "checkedout"):
                _in_use[sync_engine] = max(0, current.checkedout() - still_counted)
                POOL_CHECKED_OUT.set(sum(_in_use.values()))
        return update

    event.listen(pool, "checkout", in_use(0))
    event.listen(pool, "checkin", in_use(1))  # fired before the connection goes back


def connections_in_use(engine) -> int:
    """This engine's share of `guichet_db_pool_checked_out` (a process may hold several engines)."""
    return _in_use.get(engine.sync_engine, 0)


def release_engine(engine) -> None:
    """The engine is disposed (the app stops): its pool no longer counts."""
    size, maximum = _pool_gauges.pop(engine.sync_engine, (0, 0))
    POOL_SIZE.dec(size)
    POOL_MAX.dec(maximum)
    _in_use.pop(engine.sync_engine, None)
    POOL_CHECKED_OUT.set(sum(_in_use.values()))


# ---- several workers --------------------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_multiprocess_dir(workers: int, var_dir: Path) -> str | None:
    """Before the workers start: with more than one, the directory they share (made under var_dir when
    PROMETHEUS_MULTIPROC_DIR is unset), emptied so that a previous run's counts do not add up."""
    path = multiprocess_dir()
    if workers <= 1 and path is None:
        return None
    if path is None:
        path = str((var_dir / "prometheus").resolve())
        os.environ[MULTIPROC_ENV] = path
    Path(path).mkdir(parents=True, exist_ok=True)
    for entry in Path(path).glob("*.db"):
        entry.unlink()
    return path


def forget_dead_workers() -> None:
    """A worker that died without saying so leaves its live gauges behind; drop those of gone processes."""
    path = multiprocess_dir()
    if path is None:
        return
    pids = set()
    for entry in Path(path).glob("gauge_live*_*.db"):
        pid = entry.stem.rsplit("_", 1)[-1]
        if pid.isdigit():
            pids.add(int(pid))
    for pid in pids:
        if not Path(f"/proc/{pid}").exists() and pid != os.getpid():
            multiprocess.mark_process_dead(pid, path)


def worker_stopped() -> None:
    path = multiprocess_dir()
    if path is not None:
        multiprocess.mark_process_dead(os.getpid(), path)


# ---- the scrape -------------------------------------------------------------------------------------------


class _Snapshot:
    """Metric families computed for one scrape (the database's facts and this worker's circuits)."""

    def __init__(self, families: list):
        self.families = families

    def collect(self):
        return iter(self.families)


async def _outbox_families(sessionmaker, relay_status) -> list:
    now = datetime.now(UTC)
    up = GaugeMetricFamily("guichet_database_up", "1 when the scrape's database query answered, else 0.")
    backlog = GaugeMetricFamily("guichet_outbox_backlog", "Activity events waiting to be relayed to central.",
                                labels=["office"])
    oldest = GaugeMetricFamily("guichet_outbox_oldest_unsent_age_seconds",
                               "Age of the oldest event waiting to be relayed (0 when none waits).", labels=["office"])
    parked = GaugeMetricFamily("guichet_outbox_parked", "Events central refused as invalid, parked for an operator.",
                               labels=["office"])
    sent = GaugeMetricFamily("guichet_relay_events_sent", "Events relayed to central since the office began.",
                             labels=["office"])
    last_success = GaugeMetricFamily("guichet_relay_last_success_timestamp_seconds",
                                     "When central last took a batch (Unix time; absent before the first).",
                                     labels=["office"])
    last_error = GaugeMetricFamily("guichet_relay_last_error_timestamp_seconds",
                                   "When the relay last failed (Unix time; absent before the first failure).",
                                   labels=["office"])
    try:
        async with asyncio.timeout(SCRAPE_QUERY_SECONDS):
            async with sessionmaker() as session:
                rows = await relay_status(session, office_code=None)
    except Exception as exc:  # the database is down: say so, still answer the scrape
        logger.warning("metrics: outbox query failed: %s", type(exc).__name__)
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    for row in rows:
        office = row["office_code"]
        backlog.add_metric([office], row["backlog"])
        age = (now - row["oldest_unsent_at"]).total_seconds() if row["oldest_unsent_at"] else 0.0
        oldest.add_metric([office], max(0.0, age))
        parked.add_metric([office], row["parked"])
        sent.add_metric([office], row["events_sent"])
        for family, key in ((last_success, "last_success_at"), (last_error, "last_error_at")):
            if row[key] is not None:
                family.add_metric([office], clock.aware(row[key]).timestamp())
    return [up, backlog, oldest, parked, sent, last_success, last_error]


def _refresh_circuits(schemes) -> None:
    for adapter in schemes or ():
        breaker = getattr(adapter, "breaker", None)
        if breaker is not None:
            CIRCUIT_STATE.labels(adapter.metadata.code).set(_CIRCUIT_VALUES.get(breaker.state, 2))


async def exposition(app, *, relay_status) -> bytes:
    """The text exposition: every worker's counters, plus what this scrape read from the database.
    `relay_status` is `app.services.relay.status`, handed in by the route: this module sits below the
    services (app.errors counts through it), so it imports none of them."""
    settings = app.state.settings
    _refresh_circuits(getattr(app.state, "schemes", None))
    path = multiprocess_dir()
    if path is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path)
    else:
        registry = REGISTRY
    started = time.perf_counter()
    families = []
    info = GaugeMetricFamily("guichet_info", "This instance: version and role.", labels=["version", "role"])
    info.add_metric([app.version, settings.role.value], 1)
    families.append(info)
    if settings.serves_office:
        families += await _outbox_families(app.state.sessionmaker, relay_status)
    took = GaugeMetricFamily("guichet_scrape_query_seconds", "Time this scrape spent reading the database.")
    took.add_metric([], time.perf_counter() - started)
    families.append(took)
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_Snapshot(families))
    return generate_latest(registry) + generate_latest(scrape)
