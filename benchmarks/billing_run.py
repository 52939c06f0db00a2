"""Billing-run benchmark: `.venv/bin/python benchmarks/billing_run.py [--contracts 10000 --operations 100]`.

1. Loads C contracts and C x N accepted operations of October 2026 into invoicing's read
   models (generated in SQL: what billing's events would have put there).
2. Baseline, same run, same database: a bare `INSERT ... SELECT ... GROUP BY` that
   aggregates the same operations per contract into a scratch table.
3. The billing run itself (`invoicing.services.run_billing`): invoices issued from the
   totals their batches kept, numbered, batches sealed, events recorded. PDF rendering and
   e-mail are asynchronous (Celery) and not part of it: the run only queues them.
4. Checks, not timed: every invoice's totals and VAT lines re-summed from its lines; and
   what keeping those totals costs when operations are taken in one by one, next to a
   bare one-row INSERT per transaction.

Prints wall times, operations/s and the ratio. The events the run records are left in
the outbox for the relay (EVENT_FEED=kafka): their consumers are other processes. Runs on its own database
(boissipay_bench_billing). Not part of the test suite."""

import argparse
import os
import sys
import tempfile
import time
import uuid
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
COLUMNS = (
    "operation_id, contract_id, batch_id, type, external_ref, purchase_order, cost_centre, description, currency, "
    "amount_excl_tax, vat_amount, amount, vat_breakdown, decided_at, period, received_at"
)


def sql(statement: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


def load(contracts: int, per_contract: int) -> None:
    print(f"loading {contracts:,} contracts x {per_contract} operations ...", flush=True)
    started = time.perf_counter()
    sql(
        "TRUNCATE invoicing_billableoperation, invoicing_billingbatchvat, invoicing_billingbatch, invoicing_invoice, "
        "invoicing_invoicingcontract, "
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
    # The batches' running totals, as taking each operation in keeps them (its cost is
    # measured apart, by intake() below).
    sql(
        """
        UPDATE invoicing_billingbatch b
        SET operations_count = s.n, total_excl_tax = s.excl, total_vat = s.vat, total_incl_tax = s.incl
        FROM (SELECT batch_id, count(*) AS n, sum(amount_excl_tax) AS excl, sum(vat_amount) AS vat,
                     sum(amount) AS incl
              FROM invoicing_billableoperation GROUP BY batch_id) s
        WHERE b.id = s.batch_id
        """
    )
    sql(
        """
        INSERT INTO invoicing_billingbatchvat (batch_id, rate, base, vat)
        SELECT o.batch_id, e->>'rate', sum((e->>'base')::bigint), sum((e->>'vat')::bigint)
        FROM invoicing_billableoperation o CROSS JOIN LATERAL jsonb_array_elements(o.vat_breakdown) e
        GROUP BY o.batch_id, e->>'rate'
        """
    )
    sql("VACUUM ANALYZE invoicing_billableoperation")
    sql("VACUUM ANALYZE invoicing_billingbatchvat")
    sql("VACUUM ANALYZE invoicing_invoicingcontract")
    sql("VACUUM ANALYZE invoicing_billingbatch")
    sql("CHECKPOINT")  # the load's WAL written out now, not during the timed parts
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


def reconcile() -> int:
    """Invoices whose totals or VAT lines differ from the sums of their lines (must be 0)."""
    return sql(
        """
        WITH lines AS (
            SELECT b.invoice_id, count(*) AS n, sum(o.amount_excl_tax) AS excl, sum(o.vat_amount) AS vat,
                   sum(o.amount) AS incl
            FROM invoicing_billingbatch b JOIN invoicing_billableoperation o ON o.batch_id = b.id
            WHERE b.invoice_id IS NOT NULL GROUP BY b.invoice_id
        ), rates AS (
            SELECT b.invoice_id, e->>'rate' AS rate, sum((e->>'base')::bigint) AS base, sum((e->>'vat')::bigint) AS vat
            FROM invoicing_billingbatch b JOIN invoicing_billableoperation o ON o.batch_id = b.id
            CROSS JOIN LATERAL jsonb_array_elements(o.vat_breakdown) e
            WHERE b.invoice_id IS NOT NULL GROUP BY b.invoice_id, e->>'rate'
        ), breakdown AS (
            SELECT invoice_id, jsonb_agg(jsonb_build_object('rate', rate, 'base', base, 'vat', vat) ORDER BY rate) AS v
            FROM rates GROUP BY invoice_id
        )
        SELECT count(*) FROM invoicing_invoice i
        LEFT JOIN lines l ON l.invoice_id = i.id LEFT JOIN breakdown r ON r.invoice_id = i.id
        WHERE (i.operations_count, i.total_excl_tax, i.total_vat, i.total_incl_tax, i.vat_breakdown)
              IS DISTINCT FROM (l.n::int, l.excl, l.vat, l.incl, r.v)
        """
    )[0][0]


def intake(count: int) -> tuple[float, float, float]:
    """Seconds per operation taken in (`record_billable_operation`: the operation, its
    batch's totals and VAT lines, one transaction each), the same taken in 500 at a time
    (`record_billable_operations`, as the event dispatcher feeds it), and for a bare
    one-row INSERT of the same operation per transaction, same database, same run."""
    contracts = [row[0] for row in sql("SELECT contract_id FROM invoicing_invoicingcontract ORDER BY reference")]
    operations = [
        {
            "operation_id": str(uuid.uuid4()),
            "contract_id": str(contracts[k % len(contracts)]),
            "type": "purchase",
            "external_ref": f"BKG-NOV-{k}",
            "purchase_order": "PO-1",
            "cost_centre": "CC-1",
            "currency": "EUR",
            "amount_excl_tax": 10_000 + k,
            "vat_amount": 2_000,
            "amount": 12_000 + k,
            "vat_breakdown": [{"rate": "20.00", "base": 10_000 + k, "vat": 2_000}],
            "orders": [{"reference": f"ORD-{k}", "items": [{"label": "Paris-Lyon", "quantity": 1}]}],
            "decided_at": f"2026-11-{1 + k % 20:02d}T10:00:00+01:00",
        }
        for k in range(count)
    ]
    started = time.perf_counter()
    for operation in operations:
        services.record_billable_operation(operation=operation)
    taken_in = (time.perf_counter() - started) / count
    batched = [{**operation, "operation_id": str(uuid.uuid4())} for operation in operations]
    started = time.perf_counter()
    for start in range(0, count, 500):
        services.record_billable_operations(operations=batched[start : start + 500])
    taken_in_batches = (time.perf_counter() - started) / count
    sql("DROP TABLE IF EXISTS bench_intake_baseline")
    sql("CREATE TABLE bench_intake_baseline (LIKE invoicing_billableoperation)")
    rows = sql(
        f"SELECT {COLUMNS.replace('vat_breakdown', 'vat_breakdown::text')} "
        "FROM invoicing_billableoperation WHERE operation_id = ANY(%s::uuid[])",
        [[operation["operation_id"] for operation in operations]],
    )
    started = time.perf_counter()
    for row in rows:
        sql(
            f"INSERT INTO bench_intake_baseline ({COLUMNS}) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s)",
            list(row),
        )
    bare = (time.perf_counter() - started) / count
    return taken_in, taken_in_batches, bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=10_000)
    parser.add_argument("--operations", type=int, default=100, help="per contract")
    parser.add_argument("--intake", type=int, default=2000, help="operations taken in one by one, after the run")
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
    started = time.perf_counter()
    mismatched = reconcile()
    checked = time.perf_counter() - started
    taken_in, taken_in_batches, bare_insert = intake(args.intake)
    print()
    print(f"operations                : {total:,} across {args.contracts:,} contracts")
    print(f"billing run               : {wall:.2f} s ({total / wall:,.0f} operations/s), {invoiced:,} invoices")
    print(f"bare SQL aggregation      : {bare:.2f} s ({total / bare:,.0f} operations/s)")
    print(f"run / bare SQL            : {wall / bare:.1f}x   (target: run < 60 s and <= 5x)")
    print(
        f"invoices != their lines   : {mismatched}   (totals, counts and VAT per rate re-summed from the lines, "
        f"checked in {checked:.1f} s)"
    )
    print(
        f"taking an operation in    : {taken_in * 1000:.2f} ms (batch totals kept as it comes; "
        f"bare one-row INSERT per transaction: {bare_insert * 1000:.2f} ms), {args.intake:,} operations"
    )
    print(f"taken in 500 at a time    : {taken_in_batches * 1000:.3f} ms per operation (the event dispatcher's way)")
    assert mismatched == 0


if __name__ == "__main__":
    main()
