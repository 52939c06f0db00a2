"""The event backbone on real PostgreSQL and a real Kafka-protocol broker: outbox,
in-process bus, relay, consumers, dead letters, and the faults they must survive."""

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
from django.db import connection, transaction
from django.db.models import Q

from boissipay import actor, bus, services
from boissipay.consumer import ContextConsumer
from boissipay.dispatcher import EventDispatcher
from boissipay.events import DomainEvent
from boissipay.models import DeadLetter, InboxEntry, OutboxEvent
from boissipay.outbox import record, record_query
from boissipay.relay import OutboxRelay
from contracts import events as contract_events
from tests import eventkit, factories
from tests.eventkit import TEST_CONTEXT

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def effects_table(transactional_db):
    eventkit.ensure_effects_table()
    eventkit.clear_effects()
    eventkit.POISON["value"] = None
    yield
    eventkit.POISON["value"] = None


def consume_all(servers, topic, expected: int, *, group: str, timeout: float = 60.0) -> ContextConsumer:
    consumer = ContextConsumer(TEST_CONTEXT, servers=servers, group_id=group, topics=[topic], retry_delay=0.01)
    eventkit.wait_until(
        lambda: consumer.poll_once() is not None and len(eventkit.effects()) >= expected,
        timeout=timeout,
        message=f"{expected} effects",
    )
    consumer.close()
    return consumer


# --- outbox and in-process bus -----------------------------------------------------------


def test_an_event_cannot_be_recorded_outside_a_transaction(db):
    # pytest-django wraps the test in a transaction; leave it to be outside any.
    with pytest.raises(transaction.TransactionManagementError):
        transaction.get_connection().in_atomic_block = False
        try:
            record(contract_events.ContractReactivated(contract_id=factories.contract().pk, contract={}))
        finally:
            transaction.get_connection().in_atomic_block = True


@dataclass(frozen=True, kw_only=True)
class ThingHappened(DomainEvent):
    context: ClassVar[str] = TEST_CONTEXT
    event_type: ClassVar[str] = "test.thing.happened"
    contract_id: uuid.UUID
    n: int


THINGS_SQL = """
SELECT contract_id::text, jsonb_build_object('contract_id', contract_id::text, 'n', n)
FROM unnest(%(contracts)s::uuid[], %(numbers)s::int[]) AS t(contract_id, n) ORDER BY n
"""


def test_events_built_by_the_database_are_recorded_and_delivered_like_the_others(effects_table, settings):
    settings.EVENT_FEED = {**settings.EVENT_FEED, TEST_CONTEXT: "inprocess"}
    contracts = [uuid.uuid4() for _ in range(3)]
    with transaction.atomic():
        positions = record_query(ThingHappened, THINGS_SQL, {"contracts": contracts, "numbers": [3, 1, 2]})
        assert eventkit.effects() == []  # not before commit
    rows = list(OutboxEvent.objects.filter(position__in=positions).order_by("position"))
    assert [row.payload["n"] for row in rows] == [1, 2, 3]
    assert rows[0].payload == {
        **ThingHappened(contract_id=contracts[1], n=1).payload(),
        "actor": actor.current().payload(),
    }
    assert {(row.topic, row.event_type, row.aggregate_id) for row in rows} == {
        ("boissipay.audit.v1", "test.thing.happened", str(contract)) for contract in contracts
    }
    assert eventkit.effects() == []  # nothing runs after commit in the publisher's process
    EventDispatcher().drain()  # the dispatcher's work, outside the publisher
    assert [position for _, _, position in eventkit.effects()] == [1, 2, 3]  # in order
    assert all(row.dispatched_at is not None for row in OutboxEvent.objects.filter(position__in=positions))


def test_events_built_by_the_database_cannot_be_recorded_outside_a_transaction(db):
    transaction.get_connection().in_atomic_block = False
    try:
        with pytest.raises(transaction.TransactionManagementError):
            record_query(ThingHappened, THINGS_SQL, {"contracts": [uuid.uuid4()], "numbers": [1]})
    finally:
        transaction.get_connection().in_atomic_block = True
    assert not OutboxEvent.objects.exists()


def test_in_process_handlers_receive_the_event_from_the_dispatcher(effects_table, settings):
    settings.EVENT_FEED = {**settings.EVENT_FEED, TEST_CONTEXT: "inprocess"}
    rows = eventkit.record_things(1, topic="unused")
    assert eventkit.effects() == []
    EventDispatcher().drain()
    assert [str(e[0]) for e in eventkit.effects()] == [str(rows[0].id)]
    rows[0].refresh_from_db()
    assert rows[0].dispatched_at is not None


def test_a_failing_handler_never_undoes_the_publisher_and_the_dispatcher_retries_it(effects_table, settings):
    settings.EVENT_FEED = {**settings.EVENT_FEED, TEST_CONTEXT: "inprocess"}
    row = eventkit.record_things(1, topic="unused")[0]
    eventkit.POISON["value"] = {str(row.id)}
    EventDispatcher().drain()  # the poison-sensitive handler fails

    row.refresh_from_db()
    assert OutboxEvent.objects.filter(pk=row.pk).exists()
    assert row.dispatched_at is None
    assert row.dispatch_attempts == 1 and row.dispatch_after is not None  # it waits before the next try
    assert len(eventkit.effects("poison_sensitive")) == 0
    assert len(eventkit.effects("record_effect")) == 1  # the other handler was not held back

    eventkit.POISON["value"] = None  # the cause is fixed
    OutboxEvent.objects.filter(pk=row.pk).update(dispatch_after=None)  # its wait is over
    EventDispatcher().drain()
    row.refresh_from_db()
    assert row.dispatched_at is not None
    assert len(eventkit.effects("poison_sensitive")) == 1
    assert len(eventkit.effects("record_effect")) == 1  # applied once, not again


def test_the_same_event_is_applied_at_most_once_per_handler(effects_table):
    row = eventkit.record_things(1, topic="unused")[0]
    message = bus.message_from_outbox(row)
    handler = bus.handler_named("tests.eventkit.record_effect")
    assert bus.deliver(handler, message) is True
    assert bus.deliver(handler, message) is False
    assert len(eventkit.effects()) == 1
    assert InboxEntry.objects.filter(event_id=row.id).count() == 1


# --- relay and consumers on the broker -----------------------------------------------------


@pytest.mark.kafka
def test_the_relay_publishes_cloudevents_in_order_and_the_consumer_applies_each_once(effects_table, kafka_broker):
    servers = kafka_broker.bootstrap_servers
    topic = eventkit.new_topic(servers)
    rows = eventkit.record_things(300, topic=topic, contracts=7)

    stats = OutboxRelay(servers=servers, batch_size=64).run(once=True)
    assert stats.published == 300
    assert not OutboxEvent.objects.filter(published_at__isnull=True, topic=topic).exists()

    consume_all(servers, topic, 300, group="g-order")
    seen = eventkit.effects()
    assert sorted(str(e[0]) for e in seen) == sorted(str(r.id) for r in rows)
    eventkit.assert_per_aggregate_order([(e[1], e[2]) for e in seen])

    # a redelivery (a new group reading from the start) is absorbed by the inbox
    consumer = ContextConsumer(TEST_CONTEXT, servers=servers, group_id="g-order-again", topics=[topic])
    eventkit.wait_until(lambda: consumer.poll_once() > 0, message="redelivery")
    consumer.close()
    assert len(eventkit.effects()) == 300


@pytest.mark.kafka
def test_a_poll_that_outlasts_the_time_budget_commits_what_was_handled_and_fetches_the_rest_again(
    effects_table, kafka_broker
):
    """On a loaded machine a poll's records may take longer than the group allows between
    polls; the consumer stops at its budget, commits what it handled and fetches the rest
    again, rather than be dropped from the group and handle the same batch over and over."""
    from kafka.structs import TopicPartition
    from prometheus_client import REGISTRY

    servers = kafka_broker.bootstrap_servers
    topic = eventkit.new_topic(servers)
    rows = eventkit.record_things(40, topic=topic, contracts=3)
    OutboxRelay(servers=servers).run(once=True)
    cut_before = REGISTRY.get_sample_value("boissipay_consumer_batches_cut_total", {"context": TEST_CONTEXT}) or 0

    # No time at all: each poll handles one record, the least it ever handles.
    consumer = ContextConsumer(
        TEST_CONTEXT, servers=servers, group_id=f"g-budget-{topic}", topics=[topic], batch_seconds=0
    )
    handled_per_poll, committed_after_poll = [], []

    def poll() -> bool:
        handled = consumer.poll_once()
        if handled:  # (asked while the group is still forming, the broker answers slowly)
            handled_per_poll.append(handled)
            partitions = consumer.consumer.partitions_for_topic(topic) or set()
            committed = [consumer.consumer.committed(TopicPartition(topic, p)) or 0 for p in partitions]
            committed_after_poll.append(sum(committed))
        return len(eventkit.effects()) >= len(rows)

    eventkit.wait_until(poll, timeout=60, interval=0, message="every event, one per poll")
    consumer.close()

    assert handled_per_poll == [1] * len(rows)
    assert committed_after_poll == list(range(1, len(rows) + 1))  # each handled record committed at once
    seen = eventkit.effects()
    assert sorted(str(e[0]) for e in seen) == sorted(str(r.id) for r in rows)  # none lost, none twice
    eventkit.assert_per_aggregate_order([(e[1], e[2]) for e in seen])
    cut = REGISTRY.get_sample_value("boissipay_consumer_batches_cut_total", {"context": TEST_CONTEXT}) or 0
    assert cut - cut_before >= 1


@pytest.mark.kafka
def test_a_relayed_message_carries_the_cloudevents_envelope(transactional_db, kafka_broker):
    from kafka import KafkaConsumer

    servers = kafka_broker.bootstrap_servers
    contract = factories.contract()
    OutboxRelay(servers=servers).run(once=True)
    row = OutboxEvent.objects.get(aggregate_id=str(contract.pk), event_type="contracts.contract.subscribed")
    consumer = KafkaConsumer(
        "boissipay.contracts.v1", bootstrap_servers=servers, auto_offset_reset="earliest", consumer_timeout_ms=5000
    )
    message = next(m for m in consumer if dict(m.headers).get("ce_id") == str(row.id).encode())
    consumer.close()
    headers = dict(message.headers)
    assert message.key == str(contract.pk).encode()
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_type"] == b"contracts.contract.subscribed"
    assert headers["ce_source"] == b"boissipay.contracts.v1"
    assert headers["ce_subject"] == str(contract.pk).encode()
    assert headers["content-type"] == b"application/json"


@pytest.mark.kafka
def test_a_poison_message_is_dead_lettered_and_the_rest_keeps_flowing(effects_table, kafka_broker):
    servers = kafka_broker.bootstrap_servers
    topic = eventkit.new_topic(servers)
    rows = eventkit.record_things(20, topic=topic, contracts=2)
    poison = rows[5]
    eventkit.POISON["value"] = {str(poison.id)}
    OutboxRelay(servers=servers).run(once=True)

    consume_all(servers, topic, 20, group="g-poison")
    letter = DeadLetter.objects.get(event_id=poison.id)
    assert letter.handler == "tests.eventkit.poison_sensitive"
    assert "cannot digest" in letter.error
    assert len(eventkit.effects("poison_sensitive")) == 19  # everything behind it flowed

    eventkit.POISON["value"] = None  # fixed: staff replay it from the admin
    assert services.replay_dead_letter(dead_letter_id=letter.pk) is True
    letter.refresh_from_db()
    assert letter.replayed_at is not None
    assert len(eventkit.effects("poison_sensitive")) == 20


@pytest.mark.kafka
def test_a_consumer_that_dies_before_committing_gets_the_messages_again_and_applies_them_once(
    effects_table, kafka_broker
):
    servers = kafka_broker.bootstrap_servers
    topic = eventkit.new_topic(servers)
    eventkit.record_things(400, topic=topic, contracts=4)
    OutboxRelay(servers=servers).run(once=True)

    env = eventkit.subprocess_env(servers)
    script = (
        "import django; django.setup();"
        "import tests.eventkit;"
        "from boissipay.consumer import ContextConsumer;"
        f"ContextConsumer('{TEST_CONTEXT}', group_id='g-crash', topics=['{topic}'], retry_delay=0.01).run()"
    )
    child = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env={**env, "SLOW_EFFECTS": "1"})
    # Killed mid-batch: some effects applied, offsets of that batch not committed.
    eventkit.wait_until(lambda: len(eventkit.effects()) >= 50, timeout=60, message="first effects")
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert len(eventkit.effects()) < 400, "the kill must land before the batch is done"

    consume_all(servers, topic, 400, group="g-crash")
    effects = eventkit.effects()
    assert len(effects) == 400
    assert len({e[0] for e in effects}) == 400


@pytest.mark.kafka
@pytest.mark.slow
def test_the_relay_killed_mid_batch_loses_nothing_and_downstream_absorbs_duplicates(effects_table, kafka_broker):
    servers = kafka_broker.bootstrap_servers
    topic = eventkit.new_topic(servers)
    rows = eventkit.record_things(2_000, topic=topic, contracts=50)  # 40 batches: the kill lands mid-way
    env = {**eventkit.subprocess_env(servers), "OUTBOX_RELAY_LEASE_SECONDS": "2"}
    command = [sys.executable, "manage.py", "relay_outbox", "--batch-size", "50"]

    relay = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    eventkit.wait_until(
        lambda: OutboxEvent.objects.filter(topic=topic, published_at__isnull=False).exists(),
        timeout=60,
        interval=0.01,
        message="first published batch",
    )
    relay.send_signal(signal.SIGKILL)
    relay.wait()
    published = OutboxEvent.objects.filter(topic=topic, published_at__isnull=False).count()
    assert 0 < published < len(rows), "the kill must land mid-way"

    subprocess.run([*command, "--once"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, timeout=300)
    assert not OutboxEvent.objects.filter(topic=topic, published_at__isnull=True).exists()

    consume_all(servers, topic, len(rows), group="g-relay-kill", timeout=180)
    effects = eventkit.effects()
    assert len(effects) == len(rows) and len({e[0] for e in effects}) == len(rows)
    eventkit.assert_per_aggregate_order([(e[1], e[2]) for e in effects])


@pytest.mark.kafka
def test_while_the_broker_is_down_work_goes_on_and_the_backlog_drains_in_order_when_it_returns(
    effects_table, kafka_broker, client
):
    if kafka_broker.process is None:
        pytest.skip("needs the embedded broker, which this test stops and restarts (KAFKA_BOOTSTRAP_SERVERS is set)")
    servers = kafka_broker.bootstrap_servers
    topic = eventkit.new_topic(servers)
    before = eventkit.record_things(100, topic=topic, contracts=5)
    relay = OutboxRelay(servers=servers, batch_size=50)
    relay.run(once=True)
    consume_all(servers, topic, 100, group="g-outage-1")

    kafka_broker.stop()
    during = eventkit.record_things(150, topic=topic, contracts=5, start=100)
    contract = factories.contract()  # the services keep working
    stop = threading.Event()

    def relay_in_background():
        try:
            relay.run(stop=stop)
        finally:
            connection.close()

    worker = threading.Thread(target=relay_in_background)
    worker.start()
    health = client.get("/api/health").json()
    assert health["outbox"]["backlog"] >= 150
    assert not OutboxEvent.objects.filter(
        topic=topic, position__in=[r.position for r in during], published_at__isnull=False
    ).exists()

    kafka_broker.start()  # memory-only: it comes back empty
    eventkit.ensure_effects_table()
    from boissipay.transport import ensure_topics

    ensure_topics(servers, topics=[topic])
    # The backlog: this test's topic, and the contract signed during the outage (its events
    # are on the contracts topic, recorded after the others: the relay's last batches).
    backlog = OutboxEvent.objects.filter(Q(topic=topic) | Q(aggregate_id=str(contract.pk)), published_at__isnull=True)
    eventkit.wait_until(lambda: not backlog.exists(), timeout=120, message="backlog drained")
    stop.set()
    worker.join(30)
    assert OutboxEvent.objects.filter(aggregate_id=str(contract.pk), published_at__isnull=False).exists()

    consume_all(servers, topic, 250, group="g-outage-2")
    effects = eventkit.effects()
    assert sorted(str(e[0]) for e in effects) == sorted(str(r.id) for r in before + during)
    eventkit.assert_per_aggregate_order([(e[1], e[2]) for e in effects[100:]])


@pytest.mark.kafka
@pytest.mark.slow
def test_three_partitions_two_relays_and_two_consumers_keep_each_contracts_order_through_a_rebalance(
    effects_table, kafka_broker, settings
):
    """Scaled out: 10,000 events over 500 contracts on a 3-partition topic, published by
    two relays at once and consumed by a group of two, one of them killed half-way so
    that the group rebalances. Nothing lost, nothing applied twice, no contract's events
    applied out of order."""
    from boissipay.transport import ensure_topics

    servers = kafka_broker.bootstrap_servers
    settings.KAFKA_TOPIC_PARTITIONS = 3
    topic = f"test.scale.{uuid.uuid4().hex[:8]}"
    ensure_topics(servers, topics=[topic])
    rows = eventkit.record_things(10_000, topic=topic, contracts=500)
    env = {**eventkit.subprocess_env(servers), "KAFKA_TOPIC_PARTITIONS": "3"}
    consumer_script = (
        "import django; django.setup();"
        "import tests.eventkit;"
        "from boissipay.consumer import ContextConsumer;"
        f"ContextConsumer('{TEST_CONTEXT}', group_id='g-scale', topics=['{topic}'], retry_delay=0.01).run()"
    )
    consumers = [subprocess.Popen([sys.executable, "-c", consumer_script], cwd=ROOT, env=env) for _ in range(2)]
    relays = [
        subprocess.Popen(
            [sys.executable, "manage.py", "relay_outbox", "--batch-size", "200"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        eventkit.wait_until(
            lambda: len(eventkit.effects()) >= 5_000, timeout=180, interval=0.05, message="half of the events"
        )
        consumers[0].kill()  # half-way: the group rebalances onto the other one
        consumers[0].wait()
        killed_at = len(eventkit.effects())
        eventkit.wait_until(
            lambda: len(eventkit.effects()) >= len(rows), timeout=240, interval=0.5, message="every event applied"
        )
        time.sleep(2)  # anything applied twice would show by now
    finally:
        for process in relays + consumers:
            process.terminate()
        for process in relays + consumers:
            process.wait(30)

    effects = eventkit.effects()
    applied = {str(e[0]) for e in effects}
    lost = len({str(r.id) for r in rows} - applied)
    twice = len(effects) - len(applied)
    out_of_order = 0
    last: dict[str, int] = {}
    for aggregate, n in ((e[1], e[2]) for e in effects):
        if n < last.get(aggregate, -1):
            out_of_order += 1
        last[aggregate] = max(n, last.get(aggregate, -1))
    print(
        f"\n3 partitions, 2 relays, 2 consumers (one killed at {killed_at:,} of {len(rows):,}): "
        f"lost {lost}, applied twice {twice}, out of order {out_of_order}"
    )
    assert killed_at < len(rows), "the kill must land half-way"
    assert (lost, twice, out_of_order) == (0, 0, 0)
    assert not OutboxEvent.objects.filter(topic=topic, published_at__isnull=True).exists()
