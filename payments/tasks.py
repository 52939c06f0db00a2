"""Celery tasks of payments: thin, each calls one service."""

from celery import shared_task

from boissipay.task_policy import bounded
from payments import services


@shared_task(name="payments.collect_due_payments", **bounded(minutes=30))
def collect_due_payments() -> dict:
    """Beat's daily job: hand the payments due today (or earlier) to the gateway."""
    return services.submit_due_payments()


@shared_task(name="payments.send_notice", **bounded(minutes=5, retries=8, retry_on=(Exception,)))
def send_notice(payment_id: str, kind: str, key: str, context: dict) -> bool:
    """E-mail the customer about its payment (payments.notices); retried until the mail
    server takes it, sent once."""
    from payments import notices

    return notices.send(payment_id, kind, key, context)
