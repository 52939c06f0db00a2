"""The relay's claim on real PostgreSQL: which rows it leases, and which it holds back so
that each contract's events stay in order with several relays at once. No broker needed:
claiming never touches Kafka. Also the hand-built CloudEvents envelope."""

import datetime as dt
import json
import threading
import uuid

import psycopg
import pytest
from cloudevents.core.bindings.kafka import to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from django.db import connection

from boissipay import transport
from boissipay.models import OutboxEvent
from boissipay.relay import ClaimedRow, OutboxRelay
from tests import eventkit


def relay(batch_size: int = 100) -> OutboxRelay:
    return OutboxRelay(servers="unused:0", batch_size=batch_size)


def claimed_numbers(rows: list[ClaimedRow]) -> list[int]:
    """The test events' sequence numbers (payload `n`) of the claimed rows, in claim order."""
    return [json.loads(row.payload)["n"] for row in rows]


@pytest.fixture
def outbox(transactional_db):
    OutboxEvent.objects.all().delete()


def test_a_claim_leases_the_oldest_rows_in_order(outbox):
    eventkit.record_things(10, topic="t.claim", contracts=3)

    rows = relay(batch_size=4).claim()

    assert claimed_numbers(rows) == [0, 1, 2, 3]
    leased = OutboxEvent.objects.filter(leased_until__isnull=False).order_by("position")
    assert [r.payload["n"] for r in leased] == [0, 1, 2, 3]
    assert all(r.attempts == 1 for r in leased)


def test_a_second_relay_skips_every_contract_with_an_event_in_flight(outbox):
    eventkit.record_things(12, topic="t.claim", contracts=3)  # n % 3 is the contract
    first = relay(batch_size=2).claim()  # n 0, 1: contracts A and B are in flight

    second = relay(batch_size=100).claim()

    assert claimed_numbers(first) == [0, 1]
    assert claimed_numbers(second) == [2, 5, 8, 11]  # contract C only


def test_a_backing_off_row_holds_back_only_its_own_contract(outbox):
    rows = eventkit.record_things(9, topic="t.claim", contracts=3)
    OutboxEvent.objects.filter(pk=rows[1].pk).update(
        attempts=1, next_attempt_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5), last_error="down"
    )

    claimed = relay().claim()

    assert claimed_numbers(claimed) == [0, 2, 3, 5, 6, 8]


def test_an_expired_lease_is_claimed_again_before_the_later_events_of_its_contract(outbox):
    rows = eventkit.record_things(6, topic="t.claim", contracts=2)
    OutboxEvent.objects.filter(pk=rows[0].pk).update(
        attempts=1, leased_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    )

    claimed = relay().claim()

    assert claimed_numbers(claimed) == [0, 1, 2, 3, 4, 5]
    assert next(r for r in claimed if json.loads(r.payload)["n"] == 0).attempts == 2


def test_a_dead_lettered_row_does_not_hold_back_its_contract(outbox):
    rows = eventkit.record_things(4, topic="t.claim", contracts=1)
    OutboxEvent.objects.filter(pk=rows[0].pk).update(dead_lettered_at=dt.datetime.now(dt.UTC))

    assert claimed_numbers(relay().claim()) == [1, 2, 3]


def test_a_row_locked_by_another_transaction_holds_back_its_contract(outbox):
    rows = eventkit.record_things(6, topic="t.claim", contracts=2)  # A: 0, 2, 4; B: 1, 3, 5
    db = connection.settings_dict
    locked, release = threading.Event(), threading.Event()

    def hold_row_lock():
        conninfo = psycopg.conninfo.make_conninfo(
            dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"], host=db["HOST"], port=db["PORT"]
        )
        with psycopg.connect(conninfo) as other, other.transaction():
            other.execute("SELECT 1 FROM boissipay_outboxevent WHERE position = %s FOR UPDATE", [rows[0].pk])
            locked.set()
            release.wait(30)

    holder = threading.Thread(target=hold_row_lock)
    holder.start()
    try:
        assert locked.wait(30)
        claimed = relay().claim()
    finally:
        release.set()
        holder.join(30)

    assert claimed_numbers(claimed) == [1, 3, 5]
    assert not OutboxEvent.objects.filter(aggregate_id=rows[0].aggregate_id, leased_until__isnull=False).exists()


def test_a_claim_looks_past_a_long_run_of_rows_held_back(outbox):
    eventkit.record_things(30, topic="t.claim", contracts=1)  # contract A: n 0..29
    OutboxEvent.objects.filter(payload__n=0).update(
        attempts=1, leased_until=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    )
    later = eventkit.record_things(3, topic="t.claim", contracts=2, start=30)  # n 30 (A), 31 (B), 32 (A)
    OutboxEvent.objects.filter(pk=later[0].pk).update(aggregate_id=str(uuid.uuid4()))

    assert claimed_numbers(relay(batch_size=5).claim()) == [30, 31]


def test_the_envelope_is_the_one_the_cloudevents_library_writes():
    row = ClaimedRow(
        position=1,
        id=uuid.uuid4(),
        topic="boissipay.contracts.v1",
        aggregate_type="contract",
        aggregate_id=str(uuid.uuid4()),
        event_type="contracts.contract.subscribed",
        schema_version=2,
        payload='{"name": "Société Générale", "limit": 1.5, "lines": [1, 2]}',
        occurred_at=dt.datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=dt.UTC),
        attempts=1,
    )
    for occurred_at in (row.occurred_at, row.occurred_at.replace(microsecond=0)):
        for payload in (row.payload, {"name": "Société Générale", "n": 3}):
            sample = row._replace(occurred_at=occurred_at, payload=payload)
            expected = to_binary(
                CloudEvent(
                    attributes={
                        "id": str(sample.id),
                        "source": sample.topic,
                        "type": sample.event_type,
                        "time": sample.occurred_at,
                        "subject": sample.aggregate_id,
                        "datacontenttype": "application/json",
                        "dataschema": f"events/{sample.event_type}.v{sample.schema_version}.json",
                        "schemaversion": str(sample.schema_version),
                    },
                    data=sample.payload,
                ),
                JSONFormat(),
                key_mapper=lambda _, s=sample: s.aggregate_id.encode(),
            )

            key, value, headers = transport.encode_record(sample)

            assert headers == list(expected.headers.items())  # same names, order and bytes
            assert (key, value) == (expected.key, expected.value)
            decoded = transport.decode(headers, key, value)
            assert (decoded.id, decoded.version, decoded.occurred_at) == (sample.id, 2, sample.occurred_at)
