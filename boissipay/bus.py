"""The in-process event bus and the inbox-guarded delivery every handler goes through.

Contexts register handlers with `@handles(event_type, context=...)`. Whether a context's
handlers are fed after commit in the publishing process or by a Kafka consumer group is
configuration (`settings.EVENT_FEED`); the same `deliver()` runs in both cases, so an
event is applied at most once per handler whichever path brought it."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from boissipay.events import EventMessage
from boissipay.models import OutboxEvent

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Handler:
    name: str
    context: str
    event_type: str
    func: Callable[[EventMessage], None]


_handlers: dict[str, list[Handler]] = defaultdict(list)


def handles(*event_types: str, context: str) -> Callable:
    """Register the decorated function as `context`'s handler of each of `event_types`."""

    def register(func: Callable[[EventMessage], None]) -> Callable[[EventMessage], None]:
        name = f"{func.__module__}.{func.__qualname__}"
        for event_type in event_types:
            if not any(handler.name == name for handler in _handlers[event_type]):
                _handlers[event_type].append(Handler(name, context, event_type, func))
        return func

    return register


def handler_named(name: str) -> Handler | None:
    return next((h for hs in _handlers.values() for h in hs if h.name == name), None)


def handlers_for(event_type: str, *, context: str | None = None) -> list[Handler]:
    return [h for h in _handlers.get(event_type, []) if context is None or h.context == context]


def deliver(handler: Handler, message: EventMessage) -> bool:
    """Apply `message` with `handler` in one transaction guarded by the inbox.

    Returns False when this handler had already applied this event (nothing done).
    Any exception from the handler rolls back both its changes and the inbox row."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO boissipay_inboxentry (handler, event_id, event_type, processed_at) "
                "VALUES (%s, %s, %s, now()) ON CONFLICT (handler, event_id) DO NOTHING RETURNING id",
                [handler.name, message.id, message.type],
            )
            if cursor.fetchone() is None:
                return False
        handler.func(message)
    return True


def message_from_outbox(row: OutboxEvent) -> EventMessage:
    return EventMessage(
        id=row.id,
        type=row.event_type,
        version=row.schema_version,
        source=row.topic,
        aggregate_id=row.aggregate_id,
        occurred_at=row.occurred_at,
        data=row.payload,
    )


def inprocess_handlers(event_type: str) -> list[Handler]:
    return [h for h in handlers_for(event_type) if settings.EVENT_FEED.get(h.context) == "inprocess"]


def dispatch_after_commit(event: OutboxEvent | int) -> None:
    """Hand a just-committed outbox event (the row, or its position) to the in-process handlers.

    A handler's failure is logged and never reaches the publisher, whose work is already
    committed; the event stays in the outbox, from which it is delivered again.

    The handlers and the outbox mark share one transaction (one commit, not one per
    handler plus one for the mark); each handler still runs in its own savepoint, so a
    failing handler rolls back only its own changes and inbox row."""
    row = event if isinstance(event, OutboxEvent) else OutboxEvent.objects.filter(pk=event).first()
    if row is None:
        return
    handlers = inprocess_handlers(row.event_type)
    if not handlers:
        return
    message = message_from_outbox(row)
    all_applied = True
    with transaction.atomic():
        for handler in handlers:
            try:
                deliver(handler, message)
            except Exception:
                all_applied = False
                logger.exception("in-process handler %s failed on event %s; it will be retried", handler.name, row.id)
        if all_applied:
            OutboxEvent.objects.filter(pk=row.pk).update(dispatched_at=timezone.now())
