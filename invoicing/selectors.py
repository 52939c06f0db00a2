"""Queries of the invoicing context for its API and admin."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet

from invoicing.models import Invoice


def invoices_visible_to(client) -> QuerySet[Invoice]:
    invoices = Invoice.objects.exclude(number__isnull=True)
    if client.customer_id:
        invoices = invoices.filter(customer_id=client.customer_id)
    return invoices


def filter_invoices(
    invoices: QuerySet[Invoice], *, contract=None, period: str | None = None, status: str | None = None
) -> QuerySet[Invoice]:
    if contract:
        invoices = invoices.filter(contract_id=contract)
    if period:
        year, month = (int(part) for part in period.split("-"))
        invoices = invoices.filter(period=dt.date(year, month, 1))
    if status:
        invoices = invoices.filter(status=status)
    return invoices.order_by("-issue_date", "-number")
