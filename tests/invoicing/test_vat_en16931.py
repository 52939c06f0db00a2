"""VAT as EN 16931 computes it (issue 16, section 4; ADR 0027): each rate's VAT is its base
x rate rounded once (BR-CO-17), on an operation and on an invoice, never the sum of
rounded items; the outstanding balance and the invoices agree to the cent."""

import datetime as dt

import pytest
import time_machine
from lxml import etree

from billing.models import ContractAccount
from billing.services import submit_operation
from boissipay.clock import PARIS
from invoicing import services as invoicing
from invoicing.documents import InvalidDocument, check_document
from invoicing.models import Invoice
from payments.models import Payment
from tests import factories
from tests.clock import freeze_module_at
from tests.factories import settled

_today = freeze_module_at(dt.date(2026, 10, 1))
pytestmark = pytest.mark.django_db(transaction=True)
NS = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}


def bought(contract, *items):
    with time_machine.travel(dt.datetime(2026, 10, 12, 12, tzinfo=PARIS), tick=False):
        operation = submit_operation(request=factories.operation_request(contract.pk, *items))
    settled()
    return operation


def run_october():
    with time_machine.travel(dt.datetime(2026, 11, 1, 2, tzinfo=PARIS), tick=False):
        invoicing.run_billing(period="2026-10")
    settled()


def outstanding(contract) -> int:
    return ContractAccount.objects.get(pk=contract.pk).outstanding


def test_three_hundred_items_of_five_cents_at_ten_percent_carry_one_fifty_of_vat_not_three_euros():
    # The case (3,000 items gave 30.00 € for 15.00 €) at a tenth of the size: each
    # item's 0.005 € of VAT rounded up, then summed, doubled the VAT.
    contract = factories.contract(credit_limit=1_000_000)
    settled()
    operation = bought(contract, *[factories.item(5, vat_rate="10", label=f"Repas {n}") for n in range(300)])

    assert (operation.amount_excl_tax, operation.vat_amount, operation.amount) == (1_500, 150, 1_650)
    items = [item for order in operation.orders for item in order["items"]]
    assert sum(item["vat_amount"] for item in items) == 150  # the items share the operation's VAT

    run_october()
    invoice = Invoice.objects.get(contract_id=contract.pk)
    assert (invoice.total_excl_tax, invoice.total_vat, invoice.total_incl_tax) == (1_500, 150, 1_650)
    assert invoice.vat_breakdown == [{"rate": "10.00", "base": 1_500, "vat": 150}]
    check_document(invoicing.invoice_document(invoice))


def test_an_invoice_rounds_each_rates_vat_once_and_the_outstanding_follows_it_to_the_cent():
    contract = factories.contract(credit_limit=1_000_000)
    settled()
    # Three operations of 0.05 € at 10 %: 0.005 € of VAT each, rounded to 0.01 € on each
    # operation (what its credit counted), 0.015 € -> 0.02 € on the invoice.
    for _ in range(3):
        assert bought(contract, factories.item(5, vat_rate="10")).amount == 6
    bought(contract, factories.item(333, vat_rate="20"), factories.item(1_001, vat_rate="5.5"))
    before = outstanding(contract)
    assert before == 18 + (333 + 67) + (1_001 + 55)

    run_october()
    invoice = Invoice.objects.get(contract_id=contract.pk)
    assert invoice.vat_breakdown == [
        {"rate": "10.00", "base": 15, "vat": 2},
        {"rate": "20.00", "base": 333, "vat": 67},
        {"rate": "5.50", "base": 1_001, "vat": 55},
    ]
    assert invoice.total_incl_tax == 15 + 2 + 333 + 67 + 1_001 + 55
    assert invoice.rounding_adjustment == invoice.total_incl_tax - before == -1
    # Billing counts what the invoice asks, not the sum of its operations; the debit takes it.
    assert outstanding(contract) == invoice.total_incl_tax
    assert Payment.objects.get(invoice_id=invoice.pk).amount == invoice.total_incl_tax

    # The e-invoice's breakdown is the invoice's (BR-CO-17), and its document checks.
    pdf = invoicing.invoice_pdf(invoice_id=invoice.pk)
    import facturx

    _, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)
    tree = etree.fromstring(xml)
    taxes = {
        tax.findtext("ram:RateApplicablePercent", namespaces=NS): tax.findtext("ram:CalculatedAmount", namespaces=NS)
        for tax in tree.xpath("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax", namespaces=NS)
    }
    assert taxes == {"10.00": "0.02", "20.00": "0.67", "5.50": "0.55"}


def test_a_document_whose_breakdown_sums_rounded_lines_is_refused():
    contract = factories.contract(credit_limit=1_000_000)
    settled()
    for _ in range(3):
        bought(contract, factories.item(5, vat_rate="10"))
    run_october()
    invoice = Invoice.objects.get(contract_id=contract.pk)
    invoice.vat_breakdown = [{"rate": "10.00", "base": 15, "vat": 3}]  # the sum of the lines' VAT
    invoice.total_vat, invoice.total_incl_tax = 3, 18
    with pytest.raises(InvalidDocument, match="BR-CO-17"):
        check_document(invoicing.invoice_document(invoice))
