"""Kafka transport: CloudEvents 1.0 in binary content mode (`ce_*` headers, JSON data as
the value, contract id as the key), producers and consumers set up for this project."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
from functools import cache, lru_cache
from importlib import import_module
from typing import Any, Protocol, cast

from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
from kafka.partitioner import DefaultPartitioner, murmur2

from boissipay.events import EventMessage, topic_for
from boissipay.kafka_config import client_options

CONTEXTS = ("contracts", "billing", "invoicing", "payments")  # each publishes its topic
CONSUMERS = (*CONTEXTS, "accounting")  # each consumes, in its own group (accounting publishes nothing)
ALL_TOPICS = tuple(topic_for(context) for context in CONTEXTS)
_FORMAT = JSONFormat()


def bootstrap_servers() -> str:
    """The configured Kafka, or this checkout's embedded broker (started if needed)."""
    if settings.KAFKA_BOOTSTRAP_SERVERS:
        return settings.KAFKA_BOOTSTRAP_SERVERS
    if not settings.EMBEDDED_KAFKA:
        raise ImproperlyConfigured("KAFKA_BOOTSTRAP_SERVERS is not set.")
    return import_module(settings.EMBEDDED_KAFKA).shared_local_broker()


def ensure_topics(servers: str, topics=ALL_TOPICS) -> None:
    """Create the topics if they do not exist, with KAFKA_TOPIC_PARTITIONS partitions and
    KAFKA_TOPIC_REPLICATION_FACTOR replicas (topics that exist are left as they are)."""
    admin = KafkaAdminClient(**client_options(servers), client_id="boissipay-admin")
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(
                t,
                num_partitions=settings.KAFKA_TOPIC_PARTITIONS,
                replication_factor=settings.KAFKA_TOPIC_REPLICATION_FACTOR,
            )
            for t in topics
            if t not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process created them meanwhile
                admin.create_topics(missing)
    finally:
        admin.close()


class KeyHashPartitioner(DefaultPartitioner):
    """kafka-python's default partitioner (murmur2 of the key, as the Java client does, so
    a contract lands on the same partition whoever produces it), remembering each key's
    hash: the pure-Python murmur2 is a noticeable share of `send()`, and keys repeat."""

    def __init__(self, cache_size: int = 65_536):
        self._hash = lru_cache(maxsize=cache_size)(murmur2)

    def partition(self, topic, key, serialized_key, value, serialized_value, cluster):
        if serialized_key is None:
            return super().partition(topic, key, serialized_key, value, serialized_value, cluster)
        partitions = cluster.partitions_for_topic(topic)
        if not partitions:
            raise ValueError(f"Topic {topic} not found in ClusterMetadata")
        partitions = sorted(partitions)
        return partitions[(self._hash(serialized_key) & 0x7FFFFFFF) % len(partitions)]


def make_producer(servers: str, **overrides) -> KafkaProducer:
    options = {
        **client_options(servers),
        "acks": "all",
        # The relay flushes at the end of each batch, so lingering never holds an event
        # back longer than its batch; meanwhile the sender builds a few large requests
        # instead of many small ones (its work competes with the relay for the GIL).
        "linger_ms": 100,
        "batch_size": 256 * 1024,
        "partitioner": KeyHashPartitioner(),
        # Idempotent: the broker de-duplicates retries and keeps their order, so a
        # contract's events stay in order with several requests in flight.
        "enable_idempotence": True,
        "request_timeout_ms": 10_000,
        "max_block_ms": 10_000,
        "client_id": "boissipay-relay",
    }
    options.update(overrides)
    return KafkaProducer(**options)


def make_consumer(servers: str, *, group_id: str, topics=ALL_TOPICS, **overrides) -> KafkaConsumer:
    options = {
        **client_options(servers),
        "group_id": group_id,
        "enable_auto_commit": False,  # offsets are committed after the handlers' transactions
        "auto_offset_reset": "earliest",
        # The embedded broker completes a group join only after the rebalance timeout.
        "max_poll_interval_ms": settings.KAFKA_MAX_POLL_INTERVAL_MS,
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 1_000,
        "max_poll_records": 500,
        # The embedded broker was seen to answer a fetch only at the end of this wait, even once new
        # messages are in (Apache Kafka answers at once): it bounds commit-to-handled lag.
        "fetch_max_wait_ms": 100,
        "client_id": f"boissipay-{group_id}",
    }
    options.update(overrides)
    consumer = KafkaConsumer(**options)
    consumer.subscribe(list(topics))
    return consumer


@cache
def _cloudevent_data_schema(event_type: str, version: int) -> bytes:
    return f"events/{event_type}.v{version}.json".encode()


def _cloudevent_time(occurred_at: dt.datetime) -> bytes:
    text = occurred_at.isoformat()
    if text.endswith("+00:00"):
        text = text[:-6] + "Z"
    return text.encode()


class OutboxRecord(Protocol):
    """What `encode_record` reads: an OutboxEvent, or the relay's claimed row."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def topic(self) -> str: ...
    @property
    def aggregate_id(self) -> str: ...
    @property
    def event_type(self) -> str: ...
    @property
    def schema_version(self) -> int: ...
    @property
    def payload(self) -> Any: ...
    @property
    def occurred_at(self) -> dt.datetime: ...
    @property
    def request_id(self) -> str: ...


def encode_record(row: OutboxRecord) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """The outbox row (or a relay's claimed row) as a CloudEvents binary-mode Kafka record:
    key, value and headers, built directly. The headers are the ones, in the order, that
    cloudevents' `to_binary` writes; the CloudEvent object itself costs more than the send.
    The value is the payload as JSON: a jsonb text as it is, a dict serialised."""
    payload = row.payload
    value = payload.encode() if isinstance(payload, str) else _FORMAT.write_data(payload, "application/json")
    key = row.aggregate_id.encode()
    headers = [
        ("ce_id", str(row.id).encode()),
        ("ce_source", row.topic.encode()),
        ("ce_type", row.event_type.encode()),
        ("ce_time", _cloudevent_time(row.occurred_at)),
        ("ce_subject", key),
        ("content-type", b"application/json"),
        ("ce_dataschema", _cloudevent_data_schema(row.event_type, row.schema_version)),
        ("ce_schemaversion", str(row.schema_version).encode()),
        ("ce_specversion", b"1.0"),
    ]
    if row.request_id:  # CloudEvents extension attribute `requestid` (boissipay.logs)
        headers.append(("ce_requestid", row.request_id.encode()))
    return key, value, headers


def encode(row: OutboxRecord) -> KafkaMessage:
    """The outbox row as a CloudEvents binary-mode Kafka message."""
    key, value, headers = encode_record(row)
    return KafkaMessage(headers=dict(headers), key=key, value=value)


def decode(headers: list[tuple[str, bytes]], key: bytes | None, value: bytes) -> EventMessage:
    """A consumed Kafka message back as the EventMessage handlers receive.
    Raises ValueError (or a cloudevents error) on a message that is not one of ours."""
    event = from_binary(KafkaMessage(headers=dict(headers), key=key, value=value), _FORMAT)
    data = event.get_data()
    if isinstance(data, bytes | str):
        data = json.loads(data)
    occurred = event.get_time()
    if isinstance(occurred, str):
        occurred = dt.datetime.fromisoformat(occurred)
    return EventMessage(
        id=uuid.UUID(str(event.get_id())),
        type=event.get_type(),
        version=int(event.get_extension("schemaversion") or 1),
        source=event.get_source(),
        aggregate_id=event.get_subject() or "",
        occurred_at=occurred,
        data=cast(dict[str, Any], data),
        request_id=str(event.get_extension("requestid") or ""),
    )


def undecodable(record) -> EventMessage:
    """A stand-in EventMessage for a Kafka record that is not a valid event, so it can be
    dead-lettered with its raw content for staff to inspect."""
    return EventMessage(
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"kafka://{record.topic}/{record.partition}/{record.offset}"),
        type="undecodable",
        version=0,
        source=record.topic,
        aggregate_id=(record.key or b"").decode(errors="replace")[:64],
        occurred_at=None,
        data={"raw": record.value.decode(errors="replace")[:10000] if record.value else None},
    )
