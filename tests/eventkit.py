"""Test support for the event backbone: a broker per test session, a handler context
whose effects are counted in a plain table (no unique constraint: duplicates would show)."""

from __future__ import annotations

import os
import time
import uuid

from django.db import connection, transaction

from boissipay import bus
from boissipay.events import EventMessage
from boissipay.models import OutboxEvent

TEST_CONTEXT = "audit"
POISON = {"value": None}  # event ids the poison handler refuses while set


def ensure_effects_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS test_handler_effects ("
            " handler text NOT NULL, event_id uuid NOT NULL, event_type text NOT NULL,"
            " aggregate_id text NOT NULL, position bigint, applied_at timestamptz DEFAULT clock_timestamp())"
        )


def effects(handler: str = "record_effect") -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_id, aggregate_id, position FROM test_handler_effects WHERE handler = %s "
            "ORDER BY applied_at, position",
            [handler],
        )
        return cursor.fetchall()


def clear_effects() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM test_handler_effects")


def _insert_effect(handler: str, message: EventMessage) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO test_handler_effects (handler, event_id, event_type, aggregate_id, position) "
            "VALUES (%s, %s, %s, %s, %s)",
            [handler, message.id, message.type, message.aggregate_id, message.data.get("n")],
        )


@bus.handles("test.thing.happened", context=TEST_CONTEXT)
def record_effect(message: EventMessage) -> None:
    if os.environ.get("SLOW_EFFECTS"):
        time.sleep(0.02)  # lets a test kill the consumer in the middle of a batch
    _insert_effect("record_effect", message)


@bus.handles("test.thing.happened", context=TEST_CONTEXT)
def poison_sensitive(message: EventMessage) -> None:
    if POISON["value"] is not None and str(message.id) in POISON["value"]:
        raise ValueError(f"cannot digest {message.id}")
    _insert_effect("poison_sensitive", message)


def new_topic(servers: str) -> str:
    """A topic of this test's own, so earlier tests' messages stay out of its way."""
    from boissipay.transport import ensure_topics

    topic = f"test.{uuid.uuid4().hex[:12]}"
    ensure_topics(servers, topics=[topic])
    return topic


def record_things(count: int, *, topic: str, contracts: int = 10, start: int = 0) -> list[OutboxEvent]:
    """Append `count` test events over `contracts` aggregates, in one transaction;
    payload `n` is the global sequence, for order checks."""
    aggregates = [str(uuid.UUID(int=i + 1)) for i in range(contracts)]
    rows = [
        OutboxEvent(
            topic=topic,
            aggregate_type="contract",
            aggregate_id=aggregates[i % contracts],
            event_type="test.thing.happened",
            schema_version=1,
            payload={"n": start + i},
            dispatched_at=None,
        )
        for i in range(count)
    ]
    with transaction.atomic():
        return OutboxEvent.objects.bulk_create(rows, batch_size=5000)


def assert_per_aggregate_order(sequence: list[tuple[str, int]]) -> None:
    """`sequence` of (aggregate, n) as seen by a consumer: each aggregate's n increase
    (a redelivered duplicate may repeat an earlier n; first sightings must increase)."""
    seen: dict[str, set] = {}
    last: dict[str, int] = {}
    for aggregate, n in sequence:
        if n in seen.setdefault(aggregate, set()):
            continue
        assert n > last.get(aggregate, -1), f"aggregate {aggregate}: {n} after {last[aggregate]}"
        seen[aggregate].add(n)
        last[aggregate] = n


def subprocess_env(kafka_servers: str) -> dict:
    """Environment for a manage.py child working on the test database and broker."""
    env = dict(os.environ)
    db = connection.settings_dict
    if env.get("DATABASE_URL"):
        env["DATABASE_URL"] = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    else:
        env["BOISSIPAY_DB_NAME"] = db["NAME"]
    env["KAFKA_BOOTSTRAP_SERVERS"] = kafka_servers
    env["KAFKA_MAX_POLL_INTERVAL_MS"] = "3000"
    env["BOISSIPAY_ALLOW_DEV_SECRET"] = "1"
    env["DJANGO_SETTINGS_MODULE"] = "config.settings_test"
    return env


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")
