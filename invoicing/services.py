"""Commands of the invoicing context: the monthly billing run, sending invoices, and
keeping invoicing's read models up to date from contract and billing events.

The run is set-based: each chunk of contracts is invoiced by a few SQL statements in
one transaction (the open batches of operations locked, invoices inserted and numbered
from the totals the batches kept as their operations came in, the batches sealed,
events recorded), so its cost grows with the number of contracts, not with the number
of operations. A crash loses at most the chunk in flight, which the next run redoes; an
operation belongs to one batch, which belongs to one invoice at most."""

from __future__ import annotations

import datetime as dt
import json
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from boissipay import outbox
from boissipay.actor import gives_reason
from boissipay.clock import PARIS, business_today
from boissipay.errors import DomainError, NotFound
from boissipay.readmodel import keep_newest
from boissipay.sepa_calendar import debit_date
from invoicing import documents
from invoicing.events import InvoiceFailed, InvoiceIssued, InvoicePaid, InvoiceReopened, InvoiceSent, InvoiceState
from invoicing.models import (
    BillableOperation,
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
            for key in ("legal_name", "siren", "vat_number", "billing_email", "billing_address", "address", "country")
            if key in customer  # `address`: since issue 17
        },
        "currency": state["currency"],
        "payment_terms_days": state["payment_terms_days"],
        "mandate_reference": mandate.get("reference", "") if mandate.get("status") == "active" else "",
        "iban_masked": mandate.get("iban_masked", "") if mandate.get("status") == "active" else "",
        "subscribers": {s["external_ref"]: s["display_name"] for s in state["subscribers"]},
        "vat_scheme": state.get("vat_scheme", "standard"),
        "contract_version": state["version"],
    }
    return keep_newest(InvoicingContract, pk=state["contract_id"], version_field="contract_version", fields=fields)


def record_billable_operation(*, operation: dict) -> None:
    """`record_billable_operations` for one operation."""
    record_billable_operations(operations=[operation])


def record_billable_operations(*, operations: list[dict]) -> None:
    """Take accepted operations (billing's event payloads) in, to be billed by the next
    run of their month or later: each is inserted into the open batch of its contract and
    month and added to that batch's totals, all in one transaction and a few statements
    whatever their number. An operation already taken in changes nothing."""
    rows = [_billable_row(operation) for operation in operations]
    with transaction.atomic(), connection.cursor() as cursor:
        batches = _open_batches(cursor, {(row["contract_id"], row["period"]) for row in rows})
        for row in rows:
            row["batch_id"] = batches[(row["contract_id"], row["period"])]
        cursor.execute(_TAKE_IN, [json.dumps(rows)])


def _billable_row(operation: dict) -> dict:
    """One row of invoicing_billableoperation from billing's operation payload: amounts
    signed (a refund counts negative), its month in Paris, a description in one line."""
    sign = -1 if operation["type"] == "refund" else 1
    decided_at = dt.datetime.fromisoformat(operation["decided_at"])
    orders = "; ".join(
        f"{order['reference']}: " + ", ".join(f"{item['label']} x{item['quantity']}" for item in order["items"])
        for order in operation["orders"]
    )
    kind = "Remboursement" if sign < 0 else "Achat"
    items = [{"order": order["reference"], **item} for order in operation["orders"] for item in order["items"]]
    return {
        "operation_id": operation["operation_id"],
        "contract_id": str(operation["contract_id"]),
        "type": operation["type"],
        "external_ref": operation["external_ref"],
        "purchase_order": operation["purchase_order"],
        "cost_centre": operation["cost_centre"],
        "subscriber_ref": operation.get("subscriber_ref", ""),
        "travel_date": operation.get("travel_date"),
        "items": items,
        "description": f"{kind} {operation['external_ref']} — {orders}"[:500],
        "currency": operation["currency"],
        "amount_excl_tax": sign * operation["amount_excl_tax"],
        "vat_amount": sign * operation["vat_amount"],
        "amount": sign * operation["amount"],
        "vat_breakdown": [
            {"rate": line["rate"], "base": sign * line["base"], "vat": sign * line["vat"]}
            for line in operation["vat_breakdown"]
        ],
        "decided_at": decided_at.isoformat(),
        "period": decided_at.astimezone(PARIS).date().replace(day=1).isoformat(),
    }


# The operations, then (only those that were new: ON CONFLICT DO NOTHING inserts nothing
# for a second delivery) their amounts added to their batches' totals and VAT lines per rate.
_TAKE_IN = """
WITH taken AS (
    INSERT INTO invoicing_billableoperation (operation_id, contract_id, batch_id, type, external_ref, purchase_order,
        cost_centre, subscriber_ref, travel_date, items, description, currency, amount_excl_tax, vat_amount, amount,
        vat_breakdown, decided_at, period, received_at)
    SELECT operation_id, contract_id, batch_id, type, external_ref, purchase_order, cost_centre,
           coalesce(subscriber_ref, ''), travel_date, coalesce(items, '[]'::jsonb), description,
           currency, amount_excl_tax, vat_amount, amount, vat_breakdown, decided_at, period, now()
    FROM jsonb_to_recordset(%s::jsonb) AS r(operation_id uuid, contract_id uuid, batch_id uuid, type text,
        external_ref text, purchase_order text, cost_centre text, subscriber_ref text, travel_date date, items jsonb,
        description text, currency text, amount_excl_tax bigint, vat_amount bigint, amount bigint, vat_breakdown jsonb,
        decided_at timestamptz, period date)
    ON CONFLICT (operation_id) DO NOTHING
    RETURNING batch_id, amount_excl_tax, vat_amount, amount, vat_breakdown
), totals AS (
    UPDATE invoicing_billingbatch b
    SET operations_count = b.operations_count + t.n, total_excl_tax = b.total_excl_tax + t.excl,
        total_vat = b.total_vat + t.vat, total_incl_tax = b.total_incl_tax + t.incl
    FROM (SELECT batch_id, count(*) AS n, sum(amount_excl_tax) AS excl, sum(vat_amount) AS vat, sum(amount) AS incl
          FROM taken GROUP BY batch_id) t
    WHERE b.id = t.batch_id
)
INSERT INTO invoicing_billingbatchvat AS v (batch_id, rate, base, vat)
SELECT t.batch_id, e->>'rate', sum((e->>'base')::bigint), sum((e->>'vat')::bigint)
FROM taken t CROSS JOIN LATERAL jsonb_array_elements(t.vat_breakdown) e
GROUP BY t.batch_id, e->>'rate'
ON CONFLICT (batch_id, rate) DO UPDATE SET base = v.base + excluded.base, vat = v.vat + excluded.vat
"""

# The open batches of these (contract, month) pairs, locked (FOR NO KEY UPDATE) until the
# caller's transaction ends, so that a billing run sealing one waits for the operations
# being added. Locked in id order, as the billing run locks them.
_LOCK_OPEN_BATCHES = """
SELECT b.id::text, b.contract_id::text, b.period::text
FROM invoicing_billingbatch b
JOIN unnest(%s::uuid[], %s::date[]) AS wanted(contract_id, period)
  ON b.contract_id = wanted.contract_id AND b.period = wanted.period
WHERE b.invoice_id IS NULL
ORDER BY b.id
FOR NO KEY UPDATE OF b
"""

_OPEN_BATCHES = """
INSERT INTO invoicing_billingbatch (id, contract_id, period, created_at)
SELECT gen_random_uuid(), contract_id, period, now() FROM unnest(%s::uuid[], %s::date[]) AS wanted(contract_id, period)
ON CONFLICT (contract_id, period) WHERE invoice_id IS NULL DO NOTHING
"""


def _open_batches(cursor, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """{(contract id, month): id of its open batch, locked}; a batch is opened where there
    is none (or where a billing run has just sealed the one there was)."""
    found: dict[tuple[str, str], str] = {}
    while True:
        missing = sorted(wanted - found.keys())
        columns = [[contract for contract, _ in missing], [period for _, period in missing]]
        cursor.execute(_LOCK_OPEN_BATCHES, columns)
        found.update({(contract, period): batch for batch, contract, period in cursor.fetchall()})
        missing = sorted(wanted - found.keys())
        if not missing:
            return found
        cursor.execute(_OPEN_BATCHES, [[contract for contract, _ in missing], [period for _, period in missing]])


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
    """Record a billing run to be executed (by `execute_billing_run`, now or by a worker).

    Raises DomainError 400 `period_not_ended` for the current month or a later one: a
    month is invoiced once it has ended (Europe/Paris). To invoice one contract before
    its month ends, staff use `start_early_invoice`."""
    first_day = parse_period(period)
    current = business_today().replace(day=1)
    if first_day >= current:
        ends = _next_month(first_day) - dt.timedelta(days=1)
        raise DomainError(
            "period_not_ended",
            f"{first_day:%Y-%m} ends on {ends.isoformat()}: it can be invoiced from "
            f"{_next_month(first_day).isoformat()} (Europe/Paris). To invoice one contract before then, "
            "ask for an early invoice.",
            status_code=400,
        )
    return BillingRun.objects.create(
        period=first_day,
        trigger=trigger,
        started_by=started_by[:150],
        contract_reference=contract_reference,
        dry_run=dry_run,
    )


@gives_reason
def start_early_invoice(*, contract_reference: str, reason: str, trigger: str, started_by: str) -> BillingRun:
    """Record staff's request to invoice one contract now, before its month has ended
    (the final invoice of a cancelled contract, say): every operation of the contract
    not yet invoiced, this month's included. Its later operations of the month go on the
    next invoice. The run is marked `early` with who asked for it and why.

    Raises DomainError 400 `reason_required`, 404 `contract_unknown`."""
    reason = reason.strip()
    if not reason:
        raise DomainError("reason_required", "Say why this contract is invoiced early.", status_code=400)
    if not InvoicingContract.objects.filter(reference=contract_reference).exists():
        raise NotFound(f"No contract {contract_reference!r} is known to invoicing.", "contract_unknown")
    if not started_by:
        raise DomainError("requester_required", "An early invoice records who asked for it.", status_code=400)
    return BillingRun.objects.create(
        period=business_today().replace(day=1),
        trigger=trigger,
        started_by=started_by[:150],
        contract_reference=contract_reference,
        early=True,
        reason=reason[:500],
    )


@gives_reason
def invoice_early(*, contract_reference: str, reason: str, trigger: str, started_by: str) -> BillingRun:
    """`start_early_invoice`, executed now."""
    run = start_early_invoice(
        contract_reference=contract_reference, reason=reason, trigger=trigger, started_by=started_by
    )
    return execute_billing_run(run_id=run.pk)


def _next_month(first_day: dt.date) -> dt.date:
    return (first_day + dt.timedelta(days=32)).replace(day=1)


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


_CONTRACTS_TO_INVOICE = """
SELECT b.contract_id::text, bool_or(c.contract_id IS NOT NULL)
FROM invoicing_billingbatch b LEFT JOIN invoicing_invoicingcontract c ON c.contract_id = b.contract_id
WHERE b.invoice_id IS NULL AND b.period <= %(period)s AND b.operations_count > 0
  AND (%(reference)s = '' OR c.reference = %(reference)s)
GROUP BY b.contract_id ORDER BY b.contract_id
"""


def _id_array(ids: list[str]) -> str:
    """Ids as one `uuid[]` literal: one parameter to quote instead of thousands."""
    return "{" + ",".join(ids) + "}"


def _invoice_all(run: BillingRun, progress: Callable[[int, int], None]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_CONTRACTS_TO_INVOICE, {"period": run.period, "reference": run.contract_reference})
        rows = cursor.fetchall()
    contract_ids = [contract_id for contract_id, known in rows if known]
    unknown = [contract_id for contract_id, known in rows if not known]
    if unknown:
        run.errors = (
            f"{len(unknown)} contract(s) with operations but not yet known to invoicing, left for a later run: "
        )
        run.errors += ", ".join(unknown[:20])
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


def _tally(run: BillingRun, invoices: list[tuple]) -> None:
    """Add (currency, excl. tax, VAT, incl. tax, operations) per invoice to the run's
    figures; a negative total is a credit note."""
    for currency, excl, vat, incl, operations in invoices:
        run.contracts_invoiced += 1
        if incl < 0:
            run.credit_notes_count += 1
        else:
            run.invoices_count += 1
        run.operations_count += operations
        totals = run.totals.setdefault(currency, {"excl_tax": 0, "vat": 0, "incl_tax": 0})
        totals["excl_tax"] += excl
        totals["vat"] += vat
        totals["incl_tax"] += incl


_UNBILLED_SUMS = """
    SELECT c.currency, sum(b.total_excl_tax)::bigint, sum(b.total_vat)::bigint, sum(b.total_incl_tax)::bigint,
           sum(b.operations_count)::bigint
    FROM unnest(%(contracts)s::uuid[]) AS chosen(contract_id)
    JOIN invoicing_billingbatch b ON b.contract_id = chosen.contract_id
    JOIN invoicing_invoicingcontract c ON c.contract_id = b.contract_id
    WHERE b.invoice_id IS NULL AND b.period <= %(period)s
    GROUP BY b.contract_id, c.currency HAVING sum(b.operations_count) > 0
"""


def _preview_chunk(run: BillingRun, chunk: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(_UNBILLED_SUMS, {"period": run.period, "contracts": _id_array(chunk)})
        return cursor.fetchall()


_LOCK_BATCHES = """
SELECT b.id::text FROM unnest(%(contracts)s::uuid[]) AS chosen(contract_id)
JOIN invoicing_billingbatch b ON b.contract_id = chosen.contract_id
JOIN invoicing_invoicingcontract c ON c.contract_id = b.contract_id
WHERE b.invoice_id IS NULL AND b.period <= %(period)s
ORDER BY b.id
FOR UPDATE OF b
"""

# Run after _LOCK_BATCHES, as a statement of its own: its snapshot then holds the totals
# of every operation the deliveries that held those batches were adding. A contract's
# invoice is the sum of its open batches (its month and any earlier one left open).
_ISSUE_INVOICES = """
WITH batches AS (
    SELECT b.id, b.contract_id, b.operations_count, b.total_excl_tax, b.total_vat, b.total_incl_tax
    FROM unnest(%(batches)s::uuid[]) AS locked(id) JOIN invoicing_billingbatch b ON b.id = locked.id
), rates AS (
    -- EN 16931 (BR-CO-17): each rate's VAT is its base x rate, rounded half away from zero
    -- to the minor unit; not the sum of the operations' rounded VAT (ADR 0027).
    SELECT b.contract_id, v.rate, sum(v.base)::bigint AS base,
           round(sum(v.base)::numeric * v.rate::numeric / 100)::bigint AS vat
    FROM invoicing_billingbatchvat v JOIN batches b ON b.id = v.batch_id
    GROUP BY b.contract_id, v.rate
), vats AS (
    SELECT contract_id, sum(vat)::bigint AS vat FROM rates GROUP BY contract_id
), sums AS (
    SELECT b.contract_id, gen_random_uuid() AS invoice_id, sum(b.total_excl_tax)::bigint AS excl,
           coalesce(max(v.vat), 0)::bigint AS vat, (sum(b.total_excl_tax) + coalesce(max(v.vat), 0))::bigint AS incl,
           sum(b.total_incl_tax)::bigint AS operations_incl, sum(b.operations_count) AS n
    FROM batches b LEFT JOIN vats v ON v.contract_id = b.contract_id
    GROUP BY b.contract_id HAVING sum(b.operations_count) > 0
), breakdown AS (
    SELECT contract_id, jsonb_agg(jsonb_build_object('rate', rate, 'base', base, 'vat', vat) ORDER BY rate) AS lines
    FROM rates GROUP BY contract_id
), inserted AS (
    INSERT INTO invoicing_invoice (
        id, number, kind, contract_id, contract_reference, customer_id, buyer, period, issue_date, due_date,
        currency, total_excl_tax, total_vat, total_incl_tax, vat_breakdown, operations_count, mandate_reference,
        iban_masked, status, billing_run_id, pdf, created_at, sent_count, rounding_adjustment)
    SELECT s.invoice_id,
           %(prefix)s || '-' || %(year)s || '-'
               || lpad((%(base)s + row_number() OVER (ORDER BY c.reference, c.contract_id))::text, 6, '0'),
           CASE WHEN s.incl < 0 THEN 'credit_note' ELSE 'invoice' END, c.contract_id,
           c.reference, c.customer_id, c.buyer, %(period)s, %(issue_date)s,
           %(issue_date)s::date + c.payment_terms_days, c.currency, s.excl, s.vat, s.incl,
           coalesce(b.lines, '[]'::jsonb), s.n, c.mandate_reference, c.iban_masked, 'issued', %(run)s, '', now(), 0,
           s.incl - s.operations_incl
    FROM sums s
    JOIN invoicing_invoicingcontract c ON c.contract_id = s.contract_id
    LEFT JOIN breakdown b ON b.contract_id = s.contract_id
    RETURNING id, contract_id, kind, currency, total_excl_tax, total_vat, total_incl_tax, operations_count
), sealed AS (
    UPDATE invoicing_billingbatch bb SET invoice_id = i.id
    FROM batches b JOIN inserted i ON i.contract_id = b.contract_id WHERE bb.id = b.id
)
SELECT id::text, currency, total_excl_tax, total_vat, total_incl_tax, operations_count FROM inserted
"""

# What InvoiceIssued(contract_id=..., invoice=invoice_state(invoice)).payload() gives,
# built by the database for a whole chunk (tested against it).
_INVOICE_STATE_SQL = """
jsonb_build_object(
    'invoice_id', i.id::text, 'number', i.number, 'kind', i.kind, 'contract_id', i.contract_id::text,
    'contract_reference', i.contract_reference, 'customer_id', i.customer_id::text,
    'period', to_char(i.period, 'YYYY-MM'), 'issue_date', to_char(i.issue_date, 'YYYY-MM-DD'),
    'due_date', to_char(i.due_date, 'YYYY-MM-DD'), 'currency', i.currency, 'total_excl_tax', i.total_excl_tax,
    'total_vat', i.total_vat, 'total_incl_tax', i.total_incl_tax, 'vat_breakdown', i.vat_breakdown,
    'operations_count', i.operations_count, 'mandate_reference', i.mandate_reference, 'status', i.status)
"""

_ISSUED_EVENTS = f"""
SELECT i.contract_id::text, jsonb_build_object('contract_id', i.contract_id::text, 'invoice', {_INVOICE_STATE_SQL})
FROM unnest(%(invoices)s::uuid[]) AS issued(id) JOIN invoicing_invoice i ON i.id = issued.id ORDER BY i.number
"""


_MARGIN_SCHEME = """
UPDATE invoicing_invoice i
SET vat_scheme = 'travel_agent_margin', total_excl_tax = i.total_incl_tax - i.rounding_adjustment, total_vat = 0,
    total_incl_tax = i.total_incl_tax - i.rounding_adjustment, rounding_adjustment = 0,
    vat_breakdown = jsonb_build_array(jsonb_build_object(
        'rate', '0.00', 'base', i.total_incl_tax - i.rounding_adjustment, 'vat', 0))
FROM invoicing_invoicingcontract c
WHERE i.id = ANY(%(invoices)s::uuid[]) AND c.contract_id = i.contract_id AND c.vat_scheme = 'travel_agent_margin'
"""

_CHUNK_TOTALS = """
SELECT id::text, currency, total_excl_tax, total_vat, total_incl_tax, operations_count
FROM invoicing_invoice WHERE id = ANY(%(invoices)s::uuid[])
"""


def _invoice_chunk(run: BillingRun, chunk: list, issue_date: dt.date) -> list[tuple]:
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
        cursor.execute(_LOCK_BATCHES, {"contracts": _id_array(chunk), "period": run.period})
        batches = [row[0] for row in cursor.fetchall()]
        if not batches:
            return []
        cursor.execute(
            _ISSUE_INVOICES,
            {
                "period": run.period,
                "batches": _id_array(batches),
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
        ids = [row[0] for row in rows]
        # Under the travel agents' margin scheme an invoice shows no VAT: what was charged,
        # the operations' amounts, at "0 %", exempt (ADR 0027, issue 16).
        cursor.execute(_MARGIN_SCHEME, {"invoices": _id_array(ids)})
        if cursor.rowcount:
            cursor.execute(_CHUNK_TOTALS, {"invoices": _id_array(ids)})
            rows = cursor.fetchall()
        cursor.execute("UPDATE invoicing_invoicesequence SET last_number = %s WHERE year = %s", [base + len(ids), year])
    outbox.record_query(InvoiceIssued, _ISSUED_EVENTS, {"invoices": _id_array(ids)})
    # robust: the invoices are issued whatever happens to the sending (an admin action resends).
    transaction.on_commit(lambda: _send_later(ids), robust=True)
    invoices = [row[1:] for row in rows]
    logger.info("billing run %s: %d invoices, %d operations", run.pk, len(ids), sum(row[-1] for row in invoices))
    return invoices


def _send_later(invoice_ids: list[str]) -> None:
    from invoicing.tasks import send_invoices

    send_invoices.delay(invoice_ids)


def invoice_state(invoice: Invoice) -> InvoiceState:
    assert invoice.number is not None, "only issued (numbered) invoices are published"
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
    seller: dict[str, Any] = settings.SELLER
    buyer = invoice.buyer

    def vat_lines(breakdown) -> tuple[documents.VatLine, ...]:
        return tuple(documents.VatLine(rate=v["rate"], base=sign * v["base"], vat=sign * v["vat"]) for v in breakdown)

    margin = invoice.vat_scheme == MARGIN_SCHEME
    corrected = invoice.corrects
    if corrected is not None:  # a credit note issued on demand: its own lines (margin-scheme already)
        lines = tuple(_credit_lines(invoice, sign, vat_lines))
    else:
        travellers = (
            InvoicingContract.objects.filter(pk=invoice.contract_id).values_list("subscribers", flat=True).first() or {}
        )
        lines = tuple(
            document_line
            for operation in invoice_lines(invoice)
            for document_line in _document_lines(operation, sign, travellers, vat_lines)
        )
        if margin:
            lines = tuple(_without_vat(line) for line in lines)
    seller_party, buyer_party = _parties(seller, buyer)
    return documents.InvoiceDocument(
        number=invoice.number or "",  # a draft has no number yet
        kind=invoice.kind,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        period=invoice.period.strftime("%Y-%m"),
        currency=invoice.currency,
        seller=seller_party,
        buyer=buyer_party,
        contract_reference=invoice.contract_reference,
        mandate_reference=invoice.mandate_reference,
        creditor_identifier=seller["creditor_identifier"],
        iban_masked=invoice.iban_masked,
        debit_date=debit_date(invoice.due_date),
        lines=lines,
        vat_breakdown=vat_lines(invoice.vat_breakdown),
        total_excl_tax=sign * invoice.total_excl_tax,
        total_vat=sign * invoice.total_vat,
        total_incl_tax=sign * invoice.total_incl_tax,
        vat_on_debits=bool(seller.get("vat_on_debits")),
        margin_scheme=margin,
        corrects_number=(corrected.number or "") if corrected is not None else "",
        corrects_issue_date=corrected.issue_date if corrected is not None else None,
        reason=invoice.reason,
    )


MARGIN_SCHEME = "travel_agent_margin"


def _without_vat(line: documents.Line) -> documents.Line:
    """A line under the travel agents' margin scheme: what was charged, VAT not shown."""
    import dataclasses

    charged = line.amount_incl_tax
    whole = line.unit_amount is not None and abs(charged) % line.quantity == 0
    return dataclasses.replace(
        line,
        amount_excl_tax=charged,
        vat_amount=0,
        vat=(documents.VatLine(rate="0.00", base=charged, vat=0),),
        quantity=line.quantity if whole else 1,
        unit_amount=abs(charged) // line.quantity if whole else None,
    )


def _document_lines(operation: BillableOperation, sign: int, travellers: dict, vat_lines) -> list[documents.Line]:
    """An operation's lines on its invoice: one per item (quantity, unit price, VAT rate),
    with the traveller and the day of travel; one for the whole operation when it was
    taken in before items were kept."""
    common = {
        "date": operation.travel_date or operation.decided_at.astimezone(PARIS).date(),
        "external_ref": operation.external_ref,
        "purchase_order": operation.purchase_order,
        "cost_centre": operation.cost_centre,
        "traveller": travellers.get(operation.subscriber_ref, operation.subscriber_ref),
        "travel_date": operation.travel_date,
    }
    if not operation.items:
        return [
            documents.Line(
                description=operation.description,
                amount_excl_tax=sign * operation.amount_excl_tax,
                vat_amount=sign * operation.vat_amount,
                amount_incl_tax=sign * operation.amount,
                vat=vat_lines(operation.vat_breakdown),
                **common,
            )
        ]
    signed = sign * (-1 if operation.type == "refund" else 1)
    refund = " (remboursement)" if operation.type == "refund" else ""
    lines = []
    for item in operation.items:
        base, vat = signed * item["amount_excl_tax"], signed * item["vat_amount"]
        lines.append(
            documents.Line(
                description=f"{item['label']}{refund}",
                amount_excl_tax=base,
                vat_amount=vat,
                amount_incl_tax=base + vat,
                vat=(documents.VatLine(rate=str(item["vat_rate"]), base=base, vat=vat),),
                quantity=item["quantity"],
                unit_amount=item["unit_amount"],
                **common,
            )
        )
    return lines


def _legal_information(seller: dict) -> str:
    """ "SAS au capital de 10 000,00 € — RCS Paris 732 829 320" (BT-33), from settings.SELLER."""
    parts = []
    if seller.get("legal_form") or seller.get("share_capital"):
        capital = f" au capital de {seller['share_capital']}" if seller.get("share_capital") else ""
        parts.append(f"{seller.get('legal_form', '')}{capital}".strip())
    if seller.get("rcs"):
        parts.append(seller["rcs"])
    return " — ".join(parts)


def _parties(seller: dict, buyer: dict) -> tuple[documents.Party, documents.Party]:
    return (
        documents.Party(
            name=seller["name"],
            siren=seller["siren"],
            vat_number=seller["vat_number"],
            address=seller["address"].replace("\\n", "\n"),
            country=seller["country"],
            email=seller["email"],
            legal_information=_legal_information(seller),
        ),
        documents.Party(
            name=buyer["legal_name"],
            siren=buyer["siren"],
            vat_number=buyer["vat_number"],
            address=buyer["billing_address"],
            country=buyer["country"],
            email=buyer["billing_email"],
            street_lines=tuple(buyer.get("address", {}).get("lines", ())),
            postcode=buyer.get("address", {}).get("postcode", ""),
            city=buyer.get("address", {}).get("city", ""),
        ),
    )


def _credit_lines(note: Invoice, sign: int, vat_lines):
    """A credit note issued on demand (invoicing.credit_notes): its own lines, positive as credited."""
    for line in note.credit_lines.order_by("position"):
        yield documents.Line(
            date=line.date,
            description=line.description,
            external_ref=line.external_ref,
            purchase_order=line.purchase_order,
            cost_centre=line.cost_centre,
            amount_excl_tax=sign * line.amount_excl_tax,
            vat_amount=sign * line.vat_amount,
            amount_incl_tax=sign * line.amount,
            vat=vat_lines(line.vat_breakdown),
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
    """Send the invoice, then mark it sent and publish `InvoiceSent` (billing then marks
    its operations invoiced): deposited on the e-invoicing platform for a French buyer
    with a SIREN (invoicing.einvoicing), else its PDF e-mailed to the billing address.

    An already-sent invoice is not sent again unless `resend` (staff's "resend": a copy by
    e-mail), which changes nothing but the count of sendings. Errors of the platform or
    the mail server propagate (the task retries). A deposit happens once: its message id
    is kept, and the platform answers a second deposit with the first one's id. A retry
    after a crash may mail twice, never lose the sending."""
    from invoicing import einvoicing

    invoice = Invoice.objects.filter(pk=invoice_id).first()
    if invoice is None:
        raise NotFound("No such invoice.", "invoice_unknown")
    if invoice.status != InvoiceStatus.ISSUED and not resend:
        return invoice
    label = "Avoir" if invoice.kind == InvoiceKind.CREDIT_NOTE else "Facture"
    channel = "email" if resend else einvoicing.channel_for(invoice.buyer)
    try:
        pdf = invoice_pdf(invoice_id=invoice.pk)
        if channel == "platform":
            if not invoice.platform_message_id:
                message_id = einvoicing.deposit(invoice, pdf)
                Invoice.objects.filter(pk=invoice.pk).update(platform_message_id=message_id)
            _mark_sent(invoice.pk, channel)
            return Invoice.objects.get(pk=invoice.pk)
        message = EmailMessage(
            subject=f"{label} {invoice.number} — {invoice.period:%m/%Y} — {settings.SELLER['name']}",
            body=_email_body(invoice, label),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[invoice.buyer["billing_email"]],
        )
        message.attach(f"{invoice.number}.pdf", pdf, "application/pdf")
        message.send()
    except Exception as exc:
        # Staff see it on the invoice (admin: "sending failed"), not only in the worker's log.
        Invoice.objects.filter(pk=invoice.pk).update(
            sending_failures=F("sending_failures") + 1, sending_error=f"{timezone.now():%Y-%m-%d %H:%M} {exc!r}"[:2000]
        )
        raise
    return _mark_sent(invoice.pk, channel)


def _mark_sent(invoice_id, channel: str) -> Invoice:
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        invoice.sending_failures, invoice.sending_error = 0, ""
        invoice.sent_count += 1
        if invoice.status != InvoiceStatus.ISSUED:
            invoice.save(update_fields=["sent_count", "sending_failures", "sending_error"])
            return invoice
        invoice.status = InvoiceStatus.SENT
        invoice.sent_at = timezone.now()
        invoice.channel = channel
        invoice.save(update_fields=["status", "sent_at", "sent_count", "sending_failures", "sending_error", "channel"])
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
            f"Ce montant sera prélevé le {debit_date(invoice.due_date):%d/%m/%Y} sur le compte {invoice.iban_masked} "
            f"(mandat SEPA {invoice.mandate_reference}, ICS {settings.SELLER['creditor_identifier']}).",
        ]
    lines += ["", "Cordialement,", str(settings.SELLER["name"])]
    return "\n".join(lines)


# --- collection outcome -------------------------------------------------------------------------


def mark_invoice_paid(*, invoice_id) -> bool:
    """Its collection succeeded. Returns False when nothing changed (already paid)."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().filter(pk=invoice_id).first()
        if invoice is None or invoice.status in (InvoiceStatus.PAID, InvoiceStatus.CANCELLED):
            return False
        invoice.status = InvoiceStatus.PAID
        invoice.paid_at = timezone.now()
        invoice.save(update_fields=["status", "paid_at"])
        outbox.record(InvoicePaid(contract_id=invoice.contract_id, invoice=invoice_state(invoice)))
        if invoice.platform_message_id:  # VAT on services is due on collection: the platform is told
            _report_later(invoice.pk, "paid")
        return True


def record_paid_outside(*, invoice_id, total: int) -> bool:
    """Payments says `total` of the invoice was paid outside its debit: the invoice is
    partly paid (or paid, which `payments.payment.succeeded` says). Keeps the highest total."""
    return bool(Invoice.objects.filter(pk=invoice_id, paid_outside__lt=total).update(paid_outside=total))


@gives_reason
def mark_invoice_unpaid(*, invoice_id, reason: str) -> bool:
    """Its collection came back after it succeeded (a return or a refund): sent and unpaid
    again, awaiting the next attempt or staff. Returns False when nothing changed."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().filter(pk=invoice_id).first()
        if invoice is None or invoice.status != InvoiceStatus.PAID:
            return False
        invoice.status = InvoiceStatus.SENT
        invoice.paid_at = None
        invoice.save(update_fields=["status", "paid_at"])
        outbox.record(InvoiceReopened(contract_id=invoice.contract_id, invoice=invoice_state(invoice), reason=reason))
        if invoice.platform_message_id:  # the "paid" reported is corrected
            _report_later(invoice.pk, "payment_cancelled")
        return True


def _report_later(invoice_id, status: str) -> None:
    from invoicing.tasks import report_platform_status

    on = business_today().isoformat()
    transaction.on_commit(lambda: report_platform_status.delay(str(invoice_id), status, on), robust=True)


def report_platform_status(*, invoice_id, status: str, on: dt.date) -> None:
    """Tell the e-invoicing platform the invoice is paid, or that its payment came back
    (the task retries while the platform is unreachable)."""
    from invoicing import einvoicing

    invoice = Invoice.objects.get(pk=invoice_id)
    # What the invoice asks once credited: paid (by the debit and otherwise), or no longer.
    einvoicing.report(invoice, status, amount=invoice.total_incl_tax - invoice.credited, on=on)


@gives_reason
def mark_invoice_failed(*, invoice_id, reason: str) -> bool:
    """Its collection failed for good. Returns False when nothing changed."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().filter(pk=invoice_id).first()
        if invoice is None or invoice.status in (InvoiceStatus.PAID, InvoiceStatus.FAILED, InvoiceStatus.CANCELLED):
            return False
        invoice.status = InvoiceStatus.FAILED
        invoice.save(update_fields=["status"])
        outbox.record(InvoiceFailed(contract_id=invoice.contract_id, invoice=invoice_state(invoice), reason=reason))
        return True
