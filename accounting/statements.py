"""A customer's statement of account (relevé de compte), from the ledger: every movement
of its account (invoices, credit notes, collections, returns, payments received,
refunds), in date order, with the running balance and what it owes at the end; as data
and as a PDF (fpdf2) staff send to the customer."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Sum
from fpdf import FPDF

from accounting.models import EntryLine, LedgerCustomer
from boissipay.money import format_money


@dataclass(frozen=True)
class Movement:
    day: dt.date
    piece: str
    label: str
    debit: int  # what the customer was charged
    credit: int  # what it paid, or was credited
    balance: int  # what it owes after this movement


@dataclass(frozen=True)
class Statement:
    customer: LedgerCustomer
    start: dt.date
    end: dt.date
    opening: int
    movements: list[Movement]
    currency: str = "EUR"

    @property
    def closing(self) -> int:
        return self.movements[-1].balance if self.movements else self.opening


def statement(customer: LedgerCustomer, start: dt.date, end: dt.date, currency: str = "EUR") -> Statement:
    lines = EntryLine.objects.filter(
        customer_id=customer.pk, account=settings.ACCOUNTING["customers"], entry__currency=currency
    ).select_related("entry")
    before = lines.filter(entry__entry_date__lt=start).aggregate(debit=Sum("debit"), credit=Sum("credit"))
    opening = (before["debit"] or 0) - (before["credit"] or 0)
    balance = opening
    movements = []
    for line in lines.filter(entry__entry_date__gte=start, entry__entry_date__lte=end).order_by(
        "entry__entry_date", "entry__recorded_at", "id"
    ):
        balance += line.debit - line.credit
        movements.append(
            Movement(line.entry.entry_date, line.entry.piece_ref, line.entry.label, line.debit, line.credit, balance)
        )
    return Statement(customer, start, end, opening, movements, currency)


def _text(value: str) -> str:
    """What the PDF's core font can print (Latin-1): anything else is simplified."""
    replacements = {"\u2192": "->", "\u2019": "'", "\u2013": "-", "\u2014": "-", "\u202f": " ", "\u20ac": "EUR"}
    for old, new in replacements.items():
        value = value.replace(old, new)
    return value.encode("latin-1", errors="replace").decode("latin-1")


def _money(amount: int, currency: str) -> str:
    return _text(format_money(amount, currency)) if amount else ""


def render_pdf(data: Statement) -> bytes:
    seller = settings.SELLER
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 8, _text("Relevé de compte"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(0, 4.5, _text(f"{seller['name']}\n{seller['address']}\nSIREN {seller['siren']}"))
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 10)
    pdf.multi_cell(0, 5, _text(f"{data.customer.legal_name}\nSIREN {data.customer.siren}"))
    pdf.set_font("Helvetica", "", 9)
    pdf.cell(
        0,
        6,
        _text(f"Du {data.start:%d/%m/%Y} au {data.end:%d/%m/%Y}, en {data.currency}"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(2)
    widths = (22, 30, 68, 23, 23, 24)
    headings = ("Date", "Pièce", "Libellé", "Débit", "Crédit", "Solde")
    pdf.set_font("Helvetica", "B", 8)
    for width, heading in zip(widths, headings, strict=True):
        pdf.cell(width, 6, _text(heading), border="B", align="R" if heading in ("Débit", "Crédit", "Solde") else "L")
    pdf.ln()
    pdf.set_font("Helvetica", "", 8)
    pdf.cell(sum(widths[:5]), 5, _text("Solde au début de la période"))
    pdf.cell(widths[5], 5, _text(format_money(data.opening, data.currency)), align="R", new_x="LMARGIN", new_y="NEXT")
    for movement in data.movements:
        cells = (
            f"{movement.day:%d/%m/%Y}",
            movement.piece,
            movement.label,
            _money(movement.debit, data.currency),
            _money(movement.credit, data.currency),
            _text(format_money(movement.balance, data.currency)),
        )
        for i, (width, cell) in enumerate(zip(widths, cells, strict=True)):
            pdf.cell(width, 5, _text(cell)[: 48 if i == 2 else 30], align="R" if i >= 3 else "L")
        pdf.ln()
    pdf.set_font("Helvetica", "B", 9)
    pdf.cell(sum(widths[:5]), 7, _text("Solde dû à la fin de la période"), border="T")
    pdf.cell(widths[5], 7, _text(format_money(data.closing, data.currency)), border="T", align="R")
    return bytes(pdf.output())
