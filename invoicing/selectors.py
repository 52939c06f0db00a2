"""Queries of the invoicing context for its API and admin."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet

from invoicing.models import Invoice


def invoices_visible_to(client) -> QuerySet[Invoice]:
    invoices = Invoice.objects.exclude(number__isnull=True).select_related("corrects")  # corrects_number, per row
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


# --- aged receivables (issue 17) ---------------------------------------------------------------

AGE_BUCKETS = ("not_due", "1_30", "31_60", "61_90", "over_90")
AGE_LABELS = {
    "not_due": "Non échu",
    "1_30": "1 à 30 jours",
    "31_60": "31 à 60 jours",
    "61_90": "61 à 90 jours",
    "over_90": "Plus de 90 jours",
}


def age_bucket(due_date: dt.date, today: dt.date) -> str:
    late = (today - due_date).days
    if late <= 0:
        return "not_due"
    if late <= 30:
        return "1_30"
    if late <= 60:
        return "31_60"
    if late <= 90:
        return "61_90"
    return "over_90"


def aged_receivables(today: dt.date) -> list[dict]:
    """What each customer still owes on its invoices, per currency, by how late it is
    (days past the due date, Europe/Paris `today`): the invoice's total less what was
    paid outside the debit and what credit notes took off. Paid and cancelled invoices,
    and credit notes, owe nothing. Sorted by customer name."""
    owed = (
        Invoice.objects.filter(kind="invoice", status__in=["issued", "sent", "failed"])
        .exclude(number__isnull=True)
        .values_list("customer_id", "buyer", "currency", "due_date", "total_incl_tax", "paid_outside", "credited")
    )
    rows: dict[tuple, dict] = {}
    for customer_id, buyer, currency, due_date, total, paid_outside, credited in owed:
        left = total - paid_outside - credited
        if left <= 0:
            continue
        key = (str(customer_id), currency)
        row = rows.setdefault(
            key,
            {
                "customer_id": str(customer_id),
                "customer": buyer.get("legal_name", ""),
                "currency": currency,
                **dict.fromkeys(AGE_BUCKETS, 0),
                "total": 0,
                "invoices": 0,
            },
        )
        row[age_bucket(due_date, today)] += left
        row["total"] += left
        row["invoices"] += 1
    return sorted(rows.values(), key=lambda row: (row["customer"].casefold(), row["currency"]))
