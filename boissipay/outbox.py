"""`record(event)`: the one way a service publishes a domain event.

The event row is inserted in the caller's transaction (so a rollback records nothing);
after commit the in-process bus hands it to the local handlers."""

from django.db import transaction
from django.utils import timezone

from boissipay.events import DomainEvent, topic_for
from boissipay.models import OutboxEvent


def record(event: DomainEvent) -> OutboxEvent:
    """Append `event` to the outbox in the current transaction.

    Raises `TransactionManagementError` when called outside `transaction.atomic()`:
    an event written apart from its change could be lost or be a lie."""
    _require_transaction("record")
    from boissipay import bus

    has_local_handlers = bool(bus.inprocess_handlers(event.event_type))
    row = OutboxEvent.objects.create(
        topic=topic_for(event.context),
        aggregate_type=event.aggregate_type,
        aggregate_id=event.aggregate_id,
        event_type=event.event_type,
        schema_version=event.version,
        payload=event.payload(),
        # No in-process handler: nothing is owed locally. Otherwise the after-commit
        # delivery marks it, or the relay delivers it again later.
        dispatched_at=None if has_local_handlers else timezone.now(),
    )
    if has_local_handlers:
        # The row in memory is what the handlers need: no need to read it back.
        transaction.on_commit(lambda: bus.dispatch_after_commit(row), robust=True)
    return row


def record_query(event_class: type[DomainEvent], query: str, params: dict) -> list[int]:
    """`record()` for many events of one type built by the database, for set-based
    services such as the billing run: `query` selects one row per event, `(aggregate_id
    text, payload jsonb)`, in the order they are to be published; the payload must be what
    `event_class(...).payload()` gives (the context tests it). `params` are the query's
    named parameters. Same guarantees as `record()`: same transaction, after-commit local
    delivery. Returns the outbox positions, in order."""
    connection = _require_transaction("record_query")
    from boissipay import bus

    local = bool(bus.inprocess_handlers(event_class.event_type))
    outbox_params = {
        "outbox_topic": topic_for(event_class.context),
        "outbox_aggregate_type": event_class.aggregate_type,
        "outbox_event_type": event_class.event_type,
        "outbox_version": event_class.version,
        "outbox_local": local,
    }
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {OutboxEvent._meta.db_table} (id, topic, aggregate_type, aggregate_id, event_type,
                schema_version, payload, occurred_at, attempts, last_error, dispatched_at, dispatch_attempts)
            SELECT gen_random_uuid(), %(outbox_topic)s, %(outbox_aggregate_type)s, q.aggregate_id,
                   %(outbox_event_type)s, %(outbox_version)s, q.payload, now(), 0, '',
                   CASE WHEN %(outbox_local)s THEN NULL ELSE now() END, 0
            FROM ({query}) AS q(aggregate_id, payload)
            RETURNING position
            """,
            {**params, **outbox_params},
        )
        positions = sorted(row[0] for row in cursor.fetchall())
    if local and positions:
        # As record(): the in-process handlers get them after commit (or the relay, later).
        transaction.on_commit(lambda: [bus.dispatch_after_commit(p) for p in positions], robust=True)
    return positions


def _require_transaction(caller: str):
    """The current connection, or `TransactionManagementError` outside `atomic()`."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise transaction.TransactionManagementError(f"{caller}() must run inside the service's transaction")
    return connection
