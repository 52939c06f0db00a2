"""Housekeeping tasks of the shared kernel (thin: they call services)."""

import datetime as dt

from celery import shared_task
from django.conf import settings

from boissipay import services


@shared_task(name="boissipay.purge_idempotency_records", time_limit=3600)
def purge_idempotency_records() -> int:
    """Daily: forget the answers to client writes older than IDEMPOTENCY_RETENTION_HOURS."""
    return services.purge_idempotency_records(older_than=dt.timedelta(hours=settings.IDEMPOTENCY_RETENTION_HOURS))
