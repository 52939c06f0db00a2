"""`record(event)`: the one way a service publishes a domain event.

The event row is inserted in the caller's transaction (so a rollback records nothing).
Nothing runs after commit in the caller's process: the relay sends the row to Kafka and
the event dispatcher (boissipay.dispatcher) feeds the in-process handlers."""

import json

from django.db import transaction

from boissipay import actor, logs
from boissipay.events import DomainEvent, topic_for
from boissipay.models import OutboxEvent

# One plain INSERT (this runs in every purchase): the row is marked dispatched at once
# when no in-process handler is owed it.
_RECORD = f"""
INSERT INTO {OutboxEvent._meta.db_table} (id, topic, aggregate_type, aggregate_id, event_type, schema_version,
    payload, occurred_at, attempts, last_error, dispatched_at, dispatch_attempts, request_id)
VALUES (gen_random_uuid(), %s, %s, %s, %s, %s, %s::jsonb, now(), 0, '',
        CASE WHEN %s::boolean THEN NULL ELSE now() END, 0, %s)
RETURNING position
"""


def record(event: DomainEvent) -> int:
    """Append `event` to the outbox in the current transaction; returns its position.

    The payload also names who acted (`actor`: a staff user, an API key or the system,
    see boissipay.actor).

    Raises `TransactionManagementError` when called outside `transaction.atomic()`:
    an event written apart from its change could be lost or be a lie."""
    _require_transaction("record")
    from boissipay import bus, db

    local = bool(bus.inprocess_handlers(event.event_type))
    payload = event.payload()
    payload["actor"] = actor.current().payload()
    row = db.fetch_one(
        _RECORD,
        [
            topic_for(event.context),
            event.aggregate_type,
            event.aggregate_id,
            event.event_type,
            event.version,
            json.dumps(payload),
            local,
            logs.request_id.get(),
        ],
    )
    assert row is not None  # INSERT ... RETURNING gives its row
    return row[0]


def record_query(event_class: type[DomainEvent], query: str, params: dict) -> list[int]:
    """`record()` for many events of one type built by the database, for set-based
    services such as the billing run: `query` selects one row per event, `(aggregate_id
    text, payload jsonb)`, in the order they are to be published; the payload must be what
    `event_class(...).payload()` gives (the context tests it); the actor is added to it
    as `record()` adds it. `params` are the query's
    named parameters. Same guarantees as `record()`: same transaction, then the relay and
    the dispatcher. Returns the outbox positions, in order."""
    connection = _require_transaction("record_query")
    from boissipay import bus

    local = bool(bus.inprocess_handlers(event_class.event_type))
    outbox_params = {
        "outbox_topic": topic_for(event_class.context),
        "outbox_aggregate_type": event_class.aggregate_type,
        "outbox_event_type": event_class.event_type,
        "outbox_version": event_class.version,
        "outbox_local": local,
        "outbox_request_id": logs.request_id.get(),
        "outbox_actor": json.dumps({"actor": actor.current().payload()}),
    }
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {OutboxEvent._meta.db_table} (id, topic, aggregate_type, aggregate_id, event_type,
                schema_version, payload, occurred_at, attempts, last_error, dispatched_at, dispatch_attempts,
                request_id)
            SELECT gen_random_uuid(), %(outbox_topic)s, %(outbox_aggregate_type)s, q.aggregate_id,
                   %(outbox_event_type)s, %(outbox_version)s, q.payload || %(outbox_actor)s::jsonb, now(), 0, '',
                   CASE WHEN %(outbox_local)s THEN NULL ELSE now() END, 0, %(outbox_request_id)s
            FROM ({query}) AS q(aggregate_id, payload)
            RETURNING position
            """,
            {**params, **outbox_params},
        )
        return sorted(row[0] for row in cursor.fetchall())


def _require_transaction(caller: str):
    """The current connection, or `TransactionManagementError` outside `atomic()`."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise transaction.TransactionManagementError(f"{caller}() must run inside the service's transaction")
    return connection
