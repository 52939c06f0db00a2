"""Celery tasks of payments: thin, each calls one service."""

from celery import shared_task

from payments import services


@shared_task(name="payments.collect_due_payments")
def collect_due_payments() -> dict:
    """Beat's daily job: hand the payments due today (or earlier) to the gateway."""
    return services.submit_due_payments()
