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
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise transaction.TransactionManagementError("record() must run inside the service's transaction")
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


def record_all(events: list[DomainEvent]) -> list[OutboxEvent]:
    """`record()` for many events at once (one INSERT), for set-based services such as
    the billing run. Same guarantees: same transaction, after-commit local delivery."""
    if not events:
        return []
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise transaction.TransactionManagementError("record_all() must run inside the service's transaction")
    from boissipay import bus

    now = timezone.now()
    local = {event.event_type: bool(bus.inprocess_handlers(event.event_type)) for event in events}
    rows = OutboxEvent.objects.bulk_create(
        [
            OutboxEvent(
                topic=topic_for(event.context),
                aggregate_type=event.aggregate_type,
                aggregate_id=event.aggregate_id,
                event_type=event.event_type,
                schema_version=event.version,
                payload=event.payload(),
                dispatched_at=None if local[event.event_type] else now,
            )
            for event in events
        ]
    )
    positions = [row.pk for row in rows if local[row.event_type]]
    if positions:
        transaction.on_commit(lambda: [bus.dispatch_after_commit(p) for p in positions], robust=True)
    return rows
