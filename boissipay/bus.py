"""The handler registry and the inbox-guarded delivery every handler goes through.

Contexts register handlers with `@handles(event_type, context=...)`. Whether a context's
handlers are fed from the outbox by the event dispatcher (`boissipay.dispatcher`, a
process of its own, never a client's request) or by a Kafka consumer group is
configuration (`settings.EVENT_FEED`); the same `deliver_batch()` runs in both cases, so
an event is applied at most once per handler whichever path brought it.

A handler declared with `batch=True` takes a list of messages and applies them together
(one statement for many rows); the others take one message at a time. Either way a batch
is one transaction with its inbox rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from boissipay import actor, logs
from boissipay.events import EventMessage
from boissipay.models import DeadLetter, OutboxEvent


@dataclass(frozen=True)
class Handler:
    name: str
    context: str
    event_type: str
    func: Callable
    batch: bool = False

    def apply(self, messages: list[EventMessage]) -> None:
        """Logs written meanwhile carry the event's id and request id (boissipay.logs);
        a batch's, those of its first event and how many follow. What the handler changes
        is done by the system, in the handler's name: its events say so, and so does the
        audit trail of a service it calls with a reason (`@gives_reason`). No audit session
        is opened for every event: it would prefix each statement of every handler, while
        most write only read models (ADR 0031)."""
        with actor.acting_as(actor.system(f"handler {self.context}.{self.func.__name__}")):
            if self.batch:
                first = messages[0]
                more = f"+{len(messages) - 1}" if len(messages) > 1 else ""
                with logs.handling(event=f"{first.id}{more}", request=first.request_id):
                    self.func(messages)
            else:
                for message in messages:
                    with logs.handling(event=message.id, request=message.request_id):
                        self.func(message)


_handlers: dict[str, list[Handler]] = defaultdict(list)


def handles(*event_types: str, context: str, batch: bool = False) -> Callable:
    """Register the decorated function as `context`'s handler of each of `event_types`.
    With `batch=True` it is called with a list of messages (in outbox order), else with
    one message at a time."""

    def register(func: Callable) -> Callable:
        name = f"{func.__module__}.{func.__qualname__}"
        for event_type in event_types:
            if not any(handler.name == name for handler in _handlers[event_type]):
                _handlers[event_type].append(Handler(name, context, event_type, func, batch))
        return func

    return register


def handler_named(name: str) -> Handler | None:
    return next((h for hs in _handlers.values() for h in hs if h.name == name), None)


def handlers_for(event_type: str, *, context: str | None = None) -> list[Handler]:
    return [h for h in _handlers.get(event_type, []) if context is None or h.context == context]


def deliver(handler: Handler, message: EventMessage) -> bool:
    """Apply one message with `handler` (see `deliver_batch`); False when it had already
    been applied by this handler."""
    return deliver_batch(handler, [message]) == 1


# The inbox rows of a batch in one statement; the conflicts are the events this handler
# has already applied, left out of what it is given.
_CLAIM_INBOX = """
INSERT INTO boissipay_inboxentry (handler, event_id, event_type, processed_at)
SELECT %s, event_id, event_type, now() FROM unnest(%s::uuid[], %s::text[]) AS fed(event_id, event_type)
ON CONFLICT (handler, event_id) DO NOTHING
RETURNING event_id
"""


def deliver_batch(handler: Handler, messages: list[EventMessage]) -> int:
    """Apply `messages` with `handler` in one transaction (a savepoint inside a caller's)
    guarded by the inbox: each event is applied at most once per handler, whichever path
    brought it and however often. Returns how many were applied (new to this handler).

    Any exception from the handler rolls back its changes and the batch's inbox rows."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM_INBOX, [handler.name, [str(m.id) for m in messages], [m.type for m in messages]])
            new = {str(row[0]) for row in cursor.fetchall()}
        fresh = [message for message in messages if str(message.id) in new]
        if fresh:
            handler.apply(fresh)
    return len(fresh)


def message_from_outbox(row: OutboxEvent) -> EventMessage:
    return EventMessage(
        id=row.id,
        type=row.event_type,
        version=row.schema_version,
        source=row.topic,
        aggregate_id=row.aggregate_id,
        occurred_at=row.occurred_at,
        data=row.payload,
        request_id=row.request_id,
    )


def inprocess_handlers(event_type: str) -> list[Handler]:
    """The handlers the event dispatcher feeds (their context's EVENT_FEED is "inprocess")."""
    return [h for h in handlers_for(event_type) if settings.EVENT_FEED.get(h.context) == "inprocess"]


def dead_letter(handler_name: str, message, *, error: str, attempts: int, partition=None, offset=None) -> None:
    """Set aside `handler_name`'s copy of `message`, which kept failing, for staff to
    inspect and replay (admin); the other events keep flowing."""
    DeadLetter.objects.get_or_create(
        handler=handler_name,
        event_id=message.id,
        replayed_at=None,
        resolved_at=None,
        defaults={
            "event_type": message.type,
            "source": message.source if partition is not None else "inprocess",
            "aggregate_id": message.aggregate_id,
            "occurred_at": message.occurred_at,
            "payload": message.data,
            "schema_version": message.version,
            "kafka_partition": partition,
            "kafka_offset": offset,
            "error": error[:5000],
            "attempts": attempts,
        },
    )
