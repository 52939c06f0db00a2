"""Commands of the shared kernel: API keys."""

from __future__ import annotations

import datetime as dt
import uuid

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


def replay_dead_letter(*, dead_letter_id: int) -> bool:
    """Apply a dead-lettered event again with its handler. Returns True when it applied
    (or had been applied meanwhile) and marks the letter replayed; on a new failure the
    letter stays open with the new error. Raises DeadLetter.DoesNotExist."""
    from boissipay import bus
    from boissipay.models import DeadLetter

    with transaction.atomic():
        letter = DeadLetter.objects.select_for_update().get(pk=dead_letter_id, replayed_at__isnull=True)
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
        letter.save(update_fields=["replayed_at"])
        return True


def purge_idempotency_records(*, older_than: dt.timedelta, batch_size: int = 5_000) -> int:
    """Delete the kept answers to client writes older than `older_than` (they hold whole
    response bodies with customer data), a batch per short transaction so the hot table
    is never locked for long. A retry after that finds no answer and is decided again:
    bookings stay counted once by their external reference. Returns how many went."""
    from django.db import connection

    from boissipay.models import IdempotencyRecord

    cutoff = timezone.now() - older_than
    table = IdempotencyRecord._meta.db_table
    deleted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE id IN "
                f"(SELECT id FROM {table} WHERE created_at < %s ORDER BY created_at LIMIT %s)",
                [cutoff, batch_size],
            )
            deleted += cursor.rowcount
            if cursor.rowcount < batch_size:
                return deleted
