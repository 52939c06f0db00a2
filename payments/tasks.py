"""Celery tasks of payments: thin, each calls one service."""

from celery import shared_task

from boissipay.task_policy import bounded
from payments import services


@shared_task(name="payments.collect_due_payments", **bounded(minutes=30))
def collect_due_payments() -> dict:
    """Beat's daily job: hand the payments due today (or earlier) to the gateway."""
    return services.submit_due_payments()
