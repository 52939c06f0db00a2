"""The event dispatcher: feeds the contexts whose EVENT_FEED is "inprocess" from the
outbox, after commit, in batches, in a process of its own (`manage.py dispatch_events`).

A client's request only commits its own change and its event (ARCHITECTURE, "How an
event travels"); what other contexts do in reaction happens here, after the response:
many events per transaction, each handler given a whole run of events at once, each
event applied at most once per handler (the inbox, as for Kafka consumers).

- Order: events are taken in outbox position order, by one dispatcher at a time (a
  PostgreSQL advisory lock: a second dispatcher stands by, ready to take over). A batch
  is cut into runs of consecutive events that go to the same handlers, so a handler
  never sees an event before an earlier one that another handler of its context needed.
- Failures: a handler that fails on a run is retried event by event, each in its own
  savepoint, so one bad event does not hold back the others. The bad event's row waits
  (`dispatch_after`, backing off) and is retried; after EVENT_HANDLER_MAX_ATTEMPTS the
  failing handler's copy is dead-lettered for staff to replay. A fault of the database
  itself rolls the batch back, whole, and the dispatcher backs off and tries again.
- Latency: idle, the dispatcher looks for new events every EVENT_DISPATCHER POLL_SECONDS
  (50 ms by default), so a contract change reaches billing's decisions within about that
  (measured by benchmarks/operations.py: p99 of suspend-to-first-rejection)."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from boissipay import bus, metrics
from boissipay.events import EventMessage
from boissipay.heartbeat import Heartbeat

logger = logging.getLogger(__name__)

DISPATCH_LOCK_ID = 7_206_104_402  # pg advisory lock: one dispatcher feeds at a time

# Walks the partial index of undispatched rows, in position order. A row backing off
# after a handler failed waits for its `dispatch_after`.
CLAIM_SQL = """
SELECT position, id, topic, aggregate_id, event_type, schema_version, payload, occurred_at, dispatch_attempts,
       request_id
FROM boissipay_outboxevent
WHERE dispatched_at IS NULL AND (dispatch_after IS NULL OR dispatch_after <= now())
ORDER BY position
LIMIT %s
"""


@dataclass
class DispatchStats:
    dispatched: int = 0
    retried: int = 0
    dead_lettered: int = 0
    batches: int = 0


@dataclass(frozen=True)
class _Row:
    position: int
    attempts: int
    message: EventMessage


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with jitter for an event a handler failed on, capped at 60 s."""
    return random.uniform(0.5, 1.0) * min(60.0, 2.0**attempts)


class EventDispatcher:
    def __init__(self, *, batch_size: int | None = None, max_attempts: int | None = None):
        config = settings.EVENT_DISPATCHER
        self.batch_size = batch_size or config["BATCH_SIZE"]
        self.poll_seconds = config["POLL_SECONDS"]
        self.max_attempts = max_attempts or settings.EVENT_HANDLER_MAX_ATTEMPTS
        self.stats = DispatchStats()

    def dispatch_batch(self) -> int | None:
        """Deliver the next batch of due events to their in-process handlers, in one
        transaction. Returns how many outbox rows it took, or None when another
        dispatcher holds the lock."""
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [DISPATCH_LOCK_ID])
            if not cursor.fetchone()[0]:
                return None
            cursor.execute(CLAIM_SQL, [self.batch_size])
            rows = [_row(*values) for values in cursor.fetchall()]
            if not rows:
                return 0
            failures: dict[int, tuple[str, BaseException]] = {}
            for handlers, run in _runs(rows):
                for handler in handlers:
                    failures.update(self._deliver_run(handler, run))
            done = [row.position for row in rows if row.position not in failures]
            retried = []
            for row in rows:
                if row.position not in failures:
                    continue
                handler_name, error = failures[row.position]
                attempts = row.attempts + 1
                if attempts >= self.max_attempts:
                    logger.error(
                        "handler %s failed %d times on %s: dead-lettered", handler_name, attempts, row.message.id
                    )
                    bus.dead_letter(handler_name, row.message, error=repr(error), attempts=attempts)
                    self.stats.dead_lettered += 1
                    metrics.DISPATCH_DEAD_LETTERS.inc()
                    done.append(row.position)
                    cursor.execute(
                        "UPDATE boissipay_outboxevent SET dispatch_attempts = %s WHERE position = %s",
                        [attempts, row.position],
                    )
                else:
                    retried.append(row.position)
                    cursor.execute(
                        "UPDATE boissipay_outboxevent SET dispatch_attempts = %s, "
                        "dispatch_after = now() + make_interval(secs => %s) WHERE position = %s",
                        [attempts, backoff_seconds(attempts), row.position],
                    )
            if done:
                cursor.execute(
                    "UPDATE boissipay_outboxevent SET dispatched_at = now() WHERE position = ANY(%s)", [done]
                )
        self.stats.batches += 1
        self.stats.dispatched += len(rows) - len(retried)
        metrics.DISPATCHED.inc(len(rows) - len(retried))
        self.stats.retried += len(retried)
        return len(rows)

    def _deliver_run(self, handler: bus.Handler, run: list[_Row]) -> dict[int, tuple[str, BaseException]]:
        """Deliver a run of events to one handler at once; if that fails, one by one, so
        that only the events it fails on are held back. Returns {position: failure}."""
        try:
            bus.deliver_batch(handler, [row.message for row in run])
            return {}
        except Exception as exc:
            if len(run) == 1:
                logger.exception("in-process handler %s failed on event %s", handler.name, run[0].message.id)
                return {run[0].position: (handler.name, exc)}
        failures: dict[int, tuple[str, BaseException]] = {}
        for row in run:
            try:
                bus.deliver_batch(handler, [row.message])
            except Exception as exc:
                logger.exception("in-process handler %s failed on event %s", handler.name, row.message.id)
                failures[row.position] = (handler.name, exc)
        return failures

    def drain(self, *, timeout: float = 60.0) -> DispatchStats:
        """Dispatch until no event is due (waiting while another dispatcher holds the
        lock, up to `timeout`). For commands and tests that must see the effects now."""
        deadline = time.monotonic() + timeout
        while True:
            taken = self.dispatch_batch()
            if taken == 0:
                return self.stats
            if taken is None:
                if time.monotonic() > deadline:
                    raise TimeoutError("another dispatcher kept the dispatch lock")
                time.sleep(self.poll_seconds)

    def run(self, *, stop: threading.Event | None = None) -> DispatchStats:
        """Dispatch until `stop`. A fault of the database is logged and backed off from,
        for as long as it lasts: the dispatcher never exits on one."""
        stop = stop or threading.Event()
        failures = 0
        heartbeat = Heartbeat("dispatcher")
        while not stop.is_set():
            heartbeat.beat()
            try:
                taken = self.dispatch_batch()
            except Exception as exc:
                failures += 1
                pause = min(30.0, 0.5 * 2 ** min(failures, 6))
                logger.warning("dispatcher: %r; backing off %.1f s (failure %d)", exc, pause, failures)
                _forget_broken_connection()
                stop.wait(pause)
                continue
            if failures:
                logger.info("dispatcher: working again after %d failure(s)", failures)
                failures = 0
            if not taken or taken < self.batch_size:
                stop.wait(self.poll_seconds)
        heartbeat.forget()
        return self.stats


def drain() -> DispatchStats:
    """Deliver every due event to the in-process handlers now (see EventDispatcher.drain)."""
    return EventDispatcher().drain()


def _row(
    position, id, topic, aggregate_id, event_type, schema_version, payload, occurred_at, attempts, request_id
) -> _Row:
    message = EventMessage(
        id=id,
        type=event_type,
        version=schema_version,
        source=topic,
        aggregate_id=aggregate_id,
        occurred_at=occurred_at,
        data=json.loads(payload) if isinstance(payload, str) else payload,
        request_id=request_id,
    )
    return _Row(position, attempts, message)


def _runs(rows: list[_Row]):
    """Cut `rows` into runs of consecutive rows that go to the same handlers:
    yields (handlers, rows of the run)."""
    run: list[_Row] = []
    current: list[bus.Handler] | None = None
    names: tuple[str, ...] | None = None
    for row in rows:
        handlers = bus.inprocess_handlers(row.message.type)
        key = tuple(handler.name for handler in handlers)
        if key != names and run:
            yield current, run
            run = []
        current, names = handlers, key
        run.append(row)
    if run:
        yield current, run


def _forget_broken_connection() -> None:
    """After a database fault, let Django open a new connection for the next attempt."""
    try:
        connection.close()
    except Exception as exc:
        logger.debug("dispatcher: closing the database connection failed (%r)", exc)
