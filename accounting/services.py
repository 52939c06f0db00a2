"""Commands of the accounting context: the general ledger, recorded from the events of
the other contexts (ADR 0032), and the FEC that comes out of it (accounting.fec).

- Sales journal (VE): an invoice debits the customer (411, with the customer's auxiliary
  account) by its total and credits revenue (706) and VAT collected (44571, one account
  per rate) per rate; a credit note does the reverse.
- Bank journal (BQ): a collection, or a payment received by transfer or cheque, debits
  the bank (512) and credits the customer; a return or a refund paid out does the reverse.

Each entry balances (checked before it is written), is recorded once (its source event,
and what it records, are unique) and takes the next number of its journal and year
without gaps (a row lock on the sequence)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from accounting.models import (
    EntryLine,
    Journal,
    JournalEntry,
    JournalSequence,
    LedgerContract,
    LedgerCustomer,
)


class Unbalanced(ValueError):
    """An entry whose debits are not its credits: never written."""


@dataclass(frozen=True)
class Line:
    account: str
    label: str
    amount: int  # minor units: positive on the debit side, negative on the credit side
    customer_id: str | None = None


def accounts() -> dict:
    return settings.ACCOUNTING


# --- who the customers are ------------------------------------------------------------


def apply_customer(*, customer: dict) -> None:
    LedgerCustomer.objects.update_or_create(
        customer_id=customer["customer_id"],
        defaults={"siren": customer["siren"], "legal_name": customer["legal_name"]},
    )


def apply_contract(*, contract: dict) -> None:
    apply_customer(customer=contract["customer"])
    LedgerContract.objects.update_or_create(
        contract_id=contract["contract_id"],
        defaults={"customer_id": contract["customer"]["customer_id"], "reference": contract["reference"]},
    )


# --- entries --------------------------------------------------------------------------


@transaction.atomic
def record_entry(
    *,
    event_id: uuid.UUID | str,
    event_type: str,
    journal: str,
    kind: str,
    source_ref: str,
    entry_date: dt.date,
    piece_ref: str,
    piece_date: dt.date,
    label: str,
    currency: str,
    lines: list[Line],
    customer_id: str | None = None,
) -> JournalEntry | None:
    """Write one balanced entry; None when it was recorded already (the same source) or
    has nothing to record (every line zero). Raises Unbalanced."""
    lines = [line for line in lines if line.amount]
    if not lines:
        return None
    if sum(line.amount for line in lines):
        raise Unbalanced(f"{kind} {source_ref}: debits and credits differ by {sum(line.amount for line in lines)}")
    if JournalEntry.objects.filter(kind=kind, source_ref=source_ref).exists():
        return None
    year = entry_date.year
    sequence, _ = JournalSequence.objects.select_for_update().get_or_create(journal=journal, year=year)
    sequence.last_number += 1
    sequence.save(update_fields=["last_number"])
    entry = JournalEntry.objects.create(
        journal=journal,
        fiscal_year=year,
        number=sequence.last_number,
        entry_date=entry_date,
        piece_ref=piece_ref[:50],
        piece_date=piece_date,
        label=label[:200],
        customer_id=customer_id,
        currency=currency,
        kind=kind,
        source_ref=source_ref,
        source_event_id=event_id,
        source_event_type=event_type,
    )
    EntryLine.objects.bulk_create(
        EntryLine(
            entry=entry,
            account=line.account,
            account_label=line.label,
            customer_id=line.customer_id,
            debit=max(line.amount, 0),
            credit=max(-line.amount, 0),
        )
        for line in lines
    )
    return entry


def _customer_line(customer_id: str | None, amount: int) -> Line:
    return Line(accounts()["customers"], accounts()["customers_label"], amount, customer_id or None)


def _bank_line(amount: int) -> Line:
    return Line(accounts()["bank"], accounts()["bank_label"], amount)


def _vat_account(rate: str) -> str:
    """The VAT collected account of a rate ("20.00"), or the general one."""
    key = f"{Decimal(rate).normalize():f}"
    return accounts()["vat"].get(key, accounts()["vat_default"])


def record_invoice(*, event_id, event_type: str, invoice: dict) -> JournalEntry | None:
    """Sales journal: an invoice or a credit note (its totals are negative), per VAT rate.
    Amounts are the invoice's own: revenue per rate is its base, VAT per rate its VAT; a
    rounding difference between the lines and the totals goes on the last line of its kind."""
    credit_note = invoice["kind"] == "credit_note"
    lines = [_customer_line(invoice["customer_id"], invoice["total_incl_tax"])]
    bases, vats = [], []
    for vat_line in invoice["vat_breakdown"]:
        bases.append(Line(accounts()["revenue"], accounts()["revenue_label"], -vat_line["base"]))
        vats.append(Line(_vat_account(vat_line["rate"]), f"TVA collectée {vat_line['rate']} %", -vat_line["vat"]))
    for kept, total in ((bases, invoice["total_excl_tax"]), (vats, invoice["total_vat"])):
        gap = -total - sum(line.amount for line in kept)
        if gap and kept:
            last = kept[-1]
            kept[-1] = Line(last.account, last.label, last.amount + gap)
        elif gap:
            kept.append(Line(accounts()["revenue"], accounts()["revenue_label"], gap))
    issue_date = dt.date.fromisoformat(invoice["issue_date"])
    name = "Avoir" if credit_note else "Facture"
    return record_entry(
        event_id=event_id,
        event_type=event_type,
        journal=Journal.SALES,
        kind="credit_note" if credit_note else "invoice",
        source_ref=invoice["invoice_id"],
        entry_date=issue_date,
        piece_ref=invoice["number"],
        piece_date=issue_date,
        label=f"{name} {invoice['number']} {invoice['contract_reference']}",
        currency=invoice["currency"],
        customer_id=invoice["customer_id"],
        lines=[*lines, *bases, *vats],
    )


def _customer_of_contract(contract_id: str) -> str | None:
    link = LedgerContract.objects.filter(pk=contract_id).values_list("customer_id", flat=True).first()
    return str(link) if link else None


def _recorded_day(occurred_at: dt.datetime | None) -> dt.date:
    """The day (Europe/Paris) of a movement whose event predates the dates payloads now
    carry (`returned_on`, `status_on`): the event's own time."""
    from boissipay.clock import PARIS, business_today

    return occurred_at.astimezone(PARIS).date() if occurred_at else business_today()


def record_collection(
    *, event_id, event_type: str, payment: dict, occurred_at: dt.datetime | None
) -> JournalEntry | None:
    """Bank journal: the direct debit collected what it was to take (the invoice less what
    was paid otherwise or credited)."""
    collected = payment["amount"] - payment.get("allocated", 0) - payment.get("credited", 0)
    customer_id = _customer_of_contract(payment["contract_id"])
    day = dt.date.fromisoformat(payment["due_date"])  # the debit's settlement date
    return record_entry(
        event_id=event_id,
        event_type=event_type,
        journal=Journal.BANK,
        kind="collection",
        source_ref=f"{payment['payment_id']}:{payment['attempts']}",
        entry_date=day,
        piece_ref=payment["invoice_number"],
        piece_date=day,
        label=f"Prélèvement SEPA {payment['invoice_number']}",
        currency=payment["currency"],
        customer_id=customer_id,
        lines=[_bank_line(collected), _customer_line(customer_id, -collected)],
    )


def record_return(
    *, event_id, event_type: str, payment: dict, occurred_at: dt.datetime | None, returned_on: str | None = None
) -> JournalEntry | None:
    """Bank journal: a collected debit came back (return or refund on the debtor's
    request), on the day payments applied it: the collection's entry, reversed."""
    source_ref = f"{payment['payment_id']}:{payment['attempts']}"
    collection = JournalEntry.objects.filter(kind="collection", source_ref=source_ref).first()
    if collection is not None:
        amount = collection.lines.get(account=accounts()["bank"]).debit
    else:  # collected before the ledger existed: what the payment says it took
        amount = payment["amount"] - payment.get("allocated", 0) - payment.get("credited", 0)
    customer_id = _customer_of_contract(payment["contract_id"])
    day = dt.date.fromisoformat(returned_on) if returned_on else _recorded_day(occurred_at)
    return record_entry(
        event_id=event_id,
        event_type=event_type,
        journal=Journal.BANK,
        kind="return",
        source_ref=source_ref,
        entry_date=day,
        piece_ref=payment["invoice_number"],
        piece_date=day,
        label=f"Impayé prélèvement {payment['invoice_number']}",
        currency=payment["currency"],
        customer_id=customer_id,
        lines=[_customer_line(customer_id, amount), _bank_line(-amount)],
    )


def record_manual_payment(*, event_id, event_type: str, manual_payment: dict) -> JournalEntry | None:
    """Bank journal: a transfer or cheque received (all of it: what is not allocated yet
    stays to the customer's credit on 411)."""
    received_on = dt.date.fromisoformat(manual_payment["received_on"])
    kind = "Virement" if manual_payment["method"] == "transfer" else "Chèque"
    amount = manual_payment["amount"]
    return record_entry(
        event_id=event_id,
        event_type=event_type,
        journal=Journal.BANK,
        kind="manual_payment",
        source_ref=manual_payment["manual_payment_id"],
        entry_date=received_on,
        piece_ref=manual_payment["bank_reference"],
        piece_date=received_on,
        label=f"{kind} reçu {manual_payment['bank_reference']}",
        currency=manual_payment["currency"],
        customer_id=manual_payment["customer_id"],
        lines=[_bank_line(amount), _customer_line(manual_payment["customer_id"], -amount)],
    )


def record_refund(
    *, event_id, event_type: str, payment: dict, refund: dict, occurred_at: dt.datetime | None
) -> JournalEntry | None:
    """Bank journal: a refund owed on a credit note was sent to the bank (exported)."""
    if refund["status"] != "exported":
        return None
    customer_id = _customer_of_contract(payment["contract_id"])
    day = dt.date.fromisoformat(refund["status_on"]) if refund.get("status_on") else _recorded_day(occurred_at)
    return record_entry(
        event_id=event_id,
        event_type=event_type,
        journal=Journal.BANK,
        kind="refund",
        source_ref=refund["refund_id"],
        entry_date=day,
        piece_ref=refund["credit_note_number"],
        piece_date=day,
        label=f"Remboursement avoir {refund['credit_note_number']}",
        currency=refund["currency"],
        customer_id=customer_id,
        lines=[_customer_line(customer_id, refund["amount"]), _bank_line(-refund["amount"])],
    )
