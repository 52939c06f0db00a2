"""Outbox relay benchmark: `.venv/bin/python benchmarks/relay.py [--events 100000 --contracts 1000]`.

1. Records N events across C contracts in the outbox (bulk), relays them to the broker
   and reports relay events/s.
2. Baseline, same run, same broker: a bare kafka-python producer (acks=all) sends the
   same messages (same keys, values, CloudEvents headers) to another topic.
3. Lag: with the relay and a consumer group running, events are recorded one
   transaction at a time; commit-to-handled lag p50/p99 is measured at the handler.
   Recording starts once the consumer has its assignment and has polled, so the
   one-off group join (about 3 s on the embedded broker) is not counted as lag.

Runs on its own database (boissipay_bench) and its own embedded broker unless
KAFKA_BOOTSTRAP_SERVERS is set. Not part of the test suite."""

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("BOISSIPAY_ALLOW_DEV_SECRET", "1")
os.environ.setdefault("BOISSIPAY_DB_NAME", "boissipay_bench")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from kafka import KafkaProducer  # noqa: E402

from boissipay import bus, transport  # noqa: E402
from boissipay.consumer import ContextConsumer  # noqa: E402
from boissipay.models import OutboxEvent  # noqa: E402
from boissipay.relay import OutboxRelay  # noqa: E402
from devtools.embedded.kafka import LocalBroker  # noqa: E402

LAGS: list[float] = []


@bus.handles("bench.contract.changed", context="bench")
def note_lag(message):
    LAGS.append((timezone.now() - message.occurred_at).total_seconds())


def payload(n: int, contract: str) -> dict:
    # About the size of a contract event carrying the contract's state.
    return {
        "n": n,
        "contract_id": contract,
        "contract": {
            "reference": f"CTR-{n:08d}",
            "credit_limit": 5_000_000,
            "currency": "EUR",
            "status": "active",
            "starts_on": "2026-01-01",
            "ends_on": "2027-12-31",
            "mandate": {"reference": f"UMR-{n:08d}", "iban_masked": "FR14*******************2606", "status": "active"},
            "subscribers": [],
            "version": n,
        },
    }


def record_bulk(topic: str, events: int, contracts: list[str]) -> None:
    OutboxEvent.objects.all().delete()
    rows = [
        OutboxEvent(
            topic=topic,
            aggregate_type="contract",
            aggregate_id=contracts[i % len(contracts)],
            event_type="bench.contract.changed",
            payload=payload(i, contracts[i % len(contracts)]),
            dispatched_at=timezone.now(),
        )
        for i in range(events)
    ]
    with transaction.atomic():
        OutboxEvent.objects.bulk_create(rows, batch_size=10_000)


def bare_producer_rate(servers: str, topic: str, rows: list[OutboxEvent], *, tuned: bool = False) -> float:
    """A bare producer's rate: kafka-python's defaults (acks=all), or with the relay's own
    producer settings (`tuned`), so that the relay's tuning is not counted as its merit."""
    messages = [transport.encode(row) for row in rows]
    producer = transport.make_producer(servers) if tuned else KafkaProducer(bootstrap_servers=servers, acks="all")
    started = time.perf_counter()
    for message in messages:
        producer.send(topic, key=message.key, value=message.value, headers=list(message.headers.items()))
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return len(messages) / elapsed


def measure_lag(servers: str, topic: str, contracts: list[str], count: int, rate: float) -> None:
    stop = threading.Event()
    relay = OutboxRelay(servers=servers, batch_size=500)
    consumer = ContextConsumer("bench", servers=servers, group_id=f"bench-{uuid.uuid4().hex[:6]}", topics=[topic])
    # Measure from a joined consumer: the group join (about 3 s on the embedded broker)
    # happens once per consumer start, not per event.
    deadline = time.monotonic() + 60
    while not consumer.consumer.assignment() and time.monotonic() < deadline:
        consumer.poll_once(timeout_ms=100)
    consumer.poll_once(timeout_ms=100)  # one poll with the assignment: fetch positions set

    def run(target):
        try:
            target()
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(lambda: relay.run(stop=stop, idle_sleep=0.005),)),
        threading.Thread(target=run, args=(lambda: [consumer.poll_once(50) for _ in iter(stop.is_set, True)],)),
    ]
    for thread in threads:
        thread.start()
    from boissipay.events import DomainEvent
    from boissipay.outbox import record

    class BenchEvent(DomainEvent):
        context = "bench"
        event_type = "bench.contract.changed"

        def __init__(self, contract_id, n):
            object.__setattr__(self, "contract_id", contract_id)
            object.__setattr__(self, "n", n)

        def payload(self):
            return payload(self.n, self.contract_id)

    import boissipay.events as events_module

    original = events_module.topic_for
    import boissipay.outbox as outbox_module

    outbox_module.topic_for = lambda context: topic
    try:
        for i in range(count):
            with transaction.atomic():
                record(BenchEvent(contracts[i % len(contracts)], i))
            time.sleep(1 / rate)
        deadline = time.monotonic() + 60
        while len(LAGS) < count and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        outbox_module.topic_for = original
        stop.set()
        for thread in threads:
            thread.join(30)
        consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--contracts", type=int, default=1_000)
    parser.add_argument("--lag-events", type=int, default=2_000)
    parser.add_argument("--lag-rate", type=float, default=200.0, help="events recorded per second for the lag phase")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    broker = None
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not servers:
        broker = LocalBroker().start()
        servers = broker.bootstrap_servers
    relay_topic, bare_topic, lag_topic = (f"bench.{name}.{uuid.uuid4().hex[:6]}" for name in ("relay", "bare", "lag"))
    transport.ensure_topics(servers, topics=[relay_topic, bare_topic, f"{bare_topic}.tuned", lag_topic])
    contracts = [str(uuid.uuid4()) for _ in range(args.contracts)]
    try:
        print(f"recording {args.events:,} events across {args.contracts:,} contracts ...", flush=True)
        record_bulk(relay_topic, args.events, contracts)
        relay = OutboxRelay(servers=servers)
        started = time.perf_counter()
        stats = relay.run(once=True)
        relay_elapsed = time.perf_counter() - started
        relay_rate = stats.published / relay_elapsed
        rows = list(OutboxEvent.objects.order_by("position"))
        assert stats.published == args.events, stats
        print(f"relay:               {stats.published:,} events in {relay_elapsed:.1f} s = {relay_rate:,.0f} events/s")

        bare_rate = bare_producer_rate(servers, bare_topic, rows)
        print(f"bare kafka-python:   {bare_rate:,.0f} events/s (same messages, same broker, acks=all)")
        print(f"relay / bare:        {relay_rate / bare_rate:.0%} (target >= 50%)")
        tuned_rate = bare_producer_rate(servers, f"{bare_topic}.tuned", rows, tuned=True)
        print(f"bare, relay settings: {tuned_rate:,.0f} events/s (the same producer settings as the relay's)")
        print(f"relay / bare tuned:  {relay_rate / tuned_rate:.0%}")

        OutboxEvent.objects.all().delete()
        measure_lag(servers, lag_topic, contracts, args.lag_events, args.lag_rate)
        lags = sorted(LAGS)
        p50 = statistics.median(lags) * 1000
        p99 = lags[int(len(lags) * 0.99) - 1] * 1000
        print(
            f"commit-to-handled:   p50 {p50:.0f} ms, p99 {p99:.0f} ms over {len(lags):,} events "
            f"recorded at {args.lag_rate:.0f}/s (relay -> Kafka -> consumer group -> inbox -> handler; "
            "measured once the consumer had joined its group and polled, so the one-off join is not counted)"
        )
    finally:
        if broker:
            broker.stop()


if __name__ == "__main__":
    main()
