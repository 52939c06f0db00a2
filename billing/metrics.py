"""Billing's Prometheus metrics (boissipay.metrics): decisions by outcome and reason code,
and the outstanding balance per currency read when scraped."""

from prometheus_client import Counter

from billing.models import ContractAccount
from boissipay.metrics import gauge, register_state, rows

OPERATIONS = Counter(
    "boissipay_operations",
    "Purchases and refunds decided through the API, by outcome and reason code.",
    ["type", "status", "reason"],
)


@register_state
def outstanding():
    """Accepted and not yet paid, per currency, in minor units (unbilled + invoiced unpaid)."""
    table = ContractAccount._meta.db_table
    yield gauge(
        "boissipay_outstanding_minor_units",
        "Outstanding balance of all contracts (unbilled and invoiced unpaid), per currency, in minor units.",
        ["currency"],
        rows(f"SELECT currency, sum(unbilled + invoiced_unpaid) FROM {table} GROUP BY currency"),
    )
