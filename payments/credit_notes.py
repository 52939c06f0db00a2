"""What a credit note does to the money (issue 15, section 4), and refunds.

When invoicing issues a credit note (`invoicing.credit_note.issued`), the invoice's
collection changes according to where the money is:

- not collected, not at the bank (pending, failed, returned, refunded): the debit drops
  by the credit (`Payment.credited`). An invoice credited in full is not collected at
  all: its payment is cancelled.
- at the bank (submitted): the debit cannot change any more. The credit is a refund,
  held until the bank answers: owed when the debit is settled, void (and the next attempt
  lowered) when it fails.
- collected (succeeded): a refund is owed to the customer, paid by a SEPA credit
  transfer (`export_refunds`, a pain.001 file built and validated by sepaxml).

Money received otherwise (a transfer, a cheque, the customer's credit) that the credited
invoice no longer needs goes back to the customer's credit, which the next invoices use.
Each credit note is applied once (a marker in the payment's log); every write locks the
payment it changes."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from sepaxml import SepaTransfer

from boissipay.clock import business_today
from boissipay.errors import DomainError
from contracts.published import current_debtor_account
from payments.events import PaymentCredited, PaymentSucceeded, RefundChanged, RefundState
from payments.models import (
    ManualPayment,
    ManualPaymentMethod,
    Payment,
    PaymentItem,
    PaymentItemStatus,
    PaymentLog,
    PaymentStatus,
    Refund,
    RefundExport,
    RefundStatus,
)

logger = logging.getLogger(__name__)

NOT_COLLECTED = (PaymentStatus.PENDING, PaymentStatus.FAILED, PaymentStatus.RETURNED, PaymentStatus.REFUNDED)
TRANSFER_SCHEMA = "pain.001.001.03"  # SEPA credit transfer, what French banks take; sepaxml validates it


def apply_credit_note(*, credit_note: dict, invoice: dict, full: bool, issued_by: str) -> Payment | None:
    """Apply invoicing's credit note (its event's states) to the invoice's collection.
    Returns the payment, or None when there is none or the note was applied already."""
    from payments.manual_payments import _credit_changed
    from payments.services import _publish

    credit = -credit_note["total_incl_tax"]
    with transaction.atomic():
        payment = Payment.objects.select_for_update().filter(invoice_id=invoice["invoice_id"]).first()
        if payment is None:
            return None  # nothing was to be collected (a zero invoice)
        try:
            with transaction.atomic():
                PaymentLog.objects.create(
                    payment=payment,
                    kind="credit_note",
                    provider_event_id=f"credit_note:{credit_note['invoice_id']}",
                    summary=f"credit note {credit_note['number']} of {credit} by {issued_by}"
                    + (" (in full)" if full else ""),
                )
        except IntegrityError:
            return None  # applied already
        lowered, to_credit, refund = 0, 0, None
        if payment.status in NOT_COLLECTED:
            lowered = payment.to_collect if full else min(credit, payment.to_collect)
            to_credit = payment.allocated if full else credit - lowered
            payment.credited += lowered
        elif payment.status in (PaymentStatus.SUBMITTED, PaymentStatus.SUCCEEDED):
            at_bank = payment.to_collect
            owed = at_bank if full else min(credit, at_bank)
            to_credit = payment.allocated if full else credit - owed
            if owed:
                refund = Refund.objects.create(
                    payment=payment,
                    credit_note_id=credit_note["invoice_id"],
                    credit_note_number=credit_note["number"],
                    customer_id=payment.customer_id,
                    contract_id=payment.contract_id,
                    amount=owed,
                    currency=payment.currency,
                    status=RefundStatus.HELD if payment.status == PaymentStatus.SUBMITTED else RefundStatus.OWED,
                )
        # cancelled: nothing left to collect or to give back.
        if full and payment.status in (PaymentStatus.SUBMITTED, PaymentStatus.SUCCEEDED):
            # Collected or at the bank: its operations go on the corrected invoice's collection.
            PaymentItem.objects.filter(invoice_id=payment.invoice_id).update(
                invoice_id=None, status=PaymentItemStatus.PENDING, settled_at=None
            )
        payment.save()
        if to_credit > 0 and payment.customer_id is not None:
            ManualPayment.objects.create(
                customer_id=payment.customer_id,
                method=ManualPaymentMethod.CREDIT_NOTE,
                amount=to_credit,
                currency=payment.currency,
                received_on=business_today(),
                bank_reference=f"{credit_note['number']} ({payment.invoice_number})",
                unallocated=to_credit,
                recorded_by=issued_by[:150],
            )
        if payment.status in NOT_COLLECTED:
            close_when_nothing_to_collect(payment, cancel=full)
        _publish(
            PaymentCredited,
            payment,
            credit_note_id=credit_note["invoice_id"],
            credit_note_number=credit_note["number"],
            lowered=lowered,
            refund=refund_state(refund) if refund else None,
            to_credit=to_credit,
        )
        if to_credit > 0 and payment.customer_id is not None:
            _credit_changed(payment.customer_id, payment.currency)
    return payment


def close_when_nothing_to_collect(payment: Payment, *, cancel: bool = False) -> bool:
    """A payment not collected whose debit credit notes brought to nothing (the caller
    holds its lock): cancelled when nothing was paid (or its invoice was credited in
    full, `cancel`), else succeeded (paid by transfer, and credited). Returns whether it
    was closed."""
    from payments.services import _publish

    if payment.to_collect > 0 or payment.status not in NOT_COLLECTED:
        return False
    payment.failure_reason = ""
    if cancel or payment.allocated == 0:
        payment.status = PaymentStatus.CANCELLED
        payment.save()
        PaymentItem.objects.filter(invoice_id=payment.invoice_id).update(invoice_id=None)
        return True
    payment.status = PaymentStatus.SUCCEEDED
    payment.settled_at = timezone.now()
    payment.gateway = payment.gateway or "manual"
    payment.save()
    PaymentItem.objects.filter(invoice_id=payment.invoice_id).update(
        status=PaymentItemStatus.SETTLED, settled_at=payment.settled_at
    )
    _publish(PaymentSucceeded, payment)
    return True


def credited_in_full(payment: Payment) -> bool:
    """Whether the payment's invoice was credited in full (cancelled) by a credit note."""
    return payment.log.filter(kind="credit_note", summary__endswith="(in full)").exists()


def settle_held_refunds(payment: Payment, *, collected: bool, also_owed: bool = False) -> None:
    """The bank answered a debit that credit notes came in for while it was at the bank
    (the caller holds the payment's lock): its held refunds are owed now that it is
    collected; if it failed, they are void and the next attempt is lowered instead. A
    debit returned after it was collected voids the refunds still owed too (`also_owed`):
    nothing was kept to refund."""
    from payments.services import _publish

    statuses = (RefundStatus.HELD, RefundStatus.OWED) if also_owed else (RefundStatus.HELD,)
    held = list(payment.refunds.select_for_update().filter(status__in=statuses))
    for refund in held:
        refund.status = RefundStatus.OWED if collected else RefundStatus.VOID
        refund.save(update_fields=["status", "updated_at"])
        if not collected:
            payment.credited += min(refund.amount, payment.to_collect)
        _publish(RefundChanged, payment, refund=refund_state(refund))
    if held and not collected:
        payment.save(update_fields=["credited", "updated_at"])


def refund_state(refund: Refund) -> RefundState:
    return {
        "refund_id": str(refund.pk),
        "credit_note_id": str(refund.credit_note_id),
        "credit_note_number": refund.credit_note_number,
        "amount": refund.amount,
        "currency": refund.currency,
        "status": refund.status,
        "status_on": business_today().isoformat(),  # the day (Europe/Paris) it changed to this status
    }


def export_refunds(*, exported_by: str, execution_date: dt.date | None = None) -> RefundExport | None:
    """Every owed refund in euros, with an account to pay it to (the contract's current
    mandate), in one pain.001 credit-transfer file for the bank, kept as a RefundExport;
    the refunds are then `exported`. Returns None when none is owed. Refunds without an
    account stay owed (logged): staff pay them otherwise."""
    from payments.services import _publish

    if not exported_by.strip():
        raise DomainError("validation_error", "An export records who made it.", status_code=400)
    creditor = settings.PAYMENTS_CREDITOR
    with transaction.atomic():
        refunds = list(
            Refund.objects.select_for_update(skip_locked=True)
            .select_related("payment")
            .filter(status=RefundStatus.OWED, currency="EUR")
            .order_by("created_at")
        )
        document = SepaTransfer(
            {
                "name": creditor["name"],
                "IBAN": _compact(creditor["iban"]),
                "BIC": _compact(creditor["bic"]),
                "batch": True,
                "currency": "EUR",
            },
            schema=TRANSFER_SCHEMA,
            clean=True,
        )
        paid = []
        for refund in refunds:
            account = current_debtor_account(refund.contract_id)
            if account is None:
                logger.warning("refund %s: no active mandate, so no account to pay it to", refund.pk)
                continue
            transfer = {
                "name": account.debtor_name,
                "IBAN": _compact(account.iban),
                "amount": refund.amount,
                "execution_date": execution_date or business_today(),
                "description": f"Remboursement avoir {refund.credit_note_number} ({refund.payment.invoice_number})",
                "endtoend_id": refund.pk.hex[:35],
            }
            if account.bic.strip():
                transfer["BIC"] = _compact(account.bic)
            document.add_payment(transfer)
            paid.append(refund)
        if not paid:
            return None
        xml = document.export(validate=True, pretty_print=True).decode()
        export = RefundExport.objects.create(
            message_id=document.msg_id[:35],
            currency="EUR",
            count=len(paid),
            total=sum(refund.amount for refund in paid),
            xml=xml,
            exported_by=exported_by.strip()[:150],
        )
        for refund in paid:
            refund.status = RefundStatus.EXPORTED
            refund.export = export
            refund.save(update_fields=["status", "export", "updated_at"])
            PaymentLog.objects.create(
                payment=refund.payment,
                kind="refund",
                summary=f"refund {refund.amount} of credit note {refund.credit_note_number} exported in "
                f"{export.message_id} by {export.exported_by}",
            )
            _publish(RefundChanged, refund.payment, refund=refund_state(refund))
    return export


def _compact(value: str) -> str:
    return "".join(value.split()).upper()
