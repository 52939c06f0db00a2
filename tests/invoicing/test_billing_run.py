"""The monthly billing run: one invoice per contract, exactly once, gapless numbers."""

import datetime as dt
import io
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from unittest import mock

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from boissipay.clock import PARIS
from invoicing import services
from invoicing.models import BillableOperation, BillingBatch, BillingRun, Invoice
from tests import eventkit, factories
from tests.clock import freeze_module_at
from tests.factories import delivered, item, operation_request

# Every test here starts on one frozen "today" (Paris, ticking), whatever the real date:
# the contracts its factories make are valid on the dates the tests travel to.
_today = freeze_module_at(dt.date(2026, 10, 1))

ROOT = Path(__file__).resolve().parents[2]


def on(day: dt.date, hour: int = 12):
    """Travel to `day` at `hour` o'clock in Paris (frozen)."""
    return time_machine.travel(dt.datetime(day.year, day.month, day.day, hour, tzinfo=PARIS), tick=False)


def buy(contract, day: dt.date, *items, **overrides):
    from billing.services import submit_operation

    with on(day), delivered():
        return submit_operation(request=operation_request(contract.pk, *items, **overrides))


def give_back(contract, purchase, day: dt.date, amount: int):
    from billing.services import submit_operation

    request = operation_request(contract.pk, item(amount), type="refund", refund_of=purchase.pk)
    with on(day), delivered():
        return submit_operation(request=request)


def run(period="2026-10", day=dt.date(2026, 11, 1), hour=2, **options):
    with on(day, hour=hour):
        return services.run_billing(period=period, **options)


def numbers() -> list[str]:
    return sorted(Invoice.objects.values_list("number", flat=True))


@pytest.mark.django_db
class TestTheRun:
    def test_a_contract_with_operations_gets_one_invoice_with_a_line_per_operation(self):
        contract = factories.billed_contract(payment_terms_days=45)
        first = buy(contract, dt.date(2026, 10, 3), item(10_000, vat_rate="20"), purchase_order="PO-1", cost_centre="C")
        second = buy(contract, dt.date(2026, 10, 20), item(5_000, vat_rate="10"), item(1_000, vat_rate="20"))
        refunded = give_back(contract, first, dt.date(2026, 10, 25), 1_200)

        billing_run = run()

        [invoice] = Invoice.objects.all()
        assert (invoice.kind, invoice.status, invoice.number) == ("invoice", "issued", "BP-2026-000001")
        assert (invoice.issue_date, invoice.due_date) == (dt.date(2026, 11, 1), dt.date(2026, 12, 16))
        lines = {line.operation_id: line for line in services.invoice_lines(invoice)}
        assert set(lines) == {first.pk, second.pk, refunded.pk}
        assert lines[refunded.pk].amount == -1_200
        assert (lines[first.pk].purchase_order, lines[first.pk].cost_centre) == ("PO-1", "C")
        assert invoice.total_incl_tax == 12_000 + 5_500 + 1_200 - 1_200
        assert invoice.total_excl_tax + invoice.total_vat == invoice.total_incl_tax
        assert invoice.vat_breakdown == [
            {"rate": "0.00", "base": -1_200, "vat": 0},
            {"rate": "10.00", "base": 5_000, "vat": 500},
            {"rate": "20.00", "base": 11_000, "vat": 2_200},
        ]
        assert (billing_run.status, billing_run.invoices_count, billing_run.operations_count) == ("completed", 1, 3)
        assert billing_run.totals == {"EUR": {"excl_tax": 14_800, "vat": 2_700, "incl_tax": 17_500}}

    def test_each_contract_gets_its_own_invoice_and_a_month_with_nothing_gets_none(self):
        busy, other, idle = factories.billed_contract(), factories.billed_contract(), factories.billed_contract()
        buy(busy, dt.date(2026, 10, 3))
        buy(other, dt.date(2026, 10, 4))
        run()
        assert set(Invoice.objects.values_list("contract_id", flat=True)) == {busy.pk, other.pk}
        assert not Invoice.objects.filter(contract_id=idle.pk).exists()

    def test_a_month_that_nets_negative_gives_a_credit_note(self):
        contract = factories.billed_contract()
        bought = buy(contract, dt.date(2026, 9, 10), item(50_000))
        run(period="2026-09", day=dt.date(2026, 10, 1))
        give_back(contract, bought, dt.date(2026, 10, 5), 20_000)
        billing_run = run()
        credit_note = Invoice.objects.get(period=dt.date(2026, 10, 1))
        assert (credit_note.kind, credit_note.total_incl_tax) == ("credit_note", -20_000)
        assert billing_run.credit_notes_count == 1
        assert numbers() == ["BP-2026-000001", "BP-2026-000002"]

    def test_running_a_month_twice_changes_nothing(self):
        contract = factories.billed_contract()
        buy(contract, dt.date(2026, 10, 3))
        run()
        before = list(Invoice.objects.values_list("id", "number", "total_incl_tax"))
        again = run()
        assert list(Invoice.objects.values_list("id", "number", "total_incl_tax")) == before
        assert (again.status, again.invoices_count) == ("completed", 0)

    def test_operations_accepted_after_a_run_are_picked_up_by_the_next_one(self):
        contract = factories.billed_contract(reference="CTR-LATE")
        buy(contract, dt.date(2026, 10, 3))
        with on(dt.date(2026, 10, 31)):  # invoiced early by staff
            services.invoice_early(
                contract_reference="CTR-LATE", reason="customer's request", trigger="command", started_by="test"
            )
        late = buy(contract, dt.date(2026, 10, 31), item(700))
        run(period="2026-10", day=dt.date(2026, 11, 1))
        assert BillableOperation.objects.get(pk=late.pk).invoice.issue_date == dt.date(2026, 11, 1)
        assert Invoice.objects.count() == 2
        assert not BillableOperation.objects.filter(batch__invoice__isnull=True).exists()

    def test_operations_of_a_later_month_wait_for_their_own_run(self):
        contract = factories.billed_contract()
        november = buy(contract, dt.date(2026, 11, 2))
        run(period="2026-10", day=dt.date(2026, 11, 3))
        assert BillableOperation.objects.get(pk=november.pk).invoice is None

    def test_numbers_are_sequential_per_year_and_start_again_in_a_new_year(self):
        contracts_ = [factories.billed_contract(reference=f"CTR-N{i}") for i in range(3)]
        for contract in contracts_:
            buy(contract, dt.date(2026, 11, 3))
        run(period="2026-11", day=dt.date(2026, 12, 1))
        buy(contracts_[0], dt.date(2026, 12, 3))
        run(period="2026-12", day=dt.date(2027, 1, 1))
        assert numbers() == ["BP-2026-000001", "BP-2026-000002", "BP-2026-000003", "BP-2027-000001"]
        # In the order of the contracts' references.
        assert Invoice.objects.get(number="BP-2026-000001").contract_reference == "CTR-N0"

    def test_a_dry_run_counts_and_totals_without_writing(self):
        contract = factories.billed_contract()
        buy(contract, dt.date(2026, 10, 3), item(4_000))
        billing_run = run(dry_run=True)
        assert (billing_run.status, billing_run.invoices_count, billing_run.totals["EUR"]["incl_tax"]) == (
            "completed",
            1,
            4_000,
        )
        assert not Invoice.objects.exists()

    def test_a_run_can_be_limited_to_one_contract(self):
        chosen, other = factories.billed_contract(reference="CTR-ONLY"), factories.billed_contract()
        buy(chosen, dt.date(2026, 10, 3))
        buy(other, dt.date(2026, 10, 3))
        run(contract_reference="CTR-ONLY")
        assert list(Invoice.objects.values_list("contract_reference", flat=True)) == ["CTR-ONLY"]

    @pytest.mark.parametrize("period", ["2026-11", "2026-12"])
    def test_a_month_that_has_not_ended_is_refused(self, period):
        from boissipay.errors import DomainError

        contract = factories.billed_contract()
        buy(contract, dt.date(2026, 11, 2))
        with pytest.raises(DomainError) as refused:
            run(period=period, day=dt.date(2026, 11, 30), hour=23)
        assert (refused.value.code, refused.value.status) == ("period_not_ended", 400)
        assert "ends on" in refused.value.detail
        assert not Invoice.objects.exists()
        assert not BillingRun.objects.exists()

    def test_a_month_is_invoiced_from_its_first_day_after_its_end_in_paris(self):
        contract = factories.billed_contract()
        buy(contract, dt.date(2026, 11, 2))
        assert run(period="2026-11", day=dt.date(2026, 12, 1), hour=0).status == "completed"
        assert Invoice.objects.count() == 1


@pytest.mark.django_db
class TestEarlyInvoices:
    def test_staff_invoice_one_contract_early_and_the_months_later_operations_go_on_the_next_invoice(self):
        contract = factories.billed_contract(reference="CTR-CANCELLED")
        other = factories.billed_contract()
        early_purchase = buy(contract, dt.date(2026, 11, 5))
        buy(other, dt.date(2026, 11, 6))

        with on(dt.date(2026, 11, 20)):
            early = services.invoice_early(
                contract_reference="CTR-CANCELLED",
                reason="Final invoice: contract cancelled",
                trigger="command",
                started_by="jdupont",
            )

        assert (early.status, early.early, early.reason, early.started_by) == (
            "completed",
            True,
            "Final invoice: contract cancelled",
            "jdupont",
        )
        [first] = Invoice.objects.all()
        assert (first.contract_reference, first.issue_date) == ("CTR-CANCELLED", dt.date(2026, 11, 20))
        assert {line.operation_id for line in services.invoice_lines(first)} == {early_purchase.pk}

        later = buy(contract, dt.date(2026, 11, 25))
        run(period="2026-11", day=dt.date(2026, 12, 1))

        second = Invoice.objects.get(contract_id=contract.pk, issue_date=dt.date(2026, 12, 1))
        assert {line.operation_id for line in services.invoice_lines(second)} == {later.pk}
        assert Invoice.objects.filter(contract_id=other.pk).count() == 1
        assert numbers() == ["BP-2026-000001", "BP-2026-000002", "BP-2026-000003"]

    def test_an_early_invoice_needs_a_reason_and_a_known_contract(self):
        from boissipay.errors import DomainError

        factories.billed_contract(reference="CTR-KNOWN")
        with pytest.raises(DomainError) as no_reason:
            services.invoice_early(contract_reference="CTR-KNOWN", reason="  ", trigger="command", started_by="x")
        with pytest.raises(DomainError) as unknown:
            services.invoice_early(contract_reference="CTR-NOPE", reason="why", trigger="command", started_by="x")
        assert (no_reason.value.code, unknown.value.code) == ("reason_required", "contract_unknown")
        assert not BillingRun.objects.exists()

    def test_the_command_refuses_a_month_not_ended_and_invoices_early_only_when_asked(self):
        from django.core.management import CommandError, call_command

        contract = factories.billed_contract(reference="CTR-CMD")
        buy(contract, dt.date(2026, 11, 5))
        with on(dt.date(2026, 11, 20)):
            with pytest.raises(CommandError, match="ends on 2026-11-30"):
                call_command("run_billing", "--period", "2026-11", verbosity=0)
            with pytest.raises(CommandError, match="--reason"):
                call_command("run_billing", "--early", "--contract", "CTR-CMD", verbosity=0)
            out = io.StringIO()
            call_command("run_billing", "--early", "--contract", "CTR-CMD", "--reason", "cancelled", stdout=out)
        assert "Early invoice of CTR-CMD (cancelled): completed" in out.getvalue()
        run_ = BillingRun.objects.get()
        assert (run_.early, run_.trigger, run_.reason) == (True, "command", "cancelled")
        assert Invoice.objects.count() == 1

    def test_the_cost_of_a_run_does_not_grow_with_the_operations(self):
        few, many = factories.billed_contract(), factories.billed_contract()
        buy(few, dt.date(2026, 9, 3))
        run(period="2026-09", day=dt.date(2026, 10, 1))  # the first run of all sets up the sequence
        buy(few, dt.date(2026, 10, 3))
        with CaptureQueriesContext(connection) as one_operation:
            run(contract_reference=few.reference)
        for day in range(1, 26):
            buy(many, dt.date(2026, 10, day))
        with CaptureQueriesContext(connection) as many_operations:
            run(contract_reference=many.reference)
        assert len(many_operations) == len(one_operation)

    def test_an_operation_delivered_twice_is_counted_once_in_the_batch_and_the_invoice(self):
        from billing.events import PurchaseAccepted
        from boissipay.models import OutboxEvent

        contract = factories.billed_contract()
        buy(contract, dt.date(2026, 10, 3), item(10_000, vat_rate="20"), item(3_000, vat_rate="20"))
        buy(contract, dt.date(2026, 10, 4), item(5_000, vat_rate="10"))
        for event in OutboxEvent.objects.filter(event_type=PurchaseAccepted.event_type):
            services.record_billable_operation(operation=event.payload["operation"])  # a redelivery

        batch = BillingBatch.objects.get(contract_id=contract.pk)
        assert (batch.operations_count, batch.total_incl_tax) == (2, 12_000 + 3_600 + 5_500)
        run()
        [invoice] = Invoice.objects.all()
        assert invoice.vat_breakdown == [
            {"rate": "10.00", "base": 5_000, "vat": 500},
            {"rate": "20.00", "base": 13_000, "vat": 2_600},
        ]
        assert (invoice.operations_count, invoice.total_incl_tax) == (2, 12_000 + 3_600 + 5_500)

    def test_the_invoice_totals_are_the_sums_of_its_lines(self):
        """The run invoices the totals its batches kept as operations came in: they must be
        the sums of the lines the invoice shows, whatever the mix of months, rates and refunds."""
        contract = factories.billed_contract()
        september = buy(contract, dt.date(2026, 9, 28), item(8_000, vat_rate="5.5"))
        buy(contract, dt.date(2026, 10, 1), item(1_234, vat_rate="20"), item(99, vat_rate="10"))
        give_back(contract, september, dt.date(2026, 10, 2), 3_000)
        buy(contract, dt.date(2026, 10, 31), item(45_678, vat_rate="0"))

        run()  # September's batch was left open: this run bills it with October's

        [invoice] = Invoice.objects.all()
        lines = list(services.invoice_lines(invoice))
        assert invoice.operations_count == len(lines) == 4
        assert invoice.total_excl_tax == sum(line.amount_excl_tax for line in lines)
        assert invoice.total_vat == sum(line.vat_amount for line in lines)
        assert invoice.total_incl_tax == sum(line.amount for line in lines)
        rates = {}
        for line in lines:
            for vat in line.vat_breakdown:
                base, amount = rates.get(vat["rate"], (0, 0))
                rates[vat["rate"]] = (base + vat["base"], amount + vat["vat"])
        assert {vat["rate"]: (vat["base"], vat["vat"]) for vat in invoice.vat_breakdown} == rates

    def test_the_issued_event_built_by_the_database_is_the_one_the_event_class_gives(self):
        from boissipay.models import OutboxEvent
        from invoicing.events import InvoiceIssued

        contract = factories.billed_contract()
        buy(contract, dt.date(2026, 10, 3), item(10_000, vat_rate="20"), item(5_000, vat_rate="10"))
        run()
        [invoice] = Invoice.objects.all()
        [row] = OutboxEvent.objects.filter(event_type=InvoiceIssued.event_type)
        invoice.status = "issued"  # as it was when the event was recorded (mailing may have followed)
        expected = InvoiceIssued(contract_id=invoice.contract_id, invoice=services.invoice_state(invoice))
        assert row.payload == {**expected.payload(), "actor": {"type": "system", "id": "", "name": mock.ANY}}
        assert (row.topic, row.aggregate_id, row.schema_version) == (
            "boissipay.invoicing.v1",
            str(contract.pk),
            InvoiceIssued.version,
        )

    def test_invoices_issued_events_are_recorded_with_the_invoice(self):
        from boissipay.event_schemas import validate_event
        from boissipay.models import OutboxEvent

        contract = factories.billed_contract()
        buy(contract, dt.date(2026, 10, 3))
        run()
        rows = OutboxEvent.objects.filter(topic="boissipay.invoicing.v1").order_by("position")
        assert [row.event_type for row in rows] == ["invoicing.invoice.issued"]
        for row in rows:
            validate_event(row.event_type, row.schema_version, row.payload)


def test_the_periodic_task_runs_on_the_first_of_the_month_at_two_in_paris(db):
    from django_celery_beat.models import PeriodicTask

    from config.celery import app

    task = PeriodicTask.objects.get(name="monthly billing run")
    crontab = task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_month, crontab.month_of_year, crontab.day_of_week) == (
        "0",
        "2",
        "1",
        "*",
        "*",
    )
    assert str(crontab.timezone) == "Europe/Paris"
    assert task.enabled
    app.loader.import_default_modules()
    assert task.task in app.tasks


def test_the_beat_task_invoices_the_previous_month(db):
    from invoicing.tasks import run_monthly_billing

    contract = factories.billed_contract()
    buy(contract, dt.date(2026, 10, 31), item(900))
    with on(dt.date(2026, 11, 1), hour=2):
        run_monthly_billing()
    assert BillingRun.objects.get().trigger == "beat"
    assert Invoice.objects.get().period == dt.date(2026, 10, 1)


# --- under concurrency and crashes --------------------------------------------------------------


@pytest.fixture
def queued_for_sending(monkeypatch) -> list[str]:
    """The invoices the runs hand to the sending task (not rendered and mailed here:
    the sending has its own tests)."""
    queued: list[str] = []
    monkeypatch.setattr(services, "_send_later", queued.extend)
    return queued


def test_two_runs_started_at_once_invoice_each_contract_once_with_gapless_numbers(transactional_db, queued_for_sending):
    contracts_ = [factories.billed_contract() for _ in range(12)]
    for contract in contracts_:
        buy(contract, dt.date(2026, 10, 5))
    barrier = threading.Barrier(2)
    outcomes, errors = [], []

    def start():
        try:
            barrier.wait()
            outcomes.append(run().status)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert outcomes == ["completed", "completed"]
    assert Invoice.objects.count() == 12
    assert numbers() == [f"BP-2026-{n:06d}" for n in range(1, 13)]
    assert not BillableOperation.objects.filter(batch__invoice__isnull=True).exists()
    assert sorted(queued_for_sending) == sorted(str(pk) for pk in Invoice.objects.values_list("pk", flat=True))


@pytest.mark.slow
def test_a_run_killed_half_way_finishes_on_the_next_run_with_nothing_twice_and_nothing_missed(
    transactional_db, tmp_path, queued_for_sending
):
    contracts_ = [factories.billed_contract() for _ in range(80)]
    for contract in contracts_:
        buy(contract, dt.date(2026, 10, 5))
    env = eventkit.subprocess_env("unused:0")
    env.update(
        BILLING_RUN_CHUNK_SIZE="1",  # one transaction per contract, so a kill lands mid-run
        CELERY_TASK_ALWAYS_EAGER="0",
        CELERY_QUEUE_DIR=str(tmp_path),
    )
    child = subprocess.Popen(
        [sys.executable, "manage.py", "run_billing", "--period", "2026-10", "-v", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        eventkit.wait_until(lambda: Invoice.objects.count() >= 5, timeout=60, interval=0.01, message="a few invoices")
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    done_before = Invoice.objects.count()
    assert 5 <= done_before < 80, "the kill must land half-way"

    with on(dt.date(2026, 11, 1)):
        services.run_billing(period="2026-10")

    assert Invoice.objects.count() == 80
    assert numbers() == [f"BP-2026-{n:06d}" for n in range(1, 81)]
    assert not BillableOperation.objects.filter(batch__invoice__isnull=True).exists()
    assert sorted(BillingRun.objects.values_list("status", flat=True)) == ["completed", "interrupted"]


def test_an_operation_being_taken_in_while_the_run_seals_its_batch_is_billed_once(transactional_db, queued_for_sending):
    """The run waits for a delivery holding the month's open batch, then bills what it
    took in; nothing is lost between the two and nothing is billed twice."""
    from django.db import transaction

    contract = factories.billed_contract()
    first = buy(contract, dt.date(2026, 10, 5))
    second_payload = BillableOperation.objects.get(pk=first.pk)  # a template to take a second one in
    taken_in = threading.Event()
    release = threading.Event()
    second_id = uuid.uuid4()

    def deliver_slowly():
        try:
            with transaction.atomic():
                services.record_billable_operation(
                    operation={
                        "operation_id": str(second_id),
                        "contract_id": str(contract.pk),
                        "type": "purchase",
                        "external_ref": "BKG-SLOW",
                        "purchase_order": "",
                        "cost_centre": "",
                        "currency": "EUR",
                        "amount_excl_tax": 700,
                        "vat_amount": 0,
                        "amount": 700,
                        "vat_breakdown": [{"rate": "0.00", "base": 700, "vat": 0}],
                        "orders": [{"reference": "ORD-S", "items": [{"label": "x", "quantity": 1}]}],
                        "decided_at": second_payload.decided_at.isoformat(),
                    }
                )
                taken_in.set()
                release.wait(10)  # still holding the batch
        finally:
            connection.close()

    delivery = threading.Thread(target=deliver_slowly)
    delivery.start()
    assert taken_in.wait(10)
    outcome = []
    runner = threading.Thread(target=lambda: (outcome.append(run().status), connection.close()))
    runner.start()
    runner.join(1.0)
    assert runner.is_alive(), "the run must wait for the delivery holding the batch"
    release.set()
    delivery.join(10)
    runner.join(30)

    assert outcome == ["completed"]
    [invoice] = Invoice.objects.all()
    assert (invoice.operations_count, invoice.total_incl_tax) == (2, first.amount + 700)
    assert not BillableOperation.objects.filter(batch__invoice__isnull=True).exists()


def test_operations_taken_in_at_once_each_count_once_in_their_batch(transactional_db):
    """Deliveries racing for one contract's month, each operation delivered three times:
    the batch counts every operation once, and its totals and VAT lines are their sums."""
    contract_id = str(uuid.uuid4())
    operations = [
        {
            "operation_id": str(uuid.uuid4()),
            "contract_id": contract_id,
            "type": "refund" if n % 4 == 0 else "purchase",
            "external_ref": f"BKG-RACE-{n}",
            "purchase_order": "",
            "cost_centre": "",
            "currency": "EUR",
            "amount_excl_tax": 1_000 + n,
            "vat_amount": 100 + n,
            "amount": 1_100 + 2 * n,
            "vat_breakdown": [
                {"rate": "10.00", "base": 1_000, "vat": 100},
                {"rate": "20.00", "base": n, "vat": n},
            ],
            "orders": [{"reference": f"ORD-{n}", "items": [{"label": "x", "quantity": 1}]}],
            "decided_at": "2026-10-15T10:00:00+02:00",
        }
        for n in range(12)
    ]
    deliveries = operations * 3
    barrier = threading.Barrier(6)
    errors = []

    def deliver(share):
        try:
            barrier.wait(10)
            for operation in share:
                services.record_billable_operation(operation=operation)
        except Exception as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(deliveries[i::6],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    [batch] = BillingBatch.objects.filter(contract_id=contract_id)
    stored = list(BillableOperation.objects.filter(batch=batch))
    assert batch.operations_count == len(stored) == 12
    assert batch.total_excl_tax == sum(op.amount_excl_tax for op in stored)
    assert batch.total_vat == sum(op.vat_amount for op in stored)
    assert batch.total_incl_tax == sum(op.amount for op in stored)
    signs = [-1 if operation["type"] == "refund" else 1 for operation in operations]
    assert {line.rate: (line.base, line.vat) for line in batch.vat_lines.all()} == {
        "10.00": (sum(sign * 1_000 for sign in signs), sum(sign * 100 for sign in signs)),
        "20.00": (sum(sign * n for n, sign in enumerate(signs)),) * 2,
    }
