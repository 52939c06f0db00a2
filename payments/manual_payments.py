"""Money received outside the direct debit (issue 15, section 3): staff record a transfer
or a cheque, and it is allocated to the customer's invoices, oldest first or as chosen.

- A partial allocation leaves the invoice partly paid: the payment's `allocated` grows, its
  debit takes only the rest, and billing lowers the outstanding by what was paid
  (`payments.payment.allocated`).
- An invoice paid in full this way is paid: its debit, if not yet submitted, is never
  submitted (`payments.payment.succeeded`).
- What is left is the customer's credit (`payments.customer_credit.changed`), which the
  next invoices use when their collection is scheduled.

A debit already at the bank (submitted) is not allocated to: the bank's answer decides it.
Every write locks what it changes; a bank reference is recorded once."""

from __future__ import annotations

import datetime as dt
import uuid

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from boissipay import outbox
from boissipay.errors import DomainError
from payments.events import (
    CustomerCreditChanged,
    ManualPaymentRecorded,
    ManualPaymentState,
    PaymentAllocated,
    PaymentSucceeded,
)
from payments.models import (
    Allocation,
    ManualPayment,
    ManualPaymentMethod,
    Payment,
    PaymentItem,
    PaymentItemStatus,
    PaymentLog,
    PaymentStatus,
)

# Collections that money received otherwise may pay: awaiting their debit, or whose debit
# failed or came back. A submitted one is at the bank.
ALLOCATABLE = (PaymentStatus.PENDING, PaymentStatus.FAILED, PaymentStatus.RETURNED, PaymentStatus.REFUNDED)


def record_manual_payment(
    *,
    customer_id: uuid.UUID | str,
    amount: int,
    currency: str,
    received_on: dt.date,
    method: str,
    bank_reference: str,
    recorded_by: str,
    invoice_ids: list[str] | None = None,
) -> ManualPayment:
    """Record the money and allocate it: to `invoice_ids` in that order when given, else
    to the customer's unpaid invoices in the currency, oldest due date first. Raises
    DomainError: 400 for bad input, 409 `manual_payment_exists` for a reference recorded
    already, 422 `invoice_not_payable` for a chosen invoice that cannot take it."""
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise DomainError("validation_error", "The amount is a positive integer of minor units.", status_code=400)
    if method not in (ManualPaymentMethod.TRANSFER, ManualPaymentMethod.CHEQUE):
        raise DomainError("validation_error", "The method is transfer or cheque.", status_code=400)
    if not bank_reference.strip() or not recorded_by.strip():
        raise DomainError("validation_error", "Give the bank reference and who records it.", status_code=400)
    with transaction.atomic():
        try:
            with transaction.atomic():
                manual = ManualPayment.objects.create(
                    customer_id=customer_id,
                    method=method,
                    amount=amount,
                    currency=currency,
                    received_on=received_on,
                    bank_reference=bank_reference.strip(),
                    unallocated=amount,
                    recorded_by=recorded_by,
                )
        except IntegrityError as exc:
            raise DomainError(
                "manual_payment_exists", f"A payment with the reference {bank_reference!r} is recorded already."
            ) from exc
        allocations = _allocate(manual, _targets(manual, invoice_ids))
        outbox.record(
            ManualPaymentRecorded(
                customer_id=manual.customer_id, manual_payment=manual_payment_state(manual), allocations=allocations
            )
        )
        if manual.unallocated:
            _credit_changed(manual.customer_id, manual.currency)
    return manual


def use_customer_credit(payment: Payment) -> int:
    """A new collection first takes the customer's credit in its currency, oldest money
    first. Returns how much it took. Runs in the caller's transaction."""
    if payment.customer_id is None:
        return 0
    credits = ManualPayment.objects.select_for_update().filter(
        customer_id=payment.customer_id, currency=payment.currency, unallocated__gt=0
    )
    taken = 0
    for manual in credits.order_by("received_on", "created_at"):
        if payment.to_collect == 0:
            break
        taken += _allocate_one(manual, payment)
    if taken:
        _credit_changed(payment.customer_id, payment.currency)
    return taken


def customer_credit(customer_id, currency: str) -> int:
    return (
        ManualPayment.objects.filter(customer_id=customer_id, currency=currency).aggregate(total=Sum("unallocated"))[
            "total"
        ]
        or 0
    )


def _targets(manual: ManualPayment, invoice_ids: list[str] | None) -> list[Payment]:
    payments = Payment.objects.select_for_update().filter(customer_id=manual.customer_id, currency=manual.currency)
    if invoice_ids is None:
        return list(payments.filter(status__in=ALLOCATABLE).order_by("original_due_date", "invoice_number"))
    chosen = {str(p.invoice_id): p for p in payments.filter(invoice_id__in=invoice_ids)}
    targets = []
    for invoice_id in invoice_ids:
        payment = chosen.get(str(invoice_id))
        if payment is None or payment.status not in ALLOCATABLE:
            why = "is not this customer's in this currency" if payment is None else f"is {payment.status}"
            raise DomainError("invoice_not_payable", f"The invoice {invoice_id} {why}.", status_code=422)
        targets.append(payment)
    return targets


def _allocate(manual: ManualPayment, targets: list[Payment]) -> list[dict]:
    allocations = []
    for payment in targets:
        if manual.unallocated == 0:
            break
        amount = _allocate_one(manual, payment)
        if amount:
            allocations.append(
                {"invoice_id": str(payment.invoice_id), "invoice_number": payment.invoice_number, "amount": amount}
            )
    return allocations


def _allocate_one(manual: ManualPayment, payment: Payment) -> int:
    """Apply as much of `manual` to `payment` as both allow (both locked by the caller)."""
    from payments.services import _publish

    amount = min(manual.unallocated, payment.to_collect)
    if amount <= 0:
        return 0
    Allocation.objects.create(manual_payment=manual, payment=payment, amount=amount)
    manual.unallocated -= amount
    manual.save(update_fields=["unallocated"])
    payment.allocated += amount
    paid = payment.to_collect == 0
    PaymentLog.objects.create(
        payment=payment,
        kind="manual",
        summary=f"{manual.get_method_display().lower()} {manual.bank_reference} of {manual.received_on}: "
        f"{amount} allocated by {manual.recorded_by}" + (" (paid in full: no debit)" if paid else ""),
    )
    if paid:
        payment.status = PaymentStatus.SUCCEEDED
        payment.settled_at = timezone.now()
        payment.failure_reason = ""
        payment.gateway = payment.gateway or "manual"  # never went to a gateway
    payment.save()
    allocation = {
        "manual_payment_id": str(manual.pk),
        "method": manual.method,
        "bank_reference": manual.bank_reference,
        "amount": amount,
    }
    _publish(PaymentAllocated, payment, allocation=allocation)
    if paid:
        PaymentItem.objects.filter(invoice_id=payment.invoice_id).update(
            status=PaymentItemStatus.SETTLED, settled_at=payment.settled_at
        )
        _publish(PaymentSucceeded, payment)
    return amount


def _credit_changed(customer_id, currency: str) -> None:
    credit = customer_credit(customer_id, currency)
    outbox.record(CustomerCreditChanged(customer_id=customer_id, currency=currency, credit=credit))


def manual_payment_state(manual: ManualPayment) -> ManualPaymentState:
    return {
        "manual_payment_id": str(manual.pk),
        "customer_id": str(manual.customer_id),
        "method": manual.method,
        "amount": manual.amount,
        "currency": manual.currency,
        "received_on": manual.received_on.isoformat(),
        "bank_reference": manual.bank_reference,
        "unallocated": manual.unallocated,
        "recorded_by": manual.recorded_by,
    }
