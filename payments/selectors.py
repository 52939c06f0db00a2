"""Queries of the payments context for its API and admin."""

import datetime as dt

from django.db.models import QuerySet

from payments.models import Payment


def payments_visible_to(client) -> QuerySet[Payment]:
    payments = Payment.objects.all()
    if client.customer_id:
        payments = payments.filter(customer_id=client.customer_id)
    return payments


def filter_payments(payments: QuerySet[Payment], *, invoice=None, contract=None, status=None) -> QuerySet[Payment]:
    if invoice:
        payments = payments.filter(invoice_id=invoice)
    if contract:
        payments = payments.filter(contract_id=contract)
    if status:
        payments = payments.filter(status=status)
    return payments.order_by("-created_at", "-id")


# A debit not collected (yet, or for good): what an overdue invoice's payment may be.
UNCOLLECTED = ["pending", "submitted", "returned", "failed"]


def overdue(payments: QuerySet[Payment], today: dt.date) -> QuerySet[Payment]:
    """Debits not collected after the invoice's due date (Europe/Paris `today`)."""
    return payments.filter(status__in=UNCOLLECTED, original_due_date__lt=today)
