"""The outbox relay: claim, publish, mark.

A batch of unpublished rows is claimed in a short transaction (a lease from the
database's clock), published outside any transaction, then marked in a second short
one; row locks are never held while waiting on the broker. A contract's later event is
never claimed while an earlier one is leased elsewhere, backing off or locked by another
transaction, so several relays can run at once and each contract's events stay in order. Failures back off with jitter;
an outage never dead-letters anything. Feeding the in-process handlers is the event
dispatcher's work (boissipay.dispatcher), not the relay's."""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import uuid
from dataclasses import dataclass
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from kafka.errors import KafkaError, KafkaTimeoutError, MessageSizeTooLargeError

from boissipay import metrics, transport
from boissipay.heartbeat import Heartbeat

logger = logging.getLogger(__name__)

CLAIM_LOCK_ID = 7_206_104_401  # pg advisory lock serialising claims (not publishing)

# Candidates are read in position order without row locks; the hold-back rule is then
# applied to the whole page at once, in Python: a row not ready yet (leased elsewhere or
# backing off) holds back the later rows of its aggregate. A correlated NOT EXISTS per
# candidate did the same but its plan depends on fresh statistics, and after a burst of
# inserts it scanned the backlog once per candidate.
SCAN_SQL = """
SELECT position, aggregate_id,
       (leased_until IS NULL OR leased_until < now()) AND (next_attempt_at IS NULL OR next_attempt_at <= now())
FROM boissipay_outboxevent
WHERE published_at IS NULL AND dead_lettered_at IS NULL AND position > %s
ORDER BY position
LIMIT %s
"""

# Leases the candidates still ready on their latest row versions; one that another relay
# marked meanwhile, or that someone else has locked, is left out.
LEASE_SQL = """
UPDATE boissipay_outboxevent o
SET leased_until = now() + make_interval(secs => %s), attempts = o.attempts + 1
FROM (
    SELECT position FROM boissipay_outboxevent
    WHERE position = ANY(%s) AND published_at IS NULL AND dead_lettered_at IS NULL
      AND (leased_until IS NULL OR leased_until < now())
      AND (next_attempt_at IS NULL OR next_attempt_at <= now())
    FOR UPDATE SKIP LOCKED
) c
WHERE o.position = c.position
RETURNING o.position, o.id, o.topic, o.aggregate_type, o.aggregate_id, o.event_type, o.schema_version,
          o.payload, o.occurred_at, o.attempts, o.request_id
"""

# Gives back, in the same transaction, a lease taken on a row that must wait after all.
UNLEASE_SQL = """
UPDATE boissipay_outboxevent SET leased_until = NULL, attempts = attempts - 1 WHERE position = ANY(%s)
"""

# How far past unready rows a claim looks for rows it may take, in pages of a batch.
MAX_SCAN_PAGES = 10


class ClaimedRow(NamedTuple):
    """An outbox row leased by this relay (no ORM instance: it is only encoded and marked)."""

    position: int
    id: uuid.UUID
    topic: str
    aggregate_type: str
    aggregate_id: str
    event_type: str
    schema_version: int
    payload: str  # the jsonb text, sent as it is
    occurred_at: dt.datetime
    attempts: int
    request_id: str = ""


# Errors that concern one message, not the broker's availability.
PER_MESSAGE_ERRORS = (MessageSizeTooLargeError,)


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with full jitter, capped at 60 s."""
    return random.uniform(0.5, min(60.0, 0.5 * 2 ** min(attempts, 7)))


@dataclass
class RelayStats:
    published: int = 0
    failed: int = 0


class OutboxRelay:
    def __init__(
        self,
        *,
        producer=None,
        servers: str | None = None,
        batch_size: int | None = None,
        lease_seconds: int | None = None,
    ):
        config = settings.OUTBOX_RELAY
        self.servers = servers or transport.bootstrap_servers()
        self.batch_size = batch_size or config["BATCH_SIZE"]
        self.lease_seconds = lease_seconds or config["LEASE_SECONDS"]
        self.max_attempts = config["MAX_ATTEMPTS"]
        self._producer = producer
        self.stats = RelayStats()

    # --- Kafka ----------------------------------------------------------------------

    @property
    def producer(self):
        if self._producer is None:
            transport.ensure_topics(self.servers)
            self._producer = transport.make_producer(self.servers)
        return self._producer

    def close(self) -> None:
        """Drop the producer. Closing one whose broker has stalled may itself time out:
        that is logged and forgotten, never raised (the rows it held stay unpublished and
        are claimed again)."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            producer.close(timeout=5)
        except Exception as exc:  # a stalled broker must not kill the relay while it backs off
            logger.warning("relay: closing the Kafka producer failed (%r); dropped", exc)

    # --- claim, publish, mark ---------------------------------------------------------

    def claim(self) -> list[ClaimedRow]:
        """Lease up to a batch of rows in position order, leaving out every row whose
        aggregate has an earlier row that is leased elsewhere, backing off or locked."""
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CLAIM_LOCK_ID])
            # The scan must walk the unpublished-rows index in order: stale statistics after
            # a burst of inserts would otherwise pick a bitmap scan and sort the whole backlog.
            cursor.execute("SET LOCAL enable_sort = off")
            held_back: set[str] = set()
            candidates: list[tuple[int, str]] = []
            after = 0
            for _ in range(MAX_SCAN_PAGES):
                cursor.execute(SCAN_SQL, [after, self.batch_size])
                page = cursor.fetchall()
                for position, aggregate_id, ready in page:
                    if aggregate_id in held_back:
                        continue
                    if not ready:
                        held_back.add(aggregate_id)
                    else:
                        candidates.append((position, aggregate_id))
                        if len(candidates) == self.batch_size:
                            break
                if len(candidates) == self.batch_size or len(page) < self.batch_size:
                    break
                after = page[-1][0]
            if not candidates:
                return []
            cursor.execute(LEASE_SQL, [self.lease_seconds, [position for position, _ in candidates]])
            leased = {row.position: row for row in map(ClaimedRow._make, cursor.fetchall())}
            # A candidate left out holds back the later rows of its aggregate.
            rows, released = [], []
            held_back.clear()
            for position, aggregate_id in candidates:
                if position not in leased:
                    held_back.add(aggregate_id)
                elif aggregate_id in held_back:
                    released.append(position)
                else:
                    rows.append(leased[position])
            if released:
                cursor.execute(UNLEASE_SQL, [released])
        return rows

    def publish(self, rows: list[ClaimedRow]) -> tuple[list[int], dict[int, BaseException]]:
        """Send the rows; return the positions acknowledged and the errors of the others."""
        futures = []
        errors: dict[int, BaseException] = {}
        try:
            producer = self.producer
            send, encode = producer.send, transport.encode_record
            for row in rows:
                key, value, headers = encode(row)
                futures.append((row.position, send(row.topic, key=key, value=value, headers=headers)))
            producer.flush(timeout=15)
        except (KafkaError, OSError) as exc:
            logger.warning("relay: publishing failed: %r", exc)
            sent = {position for position, _ in futures}
            errors.update({row.position: exc for row in rows if row.position not in sent})
        published = []
        for position, future in futures:
            if future.is_done and future.succeeded():
                published.append(position)
            else:
                errors[position] = future.exception if future.is_done else KafkaTimeoutError("not acknowledged")
        return published, errors

    def mark(self, rows: list[ClaimedRow], published: list[int], errors: dict[int, BaseException]) -> None:
        attempts = {row.position: row.attempts for row in rows}
        with transaction.atomic(), connection.cursor() as cursor:
            if published:
                cursor.execute(
                    "UPDATE boissipay_outboxevent SET published_at = now(), leased_until = NULL, last_error = '' "
                    "WHERE position = ANY(%s)",
                    [published],
                )
            for position, error in errors.items():
                dead = isinstance(error, PER_MESSAGE_ERRORS) and attempts[position] >= self.max_attempts
                cursor.execute(
                    "UPDATE boissipay_outboxevent SET leased_until = NULL, last_error = %s, "
                    "next_attempt_at = now() + make_interval(secs => %s), "
                    "dead_lettered_at = CASE WHEN %s THEN now() END WHERE position = %s",
                    [repr(error)[:2000], backoff_seconds(attempts[position]), dead, position],
                )

    def relay_batch(self) -> int:
        """Claim, publish and mark one batch; return how many rows were claimed."""
        rows = self.claim()
        if not rows:
            return 0
        published, errors = self.publish(rows)
        self.mark(rows, published, errors)
        self.stats.published += len(published)
        self.stats.failed += len(errors)
        metrics.RELAY_PUBLISHED.inc(len(published))
        if errors:
            metrics.RELAY_FAILURES.labels("message").inc(len(errors))
        if errors and not published:
            self.close()  # reconnect (and re-create topics) on the next batch
        return len(rows)

    # --- loop -----------------------------------------------------------------------------

    def seconds_until_a_lease_ends(self) -> float | None:
        """How long until the first unpublished row's lease ends; None when none is leased."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT extract(epoch FROM min(leased_until) - now()) FROM boissipay_outboxevent "
                "WHERE published_at IS NULL AND dead_lettered_at IS NULL AND leased_until > now()"
            )
            seconds = cursor.fetchone()[0]
        return None if seconds is None else max(0.0, float(seconds))

    def run(self, *, once: bool = False, stop: threading.Event | None = None, idle_sleep: float = 0.2) -> RelayStats:
        """Relay until `stop` (or, with `once`, until nothing is left). Any fault of the
        broker or the database is logged and backed off from, for as long as it lasts:
        the relay never exits on one."""
        stop = stop or threading.Event()
        failures = 0
        heartbeat = Heartbeat("relay")
        while not stop.is_set():
            heartbeat.beat()
            try:
                claimed = self.relay_batch()
            except Exception as exc:
                failures += 1
                pause = backoff_seconds(min(failures, 6))
                kind = "Kafka" if isinstance(exc, KafkaError | OSError) else "the database or the relay"
                metrics.RELAY_FAILURES.labels("kafka" if kind == "Kafka" else "database").inc()
                logger.warning("relay: %s failed (%r); backing off %.1f s (failure %d)", kind, exc, pause, failures)
                self.close()
                _forget_broken_connection()
                stop.wait(pause)
                continue
            if failures:
                logger.info("relay: working again after %d failure(s)", failures)
                failures = 0
            if claimed == 0:
                if once:
                    # Draining: rows leased by a relay that died (or is finishing) come
                    # back when their lease ends; wait for that rather than leave them.
                    wait = self.seconds_until_a_lease_ends()
                    if wait is None:
                        break
                    stop.wait(min(wait, self.lease_seconds) + 0.05)
                    continue
                stop.wait(idle_sleep)
        self.close()
        heartbeat.forget()
        return self.stats


def _forget_broken_connection() -> None:
    """After a database fault, let Django open a new connection for the next attempt."""
    try:
        connection.close()
    except Exception as exc:
        logger.debug("relay: closing the database connection failed (%r)", exc)
