"""Invoices through an approved e-invoicing platform (issue 16, section 1), against our
platform emulator (devtools.platform_emulator) serving over HTTP and calling our webhook
served over HTTP too: deposited once, statuses back (shown, published), collection held
when rejected or refused, "paid" reported after collection and corrected after a return."""

import datetime as dt
import json

import pytest
import requests
import time_machine

from boissipay import signatures
from boissipay.clock import PARIS
from boissipay.models import OutboxEvent
from devtools.platform_emulator import PlatformEmulator
from invoicing import einvoicing
from invoicing import services as invoicing
from invoicing.models import Invoice
from payments import services as payments
from payments.models import Payment
from tests import eventkit, factories
from tests.clock import freeze_module_at
from tests.factories import settled

_today = freeze_module_at(dt.date(2026, 10, 1))
pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "whsec_platform_test_secret"


@pytest.fixture
def platform(settings, live_server):
    """The platform emulator, calling back our webhook on the live test server."""
    settings.EINVOICING_GATEWAY = "platform_emulator"
    settings.EINVOICING_WEBHOOK_SECRET = SECRET
    settings.EINVOICING_PLATFORM_TOKEN = "platform-test-token"
    emulator = PlatformEmulator(
        webhook_url=f"{live_server.url}/api/v1/einvoicing/webhook",
        secret=SECRET,
        token="platform-test-token",
        outcomes={"delay_seconds": 0.05},
    ).start()
    settings.EINVOICING_PLATFORM_URL = emulator.url
    yield emulator
    emulator.stop()


def invoiced(contract, amount=10_000) -> Invoice:
    factories.buy(contract, amount, dt.date(2026, 10, 12))
    with time_machine.travel(dt.datetime(2026, 11, 1, 2, tzinfo=PARIS), tick=False):
        invoicing.run_billing(period="2026-10")
    settled()
    return Invoice.objects.get(contract_id=contract.pk, kind="invoice")


def statuses(invoice, count: int) -> list[str]:
    eventkit.wait_until(
        lambda: invoice.lifecycle.count() >= count, timeout=20, interval=0.05, message="the platform's statuses"
    )
    settled()
    return list(invoice.lifecycle.order_by("id").values_list("status", flat=True))  # as they arrived


def test_a_french_invoice_is_deposited_once_its_statuses_come_back_and_paid_is_reported(platform, bank):
    contract = factories.contract(credit_limit=50_000)
    settled()
    invoice = invoiced(contract)

    assert (invoice.channel, invoice.status) == ("platform", "sent")
    assert invoice.platform_message_id in platform.deposits
    assert statuses(invoice, 3) == ["deposited", "received", "approved"]
    invoice.refresh_from_db()
    assert invoice.platform_status == "approved"
    published = OutboxEvent.objects.filter(event_type="invoicing.invoice.lifecycle_changed")
    assert [row.payload["status"] for row in published.order_by("position")] == ["deposited", "received", "approved"]

    # Sending again never deposits twice: we keep the id, and the platform refuses a second deposit.
    invoicing.send_invoice(invoice_id=invoice.pk)
    assert einvoicing.deposit(invoice, b"%PDF") == invoice.platform_message_id
    assert len(platform.deposits) == 1

    # Collected: "paid" is reported with the amount and the date; a return corrects it.
    with time_machine.travel(dt.datetime(2026, 11, 30, 9, tzinfo=PARIS), tick=False):
        payments.submit_due_payments(today=dt.date(2026, 11, 30))
    settled()
    payment = Payment.objects.get(invoice_id=invoice.pk)
    from tests.payments.bank_files import Booking, notification
    from tests.payments.test_bank_files import e2e, import_file

    for day, booking, name in (
        (dt.date(2026, 12, 10), Booking("settled", e2e(payment), 10_000), "N1"),
        (dt.date(2026, 12, 14), Booking("returned", e2e(payment), 10_000, "AM04"), "N2"),
    ):
        with time_machine.travel(dt.datetime(day.year, day.month, day.day, 8, tzinfo=PARIS), tick=False):
            import_file(bank, notification([booking], message_id=name), f"{name}.xml", day)
            settled()  # invoicing learns it the same day, and reports it dated so
    reports = platform.deposits[invoice.platform_message_id]["reports"]
    assert [(r["status"], r["amount"], r["date"]) for r in reports] == [
        ("paid", 10_000, "2026-12-10"),
        ("payment_cancelled", 10_000, "2026-12-14"),
    ]
    assert statuses(invoice, 5)[-2:] == ["paid", "payment_cancelled"]


def test_a_rejected_or_refused_invoice_holds_its_debit_until_staff_decide(platform, admin_client, bank):
    rejected_buyer = factories.customer()
    refused_buyer = factories.customer()
    paying_buyer = factories.customer()
    platform.outcomes["siren"] = {
        rejected_buyer.siren: "rejected",
        refused_buyer.siren: "refused",
        paying_buyer.siren: "paid",
    }
    paying = factories.contract(customer_obj=paying_buyer, credit_limit=50_000)
    rejected = factories.contract(customer_obj=rejected_buyer, credit_limit=50_000)
    refused = factories.contract(customer_obj=refused_buyer, credit_limit=50_000)
    settled()
    for contract in (rejected, refused, paying):
        factories.buy(contract, 10_000, dt.date(2026, 10, 12))
    with time_machine.travel(dt.datetime(2026, 11, 1, 2, tzinfo=PARIS), tick=False):
        invoicing.run_billing(period="2026-10")
    settled()
    rejected_invoice = Invoice.objects.get(contract_id=rejected.pk)
    refused_invoice = Invoice.objects.get(contract_id=refused.pk)

    assert statuses(rejected_invoice, 1) == ["rejected"]
    assert statuses(refused_invoice, 3) == ["deposited", "received", "refused"]
    paying_invoice = Invoice.objects.get(contract_id=paying.pk)
    assert statuses(paying_invoice, 4) == ["deposited", "received", "approved", "paid"]  # the buyer's word
    assert Payment.objects.get(invoice_id=paying_invoice.pk).on_hold == ""  # our debit still collects it
    for invoice in (rejected_invoice, refused_invoice):
        payment = Payment.objects.get(invoice_id=invoice.pk)
        assert payment.on_hold.startswith("e-invoicing: ")
    with time_machine.travel(dt.datetime(2026, 11, 30, 9, tzinfo=PARIS), tick=False):  # the day before they fall due
        assert payments.submit_due_payments(today=dt.date(2026, 11, 30))["due"] == 1  # only the paying one
    # Staff see them, and decide: here the refusal is settled and the debit goes ahead.
    listing = admin_client.get("/admin/invoicing/invoice/?platform=attention")
    assert rejected_invoice.number in listing.content.decode() and refused_invoice.number in listing.content.decode()
    page = admin_client.get(f"/admin/invoicing/invoice/{refused_invoice.pk}/change/").content.decode()
    assert "Refused by the buyer (emulated)." in page
    held = Payment.objects.get(invoice_id=refused_invoice.pk)
    answer = admin_client.post("/admin/payments/payment/", {"action": "release_hold", "_selected_action": [held.pk]})
    assert answer.status_code == 302 and Payment.objects.get(pk=held.pk).on_hold == ""
    with time_machine.travel(dt.datetime(2026, 11, 30, 9, tzinfo=PARIS), tick=False):
        assert payments.submit_due_payments(today=dt.date(2026, 11, 30))["submitted"] == 1  # the refused one, now


def test_make_run_starts_the_platform_emulator_when_it_is_the_gateway(settings):
    from devtools.management.commands.run_local import local_processes

    settings.EINVOICING_GATEWAY = "platform_emulator"
    settings.EINVOICING_PLATFORM_URL = "http://127.0.0.1:8098"
    assert local_processes("127.0.0.1", 8000)["platform-emulator"][-5:] == [
        "run_platform_emulator",
        "--host",
        "127.0.0.1",
        "--port",
        "8098",
    ]
    settings.EINVOICING_GATEWAY = "email"
    assert "platform-emulator" not in local_processes("127.0.0.1", 8000)


def test_the_webhook_refuses_a_forged_signature_and_applies_an_event_once(platform, live_server):
    contract = factories.contract(credit_limit=50_000)
    settled()
    invoice = invoiced(contract)
    statuses(invoice, 3)
    url = f"{live_server.url}/api/v1/einvoicing/webhook"
    event = {
        "event_id": "evt_replayed",
        "message_id": invoice.platform_message_id,
        "status": "refused",
        "reason": "late refusal",
        "occurred_at": int(dt.datetime(2026, 10, 1, 12, tzinfo=PARIS).timestamp()),  # the frozen day
    }
    body = json.dumps(event).encode()

    forged = requests.post(
        url, data=body, headers={signatures.HEADER: signatures.sign(body, "not-the-secret")}, timeout=10
    )
    assert forged.status_code == 401 and forged.headers["Content-Type"] == "application/problem+json"
    signed = {signatures.HEADER: signatures.sign(body, SECRET), "Content-Type": "application/json"}
    first = requests.post(url, data=body, headers=signed, timeout=10)
    again = requests.post(url, data=body, headers=signed, timeout=10)
    assert (first.json(), again.json()) == ({"received": True, "applied": True}, {"received": True, "applied": False})
    unknown = json.dumps({**event, "event_id": "evt_2", "message_id": "msg_unknown"}).encode()
    answer = requests.post(url, data=unknown, headers={signatures.HEADER: signatures.sign(unknown, SECRET)}, timeout=10)
    assert answer.status_code == 404
    assert statuses(invoice, 4)[-1] == "refused"
