"""Money received outside the debit (issue 15, section 3): staff record a transfer or a
cheque; it pays the customer's invoices, oldest first or as chosen, in part or in full;
the rest is credit the next invoice uses; nothing is ever counted twice."""

import datetime as dt

import pytest
import time_machine

from billing.models import ContractAccount
from boissipay.clock import PARIS
from boissipay.errors import DomainError
from boissipay.models import OutboxEvent
from invoicing import services as invoicing
from invoicing.models import Invoice
from payments import services as payments
from payments.manual_payments import customer_credit, record_manual_payment
from payments.models import ManualPayment, Payment
from tests import factories
from tests.clock import freeze_module_at
from tests.factories import buy, settled
from tests.payments.bank_files import Booking, notification
from tests.payments.test_bank_files import e2e, import_file

_today = freeze_module_at(dt.date(2026, 10, 1))
pytestmark = pytest.mark.django_db(transaction=True)


def invoiced(*contracts_and_amounts, period: str = "2026-10") -> list[Payment]:
    """Each contract buys in the month and is invoiced on the 1st of the next: their
    collections, pending (due on the 1st of the month after)."""
    year, month = map(int, period.split("-"))
    for contract, amount in contracts_and_amounts:
        buy(contract, amount, dt.date(year, month, 12))
    run_on = dt.date(year + month // 12, month % 12 + 1, 1)
    with time_machine.travel(dt.datetime(run_on.year, run_on.month, 1, 2, tzinfo=PARIS), tick=False):
        invoicing.run_billing(period=period)
    settled()
    return [
        Payment.objects.filter(contract_id=contract.pk).order_by("-original_due_date").first()
        for contract, _ in contracts_and_amounts
    ]


def transfer(customer, amount: int, reference: str, invoice_ids=None, on=dt.date(2026, 11, 20)) -> ManualPayment:
    with time_machine.travel(dt.datetime(on.year, on.month, on.day, 10, tzinfo=PARIS), tick=False):
        manual = record_manual_payment(
            customer_id=customer.pk,
            amount=amount,
            currency="EUR",
            received_on=on,
            method="transfer",
            bank_reference=reference,
            recorded_by="compta@agence",
            invoice_ids=invoice_ids,
        )
    settled()
    return manual


def outstanding(contract) -> int:
    return ContractAccount.objects.get(pk=contract.pk).outstanding


def submit_on_november_30() -> dict:
    with time_machine.travel(dt.datetime(2026, 11, 30, 9, tzinfo=PARIS), tick=False):
        counts = payments.submit_due_payments(today=dt.date(2026, 11, 30))
    settled()
    return counts


def test_a_partial_transfer_lowers_the_outstanding_and_the_debit_takes_only_the_rest(bank):
    contract = factories.contract(credit_limit=50_000)
    settled()
    [payment] = invoiced((contract, 10_000))
    assert outstanding(contract) == 10_000

    transfer(contract.customer, 4_000, "VIR-2026-11-0001")

    payment.refresh_from_db()
    assert (payment.status, payment.allocated, payment.to_collect) == ("pending", 4_000, 6_000)
    assert outstanding(contract) == 6_000
    assert Invoice.objects.get(pk=payment.invoice_id).paid_outside == 4_000  # partly paid
    assert Invoice.objects.get(pk=payment.invoice_id).status == "sent"

    assert submit_on_november_30()["submitted"] == 1
    [sepa_file] = sorted((bank / "sepa").glob("*.xml"))
    assert b'<InstdAmt Ccy="EUR">60.00</InstdAmt>' in sepa_file.read_bytes()

    # The bank collects the rest: paid, and the outstanding is 0, not minus 4,000.
    payment.refresh_from_db()
    import_file(bank, notification([Booking("settled", e2e(payment), 6_000)], message_id="N1"), "n1.xml")
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"
    assert outstanding(contract) == 0

    # And if that debit comes back, only its 6,000 is owed again: the transfer stays paid.
    import_file(bank, notification([Booking("returned", e2e(payment), 6_000, "MD01")], message_id="N2"), "n2.xml")
    assert outstanding(contract) == 6_000


def test_an_invoice_paid_in_full_by_transfer_is_never_debited(bank):
    contract = factories.contract()
    settled()
    [payment] = invoiced((contract, 10_000))

    transfer(contract.customer, 10_000, "VIR-2026-11-0002")

    payment.refresh_from_db()
    assert (payment.status, payment.to_collect) == ("succeeded", 0)
    assert Invoice.objects.get(pk=payment.invoice_id).status == "paid"
    assert outstanding(contract) == 0
    assert submit_on_november_30()["due"] == 0  # the debit is cancelled before submission
    assert payment.log.filter(kind="manual", summary__contains="paid in full: no debit").exists()


def test_an_excess_is_credit_that_the_next_invoice_uses_first(bank):
    contract = factories.contract(credit_limit=100_000)
    settled()
    [october] = invoiced((contract, 10_000))

    manual = transfer(contract.customer, 15_000, "VIR-2026-11-0003")

    assert Payment.objects.get(pk=october.pk).status == "succeeded"
    assert manual.unallocated == 5_000
    assert customer_credit(contract.customer.pk, "EUR") == 5_000
    assert OutboxEvent.objects.filter(event_type="payments.customer_credit.changed", payload__credit=5_000).exists()

    [november] = invoiced((contract, 8_000), period="2026-11")

    assert (november.allocated, november.to_collect, november.status) == (5_000, 3_000, "pending")
    assert customer_credit(contract.customer.pk, "EUR") == 0
    assert outstanding(contract) == 3_000
    assert OutboxEvent.objects.filter(event_type="payments.customer_credit.changed", payload__credit=0).exists()


def test_oldest_first_unless_staff_choose_and_only_the_customers_own_invoices(bank):
    customer = factories.customer()
    first = factories.contract(customer_obj=customer)
    second = factories.contract(customer_obj=customer)
    stranger = factories.contract()
    settled()
    older, newer, theirs = invoiced((first, 3_000), (second, 5_000), (stranger, 1_000))
    Payment.objects.filter(pk=newer.pk).update(original_due_date=dt.date(2026, 12, 2))

    transfer(customer, 4_000, "VIR-A")  # oldest first: 3,000 to `older`, 1,000 to `newer`
    assert [Payment.objects.get(pk=p.pk).allocated for p in (older, newer, theirs)] == [3_000, 1_000, 0]

    transfer(customer, 1_000, "VIR-B", invoice_ids=[str(newer.invoice_id)])
    assert Payment.objects.get(pk=newer.pk).allocated == 2_000

    with pytest.raises(DomainError) as refused:
        transfer(customer, 1_000, "VIR-C", invoice_ids=[str(theirs.invoice_id)])
    assert (refused.value.code, refused.value.status) == ("invoice_not_payable", 422)
    assert not ManualPayment.objects.filter(bank_reference="VIR-C").exists()  # nothing recorded


def test_a_reference_is_recorded_once_and_bad_input_is_refused(bank):
    contract = factories.contract()
    settled()
    invoiced((contract, 10_000))
    transfer(contract.customer, 1_000, "VIR-ONCE")

    with pytest.raises(DomainError) as again:
        transfer(contract.customer, 1_000, "VIR-ONCE")
    assert again.value.code == "manual_payment_exists"
    for amount in (0, -5, 10.5, True):
        with pytest.raises(DomainError, match="positive integer"):
            transfer(contract.customer, amount, f"VIR-{amount}")
    assert ManualPayment.objects.count() == 1
    assert outstanding(contract) == 9_000


def test_staff_record_a_transfer_in_the_admin_and_see_where_it_went(bank, admin_client):
    contract = factories.contract()
    settled()
    [payment] = invoiced((contract, 10_000))

    page = admin_client.post(
        "/admin/payments/manualpayment/record/",
        {
            "customer_id": str(contract.customer.pk),
            "method": "transfer",
            "amount": "25.50",
            "currency": "EUR",
            "received_on": "2026-11-20",
            "bank_reference": "VIR-ADMIN-1",
            "invoice_ids": "",
        },
    )
    settled()

    manual = ManualPayment.objects.get(bank_reference="VIR-ADMIN-1")
    assert page.status_code == 302 and page["Location"].endswith(f"/{manual.pk}/change/")
    assert (manual.amount, manual.recorded_by) == (2_550, "admin")
    assert Payment.objects.get(pk=payment.pk).allocated == 2_550
    detail = admin_client.get(page["Location"]).content.decode()
    assert payment.invoice_number in detail
    again = admin_client.post(
        "/admin/payments/manualpayment/record/",
        {"customer_id": str(contract.customer.pk), "method": "transfer", "amount": "1", "currency": "EUR",
         "received_on": "2026-11-20", "bank_reference": "VIR-ADMIN-1"},
    )  # fmt: skip
    assert "is recorded already" in again.content.decode()
    assert "Enregistrer un paiement reçu" in admin_client.get("/admin/payments/manualpayment/").content.decode()


def manual_body(customer, **changes) -> dict:
    return {
        "customer_id": str(customer.pk),
        "method": "cheque",
        "amount": 3_000,
        "currency": "EUR",
        "received_on": "2026-11-20",
        "bank_reference": "CHQ-0004512",
        **changes,
    }


def test_a_staff_system_records_a_cheque_through_the_api_once(bank):
    from rest_framework.test import APIClient

    contract = factories.contract()
    settled()
    [payment] = invoiced((contract, 10_000))
    _, key = factories.api_key("payments:manual", name="tresorerie")
    api = APIClient(HTTP_AUTHORIZATION=f"Api-Key {key}")

    created = api.post(
        "/api/v1/payments/manual", manual_body(contract.customer), format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    replayed = api.post(
        "/api/v1/payments/manual", manual_body(contract.customer), format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    settled()

    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["amount"], body["unallocated"], body["recorded_by"]) == (3_000, 0, "api key tresorerie")
    assert body["allocations"] == [
        {"invoice_id": str(payment.invoice_id), "invoice_number": payment.invoice_number, "amount": 3_000}
    ]
    assert (replayed.status_code, replayed.json()) == (201, body)  # the first answer, nothing recorded twice
    assert ManualPayment.objects.count() == 1 and outstanding(contract) == 7_000

    again = api.post(
        "/api/v1/payments/manual", manual_body(contract.customer), format="json", HTTP_IDEMPOTENCY_KEY="k2"
    )
    assert (again.status_code, again.json()["code"]) == (409, "manual_payment_exists")
    missing_key = api.post("/api/v1/payments/manual", manual_body(contract.customer, bank_reference="X"), format="json")
    assert (missing_key.status_code, missing_key.json()["code"]) == (400, "idempotency_key_required")
    bad = api.post(
        "/api/v1/payments/manual",
        manual_body(contract.customer, amount=0, surprise=1, bank_reference="Y"),
        format="json",
        HTTP_IDEMPOTENCY_KEY="k3",
    )
    assert bad.status_code == 400 and bad["Content-Type"] == "application/problem+json"
    _, reader = factories.api_key("payments:read")
    forbidden = APIClient(HTTP_AUTHORIZATION=f"Api-Key {reader}").post(
        "/api/v1/payments/manual", manual_body(contract.customer, bank_reference="Z"), format="json",
        HTTP_IDEMPOTENCY_KEY="k4",
    )  # fmt: skip
    assert forbidden.status_code == 403
    assert ManualPayment.objects.count() == 1
