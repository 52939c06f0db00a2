"""Celery tasks of invoicing: thin, each calls one service."""

import logging

from celery import shared_task

from invoicing import services

logger = logging.getLogger(__name__)


@shared_task(name="invoicing.run_monthly_billing")
def run_monthly_billing(period: str | None = None) -> str:
    """Beat's job on the 1st of the month: invoice the month before (Europe/Paris)."""
    month = period or services.previous_period().strftime("%Y-%m")
    run = services.run_billing(period=month, trigger="beat", started_by="celery beat")
    return f"{run.pk} {run.status}"


@shared_task(name="invoicing.execute_billing_run")
def execute_billing_run(run_id: str) -> str:
    """A run started from the admin or the API."""
    run = services.execute_billing_run(run_id=run_id)
    return f"{run.pk} {run.status}"


@shared_task(name="invoicing.send_invoices")
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


@shared_task(
    name="invoicing.send_invoice",
    autoretry_for=(Exception,),
    retry_backoff=30,
    retry_backoff_max=3600,
    max_retries=8,
)
def send_invoice(invoice_id: str, resend: bool = False) -> str:
    return str(services.send_invoice(invoice_id=invoice_id, resend=resend).status)
