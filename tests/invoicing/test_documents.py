"""The invoice PDF/A-3 and its Factur-X (EN 16931) XML: content, sign conventions, and the factur-x library's own
validation (XSD always; the EN 16931 and French CTC schematrons when a local Saxon is available)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from decimal import Decimal

import facturx
import pypdf
import pytest
from lxml import etree

from boissipay.money import format_money, to_major
from invoicing import schematron
from invoicing.documents import (
    InvalidDocument,
    InvoiceDocument,
    Line,
    Party,
    VatLine,
    facturx_xml,
    render_pdf,
    vat_at,
)
from invoicing.schematron import SchematronError
from tests.clock import freeze_module_at

# Every test here starts on one frozen "today" (Paris, ticking), whatever the real date:
# the contracts its factories make are valid on the dates the tests travel to.
_today = freeze_module_at(dt.date(2026, 10, 1))

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}

SELLER = Party(
    name="Boissi Voyages SAS",
    siren="552100554",
    vat_number="FR40552100554",
    address="12 rue de la Paix\nBâtiment B\n75002 Paris",
    country="FR",
    email="facturation@boissi.example",
    legal_information="SAS au capital de 10 000,00 € — RCS Paris 552 100 554",
)
BUYER = Party(
    name="CSE Société Générale d'Électricité",
    siren="732829320",
    vat_number="FR44732829320",
    address="1 avenue de l'Europe\n69003 Lyon",
    country="FR",
    email="compta@cse.example",
)


def make_line(day: int, description: str, ref: str, vat: list[tuple[str, int, int]], po="PO-77", cc="CC-RH") -> Line:
    split = tuple(VatLine(rate, base, amount) for rate, base, amount in vat)
    base = sum(v.base for v in split)
    tax = sum(v.vat for v in split)
    return Line(dt.date(2026, 10, day), description, ref, po, cc, base, tax, base + tax, split)


def make_document(lines: list[Line], kind: str = "invoice", **changes) -> InvoiceDocument:
    # The breakdown as EN 16931 computes it: per rate, the lines' bases, and VAT on each base (BR-CO-17).
    bases: dict[str, int] = {}
    for line in lines:
        for v in line.vat:
            bases[v.rate] = bases.get(v.rate, 0) + v.base
    per_rate = {rate: (base, vat_at(base, rate)) for rate, base in bases.items()}
    excl = sum(line.amount_excl_tax for line in lines)
    vat = sum(tax for _, tax in per_rate.values())
    document = InvoiceDocument(
        number="BP-2026-000042",
        kind=kind,
        issue_date=dt.date(2026, 11, 2),
        due_date=dt.date(2026, 12, 2),
        period="2026-10",
        currency="EUR",
        seller=SELLER,
        buyer=BUYER,
        contract_reference="CTR-2026-0007",
        mandate_reference="RUM-BOISSI-000123",
        creditor_identifier="FR12ZZZ123456",
        iban_masked="FR76 **** **** **** **** ***4 189",
        debit_date=dt.date(2026, 12, 3),
        lines=tuple(lines),
        vat_breakdown=tuple(VatLine(rate, base, tax) for rate, (base, tax) in per_rate.items()),
        total_excl_tax=excl,
        total_vat=vat,
        total_incl_tax=excl + vat,
    )
    return dataclasses.replace(document, **changes)


INVOICE_LINES = [
    make_line(3, "Purchase BKG-123 — ORD-1: Paris → Nice ×2", "BKG-123", [("20.00", 10000, 2000)], cc="CC-Marketing"),  # noqa: RUF001
    make_line(5, "Hôtel Nice, 2 nuits", "BKG-124", [("10.00", 250000, 25000)]),
    make_line(7, "Séjour tout compris", "BKG-125", [("20.00", 5000, 1000), ("10.00", 3000, 300), ("0.00", 8000, 0)]),
    make_line(9, "Refund BKG-123 — ORD-1", "BKG-123", [("20.00", -5000, -1000)], cc="CC-Marketing"),
    make_line(12, "Taxe d'aéroport", "BKG-126", [("0.00", 1234, 0)], po="", cc=""),
]


@pytest.fixture(scope="module")
def invoice() -> InvoiceDocument:
    return make_document(INVOICE_LINES)


@pytest.fixture(scope="module")
def credit_note() -> InvoiceDocument:
    # A month whose refunds exceed its purchases: totals positive, line signs flipped.
    lines = [
        make_line(4, "Refund BKG-900 — ORD-3: Lyon → Paris", "BKG-900", [("20.00", 30000, 6000)]),
        make_line(6, "Purchase BKG-901", "BKG-901", [("10.00", -10000, -1000), ("0.00", -500, 0)]),
    ]
    return make_document(lines, kind="credit_note", number="BP-2026-000043")


@pytest.fixture(scope="module")
def invoice_pdf(invoice) -> bytes:
    return render_pdf(invoice)


def pdf_text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def normalised(text: str) -> str:
    return " ".join(text.split())


def embedded_xml(pdf: bytes) -> bytes:
    filename, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)
    assert filename == "factur-x.xml"
    return xml


def xpath(xml: bytes, path: str) -> list:
    return etree.fromstring(xml).xpath(path, namespaces=NS)


def one(xml: bytes, path: str) -> str:
    (value,) = xpath(xml, path)
    return value


# --- PDF ------------------------------------------------------------------------------------------------------------


def test_pdf_shows_what_a_french_b2b_invoice_must_show(invoice, invoice_pdf):
    assert invoice_pdf.startswith(b"%PDF")
    text = pdf_text(invoice_pdf)
    expected = [
        "FACTURE",
        invoice.number,
        SELLER.siren,
        BUYER.siren,
        SELLER.vat_number,
        BUYER.vat_number,
        SELLER.name,
        BUYER.name,
        "02/11/2026",  # issue date
        "02/12/2026",  # due date
        "octobre 2026",
        invoice.contract_reference,
        "Prélèvement SEPA",
        "RUM-BOISSI-000123",
        "FR12ZZZ123456",
        normalised(invoice.iban_masked),
        "03/12/2026",  # debit date
        "Paris → Nice ×2",  # noqa: RUF001 - the multiplication sign is what the description says
        "Hôtel Nice, 2 nuits",
        "BKG-126",
        "PO-77",
        "CC-Marketing",
        "40 €",
        "pénalités de retard",
    ]
    for value in expected:
        assert value in text, value
    for amount in (invoice.total_excl_tax, invoice.total_vat, invoice.total_incl_tax, -5000, 250000):
        assert normalised(format_money(amount, "EUR")) in text, amount
    assert normalised(format_money(invoice.total_incl_tax, "EUR")) == "2 995,34 €"


def test_pdf_is_a_pdfa3_with_the_facturx_attachment(invoice_pdf):
    reader = pypdf.PdfReader(io.BytesIO(invoice_pdf))
    assert list(reader.attachments) == ["factur-x.xml"]
    root = reader.trailer["/Root"]
    assert "/OutputIntents" in root
    metadata = root["/Metadata"].get_object().get_data()
    assert b"<pdfaid:part>3</pdfaid:part>" in metadata
    assert b"EN 16931" in metadata
    fonts = {font.get_object()["/BaseFont"] for page in reader.pages for font in page["/Resources"]["/Font"].values()}
    assert fonts and all("DejaVuSans" in name for name in fonts)  # embedded Unicode fonts only


def test_credit_note_pdf_is_titled_avoir_and_asks_no_debit(credit_note):
    text = pdf_text(render_pdf(credit_note))
    assert "AVOIR" in text
    assert "BP-2026-000043" in text
    assert "aucun prélèvement" in text
    assert normalised(format_money(credit_note.total_incl_tax, "EUR")) in text


def test_many_lines_break_over_pages_with_the_table_header_repeated():
    lines = [
        make_line(
            1 + i % 28,
            f"Purchase BKG-{i} — ORD-{i}: Paris → Nice, libellé long ×{i % 3 + 1}",  # noqa: RUF001
            f"BKG-{i}",
            [("20.00", 10000 + i, 2000)],
        )
        for i in range(150)
    ]
    document = make_document(lines)
    pdf = render_pdf(document)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 3
    for page in reader.pages:
        page_text = normalised(page.extract_text())
        assert "Désignation" in page_text and "PU HT" in page_text  # the header, repeated
        assert f"page {reader.get_page_number(page) + 1}/{len(reader.pages)}" in page_text
    text = pdf_text(pdf)
    assert all(f"BKG-{i} " in text for i in range(150))
    assert normalised(format_money(document.total_incl_tax, "EUR")) in text
    assert facturx.xml_check_xsd(embedded_xml(pdf), flavor="factur-x", level="en16931")


# --- Factur-X XML ----------------------------------------------------------------------------------------------------


def test_embedded_xml_is_factur_x_en16931_and_passes_the_library_xsd_check(invoice, invoice_pdf):
    xml = embedded_xml(invoice_pdf)
    assert xml == facturx_xml(invoice)
    tree = etree.fromstring(xml)
    assert facturx.get_flavor(tree) == "factur-x"
    assert facturx.get_level(tree) == "en16931"
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    assert one(xml, "//rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID/text()") == (
        "urn:cen.eu:en16931:2017"
    )


def test_xml_header_parties_and_totals(invoice):
    xml = facturx_xml(invoice)
    assert one(xml, "//rsm:ExchangedDocument/ram:ID/text()") == invoice.number
    assert one(xml, "//rsm:ExchangedDocument/ram:TypeCode/text()") == "380"
    assert one(xml, "//rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString/text()") == "20261102"
    for role, party in (("Seller", SELLER), ("Buyer", BUYER)):
        base = f"//ram:ApplicableHeaderTradeAgreement/ram:{role}TradeParty"
        assert one(xml, f"{base}/ram:Name/text()") == party.name
        assert one(xml, f"{base}/ram:SpecifiedLegalOrganization/ram:ID[@schemeID='0002']/text()") == party.siren
        assert one(xml, f"{base}/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']/text()") == party.vat_number
        assert one(xml, f"{base}/ram:PostalTradeAddress/ram:CountryID/text()") == "FR"
    assert one(xml, "//ram:SellerTradeParty/ram:PostalTradeAddress/ram:PostcodeCode/text()") == "75002"
    assert one(xml, "//ram:SellerTradeParty/ram:PostalTradeAddress/ram:CityName/text()") == "Paris"
    assert one(xml, "//ram:ContractReferencedDocument/ram:IssuerAssignedID/text()") == "CTR-2026-0007"

    settlement = "//ram:ApplicableHeaderTradeSettlement"
    assert one(xml, f"{settlement}/ram:InvoiceCurrencyCode/text()") == "EUR"
    assert one(xml, f"{settlement}/ram:CreditorReferenceID/text()") == "FR12ZZZ123456"
    assert one(xml, f"{settlement}/ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode/text()") == "59"
    assert (
        one(xml, f"{settlement}//ram:PayerPartyDebtorFinancialAccount/ram:IBANID/text()")
        == "FR76*******************4189"
    )
    assert one(xml, f"{settlement}/ram:SpecifiedTradePaymentTerms/ram:DirectDebitMandateID/text()") == (
        "RUM-BOISSI-000123"
    )
    assert one(xml, f"{settlement}/ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString/text()") == (
        "20261202"
    )
    assert (
        one(xml, f"{settlement}/ram:BillingSpecifiedPeriod/ram:StartDateTime/udt:DateTimeString/text()") == "20261001"
    )
    assert one(xml, f"{settlement}/ram:BillingSpecifiedPeriod/ram:EndDateTime/udt:DateTimeString/text()") == "20261031"

    summation = f"{settlement}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
    assert one(xml, f"{summation}/ram:LineTotalAmount/text()") == "2722.34"
    assert one(xml, f"{summation}/ram:TaxBasisTotalAmount/text()") == "2722.34"
    assert one(xml, f"{summation}/ram:TaxTotalAmount[@currencyID='EUR']/text()") == "273.00"
    grand_total = one(xml, f"{summation}/ram:GrandTotalAmount/text()")
    assert Decimal(grand_total) == to_major(invoice.total_incl_tax, "EUR") == Decimal("2995.34")
    assert grand_total == "2995.34"
    assert one(xml, f"{summation}/ram:DuePayableAmount/text()") == "2995.34"


def test_xml_has_one_item_per_line_and_rate_and_a_matching_vat_breakdown(invoice):
    xml = facturx_xml(invoice)
    items = xpath(xml, "//ram:IncludedSupplyChainTradeLineItem")
    assert [item.findtext("ram:AssociatedDocumentLineDocument/ram:LineID", namespaces=NS) for item in items] == [
        "1",
        "2",
        "3.1",
        "3.2",
        "3.3",
        "4",
        "5",
    ]

    def item(line_id: str, path: str) -> str:
        return one(xml, f"//ram:IncludedSupplyChainTradeLineItem[.//ram:LineID='{line_id}']/{path}")

    assert item("3.3", "ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode/text()") == "Z"
    assert item("3.1", "ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode/text()") == "S"
    assert item("3.2", ".//ram:RateApplicablePercent/text()") == "10.00"
    # The refund: a negative quantity at a positive price (BR-27 forbids a negative price).
    assert item("4", ".//ram:BilledQuantity/text()") == "-1"
    assert item("4", ".//ram:NetPriceProductTradePrice/ram:ChargeAmount/text()") == "50.00"
    assert item("4", ".//ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount/text()") == "-50.00"
    assert "BKG-123" in item("4", "ram:AssociatedDocumentLineDocument/ram:IncludedNote/ram:Content/text()")
    line_totals = xpath(xml, "//ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount/text()")
    assert sum(Decimal(total) for total in line_totals) == Decimal("2722.34")

    breakdown = {
        (tax.findtext("ram:CategoryCode", namespaces=NS), tax.findtext("ram:RateApplicablePercent", namespaces=NS)): (
            tax.findtext("ram:BasisAmount", namespaces=NS),
            tax.findtext("ram:CalculatedAmount", namespaces=NS),
        )
        for tax in xpath(xml, "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax")
    }
    assert breakdown == {
        ("S", "20.00"): ("100.00", "20.00"),
        ("S", "10.00"): ("2530.00", "253.00"),
        ("Z", "0.00"): ("92.34", "0.00"),
    }


def test_credit_note_has_type_code_381_and_positive_totals(credit_note):
    xml = facturx_xml(credit_note)
    assert one(xml, "//rsm:ExchangedDocument/ram:TypeCode/text()") == "381"
    assert one(xml, "//ram:GrandTotalAmount/text()") == "245.00"
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    assert not xpath(xml, "//ram:SpecifiedTradeSettlementPaymentMeans")  # nothing is debited


def test_amounts_follow_the_currency_precision():
    lines = [make_line(2, "Ryokan", "BKG-1", [("10.00", 12345, 1234)])]
    xml = facturx_xml(make_document(lines, currency="JPY"))
    assert one(xml, "//ram:GrandTotalAmount/text()") == "13580"  # 12345 + VAT 1234.5 rounded half up
    assert one(xml, "//ram:InvoiceCurrencyCode/text()") == "JPY"


# --- what is refused ------------------------------------------------------------------------------------------------


def test_xsd_check_refuses_an_xml_without_buyer_country(invoice):
    tree = etree.fromstring(facturx_xml(invoice))
    (country,) = tree.xpath("//ram:BuyerTradeParty/ram:PostalTradeAddress/ram:CountryID", namespaces=NS)
    country.getparent().remove(country)
    with pytest.raises(Exception, match="CountryID"):
        facturx.xml_check_xsd(etree.tostring(tree), flavor="factur-x", level="en16931")


def test_xsd_check_refuses_an_xml_of_another_level(invoice):
    tree = etree.fromstring(facturx_xml(invoice))
    (guideline,) = tree.xpath("//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID", namespaces=NS)
    guideline.text = "urn:factur-x.eu:1p0:minimum"
    xml = etree.tostring(tree)
    assert facturx.get_level(tree) == "minimum"
    with pytest.raises(Exception, match="not valid against the official XML Schema"):
        facturx.xml_check_xsd(xml, flavor="factur-x", level="minimum")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"buyer": dataclasses.replace(BUYER, country="")}, "buyer's country"),
        ({"seller": dataclasses.replace(SELLER, vat_number="")}, "seller has no VAT number"),
        ({"total_incl_tax": 999}, "total incl. tax"),
        ({"vat_breakdown": (VatLine("20.00", 100, 20),)}, "VAT breakdown"),
        ({"kind": "receipt"}, "kind"),
        ({"lines": ()}, "no line"),
    ],
)
def test_inconsistent_documents_are_refused(invoice, change, message):
    with pytest.raises(InvalidDocument, match=message):
        facturx_xml(dataclasses.replace(invoice, **change))
    with pytest.raises(InvalidDocument):
        render_pdf(dataclasses.replace(invoice, **change))


# --- the schematrons (business rules), run in process by SaxonC-HE (invoicing.schematron) ---------------------------


def schematron_check(xml: bytes, check_option: str = "base") -> bool:
    """True when `xml` passes EN 16931 (and the French CTC rules with "fr-ctc"); else the broken rules."""
    rules = ("en16931", "fr-ctc") if check_option == "fr-ctc" else ("en16931",)
    broken = schematron.errors(xml, rules)
    if broken:
        raise SchematronError(broken)
    return True


def test_invoice_passes_the_en16931_and_french_ctc_schematrons(invoice_pdf):
    assert schematron_check(embedded_xml(invoice_pdf), check_option="fr-ctc") is True


def test_credit_note_passes_the_en16931_schematron(credit_note):
    # Not the French CTC one: BR-FR-CO-05 wants a credit note to cite the invoice it corrects, which a monthly
    # net-negative credit note has not.
    assert schematron_check(facturx_xml(credit_note)) is True


@pytest.fixture(scope="module")
def corrective_credit_note() -> InvoiceDocument:
    """A credit note issued on demand: it cites the invoice it corrects (BT-25, BT-26)."""
    lines = [make_line(4, "Avoir — Purchase BKG-900", "BKG-900", [("20.00", 10000, 2000)])]
    return make_document(
        lines,
        kind="credit_note",
        number="BP-2026-000044",
        corrects_number="BP-2026-000012",
        corrects_issue_date=dt.date(2026, 11, 1),
        reason="Erreur de tarif",
    )


def test_a_corrective_credit_note_cites_the_invoice_and_passes_the_french_ctc_schematron(
    corrective_credit_note,
):
    xml = facturx_xml(corrective_credit_note)
    assert one(xml, "//rsm:ExchangedDocument/ram:TypeCode/text()") == "381"
    assert one(xml, "//ram:InvoiceReferencedDocument/ram:IssuerAssignedID/text()") == "BP-2026-000012"
    assert one(xml, "//ram:InvoiceReferencedDocument/ram:FormattedIssueDateTime/*/text()") == "20261101"
    text = normalised(pdf_text(render_pdf(corrective_credit_note)))
    assert "Facture rectifiée : BP-2026-000012 du 01/11/2026" in text
    assert "Avoir sur la facture n° BP-2026-000012 du 01/11/2026. Motif : Erreur de tarif." in text
    assert schematron_check(xml, check_option="fr-ctc") is True


def test_schematron_refuses_tampered_totals(invoice):
    tree = etree.fromstring(facturx_xml(invoice))
    for path in ("//ram:GrandTotalAmount", "//ram:DuePayableAmount"):
        (element,) = tree.xpath(path, namespaces=NS)
        element.text = "2900.00"
    xml = etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")  # the XSD alone cannot see it
    with pytest.raises(SchematronError, match="BR-CO-15"):
        schematron_check(xml)


def test_a_document_that_breaks_a_business_rule_is_never_rendered(invoice):
    # A seller VAT number without its country prefix: the XSD takes it, EN 16931 (BR-CO-09) does not.
    wrong = dataclasses.replace(invoice, seller=dataclasses.replace(invoice.seller, vat_number="40552100554"))
    assert facturx.xml_check_xsd(facturx_xml(wrong), flavor="factur-x", level="en16931")
    assert any("BR-CO-09" in error for error in schematron.errors(facturx_xml(wrong)))
    with pytest.raises(InvalidDocument, match="breaks EN 16931"):
        render_pdf(wrong)


# --- the mentions of the French e-invoicing reform (issue 16) -----------------------------------------------------


def test_the_reform_mentions_are_on_the_pdf_and_in_the_xml(invoice):
    on_debits = dataclasses.replace(invoice, vat_on_debits=True)
    xml = facturx_xml(on_debits)
    # The parties are addressed by their SIREN (scheme 0225), as the platforms' directory routes them.
    assert xpath(xml, "//ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID/@schemeID") == ["0225"]
    assert one(xml, "//ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID/text()") == "732829320"
    assert one(xml, "//ram:SellerTradeParty/ram:Description/text()") == (
        "SAS au capital de 10 000,00 € — RCS Paris 552 100 554"
    )  # BT-33
    assert set(
        xpath(xml, "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:DueDateTypeCode/text()")
    ) == {"5"}  # BT-8: VAT on debits
    assert one(xml, "//ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID/text()") == "S1"  # services
    text = normalised(pdf_text(render_pdf(on_debits)))
    assert "Catégorie de l'opération : prestation de services. TVA acquittée d'après les débits." in text
    assert "Boissi Voyages SAS, SAS au capital de 10 000,00 € — RCS Paris 552 100 554." in text
    assert schematron_check(xml, check_option="fr-ctc") is True

    on_payment = facturx_xml(invoice)
    assert set(xpath(on_payment, "//ram:ApplicableTradeTax/ram:DueDateTypeCode/text()")) == {"72"}
    assert "d'après les débits" not in normalised(pdf_text(render_pdf(invoice)))


def test_a_long_reference_is_never_broken_inside_on_the_pdf():
    reference = "BKG-" + "X" * 86  # 90 characters, no space: wider than the designation column at 7 pt
    lines = [make_line(3, f"Purchase {reference}", reference, [("20.00", 10000, 2000)])]
    text = pdf_text(render_pdf(make_document(lines)))
    assert reference in text  # whole: the cell's font shrank rather than cut it
