"""What a travel invoice shows (issue 16, section 2): one line per item with its quantity,
unit price excluding tax, VAT rate and amount, the traveller and the day of travel, the
booking reference, purchase order and cost centre; labels in French."""

import datetime as dt
import io

import facturx
import pypdf
import pytest
import time_machine
from lxml import etree
from rest_framework.test import APIClient

from boissipay.clock import PARIS
from contracts import services as contracts
from invoicing import schematron
from invoicing import services as invoicing
from invoicing.models import Invoice
from tests import factories
from tests.clock import freeze_module_at
from tests.factories import settled

_today = freeze_module_at(dt.date(2026, 10, 1))
pytestmark = pytest.mark.django_db(transaction=True)
NS = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}


def test_an_invoice_has_a_line_per_item_with_the_traveller_and_the_day_of_travel():
    contract = factories.contract(credit_limit=1_000_000)
    with factories.delivered():
        contracts.register_subscriber(contract_id=contract.pk, external_ref="EMP-7", display_name="Jeanne Martin")
    settled()
    _, key = factories.api_key("operations:write")
    api = APIClient(HTTP_AUTHORIZATION=f"Api-Key {key}")
    body = {
        "contract_id": str(contract.pk),
        "type": "purchase",
        "external_ref": "BKG-2026-PAR-NCE-000123",
        "subscriber_ref": "EMP-7",
        "purchase_order": "PO-4411",
        "cost_centre": "CC-VENTES",
        "travel_date": "2026-10-20",
        "currency": "EUR",
        "orders": [
            {
                "reference": "ORD-1",
                "items": [
                    {"label": "Billet Paris → Nice, 2de classe", "quantity": 2, "unit_amount": 4_550, "vat_rate": "10"},
                    {"label": "Assurance annulation", "quantity": 1, "unit_amount": 1_200, "vat_rate": "20"},
                ],
            }
        ],
    }
    with time_machine.travel(dt.datetime(2026, 10, 12, 12, tzinfo=PARIS), tick=False):
        answer = api.post("/api/v1/operations", body, format="json", HTTP_IDEMPOTENCY_KEY="b1")
        long_way = api.post(  # the same through DRF's serializer (an extra blank cost centre)
            "/api/v1/operations",
            {**body, "external_ref": "BKG-2", "cost_centre": " CC-VENTES ", "travel_date": "2026-10-21"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="b2",
        )
        bad = api.post(
            "/api/v1/operations", {**body, "external_ref": "BKG-3", "travel_date": "2026-02-30"}, format="json"
        )
    settled()
    assert answer.status_code == 201, answer.content
    assert answer.json()["travel_date"] == "2026-10-20"
    assert long_way.status_code == 201 and long_way.json()["travel_date"] == "2026-10-21"
    assert bad.status_code == 400 and bad["Content-Type"] == "application/problem+json"

    with time_machine.travel(dt.datetime(2026, 11, 1, 2, tzinfo=PARIS), tick=False):
        invoicing.run_billing(period="2026-10")
    settled()
    invoice = Invoice.objects.get(contract_id=contract.pk)
    document = invoicing.invoice_document(invoice)
    assert [(line.description, line.quantity, line.unit_amount, line.amount_excl_tax) for line in document.lines] == [
        ("Billet Paris → Nice, 2de classe", 2, 4_550, 9_100),
        ("Assurance annulation", 1, 1_200, 1_200),
    ] * 2
    first = min(document.lines, key=lambda line: line.travel_date)
    assert (first.traveller, first.travel_date, first.date) == (
        "Jeanne Martin",
        dt.date(2026, 10, 20),
        first.travel_date,
    )

    pdf = invoicing.invoice_pdf(invoice_id=invoice.pk)
    text = " ".join(" ".join(page.extract_text().split()) for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    for shown in ("Désignation", "Qté", "PU HT", "Voyageur : Jeanne Martin", "Voyage le 20/10/2026", "45,50 €"):
        assert shown in text, shown
    assert "BKG-2026-PAR-NCE-000123" in text  # a reference is never broken inside
    assert "BC PO-4411" in text and "CC CC-VENTES" in text

    _, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)
    tree = etree.fromstring(xml)
    quantities = tree.xpath("//ram:SpecifiedLineTradeDelivery/ram:BilledQuantity/text()", namespaces=NS)
    prices = tree.xpath("//ram:NetPriceProductTradePrice/ram:ChargeAmount/text()", namespaces=NS)
    assert (quantities[:2], prices[:2]) == (["2", "1"], ["45.50", "12.00"])
    notes = tree.xpath("//ram:IncludedSupplyChainTradeLineItem//ram:IncludedNote/ram:Content/text()", namespaces=NS)
    assert any("Voyageur : Jeanne Martin" in note and "Date du voyage : 20/10/2026" in note for note in notes)
    assert schematron.errors(xml, ("en16931", "fr-ctc")) == []


def test_a_refunded_item_is_a_negative_quantity_at_its_unit_price():
    contract = factories.contract(credit_limit=1_000_000)
    settled()
    with time_machine.travel(dt.datetime(2026, 10, 12, 12, tzinfo=PARIS), tick=False):
        purchase = factories.purchase(contract.pk, 10_000)
        factories.refund(contract.pk, purchase.pk, 4_000)
    settled()
    with time_machine.travel(dt.datetime(2026, 11, 1, 2, tzinfo=PARIS), tick=False):
        invoicing.run_billing(period="2026-10")
    settled()
    invoice = Invoice.objects.get(contract_id=contract.pk)
    [refund_line] = [line for line in invoicing.invoice_document(invoice).lines if line.amount_excl_tax < 0]
    assert (refund_line.quantity, refund_line.unit_amount, refund_line.amount_excl_tax) == (1, 4_000, -4_000)
    assert refund_line.description.endswith("(remboursement)")
    _, xml = facturx.get_xml_from_pdf(invoicing.invoice_pdf(invoice_id=invoice.pk), check_xsd=True)
    quantities = etree.fromstring(xml).xpath("//ram:BilledQuantity/text()", namespaces=NS)
    assert sorted(quantities) == ["-1", "1"]


def test_under_the_travel_agents_margin_scheme_the_invoice_shows_no_vat_and_passes_the_schematrons():
    contract = factories.contract(credit_limit=1_000_000, vat_scheme="travel_agent_margin")
    settled()
    with time_machine.travel(dt.datetime(2026, 10, 12, 12, tzinfo=PARIS), tick=False):
        from billing.services import submit_operation

        operation = submit_operation(
            request=factories.operation_request(
                contract.pk, factories.item(4_550, quantity=2, vat_rate="10"), factories.item(999, vat_rate="20")
            )
        )
    settled()
    assert operation.amount == 9_100 + 910 + 999 + 200
    with time_machine.travel(dt.datetime(2026, 11, 1, 2, tzinfo=PARIS), tick=False):
        invoicing.run_billing(period="2026-10")
    settled()

    invoice = Invoice.objects.get(contract_id=contract.pk)
    # What the customer was charged, and what the credit limit counted: no VAT shown.
    assert (invoice.vat_scheme, invoice.total_excl_tax, invoice.total_vat) == ("travel_agent_margin", 11_209, 0)
    assert invoice.total_incl_tax == operation.amount and invoice.rounding_adjustment == 0
    assert invoice.vat_breakdown == [{"rate": "0.00", "base": 11_209, "vat": 0}]
    from billing.models import ContractAccount

    assert ContractAccount.objects.get(pk=contract.pk).outstanding == invoice.total_incl_tax

    pdf = invoicing.invoice_pdf(invoice_id=invoice.pk)
    text = " ".join(" ".join(page.extract_text().split()) for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert "Régime particulier – Agences de voyages (articles 266-1-e et 306 du CGI)" in text  # noqa: RUF001
    assert "50,05 €" in text  # the two tickets at 100,10 € each, VAT included
    _, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)
    tree = etree.fromstring(xml)
    header = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
    assert tree.xpath(f"{header}/ram:CategoryCode/text()", namespaces=NS) == ["E"]
    assert tree.xpath(f"{header}/ram:ExemptionReasonCode/text()", namespaces=NS) == ["VATEX-EU-D"]
    assert tree.xpath("//ram:TaxTotalAmount/text()", namespaces=NS) == ["0.00"]
    assert schematron.errors(xml, ("en16931", "fr-ctc")) == []

    # Its credit note follows it: what was charged, exempt, citing the invoice.
    from invoicing.credit_notes import issue_credit_note

    with time_machine.travel(dt.datetime(2026, 11, 10, 10, tzinfo=PARIS), tick=False):
        note = issue_credit_note(
            invoice_id=invoice.pk, operation_ids=[str(operation.pk)], reason="Voyage annulé", issued_by="compta"
        )
    settled()
    assert (note.vat_scheme, note.total_vat, note.total_incl_tax) == ("travel_agent_margin", 0, -11_209)
    _, note_xml = facturx.get_xml_from_pdf(invoicing.invoice_pdf(invoice_id=note.pk), check_xsd=True)
    assert etree.fromstring(note_xml).xpath(f"{header}/ram:CategoryCode/text()", namespaces=NS) == ["E"]
    assert schematron.errors(note_xml, ("en16931", "fr-ctc")) == []


def test_the_vat_scheme_is_set_on_the_contract_through_the_api():
    contract = factories.contract()
    settled()
    _, key = factories.api_key("contracts:write", "contracts:read")
    api = APIClient(HTTP_AUTHORIZATION=f"Api-Key {key}")
    changed = api.patch(f"/api/v1/contracts/{contract.pk}", {"vat_scheme": "travel_agent_margin"}, format="json")
    assert (changed.status_code, changed.json()["vat_scheme"]) == (200, "travel_agent_margin")
    assert api.patch(f"/api/v1/contracts/{contract.pk}", {"vat_scheme": "none"}, format="json").status_code == 400
    settled()
    from boissipay.models import OutboxEvent
    from invoicing.models import InvoicingContract

    amended = OutboxEvent.objects.filter(event_type="contracts.contract.amended").latest("position")
    assert amended.payload["changes"] == {"vat_scheme": {"from": "standard", "to": "travel_agent_margin"}}
    assert InvoicingContract.objects.get(pk=contract.pk).vat_scheme == "travel_agent_margin"
