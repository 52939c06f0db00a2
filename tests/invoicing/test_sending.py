"""Sending: the PDF (with its Factur-X XML) mailed to the billing address, then billing
marks the operations invoiced through the `invoice sent` event."""

import datetime as dt

import facturx
import pytest
from django.core import mail

from billing.models import ContractAccount, Operation
from invoicing import services
from invoicing.models import Invoice
from tests import factories
from tests.clock import freeze_module_at
from tests.factories import delivered, item
from tests.invoicing.test_billing_run import buy, on

# Every test here starts on one frozen "today" (Paris, ticking), whatever the real date:
# the contracts its factories make are valid on the dates the tests travel to.
_today = freeze_module_at(dt.date(2026, 10, 1))

pytestmark = pytest.mark.django_db


def run_and_send(period="2026-10", day=dt.date(2026, 11, 1)):
    with on(day, hour=2), delivered():
        return services.run_billing(period=period)


@pytest.fixture
def billed():
    contract = factories.billed_contract(
        customer_obj=factories.customer(billing_email="compta@cse-acme.example", vat_number="FR44732829320"),
        payment_terms_days=30,
    )
    buy(contract, dt.date(2026, 10, 3), item(10_000, vat_rate="20"))
    buy(contract, dt.date(2026, 10, 9), item(5_000, vat_rate="10"))
    run_and_send()
    return contract


def test_the_run_mails_each_invoice_with_its_pdf_to_the_billing_address(billed):
    invoice = Invoice.objects.get()
    [message] = mail.outbox
    assert message.to == ["compta@cse-acme.example"]
    assert invoice.number in message.subject
    assert "01/12/2026" in message.body  # the SEPA pre-notification: the debit date
    [(filename, content, mimetype)] = message.attachments
    assert (filename, mimetype) == (f"{invoice.number}.pdf", "application/pdf")
    assert content.startswith(b"%PDF")
    assert (invoice.status, invoice.sent_count) == ("sent", 1)


def test_the_mailed_pdf_carries_a_valid_factur_x_invoice_with_the_same_total(billed):
    invoice = Invoice.objects.get()
    _, content, _ = mail.outbox[0].attachments[0]
    _, xml = facturx.get_xml_from_pdf(content, check_xsd=True)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    assert f"<ram:GrandTotalAmount>{invoice.total_incl_tax / 100:.2f}</ram:GrandTotalAmount>" in xml.decode()


def test_once_sent_the_operations_are_invoiced_and_await_collection(billed):
    invoice = Invoice.objects.get()
    assert set(Operation.objects.values_list("settlement", "invoice_id")) == {("invoiced", invoice.pk)}
    account = ContractAccount.objects.get(pk=billed.pk)
    assert (account.unbilled, account.invoiced_unpaid) == (0, 12_000 + 5_500)
    assert account.outstanding == 17_500


def test_sending_again_changes_nothing_but_a_resend_mails_it_again(billed):
    invoice = Invoice.objects.get()
    with delivered():
        services.send_invoice(invoice_id=invoice.pk)
    assert len(mail.outbox) == 1
    with delivered():
        services.send_invoice(invoice_id=invoice.pk, resend=True)
    invoice.refresh_from_db()
    assert (len(mail.outbox), invoice.sent_count, invoice.status) == (2, 2, "sent")
    assert ContractAccount.objects.get(pk=billed.pk).invoiced_unpaid == 17_500  # counted once


def test_an_unreachable_mail_server_leaves_the_invoice_issued_for_a_later_sending(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 1
    contract = factories.billed_contract()
    buy(contract, dt.date(2026, 10, 3))
    billing_run = run_and_send()
    invoice = Invoice.objects.get()
    assert (billing_run.status, invoice.status, invoice.sent_count) == ("completed", "issued", 0)
    assert Operation.objects.get().settlement == "unbilled"


def test_a_credit_note_is_mailed_as_an_avoir(db):
    contract = factories.billed_contract()
    bought = buy(contract, dt.date(2026, 9, 3), item(9_000))
    run_and_send(period="2026-09", day=dt.date(2026, 10, 1))
    from billing.services import submit_operation
    from tests.factories import operation_request

    with on(dt.date(2026, 10, 4)), delivered():
        submit_operation(request=operation_request(contract.pk, item(4_000), type="refund", refund_of=bought.pk))
    run_and_send()
    credit_note = Invoice.objects.get(kind="credit_note")
    assert credit_note.status == "sent"
    assert mail.outbox[-1].subject.startswith(f"Avoir {credit_note.number}")
    account = ContractAccount.objects.get(pk=contract.pk)
    assert account.outstanding == 9_000 - 4_000


def test_an_invoice_that_cannot_be_sent_is_shown_to_staff_until_it_is(admin_client, monkeypatch):
    contract = factories.billed_contract()
    buy(contract, dt.date(2026, 10, 3), item(10_000, vat_rate="20"))

    def broken_mail_server(self, *args, **kwargs):
        raise ConnectionRefusedError("SMTP server unreachable")

    monkeypatch.setattr("django.core.mail.message.EmailMessage.send", broken_mail_server)
    run_and_send()  # the sending task retries, and fails each time
    invoice = Invoice.objects.get()
    assert invoice.status == "issued" and invoice.sending_failures >= 1
    assert "SMTP server unreachable" in invoice.sending_error
    page = admin_client.get("/admin/invoicing/invoice/", {"sending": "failed"})
    assert page.context["cl"].result_count == 1
    assert f"failed {invoice.sending_failures} time(s)" in page.content.decode()

    monkeypatch.undo()
    with delivered():
        services.send_invoice(invoice_id=invoice.pk)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.sending_failures, invoice.sending_error) == ("sent", 0, "")
