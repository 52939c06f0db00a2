"""Prometheus metrics (prometheus-client).

Two kinds:
- **Counters and gauges kept by the processes**: requests (django-prometheus's
  middleware), operations decided by reason code, webhook signature failures, events
  published by the relay, events dispatched, events applied by the consumers and their
  lag. gunicorn's workers share them through PROMETHEUS_MULTIPROC_DIR (gunicorn.conf.py
  makes one when it is not set); the relay, the dispatcher and each consumer serve their
  own at `--metrics-port` (METRICS_PORT).
- **State read from the database when scraped** (`state_collector`): outstanding balance
  per currency, outbox backlog and the age of the oldest unsent event, dead letters,
  billing runs and their duration, payments by status, heartbeats. Each context
  registers its own queries (`register_state`), the kernel knows none of their tables.

`/metrics` on the web process serves both, to a caller showing METRICS_TOKEN as a bearer
token (or to anyone when METRICS_ALLOW_UNAUTHENTICATED=1, where the network protects it).
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import connection
from django.http import HttpResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, multiprocess, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import REGISTRY, Collector

logger = logging.getLogger(__name__)

# --- kept by the processes -------------------------------------------------------------
RELAY_PUBLISHED = Counter("boissipay_relay_published", "Events the relay published to Kafka.")
RELAY_FAILURES = Counter("boissipay_relay_failures", "Relay publishing or outage failures.", ["kind"])
DISPATCHED = Counter("boissipay_dispatcher_dispatched", "Events the dispatcher fed to in-process handlers.")
DISPATCH_DEAD_LETTERS = Counter("boissipay_dispatcher_dead_lettered", "Events the dispatcher set aside.")
CONSUMER_APPLIED = Counter("boissipay_consumer_applied", "Events a context's consumer applied.", ["context"])
CONSUMER_DEAD_LETTERS = Counter("boissipay_consumer_dead_lettered", "Events a consumer set aside.", ["context"])
CONSUMER_BATCHES_CUT = Counter(
    "boissipay_consumer_batches_cut",
    "Polls whose records took longer than the consumer's time budget: the rest was fetched again.",
    ["context"],
)
CONSUMER_LAG = Gauge(
    "boissipay_consumer_lag",
    "Messages behind the end of the partition, per context and partition.",
    ["context", "topic", "partition"],
    multiprocess_mode="max",
)


# --- read from the database when scraped ----------------------------------------------
StateQuery = Callable[[], Iterable[Metric]]
_state_queries: list[StateQuery] = []


def register_state(query: StateQuery) -> StateQuery:
    """Register a function yielding metric families read from the database at scrape
    time (each context registers its own from its AppConfig.ready)."""
    if query not in _state_queries:
        _state_queries.append(query)
    return query


class StateCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        for query in _state_queries:
            try:
                yield from query()
            except Exception as exc:  # one failing query must not hide the others
                logger.warning("metrics: %s failed (%r)", query.__name__, exc)


def gauge(name: str, documentation: str, labels: list[str], rows: Iterable[tuple]) -> GaugeMetricFamily:
    """A gauge family from rows of (label values..., value)."""
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for *values, value in rows:
        family.add_metric([str(v) for v in values], float(value or 0))
    return family


def rows(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@register_state
def event_backbone() -> Iterable[Metric]:
    """The outbox's backlogs (to Kafka, to the in-process handlers), dead letters, and
    the long-running processes' heartbeats."""
    [(unpublished, oldest_unpublished)] = rows(
        "SELECT count(*), coalesce(extract(epoch FROM now() - min(occurred_at)), 0) FROM boissipay_outboxevent "
        "WHERE published_at IS NULL AND dead_lettered_at IS NULL"
    )
    [(undispatched, oldest_undispatched)] = rows(
        "SELECT count(*), coalesce(extract(epoch FROM now() - min(occurred_at)), 0) FROM boissipay_outboxevent "
        "WHERE dispatched_at IS NULL"
    )
    yield gauge("boissipay_outbox_backlog", "Events not yet sent, per destination.", ["to"], [
        ("kafka", unpublished),
        ("inprocess", undispatched),
    ])  # fmt: skip
    yield gauge(
        "boissipay_outbox_oldest_unsent_age_seconds",
        "Age of the oldest event not yet sent, per destination.",
        ["to"],
        [("kafka", oldest_unpublished), ("inprocess", oldest_undispatched)],
    )
    dead = rows(
        "SELECT source, count(*) FROM boissipay_deadletter WHERE replayed_at IS NULL AND resolved_at IS NULL "
        "GROUP BY source "
        "UNION ALL SELECT 'relay', count(*) FROM boissipay_outboxevent WHERE dead_lettered_at IS NOT NULL"
    )
    yield gauge("boissipay_dead_letters", "Events set aside, not replayed, per source.", ["source"], dead)
    yield gauge(
        "boissipay_heartbeat_age_seconds",
        "Seconds since each long-running process last beat.",
        ["kind", "name"],
        rows("SELECT kind, name, extract(epoch FROM now() - beat_at) FROM boissipay_heartbeat"),
    )


def scrape() -> bytes:
    """The exposition text: the processes' metrics (all gunicorn workers' when they share
    PROMETHEUS_MULTIPROC_DIR), then the database state."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)
    else:
        processes = REGISTRY
    state = CollectorRegistry()
    state.register(StateCollector())
    return generate_latest(processes) + generate_latest(state)


def metrics_view(request):
    """GET /metrics, for Prometheus. A bearer token (METRICS_TOKEN), else closed unless
    METRICS_ALLOW_UNAUTHENTICATED=1 (network-protected deployments, local runs)."""
    from boissipay.api.errors import problem_response

    token = settings.METRICS_TOKEN
    if token:
        offered = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(offered.encode(), token.encode()):
            response = problem_response(401, "not_authenticated", "Metrics need the bearer token METRICS_TOKEN.")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    elif not settings.METRICS_ALLOW_UNAUTHENTICATED:
        return problem_response(
            403, "metrics_closed", "Metrics are closed: set METRICS_TOKEN (or METRICS_ALLOW_UNAUTHENTICATED=1)."
        )
    return HttpResponse(scrape(), content_type=CONTENT_TYPE_LATEST)


def serve_process_metrics(port: int | None) -> None:
    """Serve this process's own metrics (relay, dispatcher, consumer) on `port`
    (METRICS_PORT when None; 0: not served), at METRICS_ADDRESS."""
    port = int(os.environ.get("METRICS_PORT") or 0) if port is None else port
    if port:
        start_http_server(port, addr=os.environ.get("METRICS_ADDRESS", "127.0.0.1"))
        logger.info("metrics served on port %d", port)
