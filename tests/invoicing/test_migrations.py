"""Migration 0003 gives the batches that exist when it is deployed the totals their
operations add up to: the first run after it invoices them in full."""

import datetime as dt
import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("invoicing", "0002_monthly_billing_schedule")]


def migrate(targets=None):
    """Migrate to `targets` (every app's latest migration by default); their models."""
    executor = MigrationExecutor(connection)
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_existing_batches_get_the_totals_and_vat_lines_of_their_operations():
    old = migrate(BEFORE)
    try:
        Batch = old.get_model("invoicing", "BillingBatch")
        Operation = old.get_model("invoicing", "BillableOperation")
        contract_id = uuid.uuid4()
        batch = Batch.objects.create(contract_id=contract_id, period=dt.date(2026, 10, 1))
        empty = Batch.objects.create(contract_id=uuid.uuid4(), period=dt.date(2026, 10, 1))
        lines = [
            (1_000, 200, [{"rate": "20.00", "base": 1_000, "vat": 200}]),
            (-300, -30, [{"rate": "10.00", "base": -300, "vat": -30}]),
            (500, 75, [{"rate": "10.00", "base": 250, "vat": 25}, {"rate": "20.00", "base": 250, "vat": 50}]),
        ]
        for n, (excl, vat, breakdown) in enumerate(lines):
            Operation.objects.create(
                operation_id=uuid.uuid4(),
                contract_id=contract_id,
                batch=batch,
                type="refund" if excl < 0 else "purchase",
                external_ref=f"BKG-{n}",
                description="x",
                currency="EUR",
                amount_excl_tax=excl,
                vat_amount=vat,
                amount=excl + vat,
                vat_breakdown=breakdown,
                decided_at=dt.datetime(2026, 10, 5, tzinfo=dt.UTC),
                period=dt.date(2026, 10, 1),
            )
    finally:
        new = migrate()  # back to the latest, for the tests that follow

    Batch = new.get_model("invoicing", "BillingBatch")
    filled = Batch.objects.get(pk=batch.pk)
    assert (filled.operations_count, filled.total_excl_tax, filled.total_vat, filled.total_incl_tax) == (
        3,
        1_200,
        245,
        1_445,
    )
    assert {(line.rate, line.base, line.vat) for line in filled.vat_lines.all()} == {
        ("10.00", -50, -5),
        ("20.00", 1_250, 250),
    }
    untouched = Batch.objects.get(pk=empty.pk)
    assert (untouched.operations_count, untouched.total_incl_tax, untouched.vat_lines.count()) == (0, 0, 0)
