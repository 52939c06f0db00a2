"""Credit notes on demand (issue 15, section 4): staff correct an issued invoice.

- In full: every operation of the invoice is credited, the invoice is cancelled and its
  operations go back to be invoiced again (corrected) by the next run or an early
  invoice.
- Partly: chosen operations of the invoice credited whole, or amounts at the invoice's
  VAT rates (VAT computed half-up per line, as purchases are priced).

A credit note takes the next number of the invoices' gapless sequence, refers to the
invoice it corrects (EN 16931 BT-25; Factur-X type code 381) and is rendered, checked
and sent like an invoice. `invoicing.credit_note.issued` tells billing (the outstanding
drops, or the operations are unbilled again) and payments (the debit drops, or a refund
is owed). Everything is decided under the invoice's row lock, so two staff crediting
the same invoice at once cannot credit more than it holds."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import connection, transaction

from boissipay import outbox
from boissipay.actor import gives_reason
from boissipay.clock import PARIS, business_today
from boissipay.errors import DomainError, NotFound
from invoicing.documents import vat_at
from invoicing.events import CreditNoteIssued
from invoicing.models import BillableOperation, CreditNoteLine, Invoice, InvoiceKind, InvoiceStatus

CREDITABLE = (InvoiceStatus.ISSUED, InvoiceStatus.SENT, InvoiceStatus.PAID, InvoiceStatus.FAILED)


@dataclass(frozen=True)
class AmountLine:
    """A partial credit by amount: `amount_excl_tax` (minor units, positive) at `rate`."""

    rate: str
    amount_excl_tax: int
    description: str = ""


@gives_reason
def issue_credit_note(
    *,
    invoice_id: uuid.UUID | str,
    issued_by: str,
    reason: str,
    full: bool = False,
    operation_ids: list[str] | None = None,
    amounts: list[AmountLine] | None = None,
) -> Invoice:
    """Issue a credit note against the invoice: `full`, or for `operation_ids`, or for
    `amounts` (exactly one of them). Returns the credit note.

    Raises DomainError: 400 `validation_error`; 404 `invoice_unknown`; 409
    `invoice_not_creditable` (a credit note, cancelled, not issued) or
    `invoice_partly_credited` (in full after a partial credit: credit the rest by amount);
    422 `operation_not_on_invoice`, `operation_already_credited`, `rate_not_on_invoice`,
    `credit_exceeds_invoice`."""
    reason, issued_by = (reason or "").strip(), (issued_by or "").strip()
    modes = [bool(full), operation_ids is not None, amounts is not None]
    if sum(modes) != 1:
        raise DomainError(
            "validation_error",
            "Credit the invoice in full, or chosen operations, or amounts: one of them.",
            status_code=400,
        )
    if not reason:
        raise DomainError(
            "validation_error", "Say why the invoice is credited (the reason is on the credit note).", status_code=400
        )
    if not issued_by:
        raise DomainError("validation_error", "A credit note records who issued it.", status_code=400)
    if operation_ids is not None and not operation_ids:
        raise DomainError("validation_error", "Choose at least one operation to credit.", status_code=400)
    if amounts is not None and not amounts:
        raise DomainError("validation_error", "Give at least one amount to credit.", status_code=400)
    invoice = Invoice.objects.filter(pk=invoice_id).first()
    if invoice is None:
        raise NotFound("No such invoice.", "invoice_unknown")
    if full:
        # The cancelled invoice keeps its document as issued: rendered now, before its
        # operations leave it to be invoiced again.
        from invoicing.services import invoice_pdf

        if invoice.kind == InvoiceKind.INVOICE and invoice.number:
            invoice_pdf(invoice_id=invoice.pk)

    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        _check_creditable(invoice, full)
        today = business_today()
        if full:
            lines = _operation_lines(invoice, list(_lines_of(invoice)), today)
        elif operation_ids is not None:
            lines = _operation_lines(invoice, _chosen_operations(invoice, operation_ids), today)
        else:
            lines = _amount_lines(invoice, amounts or [], today)
        credit = -_totals(lines)[3]
        if credit <= 0 or credit > invoice.total_incl_tax - invoice.credited:
            raise DomainError(
                "credit_exceeds_invoice",
                f"This credits {credit} where {invoice.total_incl_tax - invoice.credited} of the invoice "
                f"{invoice.number} is left to credit (minor units, incl. tax).",
                status_code=422,
            )
        note = _create_note(invoice, lines, today, reason=reason, issued_by=issued_by)
        invoice.credited += credit
        released: list[str] = []
        if full:
            invoice.status = InvoiceStatus.CANCELLED
            released = _release_operations(invoice)
        invoice.save(update_fields=["credited", "status"])
        from invoicing.services import invoice_state

        outbox.record(
            CreditNoteIssued(
                contract_id=invoice.contract_id,
                credit_note=invoice_state(note),
                invoice=invoice_state(invoice),
                credited=invoice.credited,
                full=full,
                released_operation_ids=released,
                reason=reason,
                issued_by=issued_by,
            )
        )
        from invoicing.services import _send_later

        transaction.on_commit(lambda: _send_later([str(note.pk)]), robust=True)
    return note


def _check_creditable(invoice: Invoice, full: bool) -> None:
    if invoice.kind != InvoiceKind.INVOICE or not invoice.number or invoice.status not in CREDITABLE:
        what = "a credit note" if invoice.kind != InvoiceKind.INVOICE else f"{invoice.get_status_display().lower()}"
        raise DomainError(
            "invoice_not_creditable", f"The invoice {invoice} is {what}: it cannot be credited.", status_code=409
        )
    if full and invoice.credited:
        raise DomainError(
            "invoice_partly_credited",
            f"The invoice {invoice.number} is partly credited already: credit the rest by amount.",
            status_code=409,
        )


def _lines_of(invoice: Invoice):
    return BillableOperation.objects.filter(batch__invoice=invoice).order_by("decided_at", "operation_id")


def _chosen_operations(invoice: Invoice, operation_ids: list[str]) -> list[BillableOperation]:
    try:
        wanted = list(dict.fromkeys(str(uuid.UUID(str(value))) for value in operation_ids))
    except ValueError:
        raise DomainError("validation_error", "Operations are named by their ids (UUIDs).", status_code=400) from None
    found = {str(op.operation_id): op for op in _lines_of(invoice).filter(operation_id__in=wanted)}
    missing = [value for value in wanted if value not in found]
    if missing:
        raise DomainError(
            "operation_not_on_invoice", f"Not on the invoice {invoice.number}: {', '.join(missing)}.", status_code=422
        )
    credited = set(
        CreditNoteLine.objects.filter(credit_note__corrects=invoice, operation_id__in=wanted)
        .values_list("operation_id", flat=True)
        .distinct()
    )
    if credited:
        names = ", ".join(sorted(str(value) for value in credited))
        raise DomainError("operation_already_credited", f"Credited already on this invoice: {names}.", status_code=422)
    return [found[value] for value in wanted]


def _operation_lines(invoice: Invoice, operations: list[BillableOperation], today: dt.date) -> list[CreditNoteLine]:
    """The operations credited whole: their amounts with the sign turned (under the
    travel agents' margin scheme, what was charged, VAT not shown, as on the invoice)."""
    margin = invoice.vat_scheme == "travel_agent_margin"
    lines = []
    for op in operations:
        breakdown: list[dict]
        if margin:
            excl, vat, breakdown = op.amount, 0, [{"rate": "0.00", "base": op.amount, "vat": 0}]
        else:
            excl, vat, breakdown = op.amount_excl_tax, op.vat_amount, op.vat_breakdown
        lines.append(
            CreditNoteLine(
                date=op.decided_at.astimezone(PARIS).date(),
                description=f"Avoir — {op.description}"[:500],
                operation_id=op.operation_id,
                external_ref=op.external_ref,
                purchase_order=op.purchase_order,
                cost_centre=op.cost_centre,
                amount_excl_tax=-excl,
                vat_amount=-vat,
                amount=-op.amount,
                vat_breakdown=[{"rate": v["rate"], "base": -v["base"], "vat": -v["vat"]} for v in breakdown],
            )
        )
    return lines


def _amount_lines(invoice: Invoice, amounts: list[AmountLine], today: dt.date) -> list[CreditNoteLine]:
    """Amounts at the invoice's rates; per rate, no more than the invoice's base less
    what earlier credit notes took at that rate."""
    held = {line["rate"]: line["base"] for line in invoice.vat_breakdown}
    taken: dict[str, int] = defaultdict(int)
    for earlier in CreditNoteLine.objects.filter(credit_note__corrects=invoice).values_list("vat_breakdown", flat=True):
        for line in earlier:
            taken[line["rate"]] -= line["base"]
    lines = []
    for position, wanted in enumerate(amounts, start=1):
        rate = _rate_text(wanted.rate)
        if rate not in held:
            rates = ", ".join(f"{rate} %" for rate in sorted(held)) or "none"
            raise DomainError(
                "rate_not_on_invoice",
                f"Line {position}: the invoice has no VAT at {rate} % (it has {rates}).",
                status_code=422,
            )
        base = wanted.amount_excl_tax
        if not isinstance(base, int) or isinstance(base, bool) or base <= 0:
            raise DomainError(
                "validation_error",
                f"Line {position}: the amount is a positive integer of minor units.",
                status_code=400,
            )
        taken[rate] += base
        if taken[rate] > held[rate]:
            raise DomainError(
                "credit_exceeds_invoice",
                f"Line {position}: {taken[rate]} credited at {rate} % where the invoice's base at that rate is "
                f"{held[rate]} (minor units, earlier credit notes included).",
                status_code=422,
            )
        vat = vat_at(base, rate)
        description = (wanted.description or "").strip() or f"Avoir sur la facture {invoice.number} (TVA {rate} %)"
        lines.append(
            CreditNoteLine(
                date=today,
                description=description[:500],
                amount_excl_tax=-base,
                vat_amount=-vat,
                amount=-(base + vat),
                vat_breakdown=[{"rate": rate, "base": -base, "vat": -vat}],
            )
        )
    return lines


def _rate_text(value) -> str:
    try:
        rate = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise DomainError(
            "validation_error", f"{value!r} is not a VAT rate (percent, e.g. 20.00).", status_code=400
        ) from None
    if not rate.is_finite() or rate < 0 or rate >= 100:
        raise DomainError("validation_error", f"{value!r} is not a VAT rate (percent, e.g. 20.00).", status_code=400)
    return str(rate)


def _totals(lines: list[CreditNoteLine]) -> tuple[list[dict], int, int, int]:
    """(VAT breakdown, excl. tax, VAT, incl. tax) of the lines: each rate's VAT computed on
    its base, as EN 16931 computes a credit note's too (BR-CO-17, ADR 0027)."""
    bases: dict[str, int] = defaultdict(int)
    for line in lines:
        for vat in line.vat_breakdown:
            bases[vat["rate"]] += vat["base"]
    per_rate = [(rate, base, vat_at(base, rate)) for rate, base in sorted(bases.items())]
    excl = sum(base for _, base, _ in per_rate)
    vat = sum(tax for _, _, tax in per_rate)
    return [{"rate": rate, "base": base, "vat": tax} for rate, base, tax in per_rate], excl, vat, excl + vat


def _create_note(invoice: Invoice, lines: list[CreditNoteLine], today: dt.date, *, reason: str, issued_by: str):
    breakdown, excl, vat, incl = _totals(lines)
    note = Invoice.objects.create(
        number=_next_number(today.year),
        kind=InvoiceKind.CREDIT_NOTE,
        contract_id=invoice.contract_id,
        contract_reference=invoice.contract_reference,
        customer_id=invoice.customer_id,
        buyer=invoice.buyer,
        period=invoice.period,
        issue_date=today,
        due_date=today,
        currency=invoice.currency,
        total_excl_tax=excl,
        total_vat=vat,
        total_incl_tax=incl,
        vat_breakdown=breakdown,
        operations_count=len(lines),  # its lines: operations credited, or amounts
        mandate_reference=invoice.mandate_reference,
        iban_masked=invoice.iban_masked,
        status=InvoiceStatus.ISSUED,
        corrects=invoice,
        vat_scheme=invoice.vat_scheme,
        reason=reason[:500],
        issued_by=issued_by[:150],
    )
    for position, line in enumerate(lines, start=1):
        line.credit_note = note
        line.position = position
    CreditNoteLine.objects.bulk_create(lines)
    return note


def _next_number(year: int) -> str:
    """The next number of the year's gapless sequence, under its row lock (as the run takes them)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO invoicing_invoicesequence (year, last_number) VALUES (%s, 0) ON CONFLICT (year) DO NOTHING",
            [year],
        )
        cursor.execute(
            "UPDATE invoicing_invoicesequence SET last_number = last_number + 1 WHERE year = %s RETURNING last_number",
            [year],
        )
        number = cursor.fetchone()[0]
    return f"{settings.INVOICE_NUMBER_PREFIX}-{year}-{number:06d}"


def _release_operations(invoice: Invoice) -> list[str]:
    """The cancelled invoice's operations go back to the open batch of their contract and
    month (one is opened, or the sealed batch reopened), to be invoiced again."""
    from invoicing.services import _open_batches

    released = [str(value) for value in _lines_of(invoice).values_list("operation_id", flat=True)]
    sealed = list(invoice.batches.select_for_update().order_by("id"))
    with connection.cursor() as cursor:
        for batch in sealed:
            open_ = _open_batches(cursor, {(str(batch.contract_id), batch.period.isoformat())})
            target = open_[(str(batch.contract_id), batch.period.isoformat())]
            cursor.execute(_MERGE_BATCH, {"source": batch.pk, "target": target})
            cursor.execute("DELETE FROM invoicing_billingbatchvat WHERE batch_id = %s", [batch.pk])
            cursor.execute("DELETE FROM invoicing_billingbatch WHERE id = %s", [batch.pk])
    return released


# Move a sealed batch's operations, totals and VAT lines into the open batch (then it is dropped).
_MERGE_BATCH = """
WITH moved AS (
    UPDATE invoicing_billableoperation SET batch_id = %(target)s WHERE batch_id = %(source)s RETURNING operation_id
), totals AS (
    UPDATE invoicing_billingbatch t
    SET operations_count = t.operations_count + s.operations_count,
        total_excl_tax = t.total_excl_tax + s.total_excl_tax, total_vat = t.total_vat + s.total_vat,
        total_incl_tax = t.total_incl_tax + s.total_incl_tax
    FROM invoicing_billingbatch s WHERE t.id = %(target)s AND s.id = %(source)s
), vat AS (
    INSERT INTO invoicing_billingbatchvat AS v (batch_id, rate, base, vat)
    SELECT %(target)s, rate, base, vat FROM invoicing_billingbatchvat WHERE batch_id = %(source)s
    ON CONFLICT (batch_id, rate) DO UPDATE SET base = v.base + excluded.base, vat = v.vat + excluded.vat
)
SELECT count(*) FROM moved
"""
