"""Credit notes on demand (issue 15, section 4): staff credit an issued invoice in full or
in part; the credit note takes the next number, cites the invoice (BT-25), is a valid
Factur-X 381; the outstanding and the debit drop, or a refund is owed and paid by a
pain.001 credit transfer. Nothing is credited twice or beyond the invoice."""

import datetime as dt
import threading

import facturx
import pytest
import time_machine
from django.db import connection, transaction
from lxml import etree

from billing.models import ContractAccount, Operation
from billing.services import submit_operation
from boissipay.clock import PARIS
from boissipay.errors import DomainError
from boissipay.models import OutboxEvent
from invoicing import services as invoicing
from invoicing.credit_notes import AmountLine, issue_credit_note
from invoicing.models import Invoice
from payments import services as payments
from payments.credit_notes import export_refunds
from payments.manual_payments import customer_credit
from payments.models import Payment, Refund
from tests import factories
from tests.clock import freeze_module_at
from tests.factories import buy, settled
from tests.payments.bank_files import Booking, Reject, notification, status_report
from tests.payments.test_bank_files import collected_in_december, e2e, import_file
from tests.payments.test_manual_payments import invoiced, outstanding, submit_on_november_30, transfer

_today = freeze_module_at(dt.date(2026, 10, 1))
pytestmark = pytest.mark.django_db(transaction=True)

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}


def on(day: dt.date):
    return time_machine.travel(dt.datetime(day.year, day.month, day.day, 10, tzinfo=PARIS), tick=False)


def credit(invoice_id, day=dt.date(2026, 11, 10), **how) -> Invoice:
    """Staff issue a credit note on `day`; every context fed before it returns."""
    how.setdefault("reason", "Erreur de tarif sur le billet")
    how.setdefault("issued_by", "compta@agence")
    with on(day):
        note = issue_credit_note(invoice_id=invoice_id, **how)
    settled()
    return note


def xml_of(note: Invoice) -> bytes:
    pdf = invoicing.invoice_pdf(invoice_id=note.pk)
    _, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)
    return xml


def one(xml: bytes, path: str) -> str:
    [value] = etree.fromstring(xml).xpath(path, namespaces=NS)
    return value


def test_a_partial_credit_by_amount_lowers_the_outstanding_and_the_debit(bank):
    contract = factories.contract(credit_limit=50_000)
    settled()
    [payment] = invoiced((contract, 10_000))
    invoice = Invoice.objects.get(pk=payment.invoice_id)
    assert outstanding(contract) == 10_000

    note = credit(payment.invoice_id, amounts=[AmountLine(rate="0", amount_excl_tax=2_500)])

    # The next number of the same sequence; it cites the invoice it corrects.
    assert note.kind == "credit_note" and note.corrects_id == invoice.pk
    assert int(note.number.rsplit("-", 1)[1]) == int(invoice.number.rsplit("-", 1)[1]) + 1
    assert (note.total_excl_tax, note.total_vat, note.total_incl_tax) == (-2_500, 0, -2_500)
    invoice.refresh_from_db()
    assert (invoice.credited, invoice.status) == (2_500, "sent")
    # Billing: 2,500 is no longer outstanding; payments: the debit takes the rest.
    assert outstanding(contract) == 7_500
    payment.refresh_from_db()
    assert (payment.credited, payment.to_collect, payment.status) == (2_500, 7_500, "pending")
    event = OutboxEvent.objects.get(event_type="invoicing.credit_note.issued")
    assert event.payload["credited"] == 2_500 and event.payload["issued_by"] == "compta@agence"
    assert OutboxEvent.objects.filter(event_type="payments.payment.credited", payload__lowered=2_500).exists()

    # Its document: Factur-X type 381 citing the invoice (BT-25, BT-26), sent to the customer.
    xml = xml_of(note)
    assert one(xml, "//rsm:ExchangedDocument/ram:TypeCode/text()") == "381"
    assert one(xml, "//ram:InvoiceReferencedDocument/ram:IssuerAssignedID/text()") == invoice.number
    assert one(xml, "//ram:InvoiceReferencedDocument/ram:FormattedIssueDateTime/*/text()") == (
        invoice.issue_date.strftime("%Y%m%d")
    )
    assert one(xml, "//ram:GrandTotalAmount/text()") == "25.00"
    assert Invoice.objects.get(pk=note.pk).status == "sent"

    # The debit takes 75.00, the bank collects it, and nothing is outstanding: not minus 2,500.
    assert submit_on_november_30()["submitted"] == 1
    [sepa_file] = sorted((bank / "sepa").glob("*.xml"))
    assert b'<InstdAmt Ccy="EUR">75.00</InstdAmt>' in sepa_file.read_bytes()
    payment.refresh_from_db()
    import_file(bank, notification([Booking("settled", e2e(payment), 7_500)], message_id="N1"), "n1.xml")
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"
    assert outstanding(contract) == 0


def test_a_credit_by_operation_and_vat_rate_computes_the_vat_and_refuses_what_the_invoice_has_not(bank):
    contract = factories.contract(credit_limit=500_000)
    settled()
    with on(dt.date(2026, 10, 12)):
        first = submit_operation(
            request=factories.operation_request(contract.pk, factories.item(10_000, vat_rate="20"))
        )
        submit_operation(request=factories.operation_request(contract.pk, factories.item(5_000, vat_rate="10")))
    settled()
    with on(dt.date(2026, 11, 1)):
        invoicing.run_billing(period="2026-10")
    settled()
    invoice = Invoice.objects.get(contract_id=contract.pk, kind="invoice")
    assert invoice.total_incl_tax == 12_000 + 5_500
    account = ContractAccount.objects.get(pk=contract.pk)
    assert account.outstanding == 17_500

    by_line = credit(invoice.pk, operation_ids=[str(first.pk)])
    assert (by_line.total_excl_tax, by_line.total_vat, by_line.total_incl_tax) == (-10_000, -2_000, -12_000)
    [line] = by_line.credit_lines.all()
    assert line.operation_id == first.pk and line.external_ref == first.external_ref

    by_amount = credit(invoice.pk, amounts=[AmountLine(rate="10.00", amount_excl_tax=1_005, description="Geste")])
    assert (by_amount.total_excl_tax, by_amount.total_vat) == (-1_005, -101)  # 100.5 rounded half up
    assert outstanding(contract) == 17_500 - 12_000 - 1_106

    def refused(code, **how):
        with pytest.raises(DomainError) as error:
            credit(invoice.pk, **how)
        assert error.value.code == code, error.value.detail
        return error.value

    refused("operation_already_credited", operation_ids=[str(first.pk)])
    refused("operation_not_on_invoice", operation_ids=["00000000-0000-0000-0000-000000000001"])
    refused("rate_not_on_invoice", amounts=[AmountLine(rate="5.5", amount_excl_tax=100)])
    refused("credit_exceeds_invoice", amounts=[AmountLine(rate="10", amount_excl_tax=4_000)])  # 3,995 left at 10 %
    refused("invoice_partly_credited", full=True)
    refused("validation_error", full=True, amounts=[AmountLine(rate="10", amount_excl_tax=1)])
    refused("validation_error", amounts=[AmountLine(rate="10", amount_excl_tax=0)])
    refused("validation_error", amounts=[AmountLine(rate="10", amount_excl_tax=1)], reason="  ")
    refused("validation_error", amounts=[AmountLine(rate="abc", amount_excl_tax=1)])
    with pytest.raises(DomainError) as error:
        credit(by_amount.pk, amounts=[AmountLine(rate="10", amount_excl_tax=1)])  # a credit note is not credited
    assert (error.value.code, error.value.status) == ("invoice_not_creditable", 409)
    # Nothing refused changed anything.
    assert Invoice.objects.filter(kind="credit_note").count() == 2
    assert Invoice.objects.get(pk=invoice.pk).credited == 12_000 + 1_106


def test_in_full_the_invoice_is_cancelled_and_its_operations_are_invoiced_again_corrected(bank):
    contract = factories.contract(credit_limit=50_000)
    settled()
    [payment] = invoiced((contract, 10_000))
    transfer(contract.customer, 3_000, "VIR-2026-11-0101")
    assert outstanding(contract) == 7_000
    original = Invoice.objects.get(pk=payment.invoice_id)

    note = credit(original.pk, full=True, reason="Raison sociale du client erronée")

    original.refresh_from_db()
    assert (original.status, original.credited) == ("cancelled", 10_000)
    assert original.pdf  # the cancelled invoice keeps its document as issued
    assert note.total_incl_tax == -10_000 and note.credit_lines.count() == 1
    # The debit is cancelled; the transfer's 3,000 is the customer's credit again.
    payment.refresh_from_db()
    assert (payment.status, payment.to_collect) == ("cancelled", 0)
    assert customer_credit(contract.customer.pk, "EUR") == 3_000
    # Billing: the operation is unbilled again, and the whole 10,000 outstanding until paid.
    assert Operation.objects.get(contract_id=contract.pk).settlement == "unbilled"
    account = ContractAccount.objects.get(pk=contract.pk)
    assert (account.unbilled, account.invoiced_unpaid) == (10_000, 0)
    assert submit_on_november_30()["due"] == 0

    # Issued again (an early invoice, corrected), paid first from the customer's credit.
    with on(dt.date(2026, 11, 12)):
        invoicing.invoice_early(
            contract_reference=contract.reference, reason="Réémission corrigée", trigger="admin", started_by="compta"
        )
    settled()
    reissued = Invoice.objects.get(contract_id=contract.pk, kind="invoice", status="sent")
    assert reissued.total_incl_tax == 10_000 and reissued.number > note.number
    assert invoicing.invoice_lines(reissued).count() == 1
    again = Payment.objects.get(invoice_id=reissued.pk)
    assert (again.allocated, again.to_collect) == (3_000, 7_000)
    assert outstanding(contract) == 7_000


def test_a_collected_invoice_credited_owes_a_refund_paid_by_a_credit_transfer(bank):
    contract = factories.contract(credit_limit=50_000)
    settled()
    [payment] = collected_in_december((contract, 20_000))
    import_file(bank, notification([Booking("settled", e2e(payment), 20_000)], message_id="N1"), "n1.xml")
    assert outstanding(contract) == 0

    note = credit(payment.invoice_id, day=dt.date(2026, 12, 12), amounts=[AmountLine("0", 4_000)])

    [refund] = Refund.objects.all()
    assert (refund.amount, refund.status, refund.credit_note_number) == (4_000, "owed", note.number)
    assert outstanding(contract) == 0  # already paid: nothing more comes off the balance
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"

    with on(dt.date(2026, 12, 14)):
        export = export_refunds(exported_by="tresorerie@agence")
    assert (export.count, export.total) == (1, 4_000)
    tree = etree.fromstring(export.xml.encode())
    ns = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}
    assert tree.xpath("//p:CdtTrfTxInf/p:Amt/p:InstdAmt/text()", namespaces=ns) == ["40.00"]
    assert tree.xpath("//p:CdtTrfTxInf/p:CdtrAcct/p:Id/p:IBAN/text()", namespaces=ns) == [
        contract.mandates.get(is_current=True).iban
    ]
    assert note.number in tree.xpath("//p:RmtInf/p:Ustrd/text()", namespaces=ns)[0]
    refund.refresh_from_db()
    assert (refund.status, refund.export_id) == ("exported", export.pk)
    assert OutboxEvent.objects.filter(event_type="payments.refund.changed", payload__refund__status="exported")
    with on(dt.date(2026, 12, 15)):
        assert export_refunds(exported_by="tresorerie@agence") is None  # exported once


def test_a_credit_while_the_debit_is_at_the_bank_is_held_then_owed_or_lowers_the_next_attempt(bank):
    one_contract, other = factories.contract(credit_limit=50_000), factories.contract(credit_limit=50_000)
    settled()
    settled_payment, rejected_payment = collected_in_december((one_contract, 10_000), (other, 10_000))
    for payment in (settled_payment, rejected_payment):
        credit(payment.invoice_id, day=dt.date(2026, 11, 30), amounts=[AmountLine("0", 1_000)])
    assert set(Refund.objects.values_list("status", flat=True)) == {"held"}

    import_file(bank, notification([Booking("settled", e2e(settled_payment), 10_000)], message_id="N1"), "n1.xml")
    rejected = status_report([Reject(e2e(rejected_payment), "AM04", 10_000)], message_id="S1")
    import_file(bank, rejected, "s1.xml", dt.date(2026, 12, 2))

    assert Refund.objects.get(payment=settled_payment).status == "owed"
    assert Refund.objects.get(payment=rejected_payment).status == "void"
    rejected_payment.refresh_from_db()
    assert (rejected_payment.status, rejected_payment.credited, rejected_payment.to_collect) == (
        "pending",
        1_000,
        9_000,
    )
    assert outstanding(one_contract) == 0 and outstanding(other) == 9_000


def test_two_staff_crediting_the_same_invoice_at_once_never_credit_more_than_it_holds(bank):
    contract = factories.contract(credit_limit=50_000)
    settled()
    [payment] = invoiced((contract, 10_000))
    barrier, outcomes = threading.Barrier(2), []

    def staff(name):
        try:
            barrier.wait()
            with on(dt.date(2026, 11, 10)), transaction.atomic():
                issue_credit_note(
                    invoice_id=payment.invoice_id,
                    amounts=[AmountLine("0", 6_000)],
                    reason="Doublon",
                    issued_by=name,
                )
            outcomes.append("issued")
        except DomainError as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=staff, args=(f"staff-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    settled()
    assert sorted(outcomes) == ["credit_exceeds_invoice", "issued"]
    assert Invoice.objects.get(pk=payment.invoice_id).credited == 6_000
    assert outstanding(contract) == 4_000
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert [int(n.rsplit("-", 1)[1]) for n in numbers] == list(range(1, len(numbers) + 1))  # gapless
    assert buy(contract, 46_000, dt.date(2026, 11, 12)).status == "accepted"  # the freed credit is usable


def test_a_staff_system_credits_an_invoice_through_the_api_once(bank):
    from rest_framework.test import APIClient

    contract = factories.contract(credit_limit=50_000)
    settled()
    [payment] = invoiced((contract, 10_000))
    _, key = factories.api_key("invoices:credit", "invoices:read", name="facturation")
    api = APIClient(HTTP_AUTHORIZATION=f"Api-Key {key}")
    url = f"/api/v1/invoices/{payment.invoice_id}/credit-notes"
    body = {"amounts": [{"rate": "0.00", "amount_excl_tax": 1_500, "description": "Frais annulés"}], "reason": "Geste"}

    with on(dt.date(2026, 11, 10)):
        created = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="c1")
        replayed = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="c1")
    settled()

    assert created.status_code == 201, created.content
    note = created.json()
    assert (note["kind"], note["total_incl_tax"], note["corrects_id"]) == (
        "credit_note",
        -1_500,
        str(payment.invoice_id),
    )
    assert note["corrects_number"] == payment.invoice_number and note["issued_by"] == "api key facturation"
    assert [(line["type"], line["operation_id"], line["amount"]) for line in note["lines"]] == [
        ("credit", None, -1_500)
    ]
    assert (replayed.status_code, replayed.json()) == (201, note)  # the first answer; nothing credited twice
    assert Invoice.objects.filter(kind="credit_note").count() == 1 and outstanding(contract) == 8_500
    assert api.get(f"/api/v1/invoices/{payment.invoice_id}").json()["credited"] == 1_500

    def refused(body, key="c9", client=api):
        with on(dt.date(2026, 11, 10)):
            answer = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=key)
        assert answer["Content-Type"] == "application/problem+json", answer.content
        return answer.status_code, answer.json()["code"]

    assert refused({"full": True, "reason": "x"}) == (409, "invoice_partly_credited")
    assert refused({"amounts": [{"rate": "20", "amount_excl_tax": 1}], "reason": "x"}, "c3") == (
        422,
        "rate_not_on_invoice",
    )
    assert refused({"reason": "x"}, "c4") == (400, "validation_error")
    assert refused({"full": True, "reason": "x", "surprise": 1}, "c5")[0] == 400
    assert refused({"amounts": [{"rate": "0", "amount_excl_tax": 1}], "reason": "x\u0000"}, "c6")[0] == 400
    with on(dt.date(2026, 11, 10)):
        assert api.post(url, body, format="json").json()["code"] == "idempotency_key_required"
    _, reader = factories.api_key("invoices:read")
    assert refused(body, "c7", APIClient(HTTP_AUTHORIZATION=f"Api-Key {reader}"))[0] == 403
    _, scoped = factories.api_key("invoices:credit", customer_id=contract.customer.pk)
    assert refused(body, "c8", APIClient(HTTP_AUTHORIZATION=f"Api-Key {scoped}"))[0] == 403
    assert Invoice.objects.filter(kind="credit_note").count() == 1


def test_staff_issue_a_credit_note_in_the_admin_and_export_the_refund(bank, admin_client, admin_user):
    contract = factories.contract(credit_limit=50_000)
    settled()
    [payment] = collected_in_december((contract, 20_000))
    import_file(bank, notification([Booking("settled", e2e(payment), 20_000)], message_id="N1"), "n1.xml")
    invoice = Invoice.objects.get(pk=payment.invoice_id)
    page = admin_client.get(f"/admin/invoicing/invoice/{invoice.pk}/change/")
    assert b"Issue a credit note" in page.content

    form = admin_client.get(f"/admin/invoicing/invoice/{invoice.pk}/credit-note/")
    assert form.status_code == 200 and invoice.number.encode() in form.content
    with on(dt.date(2026, 12, 12)):
        admin_client.force_login(admin_user)  # a session of the day
        answer = admin_client.post(
            f"/admin/invoicing/invoice/{invoice.pk}/credit-note/",
            {"how": "amount", "rate": "0.00", "amount": "30.00", "description": "", "reason": "Billet non utilisé"},
        )
    settled()
    note = Invoice.objects.get(kind="credit_note")
    assert answer.status_code == 302 and answer["Location"].endswith(f"/{note.pk}/change/")
    assert (note.total_incl_tax, note.issued_by, note.reason) == (-3_000, "admin", "Billet non utilisé")
    assert invoice.number.encode() in admin_client.get(answer["Location"]).content
    with on(dt.date(2026, 12, 12)):
        admin_client.force_login(admin_user)
        wrong = admin_client.post(
            f"/admin/invoicing/invoice/{invoice.pk}/credit-note/",
            {"how": "amount", "rate": "0.00", "amount": "999.00", "reason": "Trop"},
        )
    assert wrong.status_code == 200 and "credited at 0.00 %" in wrong.content.decode()

    [refund] = Refund.objects.all()
    listing = admin_client.get("/admin/payments/refund/")
    assert listing.status_code == 200 and note.number.encode() in listing.content
    with on(dt.date(2026, 12, 14)):
        admin_client.force_login(admin_user)
        exported = admin_client.post(
            "/admin/payments/refund/", {"action": "export_owed", "_selected_action": [str(refund.pk)]}
        )
    refund.refresh_from_db()
    assert exported.status_code == 302 and refund.status == "exported"
    xml = admin_client.get(f"/admin/payments/refundexport/{refund.export_id}/xml/")
    assert xml["Content-Type"] == "application/xml" and b"pain.001.001.03" in xml.content


def test_an_invoice_credited_in_full_while_its_debit_is_at_the_bank_is_refunded_or_never_retried(bank):
    collected, rejected = factories.contract(credit_limit=50_000), factories.contract(credit_limit=50_000)
    settled()
    collected_payment, rejected_payment = collected_in_december((collected, 10_000), (rejected, 10_000))
    for payment in (collected_payment, rejected_payment):
        credit(payment.invoice_id, day=dt.date(2026, 11, 30), full=True, reason="Mauvais client")
    assert Invoice.objects.filter(kind="invoice", status="cancelled").count() == 2
    assert outstanding(collected) == outstanding(rejected) == 10_000  # unbilled again, to be invoiced anew

    import_file(bank, notification([Booking("settled", e2e(collected_payment), 10_000)], message_id="N1"), "n1.xml")
    rejected_file = status_report([Reject(e2e(rejected_payment), "AM04", 10_000)], message_id="S1")
    import_file(bank, rejected_file, "s1.xml", dt.date(2026, 12, 2))

    # Collected: the whole debit is owed back, and the operations wait for their new invoice.
    assert Refund.objects.get(payment=collected_payment).amount == 10_000
    assert Refund.objects.get(payment=collected_payment).status == "owed"
    assert outstanding(collected) == 10_000
    # Refused by the bank: nothing to refund, nothing to present again.
    assert Refund.objects.get(payment=rejected_payment).status == "void"
    rejected_payment.refresh_from_db()
    assert (rejected_payment.status, rejected_payment.to_collect) == ("cancelled", 0)
    assert outstanding(rejected) == 10_000
    with on(dt.date(2026, 12, 10)):
        assert payments.submit_due_payments(today=dt.date(2026, 12, 10))["due"] == 0
