"""Commands of the shared kernel: API keys, dead-letter replays, and the retention purges."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from boissipay.api.auth import SCOPES, digest, generate_key
from boissipay.models import ApiKey


@transaction.atomic
def issue_api_key(*, name: str, scopes: list[str], customer_id: uuid.UUID | str | None = None) -> tuple[ApiKey, str]:
    """Create a key for a client system. Returns the row and the raw key, which is shown
    once and never stored. Raises ValidationError on an unknown scope."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValidationError(f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(SCOPES)}.")
    if customer_id is not None and not import_string(settings.CUSTOMER_EXISTS)(customer_id):
        raise ValidationError(f"No customer {customer_id}: a key can only be restricted to a known customer.")
    raw = generate_key()
    key = ApiKey.objects.create(
        name=name, prefix=raw[:10], digest=digest(raw), scopes=sorted(set(scopes)), customer_id=customer_id
    )
    return key, raw


@transaction.atomic
def revoke_api_key(*, key_id: uuid.UUID | str) -> ApiKey:
    key = ApiKey.objects.select_for_update().get(pk=key_id)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


def replay_dead_letter(*, dead_letter_id: int, replayed_by: str = "") -> bool:
    """Apply a dead-lettered event again with its handler. Returns True when it applied
    (or had been applied meanwhile) and marks the letter replayed, by whom; on a new
    failure the letter stays open with the new error. Raises DeadLetter.DoesNotExist for
    a letter that is not open."""
    from boissipay import bus
    from boissipay.models import DeadLetter

    with transaction.atomic():
        letter = DeadLetter.objects.select_for_update().get(
            pk=dead_letter_id, replayed_at__isnull=True, resolved_at__isnull=True
        )
        handler = bus.handler_named(letter.handler)
        if handler is None:
            letter.error = f"no handler named {letter.handler} in this version"
            letter.save(update_fields=["error"])
            return False
        try:
            bus.deliver(handler, letter.as_message())
        except Exception as exc:
            letter.attempts += 1
            letter.error = repr(exc)[:5000]
            letter.save(update_fields=["attempts", "error"])
            return False
        letter.replayed_at = timezone.now()
        letter.replayed_by = replayed_by[:150]
        letter.save(update_fields=["replayed_at", "replayed_by"])
        return True


def resolve_dead_letter(*, dead_letter_id: int, reason: str, resolved_by: str) -> bool:
    """Close an open dead letter without replaying it (the event is obsolete, or staff
    handled it by hand), keeping why and who. Returns False when it was not open.
    Raises DomainError 400 without a reason or an author."""
    from boissipay.errors import DomainError
    from boissipay.models import DeadLetter

    reason, resolved_by = reason.strip(), resolved_by.strip()
    if not reason or not resolved_by:
        raise DomainError("validation_error", "Say why the letter is closed, and who closes it.", status_code=400)
    with transaction.atomic():
        letter = (
            DeadLetter.objects.select_for_update()
            .filter(pk=dead_letter_id, replayed_at__isnull=True, resolved_at__isnull=True)
            .first()
        )
        if letter is None:
            return False
        letter.resolved_at = timezone.now()
        letter.resolved_by = resolved_by[:150]
        letter.resolution = reason[:500]
        letter.save(update_fields=["resolved_at", "resolved_by", "resolution"])
        return True


def purge_idempotency_records(*, older_than: dt.timedelta, batch_size: int = 5_000) -> int:
    """Delete the kept answers to client writes older than `older_than` (they hold whole
    response bodies with customer data), a batch per short transaction so the hot table
    is never locked for long. A retry after that finds no answer and is decided again:
    bookings stay counted once by their external reference. Returns how many went."""
    from boissipay.models import IdempotencyRecord

    table = IdempotencyRecord._meta.db_table
    return _purge_in_batches(
        f"DELETE FROM {table} WHERE id IN "
        f"(SELECT id FROM {table} WHERE created_at < %(cutoff)s ORDER BY created_at LIMIT %(batch)s)",
        cutoff=timezone.now() - older_than,
        batch_size=batch_size,
        pause_seconds=settings.RETENTION_PURGE_PAUSE_MS / 1000,
    )


@dataclass(frozen=True)
class EventRecordsPurged:
    outbox: int
    inbox: int


def purge_event_records(
    *,
    outbox_older_than: dt.timedelta,
    inbox_older_than: dt.timedelta,
    batch_size: int = 5_000,
    pause_seconds: float | None = None,
) -> EventRecordsPurged:
    """Delete the outbox rows published to Kafka and fed to every in-process handler
    before `outbox_older_than`, and the inbox rows of events applied before
    `inbox_older_than`, a batch per short transaction (the hot tables are never locked
    for long). Never touches an event still owed to anyone (unpublished, undispatched,
    dead-lettered) nor the dead letters themselves. An inbox row must outlive every
    redelivery of its event: keep INBOX_RETENTION_DAYS above the Kafka topics' retention.
    Between batches it pauses `pause_seconds` (RETENTION_PURGE_PAUSE_MS): the purchases
    running meanwhile keep their latency (benchmarks/retention.py). Returns how many rows
    of each went."""
    from boissipay.models import InboxEntry, OutboxEvent

    now = timezone.now()
    outbox, inbox = OutboxEvent._meta.db_table, InboxEntry._meta.db_table
    pause = settings.RETENTION_PURGE_PAUSE_MS / 1000 if pause_seconds is None else pause_seconds
    return EventRecordsPurged(
        outbox=_purge_in_batches(
            f"DELETE FROM {outbox} WHERE position IN (SELECT position FROM {outbox} "
            "WHERE published_at < %(cutoff)s AND dispatched_at < %(cutoff)s AND dead_lettered_at IS NULL "
            "ORDER BY position LIMIT %(batch)s)",
            cutoff=now - outbox_older_than,
            batch_size=batch_size,
            pause_seconds=pause,
        ),
        inbox=_purge_in_batches(
            f"DELETE FROM {inbox} WHERE id IN "
            f"(SELECT id FROM {inbox} WHERE processed_at < %(cutoff)s ORDER BY id LIMIT %(batch)s)",
            cutoff=now - inbox_older_than,
            batch_size=batch_size,
            pause_seconds=pause,
        ),
    )


def _purge_in_batches(statement: str, *, cutoff: dt.datetime, batch_size: int, pause_seconds: float = 0) -> int:
    """Run the DELETE `statement` (%(cutoff)s, %(batch)s) one short transaction at a time,
    pausing between them, until a batch comes back short; returns how many rows went."""
    from django.db import connection

    deleted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, {"cutoff": cutoff, "batch": batch_size})
            deleted += cursor.rowcount
            if cursor.rowcount < batch_size:
                return deleted
        time.sleep(pause_seconds)
