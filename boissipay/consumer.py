"""A context's Kafka consumer group: feeds the context's handlers with the events of
every topic, commits offsets only after the handlers' transactions have committed, and
sets aside (dead-letters) a message a handler keeps failing on so the rest keeps flowing."""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections
from kafka.structs import OffsetAndMetadata, TopicPartition

from boissipay import bus, metrics, transport
from boissipay.events import EventMessage
from boissipay.heartbeat import Heartbeat

logger = logging.getLogger(__name__)


class ContextConsumer:
    def __init__(
        self,
        context: str,
        *,
        servers: str | None = None,
        group_id: str | None = None,
        max_attempts: int | None = None,
        retry_delay: float = 0.2,
        topics=transport.ALL_TOPICS,
        batch_seconds: float | None = None,
    ):
        self.context = context
        self.servers = servers or transport.bootstrap_servers()
        self.group_id = group_id or f"boissipay.{context}"
        self.max_attempts = max_attempts or settings.EVENT_HANDLER_MAX_ATTEMPTS
        self.retry_delay = retry_delay
        self.topics = tuple(topics)
        # A poll's records are handled for at most this long: the group counts a member that
        # does not poll again within max_poll_interval_ms as gone, takes its partitions away
        # and refuses its commit, and on a loaded machine it would then handle the same batch
        # again and again. A third of the interval leaves room for one slow record.
        self.batch_seconds = batch_seconds if batch_seconds is not None else settings.KAFKA_MAX_POLL_INTERVAL_MS / 3000
        self.applied = 0
        self.dead_lettered = 0
        self._consumer = None

    @property
    def consumer(self):
        if self._consumer is None:
            transport.ensure_topics(self.servers)
            self._consumer = transport.make_consumer(self.servers, group_id=self.group_id, topics=self.topics)
        return self._consumer

    def close(self) -> None:
        """Drop the consumer; a stalled broker may make closing fail: logged, never raised."""
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        try:
            consumer.close(autocommit=False)
        except Exception as exc:
            logger.warning("consumer %s: closing failed (%r); dropped", self.group_id, exc)

    def apply(self, message: EventMessage, *, partition: int, offset: int) -> None:
        """Apply `message` with each of this context's handlers for its type, retrying a
        failing handler, then dead-lettering it. Database outages propagate (no commit)."""
        for handler in bus.handlers_for(message.type, context=self.context):
            for attempt in range(1, self.max_attempts + 1):
                try:
                    if bus.deliver(handler, message):
                        self.applied += 1
                        metrics.CONSUMER_APPLIED.labels(self.context).inc()
                    break
                except Exception as exc:
                    close_old_connections()
                    if attempt == self.max_attempts:
                        logger.error(
                            "handler %s failed %d times on %s: dead-lettered", handler.name, attempt, message.id
                        )
                        bus.dead_letter(
                            handler.name, message, error=repr(exc), attempts=attempt, partition=partition, offset=offset
                        )
                        self.dead_lettered += 1
                        metrics.CONSUMER_DEAD_LETTERS.labels(self.context).inc()
                    else:
                        time.sleep(self.retry_delay * attempt)

    def poll_once(self, timeout_ms: int = 500) -> int:
        """Handle the records of one poll, then commit their offsets. Out of time
        (`batch_seconds`), it commits what it handled and seeks back to the first record it
        did not, so the next poll fetches the rest again: nothing skipped, nothing redone."""
        batches = self.consumer.poll(timeout_ms=timeout_ms)
        deadline = time.monotonic() + self.batch_seconds
        count = 0
        handled: dict[TopicPartition, int] = {}  # next offset to commit
        left: dict[TopicPartition, int] = {}  # first offset not handled
        for tp, records in batches.items():
            for record in records:
                if count and time.monotonic() > deadline:
                    left[tp] = record.offset
                    break
                self._handle(record)
                handled[tp] = record.offset + 1
                count += 1
        if left:
            for tp, offset in left.items():
                self.consumer.seek(tp, offset)
            self.consumer.commit({tp: OffsetAndMetadata(offset, "", -1) for tp, offset in handled.items()})
            metrics.CONSUMER_BATCHES_CUT.labels(self.context).inc()
        elif batches:
            self.consumer.commit()  # only now: every handler transaction above has committed
        self._record_lag()
        return count

    def _handle(self, record) -> None:
        try:
            message = transport.decode(record.headers, record.key, record.value)
        except Exception as exc:
            logger.error("undecodable message at %s:%s dead-lettered: %r", record.topic, record.offset, exc)
            bus.dead_letter(
                f"{self.context}:decode",
                transport.undecodable(record),
                error=repr(exc),
                attempts=1,
                partition=record.partition,
                offset=record.offset,
            )
            self.dead_lettered += 1
            return
        self.apply(message, partition=record.partition, offset=record.offset)

    def _record_lag(self) -> None:
        """How far behind the end of each assigned partition this consumer is (the
        partition's high watermark, as the last fetch saw it, less our position)."""
        for tp in self.consumer.assignment():
            end = self.consumer.highwater(tp)
            if end is not None:
                lag = max(0, end - self.consumer.position(tp))
                metrics.CONSUMER_LAG.labels(self.context, tp.topic, str(tp.partition)).set(lag)

    def run(self, *, stop: threading.Event | None = None) -> None:
        """Consume until `stop`. A fault of the broker or the database is logged and
        backed off from, for as long as it lasts: offsets not committed are consumed
        again (the inbox skips what was applied), so nothing is lost or applied twice."""
        stop = stop or threading.Event()
        failures = 0
        heartbeat = Heartbeat(f"consumer-{self.context}")
        try:
            while not stop.is_set():
                heartbeat.beat()
                try:
                    self.poll_once()
                except Exception as exc:
                    failures += 1
                    pause = min(30.0, 0.5 * 2 ** min(failures, 6))
                    logger.warning(
                        "consumer %s: %r; reconnecting in %.1f s (failure %d)", self.group_id, exc, pause, failures
                    )
                    self.close()
                    close_old_connections()
                    stop.wait(pause)
                    continue
                if failures:
                    logger.info("consumer %s: working again after %d failure(s)", self.group_id, failures)
                    failures = 0
        finally:
            self.close()
            heartbeat.forget()
