"""Commands of the invoicing context: the monthly billing run, sending invoices, and
keeping invoicing's read models up to date from contract and billing events.

The run is set-based: each chunk of contracts is invoiced by a few SQL statements in
one transaction (the open batches of operations locked, invoices inserted and numbered
from their sums, the batches sealed, events recorded), so its cost grows with the number
of contracts, not with one query per operation. A crash loses at most the chunk in
flight, which the next run redoes; an operation belongs to one batch, which belongs to
one invoice at most."""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.utils import timezone

from boissipay import outbox
from boissipay.clock import PARIS, business_today
from boissipay.errors import DomainError, NotFound
from boissipay.readmodel import keep_newest
from invoicing import documents
from invoicing.events import InvoiceFailed, InvoiceIssued, InvoicePaid, InvoiceSent
from invoicing.models import (
    BillableOperation,
    BillingBatch,
    BillingRun,
    BillingRunStatus,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    InvoicingContract,
)

logger = logging.getLogger(__name__)

RUN_LOCK_BASE = 7_206_104_402_000_000  # + YYYYMM: the pg advisory lock a run of that month holds


def parse_period(period: str | dt.date) -> dt.date:
    """`YYYY-MM` (or any date in the month) -> the first day of that month."""
    if isinstance(period, dt.date):
        return period.replace(day=1)
    try:
        year, month = (int(part) for part in period.split("-"))
        return dt.date(year, month, 1)
    except (ValueError, TypeError):
        raise DomainError("invalid_period", f"{period!r} is not a month (YYYY-MM).", status_code=400) from None


def previous_period(today: dt.date | None = None) -> dt.date:
    """The month before `today` (Europe/Paris): what the run of the 1st invoices."""
    first = (today or business_today()).replace(day=1)
    return (first - dt.timedelta(days=1)).replace(day=1)


# --- read models fed by events ------------------------------------------------------------------


def apply_contract_state(*, state: dict) -> bool:
    """Keep invoicing's copy of a contract at its newest version (older events ignored)."""
    customer = state["customer"]
    mandate = state["mandate"] or {}
    fields = {
        "reference": state["reference"],
        "customer_id": customer["customer_id"],
        "buyer": {
            key: customer[key]
            for key in ("legal_name", "siren", "vat_number", "billing_email", "billing_address", "country")
        },
        "currency": state["currency"],
        "payment_terms_days": state["payment_terms_days"],
        "mandate_reference": mandate.get("reference", "") if mandate.get("status") == "active" else "",
        "iban_masked": mandate.get("iban_masked", "") if mandate.get("status") == "active" else "",
        "contract_version": state["version"],
    }
    return keep_newest(InvoicingContract, pk=state["contract_id"], version_field="contract_version", fields=fields)


def record_billable_operation(*, operation: dict) -> None:
    """Take an accepted operation (billing's event payload) in, to be billed by the next
    run of its month or later. Recording the same operation twice changes nothing."""
    sign = -1 if operation["type"] == "refund" else 1
    decided_at = dt.datetime.fromisoformat(operation["decided_at"])
    orders = "; ".join(
        f"{order['reference']}: " + ", ".join(f"{item['label']} x{item['quantity']}" for item in order["items"])
        for order in operation["orders"]
    )
    kind = "Refund" if sign < 0 else "Purchase"
    period = decided_at.astimezone(PARIS).date().replace(day=1)
    with transaction.atomic():
        batch_id = _open_batch(operation["contract_id"], period)
        row = BillableOperation(
            operation_id=operation["operation_id"],
            batch_id=batch_id,
            contract_id=operation["contract_id"],
            type=operation["type"],
            external_ref=operation["external_ref"],
            purchase_order=operation["purchase_order"],
            cost_centre=operation["cost_centre"],
            description=f"{kind} {operation['external_ref']} — {orders}"[:500],
            currency=operation["currency"],
            amount_excl_tax=sign * operation["amount_excl_tax"],
            vat_amount=sign * operation["vat_amount"],
            amount=sign * operation["amount"],
            vat_breakdown=[
                {"rate": line["rate"], "base": sign * line["base"], "vat": sign * line["vat"]}
                for line in operation["vat_breakdown"]
            ],
            decided_at=decided_at,
            period=period,
        )
        # One INSERT ... ON CONFLICT DO NOTHING: the same operation twice changes nothing.
        BillableOperation.objects.bulk_create([row], ignore_conflicts=True)


def _open_batch(contract_id, period: dt.date):
    """The open batch of this contract and month, locked FOR SHARE until the caller's
    transaction ends (a billing run sealing it waits for it); opened when there is none."""
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT id FROM invoicing_billingbatch WHERE contract_id = %s AND period = %s AND invoice_id IS NULL "
                "FOR SHARE",
                [contract_id, period],
            )
            row = cursor.fetchone()
            if row:
                return row[0]
            cursor.execute(
                "INSERT INTO invoicing_billingbatch (id, contract_id, period, created_at) "
                "VALUES (gen_random_uuid(), %s, %s, now()) "
                "ON CONFLICT (contract_id, period) WHERE invoice_id IS NULL DO NOTHING RETURNING id",
                [contract_id, period],
            )
            row = cursor.fetchone()
            if row:
                return row[0]
            # Opened by a concurrent delivery meanwhile: take that one (its lock) instead.


# --- the billing run ----------------------------------------------------------------------------


@dataclass
class RunProgress:
    """Called after each chunk with (contracts done, contracts in all)."""

    callback: Callable[[int, int], None] | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.callback:
            self.callback(done, total)


def start_billing_run(
    *, period: str | dt.date, trigger: str, started_by: str = "", contract_reference: str = "", dry_run: bool = False
) -> BillingRun:
    """Record a billing run to be executed (by `execute_billing_run`, now or by a worker)."""
    first_day = parse_period(period)
    if first_day > business_today().replace(day=1):
        raise DomainError("period_in_future", f"{first_day:%Y-%m} has not started yet.", status_code=400)
    return BillingRun.objects.create(
        period=first_day,
        trigger=trigger,
        started_by=started_by[:150],
        contract_reference=contract_reference,
        dry_run=dry_run,
    )


def run_billing(
    *,
    period: str | dt.date,
    trigger: str = "command",
    started_by: str = "",
    contract_reference: str = "",
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> BillingRun:
    """Invoice `period`: one invoice (or credit note) per contract with unbilled accepted
    operations of that month or earlier. Idempotent and resumable; see module docstring."""
    run = start_billing_run(
        period=period, trigger=trigger, started_by=started_by, contract_reference=contract_reference, dry_run=dry_run
    )
    return execute_billing_run(run_id=run.pk, progress=progress)


def execute_billing_run(*, run_id, progress: Callable[[int, int], None] | None = None) -> BillingRun:
    """Execute a recorded run. Runs of the same month wait for each other; a run that
    finds an earlier one still marked running knows it died and marks it interrupted."""
    run = BillingRun.objects.get(pk=run_id)
    if run.status not in (BillingRunStatus.QUEUED,):
        return run  # a redelivered task: this run was already executed (or is being)
    lock_key = RUN_LOCK_BASE + int(run.period.strftime("%Y%m"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [lock_key])
    try:
        BillingRun.objects.filter(period=run.period, status=BillingRunStatus.RUNNING).exclude(pk=run.pk).update(
            status=BillingRunStatus.INTERRUPTED,
            finished_at=timezone.now(),
            errors="Interrupted: the process running it stopped before the end; a later run finished its work.",
        )
        BillingRun.objects.filter(pk=run.pk).update(status=BillingRunStatus.RUNNING, started_at=timezone.now())
        run.refresh_from_db()
        try:
            _invoice_all(run, progress or (lambda done, total: None))
        except Exception:
            logger.exception("billing run %s failed", run.pk)
            run.status = BillingRunStatus.FAILED
            run.errors = (run.errors + "\n" + traceback.format_exc())[-10_000:].strip()
        else:
            run.status = BillingRunStatus.COMPLETED
        run.finished_at = timezone.now()
        run.save()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [lock_key])
    return run


def _contracts_to_invoice(run: BillingRun) -> list:
    batches = BillingBatch.objects.filter(invoice__isnull=True, period__lte=run.period)
    if run.contract_reference:
        ids = InvoicingContract.objects.filter(reference=run.contract_reference).values_list("contract_id", flat=True)
        batches = batches.filter(contract_id__in=list(ids))
    return sorted(batches.order_by().values_list("contract_id", flat=True).distinct())


def _invoice_all(run: BillingRun, progress: Callable[[int, int], None]) -> None:
    contract_ids = _contracts_to_invoice(run)
    known = set(InvoicingContract.objects.filter(pk__in=contract_ids).values_list("pk", flat=True))
    unknown = [cid for cid in contract_ids if cid not in known]
    if unknown:
        run.errors = (
            f"{len(unknown)} contract(s) with operations but not yet known to invoicing, left for a later run: "
        )
        run.errors += ", ".join(str(cid) for cid in unknown[:20])
    contract_ids = [cid for cid in contract_ids if cid in known]
    progress(0, len(contract_ids))
    chunk_size = settings.BILLING_RUN_CHUNK_SIZE
    issue_date = business_today()
    for start in range(0, len(contract_ids), chunk_size):
        chunk = contract_ids[start : start + chunk_size]
        if run.dry_run:
            _tally(run, _preview_chunk(run, chunk))
        else:
            with transaction.atomic():
                invoices = _invoice_chunk(run, chunk, issue_date)
            _tally(run, invoices)
            BillingRun.objects.filter(pk=run.pk).update(
                contracts_invoiced=run.contracts_invoiced,
                invoices_count=run.invoices_count,
                credit_notes_count=run.credit_notes_count,
                operations_count=run.operations_count,
                totals=run.totals,
            )
        progress(min(start + chunk_size, len(contract_ids)), len(contract_ids))


def _tally(run: BillingRun, invoices: list[dict]) -> None:
    for invoice in invoices:
        run.contracts_invoiced += 1
        if invoice["kind"] == InvoiceKind.CREDIT_NOTE:
            run.credit_notes_count += 1
        else:
            run.invoices_count += 1
        run.operations_count += invoice["operations_count"]
        totals = run.totals.setdefault(invoice["currency"], {"excl_tax": 0, "vat": 0, "incl_tax": 0})
        totals["excl_tax"] += invoice["total_excl_tax"]
        totals["vat"] += invoice["total_vat"]
        totals["incl_tax"] += invoice["total_incl_tax"]


_UNBILLED_SUMS = """
    SELECT o.contract_id, o.currency, sum(o.amount_excl_tax)::bigint AS excl, sum(o.vat_amount)::bigint AS vat,
           sum(o.amount)::bigint AS incl, count(*) AS n
    FROM invoicing_billingbatch b JOIN invoicing_billableoperation o ON o.batch_id = b.id
    WHERE b.invoice_id IS NULL AND b.period <= %(period)s AND b.contract_id = ANY(%(contracts)s)
    GROUP BY o.contract_id, o.currency
"""


def _preview_chunk(run: BillingRun, chunk: list) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(_UNBILLED_SUMS, {"period": run.period, "contracts": chunk})
        return [
            {
                "kind": InvoiceKind.CREDIT_NOTE if incl < 0 else InvoiceKind.INVOICE,
                "currency": currency,
                "total_excl_tax": excl,
                "total_vat": vat,
                "total_incl_tax": incl,
                "operations_count": n,
            }
            for _, currency, excl, vat, incl, n in cursor.fetchall()
        ]


_LOCK_BATCHES = """
SELECT b.id FROM invoicing_billingbatch b
JOIN invoicing_invoicingcontract c ON c.contract_id = b.contract_id
WHERE b.contract_id = ANY(%(contracts)s) AND b.invoice_id IS NULL AND b.period <= %(period)s
ORDER BY b.id
FOR UPDATE OF b
"""

# Run after _LOCK_BATCHES, as a statement of its own: its snapshot then holds every
# operation the deliveries that held those batches were taking in.
_ISSUE_INVOICES = """
WITH batches AS (
    SELECT id, contract_id FROM invoicing_billingbatch WHERE id = ANY(%(batches)s)
), targets AS (
    SELECT contract_id, gen_random_uuid() AS invoice_id FROM batches GROUP BY contract_id
), ops AS (
    SELECT t.invoice_id, o.amount_excl_tax, o.vat_amount, o.amount, o.vat_breakdown
    FROM invoicing_billableoperation o
    JOIN batches b ON b.id = o.batch_id
    JOIN targets t ON t.contract_id = b.contract_id
), sums AS (
    SELECT invoice_id, sum(amount_excl_tax)::bigint AS excl, sum(vat_amount)::bigint AS vat,
           sum(amount)::bigint AS incl, count(*) AS n
    FROM ops GROUP BY invoice_id
), rates AS (
    SELECT o.invoice_id, e->>'rate' AS rate, sum((e->>'base')::bigint) AS base, sum((e->>'vat')::bigint) AS vat
    FROM ops o CROSS JOIN LATERAL jsonb_array_elements(o.vat_breakdown) e
    GROUP BY o.invoice_id, e->>'rate'
), breakdown AS (
    SELECT invoice_id, jsonb_agg(jsonb_build_object('rate', rate, 'base', base, 'vat', vat) ORDER BY rate) AS lines
    FROM rates GROUP BY invoice_id
), inserted AS (
    INSERT INTO invoicing_invoice (
        id, number, kind, contract_id, contract_reference, customer_id, buyer, period, issue_date, due_date,
        currency, total_excl_tax, total_vat, total_incl_tax, vat_breakdown, operations_count, mandate_reference,
        iban_masked, status, billing_run_id, pdf, created_at, sent_count)
    SELECT s.invoice_id,
           %(prefix)s || '-' || %(year)s || '-'
               || lpad((%(base)s + row_number() OVER (ORDER BY c.reference))::text, 6, '0'),
           CASE WHEN s.incl < 0 THEN 'credit_note' ELSE 'invoice' END, c.contract_id,
           c.reference, c.customer_id, c.buyer, %(period)s, %(issue_date)s,
           %(issue_date)s::date + c.payment_terms_days, c.currency, s.excl, s.vat, s.incl, b.lines, s.n,
           c.mandate_reference, c.iban_masked, 'issued', %(run)s, '', now(), 0
    FROM sums s
    JOIN targets t ON t.invoice_id = s.invoice_id
    JOIN invoicing_invoicingcontract c ON c.contract_id = t.contract_id
    JOIN breakdown b ON b.invoice_id = s.invoice_id
    RETURNING id, operations_count
), sealed AS (
    UPDATE invoicing_billingbatch bb SET invoice_id = t.invoice_id
    FROM batches b JOIN targets t ON t.contract_id = b.contract_id
    WHERE bb.id = b.id AND t.invoice_id IN (SELECT id FROM inserted)
    RETURNING bb.id
)
SELECT i.id, i.operations_count, (SELECT count(*) FROM sealed) FROM inserted i
"""


def _invoice_chunk(run: BillingRun, chunk: list, issue_date: dt.date) -> list[dict]:
    """Issue the invoices of one chunk of contracts, in the caller's transaction."""
    year = issue_date.year
    with connection.cursor() as cursor:
        # Numbers: taken under the year's sequence row lock, in this transaction (gapless).
        cursor.execute(
            "INSERT INTO invoicing_invoicesequence (year, last_number) VALUES (%s, 0) ON CONFLICT (year) DO NOTHING",
            [year],
        )
        cursor.execute("SELECT last_number FROM invoicing_invoicesequence WHERE year = %s FOR UPDATE", [year])
        base = cursor.fetchone()[0]
        cursor.execute(_LOCK_BATCHES, {"contracts": chunk, "period": run.period})
        batches = [row[0] for row in cursor.fetchall()]
        if not batches:
            return []
        cursor.execute(
            _ISSUE_INVOICES,
            {
                "period": run.period,
                "batches": batches,
                "issue_date": issue_date,
                "run": run.pk,
                "prefix": settings.INVOICE_NUMBER_PREFIX,
                "year": str(year),
                "base": base,
            },
        )
        rows = cursor.fetchall()
        if not rows:
            return []
        ids, issued, attached = [row[0] for row in rows], len(rows), sum(row[1] for row in rows)
        cursor.execute("UPDATE invoicing_invoicesequence SET last_number = %s WHERE year = %s", [base + issued, year])
    invoices = list(Invoice.objects.filter(pk__in=ids).order_by("number"))
    outbox.record_all(
        [InvoiceIssued(contract_id=invoice.contract_id, invoice=invoice_state(invoice)) for invoice in invoices]
    )
    to_send = [str(invoice.pk) for invoice in invoices]
    # robust: the invoices are issued whatever happens to the sending (an admin action resends).
    transaction.on_commit(lambda: _send_later(to_send), robust=True)
    logger.info("billing run %s: %d invoices, %d operations", run.pk, issued, attached)
    return [
        {
            "kind": invoice.kind,
            "currency": invoice.currency,
            "total_excl_tax": invoice.total_excl_tax,
            "total_vat": invoice.total_vat,
            "total_incl_tax": invoice.total_incl_tax,
            "operations_count": invoice.operations_count,
        }
        for invoice in invoices
    ]


def _send_later(invoice_ids: list[str]) -> None:
    from invoicing.tasks import send_invoices

    send_invoices.delay(invoice_ids)


def invoice_state(invoice: Invoice) -> dict:
    return {
        "invoice_id": str(invoice.pk),
        "number": invoice.number,
        "kind": invoice.kind,
        "contract_id": str(invoice.contract_id),
        "contract_reference": invoice.contract_reference,
        "customer_id": str(invoice.customer_id),
        "period": invoice.period.strftime("%Y-%m"),
        "issue_date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "currency": invoice.currency,
        "total_excl_tax": invoice.total_excl_tax,
        "total_vat": invoice.total_vat,
        "total_incl_tax": invoice.total_incl_tax,
        "vat_breakdown": invoice.vat_breakdown,
        "operations_count": invoice.operations_count,
        "mandate_reference": invoice.mandate_reference,
        "status": invoice.status,
    }


# --- documents and sending ----------------------------------------------------------------------


def invoice_lines(invoice: Invoice):
    """The invoice's lines (the operations of its batches), in date order."""
    return BillableOperation.objects.filter(batch__invoice=invoice).order_by("decided_at", "operation_id")


def invoice_document(invoice: Invoice) -> documents.InvoiceDocument:
    """The invoice as its PDF and Factur-X XML show it (credit notes in positive amounts)."""
    sign = -1 if invoice.kind == InvoiceKind.CREDIT_NOTE else 1
    seller = settings.SELLER
    buyer = invoice.buyer

    def vat_lines(breakdown) -> tuple[documents.VatLine, ...]:
        return tuple(documents.VatLine(rate=v["rate"], base=sign * v["base"], vat=sign * v["vat"]) for v in breakdown)

    lines = tuple(
        documents.Line(
            date=line.decided_at.astimezone(PARIS).date(),
            description=line.description,
            external_ref=line.external_ref,
            purchase_order=line.purchase_order,
            cost_centre=line.cost_centre,
            amount_excl_tax=sign * line.amount_excl_tax,
            vat_amount=sign * line.vat_amount,
            amount_incl_tax=sign * line.amount,
            vat=vat_lines(line.vat_breakdown),
        )
        for line in invoice_lines(invoice)
    )
    return documents.InvoiceDocument(
        number=invoice.number,
        kind=invoice.kind,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        period=invoice.period.strftime("%Y-%m"),
        currency=invoice.currency,
        seller=documents.Party(
            name=seller["name"],
            siren=seller["siren"],
            vat_number=seller["vat_number"],
            address=seller["address"].replace("\\n", "\n"),
            country=seller["country"],
            email=seller["email"],
        ),
        buyer=documents.Party(
            name=buyer["legal_name"],
            siren=buyer["siren"],
            vat_number=buyer["vat_number"],
            address=buyer["billing_address"],
            country=buyer["country"],
            email=buyer["billing_email"],
        ),
        contract_reference=invoice.contract_reference,
        mandate_reference=invoice.mandate_reference,
        creditor_identifier=seller["creditor_identifier"],
        iban_masked=invoice.iban_masked,
        debit_date=invoice.due_date,
        lines=lines,
        vat_breakdown=vat_lines(invoice.vat_breakdown),
        total_excl_tax=sign * invoice.total_excl_tax,
        total_vat=sign * invoice.total_vat,
        total_incl_tax=sign * invoice.total_incl_tax,
    )


def invoice_pdf(*, invoice_id) -> bytes:
    """The invoice's PDF (with its Factur-X XML), rendered once and kept."""
    invoice = Invoice.objects.filter(pk=invoice_id).first()
    if invoice is None:
        raise NotFound("No such invoice.", "invoice_unknown")
    if invoice.pdf:
        with invoice.pdf.open("rb") as stored:
            return stored.read()
    pdf = documents.render_pdf(invoice_document(invoice))
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice_id)
        if not locked.pdf:
            locked.pdf.save(f"{locked.number}-{locked.pk.hex[:8]}.pdf", ContentFile(pdf), save=True)
    return pdf


def send_invoice(*, invoice_id, resend: bool = False) -> Invoice:
    """E-mail the invoice's PDF to the customer's billing address, then mark it sent
    and publish `InvoiceSent` (billing then marks its operations invoiced).

    An already-sent invoice is not sent again unless `resend` (staff's "resend"), which
    changes nothing but the count of sendings. Errors of the mail server propagate (the
    task retries); a retry after a crash may mail twice, never lose the sending."""
    invoice = Invoice.objects.filter(pk=invoice_id).first()
    if invoice is None:
        raise NotFound("No such invoice.", "invoice_unknown")
    if invoice.status != InvoiceStatus.ISSUED and not resend:
        return invoice
    pdf = invoice_pdf(invoice_id=invoice.pk)
    label = "Avoir" if invoice.kind == InvoiceKind.CREDIT_NOTE else "Facture"
    message = EmailMessage(
        subject=f"{label} {invoice.number} — {invoice.period:%m/%Y} — {settings.SELLER['name']}",
        body=_email_body(invoice, label),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[invoice.buyer["billing_email"]],
    )
    message.attach(f"{invoice.number}.pdf", pdf, "application/pdf")
    message.send()
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        invoice.sent_count += 1
        if invoice.status != InvoiceStatus.ISSUED:
            invoice.save(update_fields=["sent_count"])
            return invoice
        invoice.status = InvoiceStatus.SENT
        invoice.sent_at = timezone.now()
        invoice.save(update_fields=["status", "sent_at", "sent_count"])
        operation_ids = [str(pk) for pk in invoice_lines(invoice).values_list("operation_id", flat=True)]
        outbox.record(
            InvoiceSent(contract_id=invoice.contract_id, invoice=invoice_state(invoice), operation_ids=operation_ids)
        )
    return invoice


def _email_body(invoice: Invoice, label: str) -> str:
    from boissipay.money import format_money

    total = format_money(abs(invoice.total_incl_tax), invoice.currency)
    lines = [
        "Bonjour,",
        "",
        f"Veuillez trouver ci-joint notre {label.lower()} {invoice.number} du {invoice.issue_date:%d/%m/%Y} "
        f"pour le contrat {invoice.contract_reference} (période {invoice.period:%m/%Y}), d'un montant de {total} TTC.",
    ]
    if invoice.kind == InvoiceKind.INVOICE and invoice.mandate_reference and invoice.total_incl_tax > 0:
        lines += [
            "",
            f"Ce montant sera prélevé le {invoice.due_date:%d/%m/%Y} sur le compte {invoice.iban_masked} "
            f"(mandat SEPA {invoice.mandate_reference}, ICS {settings.SELLER['creditor_identifier']}).",
        ]
    lines += ["", "Cordialement,", settings.SELLER["name"]]
    return "\n".join(lines)


# --- collection outcome -------------------------------------------------------------------------


def mark_invoice_paid(*, invoice_id) -> bool:
    """Its collection succeeded. Returns False when nothing changed (already paid)."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().filter(pk=invoice_id).first()
        if invoice is None or invoice.status == InvoiceStatus.PAID:
            return False
        invoice.status = InvoiceStatus.PAID
        invoice.paid_at = timezone.now()
        invoice.save(update_fields=["status", "paid_at"])
        outbox.record(InvoicePaid(contract_id=invoice.contract_id, invoice=invoice_state(invoice)))
        return True


def mark_invoice_failed(*, invoice_id, reason: str) -> bool:
    """Its collection failed for good. Returns False when nothing changed."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().filter(pk=invoice_id).first()
        if invoice is None or invoice.status in (InvoiceStatus.PAID, InvoiceStatus.FAILED):
            return False
        invoice.status = InvoiceStatus.FAILED
        invoice.save(update_fields=["status"])
        outbox.record(InvoiceFailed(contract_id=invoice.contract_id, invoice=invoice_state(invoice), reason=reason))
        return True
