"""What every Celery task of Boissipay declares: how it is retried and how long it may run.

A task is retried on a passing fault (the database or the broker briefly out of reach):
every task calls one idempotent service (a billing run per period, a payment submitted
once, a purge), so running it again is safe. A business refusal is not retried. Each
task is bounded: a soft limit (SoftTimeLimitExceeded, the transaction rolls back) then a
hard one. Time limits are enforced by the prefork pool, the production default; the
thread pool of local runs does not enforce them (Celery's own limitation)."""

from __future__ import annotations

from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerUnreachable

PASSING_FAULTS = (OperationalError, InterfaceError, BrokerUnreachable, ConnectionError, TimeoutError)


def bounded(*, minutes: int, retries: int = 5, retry_on: tuple[type[BaseException], ...] = PASSING_FAULTS) -> dict:
    """`@shared_task` options: retried up to `retries` times with a growing, jittered pause
    on `retry_on`; soft time limit of `minutes`, hard limit a minute later."""
    return {
        "autoretry_for": retry_on,
        "max_retries": retries,
        "retry_backoff": 30,
        "retry_backoff_max": 3600,
        "retry_jitter": True,
        "soft_time_limit": minutes * 60,
        "time_limit": minutes * 60 + 60,
    }
