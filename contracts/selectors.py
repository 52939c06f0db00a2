"""Queries of the contracts context for its API and admin."""

from __future__ import annotations

import datetime as dt

from django.db.models import Prefetch, QuerySet

from contracts.models import Contract, Customer, Mandate, Subscriber


def customers_visible_to(client) -> QuerySet[Customer]:
    customers = Customer.objects.all()
    if client.customer_id:
        customers = customers.filter(pk=client.customer_id)
    return customers


def contracts_visible_to(client) -> QuerySet[Contract]:
    """Contracts with their current mandate and registered subscribers prefetched."""
    contracts = Contract.objects.select_related("customer").prefetch_related(
        Prefetch("mandates", queryset=Mandate.objects.filter(is_current=True), to_attr="current_mandates"),
        Prefetch("subscribers", queryset=Subscriber.objects.filter(removed_at__isnull=True), to_attr="registered"),
    )
    if client.customer_id:
        contracts = contracts.filter(customer_id=client.customer_id)
    return contracts


def filter_contracts(contracts: QuerySet[Contract], *, customer_id=None, status=None, today: dt.date) -> QuerySet:
    if customer_id:
        contracts = contracts.filter(customer_id=customer_id)
    if status == "expired":
        contracts = contracts.filter(status="active", ends_on__lt=today)
    elif status == "active":
        contracts = contracts.filter(status="active").exclude(ends_on__lt=today)
    elif status:
        contracts = contracts.filter(status=status)
    return contracts


def expiring_within(days: int, *, today: dt.date) -> QuerySet[Contract]:
    return Contract.objects.filter(ends_on__gte=today, ends_on__lte=today + dt.timedelta(days=days))
