"""Payments' Prometheus metrics (boissipay.metrics): webhook signature failures, and
payments by status and currency read when scraped."""

from prometheus_client import Counter

from boissipay.metrics import gauge, register_state, rows
from payments.models import Payment

WEBHOOK_SIGNATURE_FAILURES = Counter(
    "boissipay_webhook_signature_failures", "Provider webhooks refused for a missing, forged or stale signature."
)


@register_state
def payments():
    table = Payment._meta.db_table
    by_status = rows(f"SELECT status, currency, count(*), sum(amount) FROM {table} GROUP BY status, currency")
    yield gauge("boissipay_payments", "Payments, per status and currency.", ["status", "currency"], [
        (status, currency, count) for status, currency, count, _ in by_status
    ])  # fmt: skip
    yield gauge(
        "boissipay_payments_amount_minor_units",
        "Amount of the payments, per status and currency, in minor units.",
        ["status", "currency"],
        [(status, currency, amount) for status, currency, _, amount in by_status],
    )
