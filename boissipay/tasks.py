"""Housekeeping tasks of the shared kernel (thin: they call services)."""

import datetime as dt

from celery import shared_task
from django.conf import settings

from boissipay import services
from boissipay.task_policy import bounded


@shared_task(name="boissipay.purge_idempotency_records", **bounded(minutes=60))
def purge_idempotency_records() -> int:
    """Daily: forget the answers to client writes older than IDEMPOTENCY_RETENTION_HOURS."""
    return services.purge_idempotency_records(older_than=dt.timedelta(hours=settings.IDEMPOTENCY_RETENTION_HOURS))


@shared_task(name="boissipay.purge_event_records", **bounded(minutes=60))
def purge_event_records() -> dict:
    """Daily: forget the events everyone has had (outbox) and the proof of events applied
    (inbox) once older than OUTBOX_RETENTION_DAYS and INBOX_RETENTION_DAYS."""
    purged = services.purge_event_records(
        outbox_older_than=dt.timedelta(days=settings.OUTBOX_RETENTION_DAYS),
        inbox_older_than=dt.timedelta(days=settings.INBOX_RETENTION_DAYS),
    )
    return {"outbox": purged.outbox, "inbox": purged.inbox}
