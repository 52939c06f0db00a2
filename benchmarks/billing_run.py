"""Billing-run benchmark: `.venv/bin/python benchmarks/billing_run.py [--contracts 10000 --operations 100]`.

1. Loads C contracts and C x N accepted operations of October 2026 into invoicing's read
   models (generated in SQL: what billing's events would have put there).
2. Baseline, same run, same database: a bare `INSERT ... SELECT ... GROUP BY` that
   aggregates the same operations per contract into a scratch table.
3. The billing run itself (`invoicing.services.run_billing`): invoices issued, numbered,
   operations attached, events recorded. PDF rendering and e-mail are asynchronous
   (Celery) and not part of it: the run only queues them.

Prints wall times, operations/s and the ratio. The events the run records are left in
the outbox for the relay (EVENT_FEED=kafka): their consumers are other processes. Runs on its own database
(boissipay_bench_billing). Not part of the test suite."""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("BOISSIPAY_ALLOW_DEV_SECRET", "1")
os.environ.setdefault("BOISSIPAY_DB_NAME", "boissipay_bench_billing")
os.environ.setdefault("CELERY_QUEUE_DIR", tempfile.mkdtemp(prefix="boissipay-bench-queue-"))
# The other contexts take the run's events from Kafka (their consumer groups, other
# processes), as in a scaled deployment: what is timed is the run's own work.
os.environ.setdefault("EVENT_FEED", "kafka")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from invoicing import services  # noqa: E402
from invoicing.models import Invoice  # noqa: E402

PERIOD = "2026-10"


def sql(statement: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


def load(contracts: int, per_contract: int) -> None:
    print(f"loading {contracts:,} contracts x {per_contract} operations ...", flush=True)
    started = time.perf_counter()
    sql(
        "TRUNCATE invoicing_billableoperation, invoicing_billingbatch, invoicing_invoice, invoicing_invoicingcontract, "
        "invoicing_billingrun, invoicing_invoicesequence, boissipay_outboxevent CASCADE"
    )
    sql(
        """
        INSERT INTO invoicing_invoicingcontract (contract_id, reference, customer_id, buyer, currency,
            payment_terms_days, mandate_reference, iban_masked, contract_version)
        SELECT md5('contract' || i)::uuid, 'CTR-' || lpad(i::text, 6, '0'), md5('customer' || i)::uuid,
               jsonb_build_object('legal_name', 'CSE ' || i, 'siren', '732829320', 'vat_number', 'FR44732829320',
                                  'billing_email', 'billing@example.com', 'billing_address', '1 rue X' || chr(10) ||
                                  '75002 Paris', 'country', 'FR'),
               'EUR', 30, 'UMR-' || i, 'FR76 **** **** 0123', 1
        FROM generate_series(1, %s) AS i
        """,
        [contracts],
    )
    sql(
        """
        INSERT INTO invoicing_billingbatch (id, contract_id, period, invoice_id, created_at)
        SELECT md5('batch' || c)::uuid, md5('contract' || c)::uuid, date '2026-10-01', NULL, now()
        FROM generate_series(1, %s) AS c
        """,
        [contracts],
    )
    sql(
        """
        INSERT INTO invoicing_billableoperation (operation_id, contract_id, batch_id, type, external_ref,
            purchase_order, cost_centre, description, currency, amount_excl_tax, vat_amount, amount, vat_breakdown,
            decided_at, period, received_at)
        SELECT md5('op' || c || '-' || k)::uuid, md5('contract' || c)::uuid, md5('batch' || c)::uuid, 'purchase',
               'BKG-' || c || '-' || k,
               'PO-' || (k %% 7), 'CC-' || (k %% 3), 'Purchase BKG-' || c || '-' || k || ' - ORD-1: Paris-Lyon x1',
               'EUR', base, vat, base + vat,
               jsonb_build_array(jsonb_build_object('rate', '20.00', 'base', base, 'vat', vat)),
               timestamptz '2026-10-01 00:00+02' + (k || ' hours')::interval, date '2026-10-01', now()
        FROM generate_series(1, %s) AS c, generate_series(1, %s) AS k,
             LATERAL (SELECT 1000 + ((c * 7919 + k * 104729) %% 90000) AS base) b,
             LATERAL (SELECT round(b.base * 0.2)::bigint AS vat) v
        """,
        [contracts, per_contract],
    )
    sql("VACUUM ANALYZE invoicing_billableoperation")
    sql("VACUUM ANALYZE invoicing_invoicingcontract")
    sql("VACUUM ANALYZE invoicing_billingbatch")
    print(f"  loaded in {time.perf_counter() - started:.1f} s", flush=True)


def baseline() -> float:
    sql("DROP TABLE IF EXISTS bench_baseline_totals")
    sql("CREATE TABLE bench_baseline_totals (contract_id uuid, excl bigint, vat bigint, incl bigint, n integer)")
    started = time.perf_counter()
    sql(
        """
        INSERT INTO bench_baseline_totals
        SELECT contract_id, sum(amount_excl_tax), sum(vat_amount), sum(amount), count(*)
        FROM invoicing_billableoperation WHERE period <= %s GROUP BY contract_id
        """,
        ["2026-10-01"],
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=10_000)
    parser.add_argument("--operations", type=int, default=100, help="per contract")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    load(args.contracts, args.operations)
    total = args.contracts * args.operations

    bare = min(baseline() for _ in range(2))
    print(f"bare SQL INSERT ... SELECT ... GROUP BY: {bare:.2f} s ({total / bare:,.0f} operations/s)", flush=True)

    last = [0.0]

    def progress(done: int, of: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 2 or done == of:
            print(f"  run: {done:,}/{of:,} contracts", flush=True)
            last[0] = now

    started = time.perf_counter()
    run = services.run_billing(period=PERIOD, trigger="command", started_by="benchmark", progress=progress)
    wall = time.perf_counter() - started
    invoiced = Invoice.objects.count()
    assert run.status == "completed", run.errors
    assert run.operations_count == total and invoiced == args.contracts, (run.operations_count, invoiced)
    print()
    print(f"operations                : {total:,} across {args.contracts:,} contracts")
    print(f"billing run               : {wall:.2f} s ({total / wall:,.0f} operations/s), {invoiced:,} invoices")
    print(f"bare SQL aggregation      : {bare:.2f} s ({total / bare:,.0f} operations/s)")
    print(f"run / bare SQL            : {wall / bare:.1f}x   (target: run < 60 s and <= 5x)")


if __name__ == "__main__":
    main()
