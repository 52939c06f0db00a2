"""Queries of the billing context for its API and admin."""

from __future__ import annotations

import datetime as dt

from django.db.models import F, QuerySet

from billing.models import ContractAccount, Operation
from boissipay.clock import PARIS


def accounts_visible_to(client) -> QuerySet[ContractAccount]:
    accounts = ContractAccount.objects.all()
    if client.customer_id:
        accounts = accounts.filter(customer_id=client.customer_id)
    return accounts


def operations_visible_to(client) -> QuerySet[Operation]:
    operations = Operation.objects.all()
    if client.customer_id:
        operations = operations.filter(customer_id=client.customer_id)
    return operations


def month_bounds(period: str) -> tuple[dt.datetime, dt.datetime]:
    """The first instant of month `YYYY-MM` in Paris and of the month after it."""
    year, month = (int(part) for part in period.split("-"))
    start = dt.datetime(year, month, 1, tzinfo=PARIS)
    end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=PARIS)
    return start, end


def filter_operations(
    operations: QuerySet[Operation], *, period: str | None = None, status: str | None = None, type: str | None = None
) -> QuerySet[Operation]:
    if period:
        start, end = month_bounds(period)
        operations = operations.filter(decided_at__gte=start, decided_at__lt=end)
    if status:
        operations = operations.filter(status=status)
    if type:
        operations = operations.filter(type=type)
    return operations.order_by("-decided_at", "-id")


def near_their_limit(accounts: QuerySet[ContractAccount], share: float = 0.8) -> QuerySet[ContractAccount]:
    """The accounts that owe `share` of their limit or more (the admin's "credit used"
    filter and the dashboard's figure)."""
    owed = F("unbilled") + F("invoiced_unpaid")
    return accounts.alias(owed=owed).filter(credit_limit__gt=0, owed__gte=F("credit_limit") * share)
