"""Celery tasks of invoicing: thin, each calls one service."""

import logging

from celery import shared_task

from boissipay.task_policy import bounded
from invoicing import services

logger = logging.getLogger(__name__)


@shared_task(name="invoicing.run_monthly_billing", **bounded(minutes=120))
def run_monthly_billing(period: str | None = None) -> str:
    """Beat's job on the 1st of the month: invoice the month before (Europe/Paris)."""
    month = period or services.previous_period().strftime("%Y-%m")
    run = services.run_billing(period=month, trigger="beat", started_by="celery beat")
    return f"{run.pk} {run.status}"


@shared_task(name="invoicing.execute_billing_run", **bounded(minutes=120))
def execute_billing_run(run_id: str) -> str:
    """A run started from the admin or the API."""
    run = services.execute_billing_run(run_id=run_id)
    return f"{run.pk} {run.status}"


@shared_task(name="invoicing.send_invoices", **bounded(minutes=30))
def send_invoices(invoice_ids: list[str]) -> int:
    """Send a run's chunk of invoices; one that fails is retried on its own."""
    sent = 0
    for invoice_id in invoice_ids:
        try:
            services.send_invoice(invoice_id=invoice_id)
            sent += 1
        except Exception:
            logger.exception("sending invoice %s failed; retrying it on its own", invoice_id)
            send_invoice.delay(invoice_id)
    return sent


# Any failure to send (the SMTP server refusing, a PDF that failed) is retried, longer.
@shared_task(name="invoicing.send_invoice", **bounded(minutes=5, retries=8, retry_on=(Exception,)))
def send_invoice(invoice_id: str, resend: bool = False) -> str:
    return str(services.send_invoice(invoice_id=invoice_id, resend=resend).status)


@shared_task(name="invoicing.report_platform_status", **bounded(minutes=2, retries=8, retry_on=(Exception,)))
def report_platform_status(invoice_id: str, status: str, on: str) -> str:
    """Tell the e-invoicing platform an invoice is paid (or its payment came back)."""
    import datetime as dt

    services.report_platform_status(invoice_id=invoice_id, status=status, on=dt.date.fromisoformat(on))
    return status
