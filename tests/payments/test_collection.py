"""Closing the loop, end to end through the event bus, on real PostgreSQL, our web server
(the webhook) and the provider emulator over HTTP: a month of purchases becomes an
invoice collected by direct debit; success frees the credit, repeated failure suspends
the contract and blocks purchases."""

import datetime as dt

import pytest
import time_machine

from billing.models import ContractAccount
from boissipay.clock import PARIS
from contracts.models import Contract
from devtools.payments_emulator import GatewayEmulator
from invoicing import services as invoicing
from invoicing.models import Invoice
from payments import services as payments
from payments.models import Payment, PaymentItem
from tests import eventkit, factories
from tests.clock import freeze_module_at
from tests.factories import buy, settled

# Every test here starts on one frozen "today" (Paris, ticking), whatever the real date.
_today = freeze_module_at(dt.date(2026, 10, 1))

DECEMBER_1 = dt.date(2026, 12, 1)


@pytest.fixture
def emulator(live_server, settings, event_dispatcher):
    """The provider, answering our webhook (served by the live server) after 50 ms; the
    debtor account DE89… has no money."""
    settings.PAYMENTS_GATEWAY = "emulator"
    settings.PAYMENTS_RETRY_DAYS = [3, 7]
    settings.PAYMENTS_WEBHOOK_URL = f"{live_server.url}/api/v1/payments/webhook"
    provider = GatewayEmulator(
        port=0,
        secret=settings.PAYMENTS_WEBHOOK_SECRET,
        outcomes={"iban": {factories.OTHER_IBAN: "insufficient_funds"}},
        delay_seconds=0.05,
    ).start()
    settings.PAYMENTS_EMULATOR_URL = provider.url
    yield provider
    provider.stop()


def invoice_october() -> None:
    with time_machine.travel(dt.datetime(2026, 11, 1, 2, tzinfo=PARIS), tick=False):
        invoicing.run_billing(period="2026-10")
    settled()


def payment_of(contract) -> Payment:
    return Payment.objects.get(contract_id=contract.pk)


def wait_for(contract, **state) -> Payment:
    return eventkit.wait_until(
        lambda: Payment.objects.filter(contract_id=contract.pk, **state).first(), timeout=30, message=str(state)
    )


def test_a_month_of_purchases_is_invoiced_and_collected_success_frees_credit_failure_suspends(emulator):
    # Given two contracts with purchases in October, one of them up to its credit limit.
    paying = factories.contract(credit_limit=50_000, payment_terms_days=30)
    failing = factories.contract(mandate=factories.mandate_details(iban=factories.OTHER_IBAN, bic=""))
    settled()
    buy(paying, 30_000, dt.date(2026, 10, 5))
    buy(paying, 20_000, dt.date(2026, 10, 20))
    buy(failing, 12_000, dt.date(2026, 10, 7))
    assert buy(paying, 1).reason_code == "credit_limit_exceeded"

    # When the month is invoiced on the 1st (invoices issued and mailed) ...
    invoice_october()
    assert set(Invoice.objects.values_list("status", flat=True)) == {"sent"}
    assert {p.due_date for p in Payment.objects.all()} == {DECEMBER_1}
    assert ContractAccount.objects.get(pk=paying.pk).invoiced_unpaid == 50_000

    # ... and collected on the due date through the emulator.
    counts = payments.submit_due_payments(today=DECEMBER_1)
    assert counts == {"due": 2, "submitted": 2, "refused": 0, "failed": 0}

    # Then the paying contract's invoice is paid and its credit is free again.
    paid = wait_for(paying, status="succeeded")
    assert paid.sequence_type == "FRST"
    eventkit.wait_until(lambda: Invoice.objects.filter(contract_id=paying.pk, status="paid").exists(), timeout=10)
    account = ContractAccount.objects.get(pk=paying.pk)
    assert (account.outstanding, account.invoiced_unpaid) == (0, 0)
    assert set(PaymentItem.objects.filter(contract_id=paying.pk).values_list("status", flat=True)) == {"settled"}
    assert buy(paying, 50_000).status == "accepted"

    # And the failing one is retried 3 and 7 days after the due date, then failed for good ...
    retry = wait_for(failing, status="pending", attempts=1)
    assert (retry.due_date, retry.failure_reason[:18]) == (dt.date(2026, 12, 4), "insufficient_funds")
    assert payments.submit_due_payments(today=dt.date(2026, 12, 3))["due"] == 0  # not yet
    payments.submit_due_payments(today=dt.date(2026, 12, 4))
    assert wait_for(failing, status="pending", attempts=2).due_date == dt.date(2026, 12, 8)
    payments.submit_due_payments(today=dt.date(2026, 12, 8))
    final = wait_for(failing, status="failed", attempts=3)
    assert final.sequence_type == "RCUR"

    # ... which fails the invoice, suspends the contract, and blocks its purchases.
    eventkit.wait_until(lambda: Invoice.objects.filter(contract_id=failing.pk, status="failed").exists(), timeout=10)
    eventkit.wait_until(lambda: Contract.objects.filter(pk=failing.pk, status="suspended").exists(), timeout=10)
    eventkit.wait_until(lambda: ContractAccount.objects.filter(pk=failing.pk, status="suspended").exists(), timeout=10)
    assert buy(failing, 100).reason_code == "contract_not_active"
    assert ContractAccount.objects.get(pk=failing.pk).outstanding == 12_000  # still owed


def test_an_unreachable_provider_leaves_the_payments_pending_for_the_next_collection(emulator, settings):
    contract = factories.billed_contract()
    buy(contract, 5_000, dt.date(2026, 10, 5))
    invoice_october()
    emulator.stop()
    counts = payments.submit_due_payments(today=DECEMBER_1)
    assert counts["refused"] == 1
    payment = payment_of(contract)
    assert (payment.status, payment.attempts) == ("pending", 0)
    assert payment.log.filter(kind="gateway_call", summary__contains="not taken").exists()


def test_a_contract_without_an_active_mandate_fails_the_attempt(emulator):
    from contracts import services as contracts

    contract = factories.billed_contract()
    buy(contract, 5_000, dt.date(2026, 10, 5))
    invoice_october()
    contracts.revoke_mandate(contract_id=contract.pk, reason="Bank changed")
    assert payments.submit_due_payments(today=DECEMBER_1)["failed"] == 1
    payment = payment_of(contract)
    assert (payment.status, payment.attempts, payment.due_date) == ("pending", 1, dt.date(2026, 12, 4))
