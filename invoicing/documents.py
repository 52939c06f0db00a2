"""Invoice documents: the PDF a customer reads, with the Factur-X (EN 16931) e-invoice
embedded in it. Pure functions of an `InvoiceDocument`; nothing here touches the database.

Amounts are integer minor units, as shown on the document: on an invoice the totals are
positive and refund lines negative; on a credit note the totals are positive (what is
credited) and the lines' signs are flipped accordingly."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

from boissipay.money import format_money, to_major


@dataclass(frozen=True)
class Party:
    name: str
    siren: str
    vat_number: str
    address: str  # as printed: several lines separated by "\n", the last one "postcode city"
    country: str  # ISO 3166-1 alpha-2
    email: str = ""
    legal_information: str = ""  # the seller's legal form, share capital and trade register (BT-33)
    # The structured address (BT-35..BT-38 / BT-50..BT-53), when the party has one: the
    # e-invoice takes it as it is. Without it (the seller's settings, an invoice issued
    # before customers had one) the printed address is read: its last line "postcode city".
    street_lines: tuple[str, ...] = ()
    postcode: str = ""
    city: str = ""


@dataclass(frozen=True)
class VatLine:
    rate: str  # percent with two decimals, "20.00"
    base: int
    vat: int


@dataclass(frozen=True)
class Line:
    """One operation (a purchase, or a refund shown negative on an invoice)."""

    date: dt.date  # the day the operation was accepted (Europe/Paris)
    description: str  # e.g. "Purchase BKG-123 — ORD-1: Paris → Nice ×2"  # noqa: RUF003
    external_ref: str
    purchase_order: str
    cost_centre: str
    amount_excl_tax: int
    vat_amount: int
    amount_incl_tax: int
    vat: tuple[VatLine, ...]  # this line's split per VAT rate (bases and VAT sum to the line's)
    # One item of an operation (issue 16): its quantity and unit price excl. tax, the
    # traveller and the day of travel. A line of a whole operation has no unit price.
    quantity: int = 1
    unit_amount: int | None = None
    traveller: str = ""
    travel_date: dt.date | None = None


@dataclass(frozen=True)
class InvoiceDocument:
    number: str  # "BP-2026-000001"
    kind: str  # "invoice" | "credit_note"
    issue_date: dt.date
    due_date: dt.date
    period: str  # "2026-10"
    currency: str
    seller: Party
    buyer: Party
    contract_reference: str
    mandate_reference: str  # SEPA mandate (RUM); "" when none
    creditor_identifier: str  # SEPA creditor identifier (ICS) of the seller
    iban_masked: str  # the debtor's IBAN, masked
    debit_date: dt.date  # the SEPA pre-notification: when the account will be debited
    lines: tuple[Line, ...]
    vat_breakdown: tuple[VatLine, ...]
    total_excl_tax: int
    total_vat: int
    total_incl_tax: int
    # A credit note issued on demand: the invoice it corrects (BT-25, BT-26) and why.
    corrects_number: str = ""
    corrects_issue_date: dt.date | None = None
    reason: str = ""
    vat_on_debits: bool = False  # "TVA acquittée d'après les débits" (else VAT is due on payment, services)
    margin_scheme: bool = False  # the travel agents' margin scheme: no VAT shown, exempt at 0 % (VATEX-EU-D)


# --------------------------------------------------------------------------------------------------------------------
# Factur-X (CII D16B, profile EN 16931) and the PDF/A-3 that carries it.
# --------------------------------------------------------------------------------------------------------------------

FACTURX_GUIDELINE = "urn:cen.eu:en16931:2017"  # BT-24, profile EN 16931 ("COMFORT")
# BT-23, French e-invoicing "cadre de facturation" (BR-FR-08): S1 = invoice for services, not yet paid.
BUSINESS_PROCESS_SERVICES = "S1"
TYPE_CODE = {"invoice": "380", "credit_note": "381"}  # UNTDID 1001
SCHEME_SIREN = "0002"  # ISO 6523 ICD of the French SIRENE register
SCHEME_FR_ROUTING = "0225"  # the French e-invoicing directory's address (SIREN), for BT-34 / BT-49
VAT_DUE_ON_INVOICE, VAT_DUE_ON_PAYMENT = "5", "72"  # BT-8 (UNTDID 2475): on debits, or on collection
OPERATION_CATEGORY = "Catégorie de l'opération : prestation de services."
MARGIN_SCHEME_MENTION = "Régime particulier – Agences de voyages"  # noqa: RUF001 (CGI art. 266-1-e and 306)
MARGIN_SCHEME_CODE = "VATEX-EU-D"  # BT-121: the travel agents' margin scheme (Directive 2006/112, art. 306)
SCHEME_VAT = "VA"
PAYMENT_MEANS_SEPA_DIRECT_DEBIT = "59"  # UNTDID 4461
UNIT_ONE = "C62"  # UN/ECE rec. 20 "one"

LATE_PAYMENT_PENALTIES = (
    "En cas de retard de paiement, des pénalités de retard sont exigibles de plein droit au taux d'intérêt appliqué "
    "par la Banque centrale européenne à son opération de refinancement la plus récente, majoré de 10 points "
    "(article L441-10 du Code de commerce)."
)
RECOVERY_INDEMNITY = (
    "Tout retard de paiement entraîne en outre une indemnité forfaitaire pour frais de recouvrement de 40 € "
    "(article D441-5 du Code de commerce)."
)
NO_EARLY_PAYMENT_DISCOUNT = "Aucun escompte n'est accordé pour paiement anticipé."

_FONT_DIR = Path(__file__).resolve().parent / "fonts"
_FONT = "DejaVuSans"


class InvalidDocument(ValueError):
    """The document's figures do not add up, or it lacks what an EN 16931 invoice must carry."""


def _rate(rate: str) -> Decimal:
    try:
        value = Decimal(rate)
    except InvalidOperation as exc:
        raise InvalidDocument(f"VAT rate {rate!r} is not a number") from exc
    if not value.is_finite() or value < 0 or value > 100:
        raise InvalidDocument(f"VAT rate {rate!r} is out of range")
    if value != value.quantize(Decimal("0.01")):
        raise InvalidDocument(f"VAT rate {rate!r} has more than two decimals")
    return value.quantize(Decimal("0.01"))  # one key per rate, never in exponent notation


def _vat_category(rate: Decimal) -> str:
    """EN 16931 VAT category (UNCL 5305): S standard rate, Z zero rated (BR-Z: rate 0, no exemption reason)."""
    return "S" if rate > 0 else "Z"


def _split_by_rate(vat_lines: tuple[VatLine, ...] | list[VatLine]) -> dict[Decimal, tuple[int, int]]:
    totals: dict[Decimal, list[int]] = defaultdict(lambda: [0, 0])
    for v in vat_lines:
        key = _rate(v.rate)
        totals[key][0] += v.base
        totals[key][1] += v.vat
    return {rate: (base, vat) for rate, (base, vat) in totals.items()}


def vat_at(base: int, rate: Decimal | str) -> int:
    """EN 16931 BR-CO-17: a rate's VAT is its base x rate, rounded half away from zero to
    the minor unit (billing.services.vat_at prices operations the same way)."""
    return int((Decimal(base) * Decimal(rate) / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def vat_breakdown_from_lines(document: InvoiceDocument) -> list[tuple[Decimal, int, int]]:
    """(rate, base, VAT) per rate, sorted by decreasing rate: the bases summed over the
    lines, the VAT computed on each base (BR-CO-17), not summed from the lines' VAT."""
    per_rate = _split_by_rate([v for line in document.lines for v in line.vat])
    return [(rate, per_rate[rate][0], vat_at(per_rate[rate][0], rate)) for rate in sorted(per_rate, reverse=True)]


def check_document(document: InvoiceDocument) -> None:
    """Raise InvalidDocument unless the figures add up (each line, the VAT breakdown, the totals) and the parties
    carry what EN 16931 requires (names, countries, the seller's VAT number)."""
    if document.kind not in TYPE_CODE:
        raise InvalidDocument(f"unknown document kind {document.kind!r}")
    if not re.fullmatch(r"[A-Z]{3}", document.currency or ""):
        raise InvalidDocument(f"currency {document.currency!r} is not an ISO 4217 code")
    if not document.number:
        raise InvalidDocument("the document has no number")
    if not document.lines:
        raise InvalidDocument("the document has no line")
    for role, party in (("seller", document.seller), ("buyer", document.buyer)):
        if not party.name.strip():
            raise InvalidDocument(f"the {role} has no name")
        if not re.fullmatch(r"[A-Z]{2}", party.country or ""):
            raise InvalidDocument(f"the {role}'s country {party.country!r} is not an ISO 3166-1 alpha-2 code")
    if not document.seller.vat_number:
        raise InvalidDocument("the seller has no VAT number (BR-S-02, BR-Z-02)")
    for index, line in enumerate(document.lines, start=1):
        if not line.vat:
            raise InvalidDocument(f"line {index} has no VAT split")
        if line.amount_excl_tax + line.vat_amount != line.amount_incl_tax:
            raise InvalidDocument(f"line {index}: excl. tax + VAT != incl. tax")
        if sum(v.base for v in line.vat) != line.amount_excl_tax or sum(v.vat for v in line.vat) != line.vat_amount:
            raise InvalidDocument(f"line {index}: its VAT split does not add up to the line's amounts")
        for v in line.vat:
            if _rate(v.rate) == 0 and v.vat:
                raise InvalidDocument(f"line {index}: VAT at rate 0")
        if line.unit_amount is not None and abs(line.amount_excl_tax) != line.quantity * line.unit_amount:
            raise InvalidDocument(f"line {index}: quantity x unit price != its amount excl. tax")
    from_lines = {rate: (base, vat) for rate, base, vat in vat_breakdown_from_lines(document)}
    declared = _split_by_rate(document.vat_breakdown)
    for rate in set(from_lines) | set(declared):
        if from_lines.get(rate, (0, 0)) != declared.get(rate, (0, 0)):
            raise InvalidDocument(
                f"the VAT breakdown at {rate} % is not the lines' base at that rate and its VAT (BR-CO-17)"
            )
    if sum(line.amount_excl_tax for line in document.lines) != document.total_excl_tax:
        raise InvalidDocument("total excl. tax != sum of the lines")
    if sum(vat for _, vat in from_lines.values()) != document.total_vat:
        raise InvalidDocument("total VAT != sum of the VAT breakdown")
    if document.total_excl_tax + document.total_vat != document.total_incl_tax:
        raise InvalidDocument("total excl. tax + total VAT != total incl. tax")


def _structured_address(party: Party) -> dict[str, str]:
    lines = [*party.street_lines, "", "", ""][:3]
    return {
        "line_one": lines[0],
        "line_two": lines[1],
        "line_three": lines[2],
        "postcode": party.postcode,
        "city_name": party.city,
    }


def _split_address(address: str) -> dict[str, str]:
    """Street lines, postcode and city from "line\\nline\\npostcode city" (the last line holds the city)."""
    lines = [part.strip() for part in address.splitlines() if part.strip()]
    result = {"line_one": "", "line_two": "", "line_three": "", "postcode": "", "city_name": ""}
    if not lines:
        return result
    last = lines.pop()
    match = re.fullmatch(r"(\S*\d\S*)\s+(.+)", last)
    if match:
        result["postcode"], result["city_name"] = match.group(1), match.group(2)
    else:
        result["city_name"] = last
    if lines:
        result["line_one"] = lines[0]
    if len(lines) > 1:
        result["line_two"] = lines[1]
    if len(lines) > 2:
        result["line_three"] = ", ".join(lines[2:])
    return result


def _period_bounds(period: str) -> tuple[dt.date, dt.date] | None:
    match = re.fullmatch(r"(\d{4})-(\d{2})", period or "")
    if not match:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        return None
    return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])


def _compact(identifier: str) -> str:
    return re.sub(r"\s+", "", identifier or "")


def _fill_party(trade_party, party: Party) -> None:
    from drafthorse.models.party import TaxRegistration

    trade_party.name = party.name
    if party.siren:
        trade_party.legal_organization.id = (SCHEME_SIREN, _compact(party.siren))  # BT-30 / BT-47
    address = _structured_address(party) if party.postcode else _split_address(party.address)
    for field, value in address.items():
        if value:
            setattr(trade_party.address, field, value)
    trade_party.address.country_id = party.country  # BT-40 / BT-55, required (BR-09, BR-11)
    if party.siren and party.country == "FR":
        # The French reform routes e-invoices by the SIREN (scheme 0225) through the platforms' directory.
        trade_party.electronic_address.uri_ID = (SCHEME_FR_ROUTING, _compact(party.siren))  # BT-34 / BT-49
    elif party.email:
        trade_party.electronic_address.uri_ID = ("EM", party.email)  # BT-34 / BT-49
    if party.legal_information:
        trade_party.description = party.legal_information  # BT-33
    if party.vat_number:
        trade_party.tax_registrations.add(TaxRegistration(id=(SCHEME_VAT, _compact(party.vat_number))))  # BT-31/48


def _pay_by_direct_debit(document: InvoiceDocument) -> bool:
    return document.kind == "invoice" and bool(document.mandate_reference) and document.total_incl_tax > 0


def facturx_xml(document: InvoiceDocument) -> bytes:
    """The document as a Factur-X XML (UN/CEFACT CII D16B), profile EN 16931, built with drafthorse and checked by
    drafthorse against the Factur-X EN 16931 XSD. Amounts are major units derived exactly from the minor units."""
    from drafthorse.models.accounting import ApplicableTradeTax
    from drafthorse.models.document import Document
    from drafthorse.models.note import IncludedNote
    from drafthorse.models.payment import PaymentMeans, PaymentTerms
    from drafthorse.models.tradelines import LineItem

    check_document(document)
    currency = document.currency

    def amount(minor: int) -> Decimal:
        return to_major(minor, currency)

    doc = Document()
    doc.context.guideline_parameter.id = FACTURX_GUIDELINE
    doc.context.business_parameter.id = BUSINESS_PROCESS_SERVICES  # BT-23
    doc.header.id = document.number  # BT-1
    doc.header.type_code = TYPE_CODE[document.kind]  # BT-3
    doc.header.issue_date_time = document.issue_date  # BT-2
    for subject, text in (
        ("PMD", LATE_PAYMENT_PENALTIES),
        ("PMT", RECOVERY_INDEMNITY),
        ("AAB", NO_EARLY_PAYMENT_DISCOUNT),
    ):
        doc.header.notes.add(IncludedNote(content=text, subject_code=subject))  # BG-1

    # Lines (BG-25): one per (line, VAT rate); a refund line is a negative quantity at a positive net price (BR-27).
    for index, line in enumerate(document.lines, start=1):
        details = [
            label + value
            for label, value in (
                ("Voyageur : ", line.traveller),
                ("Date du voyage : ", _format_date(line.travel_date) if line.travel_date else ""),
                ("Réf. : ", line.external_ref),
                ("Bon de commande : ", line.purchase_order),
                ("Centre de coût : ", line.cost_centre),
            )
            if value
        ]
        for sub, vat in enumerate(line.vat, start=1):
            rate = _rate(vat.rate)
            item = LineItem()
            item.document.line_id = str(index) if len(line.vat) == 1 else f"{index}.{sub}"  # BT-126
            if details:
                item.document.notes.add(IncludedNote(content=" ; ".join(details)))  # BT-127
            name = line.description or line.external_ref or f"Opération {index}"
            if len(line.vat) > 1:
                name = f"{name} (TVA {_format_rate(rate)} %)"
            item.product.name = name  # BT-153
            sign = -1 if vat.base < 0 else 1
            if line.unit_amount is not None and len(line.vat) == 1:  # an item: its quantity at its unit price
                item.agreement.net.amount = amount(line.unit_amount)  # BT-146
                item.delivery.billed_quantity = (Decimal(sign * line.quantity), UNIT_ONE)  # BT-129, BT-130
            else:
                item.agreement.net.amount = amount(abs(vat.base))  # BT-146
                item.delivery.billed_quantity = (Decimal(sign), UNIT_ONE)  # BT-129, BT-130
            item.settlement.trade_tax.type_code = "VAT"
            item.settlement.trade_tax.category_code = "E" if document.margin_scheme else _vat_category(rate)  # BT-151
            item.settlement.trade_tax.rate_applicable_percent = rate  # BT-152
            item.settlement.period.start = line.date  # BT-134
            item.settlement.period.end = line.date  # BT-135
            item.settlement.monetary_summation.total_amount = amount(vat.base)  # BT-131
            if line.cost_centre:
                item.settlement.accounting_account.id = line.cost_centre  # BT-133
            doc.trade.items.add(item)

    agreement = doc.trade.agreement
    _fill_party(agreement.seller, document.seller)  # BG-4
    _fill_party(agreement.buyer, document.buyer)  # BG-7
    if document.contract_reference:
        agreement.contract.issuer_assigned_id = document.contract_reference  # BT-12
    purchase_orders = {line.purchase_order for line in document.lines}
    if len(purchase_orders) == 1 and "" not in purchase_orders:
        agreement.buyer_order.issuer_assigned_id = purchase_orders.pop()  # BT-13

    # BT-72: the day of the latest operation (the invoicing period BT-73/74 gives the whole month); it also keeps
    # ApplicableHeaderTradeDelivery, which CII requires, from being empty (PEPPOL-EN16931-R008).
    doc.trade.delivery.event.occurrence = max(line.date for line in document.lines)

    settlement = doc.trade.settlement
    direct_debit = _pay_by_direct_debit(document)
    if direct_debit and document.creditor_identifier:
        settlement.creditor_reference_id = _compact(document.creditor_identifier)  # BT-90
    settlement.payment_reference = document.number  # BT-83
    if document.corrects_number:
        reference = settlement.invoice_referenced_document
        reference.issuer_assigned_id = document.corrects_number  # BT-25: the invoice this credit note corrects
        if document.corrects_issue_date:
            reference.issue_date_time = document.corrects_issue_date  # BT-26
    settlement.currency_code = currency  # BT-5
    if direct_debit:
        means = PaymentMeans()
        means.type_code = PAYMENT_MEANS_SEPA_DIRECT_DEBIT  # BT-81
        means.information.add("Prélèvement SEPA")  # BT-82
        if document.iban_masked:
            means.payer_account.iban = _compact(document.iban_masked)  # BT-91 (masked)
        settlement.payment_means.add(means)
    for rate, base, vat in vat_breakdown_from_lines(document):  # BG-23
        tax = ApplicableTradeTax(
            calculated_amount=amount(vat),  # BT-117
            type_code="VAT",
            basis_amount=amount(base),  # BT-116
            category_code="E" if document.margin_scheme else _vat_category(rate),  # BT-118
            rate_applicable_percent=rate,  # BT-119
            due_date_type_code=VAT_DUE_ON_INVOICE if document.vat_on_debits else VAT_DUE_ON_PAYMENT,  # BT-8
        )
        if document.margin_scheme:  # BR-E-10: an exempt breakdown says why
            tax.exemption_reason = MARGIN_SCHEME_MENTION  # BT-120
            tax.exemption_reason_code = MARGIN_SCHEME_CODE  # BT-121
        settlement.trade_tax.add(tax)
    bounds = _period_bounds(document.period)
    if bounds:
        settlement.period.start, settlement.period.end = bounds  # BT-73, BT-74
    terms = PaymentTerms()
    if direct_debit:
        terms.description = (
            f"Prélèvement SEPA le {_format_date(document.debit_date)} "
            f"(échéance le {_format_date(document.due_date)})"
        )  # BT-20
        terms.debit_mandate_id = document.mandate_reference  # BT-89
    elif document.kind == "credit_note":
        terms.description = "Avoir : montant en faveur du client"
    else:
        terms.description = f"Paiement à échéance le {_format_date(document.due_date)}"
    terms.due = document.due_date  # BT-9
    settlement.terms.add(terms)
    summation = settlement.monetary_summation  # BG-22
    summation.line_total = amount(document.total_excl_tax)  # BT-106
    summation.charge_total = amount(0)  # BT-108
    summation.allowance_total = amount(0)  # BT-107
    summation.tax_basis_total = (amount(document.total_excl_tax), None)  # BT-109
    summation.tax_total = (amount(document.total_vat), currency)  # BT-110 (currencyID required)
    summation.grand_total = (amount(document.total_incl_tax), None)  # BT-112
    summation.due_amount = amount(document.total_incl_tax)  # BT-115

    return doc.serialize(schema="FACTUR-X_EN16931")


# --------------------------------------------------------------------------------------------------------------------
# PDF
# --------------------------------------------------------------------------------------------------------------------


def _format_date(value: dt.date) -> str:
    return value.strftime("%d/%m/%Y")


def _format_rate(rate: Decimal) -> str:
    """20.00 -> "20", 5.50 -> "5,5" (French decimal comma)."""
    text = f"{rate.normalize():f}"
    return text.replace(".", ",")


def _format_period(period: str) -> str:
    from babel.dates import format_date

    bounds = _period_bounds(period)
    if not bounds:
        return period
    start, end = bounds
    month = format_date(start, "LLLL y", locale="fr_FR")
    return f"{month} (du {_format_date(start)} au {_format_date(end)})"


def _party_lines(party: Party) -> list[str]:
    lines = [part.strip() for part in party.address.splitlines() if part.strip()]
    if party.country and party.country != "FR":
        lines.append(party.country)
    if party.siren:
        lines.append(f"SIREN : {party.siren}")
    if party.vat_number:
        lines.append(f"N° TVA intracommunautaire : {party.vat_number}")
    if party.email:
        lines.append(party.email)
    return lines


DESIGNATION_WIDTH = 78  # mm, of the lines table's 186


def _fitting(pdf, text: str, width: float, size: float):
    """A smaller font for a cell whose longest word (a booking reference, say) would not
    fit its width at `size`: the table then wraps between words, never inside one."""
    from fpdf.fonts import FontFace

    longest = max(text.split(), key=len, default="")
    with pdf.local_context(font_size=size):
        needed = pdf.get_string_width(longest)
    if needed <= width:
        return None
    return FontFace(size_pt=max(3.0, size * width / needed * 0.98))


def _build_pdf(document: InvoiceDocument) -> bytes:
    from fpdf import FPDF
    from fpdf.enums import DocumentCompliance, TableBordersLayout, XPos, YPos
    from fpdf.fonts import FontFace

    currency = document.currency
    credit = document.kind == "credit_note"
    title = "Avoir" if credit else "Facture"

    def money(minor: int) -> str:
        return format_money(minor, currency)

    class InvoicePDF(FPDF):
        def header(self) -> None:
            if self.page_no() > 1:
                self.set_font(_FONT, "", 8)
                self.set_text_color(90)
                self.cell(0, 5, f"{title} n° {document.number} — {document.seller.name} (suite)", align="R")
                self.ln(8)
                self.set_text_color(0)

        def footer(self) -> None:
            self.set_y(-14)
            self.set_font(_FONT, "", 7)
            self.set_text_color(90)
            seller = document.seller
            legal = f"{seller.name} — SIREN {seller.siren}" if seller.siren else seller.name
            if seller.vat_number:
                legal += f" — TVA {seller.vat_number}"
            self.cell(0, 4, legal, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.cell(0, 4, f"{title} n° {document.number} — page {self.page_no()}/{{nb}}", align="C")
            self.set_text_color(0)

    pdf = InvoicePDF(format="A4", enforce_compliance=DocumentCompliance.PDFA_3B)
    pdf.add_font(_FONT, "", str(_FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font(_FONT, "B", str(_FONT_DIR / "DejaVuSans-Bold.ttf"))
    pdf.set_margins(12, 12, 12)
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_title(f"{title} {document.number}")
    pdf.set_author(document.seller.name)
    pdf.set_subject(f"{title} {document.number} — {document.buyer.name}")
    pdf.set_creator("Boissipay")
    pdf.set_lang("fr-FR")
    pdf.add_page()
    width = pdf.epw
    half = (width - 6) / 2

    # Seller (left) and title block (right).
    top = pdf.get_y()
    pdf.set_font(_FONT, "B", 11)
    pdf.multi_cell(half, 5.5, document.seller.name, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FONT, "", 8.5)
    pdf.multi_cell(half, 4.2, "\n".join(_party_lines(document.seller)), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    seller_bottom = pdf.get_y()

    right = pdf.l_margin + half + 6
    pdf.set_xy(right, top)
    pdf.set_font(_FONT, "B", 20)
    pdf.cell(half, 9, title.upper(), align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font(_FONT, "", 9)
    facts = [
        ("N°", document.number),
        ("Date d'émission", _format_date(document.issue_date)),
        ("Date d'échéance", _format_date(document.due_date)),
        ("Période", _format_period(document.period)),
        ("Contrat", document.contract_reference),
        (
            "Facture rectifiée",
            document.corrects_number
            + (f" du {_format_date(document.corrects_issue_date)}" if document.corrects_issue_date else ""),
        ),
    ]
    for label, value in facts:
        if not value:
            continue
        pdf.set_x(right)
        pdf.set_font(_FONT, "", 9)
        pdf.cell(half * 0.34, 5, f"{label} :", align="R")
        pdf.set_font(_FONT, "B" if label == "N°" else "", 9)
        pdf.multi_cell(half * 0.66, 5, value, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(seller_bottom, pdf.get_y()) + 4)

    # Buyer.
    pdf.set_x(right)
    pdf.set_fill_color(242, 244, 247)
    buyer_top = pdf.get_y()
    pdf.set_font(_FONT, "", 8)
    pdf.cell(half, 5, "Client", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font(_FONT, "B", 10)
    pdf.multi_cell(half, 5, document.buyer.name, align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font(_FONT, "", 8.5)
    pdf.multi_cell(half, 4.2, "\n".join(_party_lines(document.buyer)), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_draw_color(200)
    pdf.rect(right - 2, buyer_top - 1, half + 2, pdf.get_y() - buyer_top + 2)
    pdf.ln(6)

    # Lines.
    pdf.set_font(_FONT, "B", 10)
    pdf.cell(0, 6, "Détail des opérations", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FONT, "", 7)
    heading = FontFace(emphasis="BOLD", fill_color=(225, 230, 238))
    # One row per item: what a French accountant checks (quantity, unit price excl. tax, VAT
    # rate, amount), with the traveller, the day of travel and the references below the label.
    # The designation column is wide enough that a reference is wrapped between words, never
    # inside one.
    with pdf.table(
        width=width,
        col_widths=(16, DESIGNATION_WIDTH, 10, 20, 14, 22, 22),
        text_align=("LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "RIGHT"),
        line_height=3.8,
        headings_style=heading,
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        padding=(1, 1),
        repeat_headings=1,
    ) as table:
        header = table.row()
        for label in ("Date", "Désignation", "Qté", "PU HT", "TVA", "Montant HT", "TTC"):
            header.cell(label)
        for line in document.lines:
            rates = "—" if document.margin_scheme else " + ".join(f"{_format_rate(_rate(v.rate))} %" for v in line.vat)
            details = " · ".join(
                value
                for value in (
                    f"Voyageur : {line.traveller}" if line.traveller else "",
                    f"Voyage le {_format_date(line.travel_date)}" if line.travel_date else "",
                    f"Réf. {line.external_ref}" if line.external_ref else "",
                    f"BC {line.purchase_order}" if line.purchase_order else "",
                    f"CC {line.cost_centre}" if line.cost_centre else "",
                )
                if value
            )
            row = table.row()
            row.cell(_format_date(line.date))
            designation = line.description + (f"\n{details}" if details else "")
            row.cell(designation, style=_fitting(pdf, designation, DESIGNATION_WIDTH - 2, 7))
            quantity = line.quantity if line.amount_excl_tax >= 0 else -line.quantity
            row.cell(str(quantity))
            row.cell(money(line.unit_amount) if line.unit_amount is not None else money(line.amount_excl_tax))
            row.cell(rates)
            row.cell(money(line.amount_excl_tax))
            row.cell(money(line.amount_incl_tax))
    pdf.ln(4)

    # VAT breakdown and totals, side by side, kept on one page.
    breakdown = vat_breakdown_from_lines(document)
    block_height = 12 + 5 * (len(breakdown) + 1)
    if pdf.will_page_break(max(block_height, 26)):
        pdf.add_page()
    top = pdf.get_y()
    pdf.set_font(_FONT, "B", 9)
    pdf.cell(half, 5, "Récapitulatif de la TVA", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FONT, "", 8.5)
    with pdf.table(
        width=half,
        align="LEFT",
        col_widths=(1, 1.4, 1.4, 1.4),
        text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"),
        line_height=4.2,
        headings_style=heading,
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        padding=(0.8, 1),
    ) as table:
        header = table.row()
        for label in ("Taux", "Base HT", "TVA", "Total TTC"):
            header.cell(label)
        for rate, base, vat in breakdown:
            row = table.row()
            row.cell(f"{_format_rate(rate)} %")
            row.cell(money(base))
            row.cell(money(vat))
            row.cell(money(base + vat))
    left_bottom = pdf.get_y()

    pdf.set_xy(right, top)
    totals = [
        ("Total HT", money(document.total_excl_tax), False),
        ("Total TVA", money(document.total_vat), False),
        ("Total TTC", money(document.total_incl_tax), True),
    ]
    if credit:
        totals.append(("Montant de l'avoir", money(document.total_incl_tax), True))
    else:
        totals.append(("Net à payer", money(document.total_incl_tax), True))
    for label, value, strong in totals:
        pdf.set_x(right)
        pdf.set_font(_FONT, "B" if strong else "", 10 if strong else 9)
        pdf.cell(half * 0.55, 6, label, border="B", fill=strong)
        pdf.cell(half * 0.45, 6, value, border="B", align="R", fill=strong, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(left_bottom, pdf.get_y()) + 6)

    # SEPA direct-debit pre-notification.
    if _pay_by_direct_debit(document):
        sepa = [
            ("Référence unique de mandat (RUM)", document.mandate_reference),
            ("Identifiant créancier SEPA (ICS)", document.creditor_identifier),
            ("Compte débité (IBAN)", document.iban_masked),
            ("Montant prélevé", money(document.total_incl_tax)),
            ("Date de prélèvement", _format_date(document.debit_date)),
        ]
        with pdf.unbreakable() as doc_pdf:
            doc_pdf.set_font(_FONT, "B", 10)
            doc_pdf.cell(0, 6, "Prélèvement SEPA — pré-notification", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            doc_pdf.set_font(_FONT, "", 8.5)
            doc_pdf.multi_cell(
                0,
                4.2,
                align="L",
                text=f"Le montant de {money(document.total_incl_tax)} sera prélevé "
                f"le {_format_date(document.debit_date)} sur le compte {document.iban_masked or 'du mandat'}, "
                f"conformément au mandat de prélèvement SEPA {document.mandate_reference}.",
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )
            doc_pdf.ln(1)
            for label, value in sepa:
                doc_pdf.set_font(_FONT, "", 8.5)
                doc_pdf.cell(62, 4.6, f"{label} :")
                doc_pdf.set_font(_FONT, "B", 8.5)
                doc_pdf.cell(0, 4.6, value or "—", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            doc_pdf.ln(4)
    elif credit:
        pdf.set_font(_FONT, "", 8.5)
        pdf.multi_cell(
            0,
            4.2,
            align="L",
            text=(
                f"Avoir sur la facture n° {document.corrects_number}"
                + (f" du {_format_date(document.corrects_issue_date)}" if document.corrects_issue_date else "")
                + (f". Motif : {document.reason}" if document.reason else "")
                + ".\n"
                if document.corrects_number
                else ""
            )
            + f"Cet avoir de {money(document.total_incl_tax)} est en faveur du client ; "
            "il n'appelle aucun prélèvement.",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        pdf.ln(3)
    else:
        pdf.set_font(_FONT, "", 8.5)
        pdf.multi_cell(
            0,
            4.2,
            align="L",
            text=f"Montant de {money(document.total_incl_tax)} à régler "
            f"au plus tard le {_format_date(document.due_date)}.",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        pdf.ln(3)

    # Legal mentions.
    with pdf.unbreakable() as doc_pdf:
        doc_pdf.set_font(_FONT, "B", 8)
        doc_pdf.cell(0, 5, "Mentions légales", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        doc_pdf.set_font(_FONT, "", 7.5)
        mentions = [
            f"Date d'échéance : {_format_date(document.due_date)}. {NO_EARLY_PAYMENT_DISCOUNT}",
            OPERATION_CATEGORY + (" TVA acquittée d'après les débits." if document.vat_on_debits else ""),
            *(
                [
                    f"{MARGIN_SCHEME_MENTION} (articles 266-1-e et 306 du CGI) : TVA sur la marge, non déductible, "
                    "non mentionnée."
                ]
                if document.margin_scheme
                else []
            ),
            LATE_PAYMENT_PENALTIES,
            RECOVERY_INDEMNITY,
            "Ce document contient sa facture électronique Factur-X (EN 16931) en pièce jointe.",
        ]
        if document.seller.legal_information:
            mentions.insert(0, f"{document.seller.name}, {document.seller.legal_information}.")
        for mention in mentions:
            doc_pdf.multi_cell(0, 3.6, mention, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    return bytes(pdf.output())


def render_pdf(document: InvoiceDocument) -> bytes:
    """The PDF/A-3 the customer reads (A4, French), with the Factur-X EN 16931 XML embedded as factur-x.xml. The XML
    is checked against the Factur-X EN 16931 XSD by the factur-x library before it is embedded, and against the
    EN 16931 business rules (invoicing.schematron): a document that breaks one raises InvalidDocument."""
    from facturx import generate_from_binary

    from invoicing import schematron

    xml = facturx_xml(document)
    broken = schematron.errors(xml)
    if broken:
        raise InvalidDocument(f"{document.number} breaks EN 16931: " + " | ".join(broken[:5]))
    pdf = _build_pdf(document)
    title = "Avoir" if document.kind == "credit_note" else "Facture"
    return generate_from_binary(
        pdf,
        xml,
        flavor="factur-x",
        level="en16931",
        check_xsd=True,
        pdf_metadata={
            "author": document.seller.name,
            "keywords": f"Factur-X, {title}",
            "title": f"{document.seller.name} : {title} {document.number}",
            "subject": f"Factur-X {title.lower()} {document.number} dated {document.issue_date.isoformat()} "
            f"issued by {document.seller.name}",
        },
        lang="fr-FR",
    )
