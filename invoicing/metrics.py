"""Invoicing's Prometheus metrics (boissipay.metrics), read when scraped: billing runs by
status and how long the finished ones took."""

from prometheus_client.core import SummaryMetricFamily

from boissipay.metrics import gauge, register_state, rows
from invoicing.models import BillingRun


@register_state
def billing_runs():
    table = BillingRun._meta.db_table
    yield gauge(
        "boissipay_billing_runs",
        "Billing runs, per status.",
        ["status"],
        rows(f"SELECT status, count(*) FROM {table} GROUP BY status"),
    )
    [(count, total, last)] = rows(
        f"SELECT count(*), coalesce(sum(extract(epoch FROM finished_at - started_at)), 0), "
        f"(SELECT extract(epoch FROM finished_at - started_at) FROM {table} "
        f"WHERE finished_at IS NOT NULL AND started_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1) "
        f"FROM {table} WHERE finished_at IS NOT NULL AND started_at IS NOT NULL"
    )
    summary = SummaryMetricFamily("boissipay_billing_run_duration_seconds", "How long the finished billing runs took.")
    summary.add_metric([], count_value=count, sum_value=float(total))
    yield summary
    yield gauge("boissipay_billing_run_last_duration_seconds", "How long the last finished run took.", [], [(last,)])
