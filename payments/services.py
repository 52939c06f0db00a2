"""Commands of the payments context: collecting issued invoices by direct debit through
a gateway, applying the gateway's answers, retrying failures on a schedule.

A payment is marked submitted (in its own short transaction) before the gateway is
called, so an answer arriving at once finds it submitted; an answer is applied once,
whichever way it comes (webhook, status file, staff), thanks to the provider's event id."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from boissipay import outbox
from boissipay.clock import business_today
from boissipay.errors import DomainError, NotFound
from boissipay.sepa_calendar import debit_date, submission_horizon
from contracts.published import current_debtor_account
from payments.events import PaymentFailed, PaymentScheduled, PaymentSubmitted, PaymentSucceeded
from payments.gateways import Debit, gateway_named
from payments.models import Payment, PaymentItem, PaymentItemStatus, PaymentLog, PaymentStatus

logger = logging.getLogger(__name__)


# --- pending payment items (one per accepted operation) -------------------------------------------


def record_payment_items(*, operations: list[dict]) -> None:
    """Record the pending payment item of each accepted operation (billing's event
    payloads), in one statement; an operation already recorded changes nothing (the
    unique operation id makes it so). A refund's item is negative."""
    columns: list[list] = [[], [], [], [], [], []]
    for operation in operations:
        signed = -operation["amount"] if operation["type"] == "refund" else operation["amount"]
        values = (
            str(operation["operation_id"]),
            str(operation["contract_id"]),
            operation["type"],
            operation["external_ref"],
            operation["currency"],
            signed,
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    with connection.cursor() as cursor:
        cursor.execute(_RECORD_ITEMS, [PaymentItemStatus.PENDING, *columns])


_RECORD_ITEMS = """
INSERT INTO payments_paymentitem (id, operation_id, contract_id, operation_type, external_ref, currency, amount,
    status, created_at)
SELECT gen_random_uuid(), operation_id, contract_id, operation_type, external_ref, currency, amount, %s, now()
FROM unnest(%s::uuid[], %s::uuid[], %s::text[], %s::text[], %s::text[], %s::bigint[])
    AS item(operation_id, contract_id, operation_type, external_ref, currency, amount)
ON CONFLICT (operation_id) DO NOTHING
"""


def attach_items_to_invoice(*, invoice_id, operation_ids: list) -> int:
    """The invoice carrying these operations was sent: its collection will settle them."""
    return PaymentItem.objects.filter(operation_id__in=operation_ids, invoice_id__isnull=True).update(
        invoice_id=invoice_id
    )


# --- collections ------------------------------------------------------------------------------


def payment_state(payment: Payment) -> dict:
    return {
        "payment_id": str(payment.pk),
        "invoice_id": str(payment.invoice_id),
        "invoice_number": payment.invoice_number,
        "contract_id": str(payment.contract_id),
        "contract_reference": payment.contract_reference,
        "amount": payment.amount,
        "currency": payment.currency,
        "original_due_date": payment.original_due_date.isoformat(),
        "due_date": payment.due_date.isoformat(),
        "status": payment.status,
        "gateway": payment.gateway,
        "attempts": payment.attempts,
        "mandate_reference": payment.mandate_reference,
        "failure_reason": payment.failure_reason,
    }


def _publish(event_class, payment: Payment, **extra) -> None:
    outbox.record(event_class(contract_id=payment.contract_id, payment=payment_state(payment), **extra))


def schedule_collection(*, invoice: dict) -> Payment | None:
    """A collection payment for an issued invoice (invoicing's event payload), due on its
    due date. Credit notes and zero invoices are not collected. Idempotent per invoice."""
    if invoice["kind"] != "invoice" or invoice["total_incl_tax"] <= 0:
        return None
    due = dt.date.fromisoformat(invoice["due_date"])
    # Collected on the day the invoice announced: the due date, or the next TARGET
    # business day when the due date falls on a weekend or a TARGET holiday.
    collect_on = debit_date(due)
    with transaction.atomic():
        try:
            with transaction.atomic():
                payment = Payment.objects.create(
                    invoice_id=invoice["invoice_id"],
                    invoice_number=invoice["number"],
                    contract_id=invoice["contract_id"],
                    contract_reference=invoice["contract_reference"],
                    customer_id=invoice["customer_id"],
                    amount=invoice["total_incl_tax"],
                    currency=invoice["currency"],
                    original_due_date=due,
                    due_date=collect_on,
                    mandate_reference=invoice["mandate_reference"],
                )
        except IntegrityError:
            return Payment.objects.get(invoice_id=invoice["invoice_id"])
        _publish(PaymentScheduled, payment)
    return payment


def _sequence_type(mandate_reference: str, payment: Payment) -> str:
    """SEPA: the first debit under a mandate is FRST, the following ones RCUR."""
    earlier = (
        Payment.objects.filter(mandate_reference=mandate_reference, submitted_at__isnull=False)
        .exclude(pk=payment.pk)
        .exists()
    )
    return "RCUR" if earlier or payment.attempts > 1 else "FRST"


def submit_due_payments(
    *, today: dt.date | None = None, gateway_name: str | None = None, progress: Callable[[int, int], None] | None = None
) -> dict:
    """Hand every pending payment due by `today` (Europe/Paris) to the gateway, or by the
    gateway's lead time after today (a SEPA file must reach the bank one TARGET business
    day before the debit: it takes today what is due by the next business day).

    Returns counts: submitted, refused (the gateway did not take it: it stays pending and
    is tried again next time) and failed (no active mandate: a failed attempt)."""
    today = today or business_today()
    gateway = gateway_named(gateway_name)
    horizon = submission_horizon(today, gateway.lead_business_days)
    due = list(
        Payment.objects.filter(status=PaymentStatus.PENDING, due_date__lte=horizon)
        .order_by("due_date", "created_at")
        .values_list("pk", flat=True)
    )
    counts = {"due": len(due), "submitted": 0, "refused": 0, "failed": 0}
    debits: list[Debit] = []
    for payment_id in due:
        debit = _claim_for_submission(payment_id, gateway.name, today, horizon)
        if debit == "failed":
            counts["failed"] += 1
        elif debit is not None:
            debits.append(debit)
    for done, submission in enumerate(gateway.submit(debits) if debits else [], start=1):
        with transaction.atomic():
            payment = Payment.objects.select_for_update().get(pk=submission.payment_id)
            if submission.accepted:
                if not payment.provider_reference or payment.status == PaymentStatus.SUBMITTED:
                    payment.provider_reference = submission.provider_reference
                    payment.save(update_fields=["provider_reference", "updated_at"])
                _log(payment, "gateway_call", f"{gateway.name}: accepted as {submission.provider_reference}")
                counts["submitted"] += 1
            else:
                if payment.status == PaymentStatus.SUBMITTED:  # not taken: back to pending, same attempt
                    payment.status = PaymentStatus.PENDING
                    payment.attempts -= 1
                    payment.save(update_fields=["status", "attempts", "updated_at"])
                    _publish(PaymentScheduled, payment)
                _log(payment, "gateway_call", f"{gateway.name}: not taken: {submission.error}"[:500])
                counts["refused"] += 1
        if progress:
            progress(done, len(debits))
    return counts


def _claim_for_submission(payment_id, gateway_name: str, today: dt.date, horizon: dt.date | None = None):
    horizon = horizon or today
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update(skip_locked=True)
            .filter(pk=payment_id, status=PaymentStatus.PENDING, due_date__lte=horizon)
            .first()
        )
        if payment is None:
            return None  # taken by a concurrent collection, or changed meanwhile
        account = current_debtor_account(payment.contract_id)
        payment.attempts += 1
        payment.gateway = gateway_name
        payment.status = PaymentStatus.SUBMITTED
        payment.submitted_at = timezone.now()
        if account is None:
            payment.save()
            _fail(payment, "The contract has no active direct-debit mandate.")
            return "failed"
        payment.mandate_reference = account.mandate_reference
        payment.sequence_type = _sequence_type(account.mandate_reference, payment)
        payment.provider_reference = ""
        payment.save()
        _publish(PaymentSubmitted, payment)
        return Debit(
            payment_id=str(payment.pk),
            end_to_end_id=end_to_end_id_of(payment),
            amount=payment.amount,
            currency=payment.currency,
            collection_date=max(payment.due_date, today),
            debtor_name=account.debtor_name,
            iban=account.iban,
            bic=account.bic,
            mandate_reference=account.mandate_reference,
            mandate_signed_on=account.mandate_signed_on,
            sequence_type=payment.sequence_type,
            remittance_information=f"Facture {payment.invoice_number}",
        )


def end_to_end_id_of(payment: Payment) -> str:
    """The SEPA end-to-end id of the payment's current attempt (at most 35 characters)."""
    return f"{payment.pk.hex}-{payment.attempts}"[:35]


def _log(payment: Payment | None, kind: str, summary: str, payload: dict | None = None, event_id: str | None = None):
    PaymentLog.objects.create(
        payment=payment, kind=kind, summary=summary[:500], payload=payload or {}, provider_event_id=event_id
    )


def record_outcome(
    *,
    succeeded: bool,
    reason: str = "",
    payment_id: str | None = None,
    provider_reference: str | None = None,
    provider_event_id: str | None = None,
    end_to_end_id: str | None = None,
    source: str = "webhook",
    payload: dict | None = None,
    amount: int | None = None,
    currency: str | None = None,
) -> Payment | None:
    """Apply a gateway's answer for a submitted payment; returns it, or None when nothing
    was applied: the same provider event a second time, an answer for a payment not
    awaiting one, or about an earlier attempt (logged). Raises NotFound for an unknown
    payment, and DomainError 422 `amount_mismatch` when the answer's amount or currency
    (when given) is not the payment's: nothing is applied, the refusal is logged."""
    with transaction.atomic():
        payment = _locked_payment(payment_id, provider_reference)
        refusal = _mismatch(payment, amount, currency)
        if refusal:
            logger.warning("payment %s: %s (%s)", payment.pk, refusal, source)
            _log(payment, source, f"refused: {refusal}"[:500], payload)  # committed: staff see it
    if refusal:
        raise DomainError("amount_mismatch", refusal, status_code=422)
    with transaction.atomic():
        payment = _locked_payment(payment_id, provider_reference)
        try:
            with transaction.atomic():
                _log(
                    payment,
                    source,
                    f"{'succeeded' if succeeded else 'failed'}{': ' + reason if reason else ''}",
                    payload,
                    provider_event_id,
                )
        except IntegrityError:
            return None  # this provider event was already applied
        if payment.status != PaymentStatus.SUBMITTED:
            _log(payment, source, f"ignored: the payment is {payment.status}, not awaiting an answer")
            return None
        if end_to_end_id and end_to_end_id != end_to_end_id_of(payment):
            _log(payment, source, f"ignored: an answer about an earlier attempt ({end_to_end_id})")
            return None
        if succeeded:
            payment.status = PaymentStatus.SUCCEEDED
            payment.settled_at = timezone.now()
            payment.failure_reason = ""
            payment.save()
            PaymentItem.objects.filter(invoice_id=payment.invoice_id).update(
                status=PaymentItemStatus.SETTLED, settled_at=payment.settled_at
            )
            _publish(PaymentSucceeded, payment)
        else:
            _fail(payment, reason or "refused by the bank")
        return payment


def _locked_payment(payment_id: str | None, provider_reference: str | None) -> Payment:
    """The payment an answer names, locked. Raises NotFound."""
    lookup = {"pk": payment_id} if payment_id else {"provider_reference": provider_reference}
    if not any(lookup.values()):
        raise NotFound("The answer names no payment.", "payment_unknown")
    try:
        payment = Payment.objects.select_for_update().filter(**lookup).first()
    except (ValueError, DjangoValidationError):
        payment = None
    if payment is None:
        raise NotFound("No such payment.", "payment_unknown")
    return payment


def _mismatch(payment: Payment, amount: int | None, currency: str | None) -> str:
    """Why an answer's amount or currency is not the payment's ("" when it is)."""
    if (amount is None or amount == payment.amount) and (currency is None or currency == payment.currency):
        return ""
    return f"The answer says {amount} {currency}; the payment is {payment.amount} {payment.currency}: nothing applied."


def _fail(payment: Payment, reason: str, *, final: bool | None = None) -> None:
    """A failed attempt: retried on the schedule (PAYMENTS_RETRY_DAYS after the first
    due date), or failed for good after the last retry (or when `final`)."""
    retries = settings.PAYMENTS_RETRY_DAYS
    is_final = final if final is not None else payment.attempts > len(retries)
    payment.failure_reason = reason[:500]
    payment.status = PaymentStatus.FAILED
    if is_final:
        payment.save()
        _publish(PaymentFailed, payment, final=True, retry_on=None)
        return
    retry_on = max(payment.original_due_date + dt.timedelta(days=retries[payment.attempts - 1]), business_today())
    payment.save()
    _publish(PaymentFailed, payment, final=False, retry_on=retry_on.isoformat())
    payment.status = PaymentStatus.PENDING
    payment.due_date = retry_on
    payment.save()
    _publish(PaymentScheduled, payment)


# --- staff actions ----------------------------------------------------------------------------


def retry_now(*, payment_id, staff: str = "") -> Payment:
    """Bring a payment awaiting its retry forward to today (the next collection takes it)."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().filter(pk=payment_id).first()
        if payment is None:
            raise NotFound("No such payment.", "payment_unknown")
        if payment.status != PaymentStatus.PENDING:
            raise DomainError("payment_not_pending", f"The payment is {payment.status}; only a pending one is retried.")
        payment.due_date = business_today()
        payment.save(update_fields=["due_date", "updated_at"])
        _log(payment, "staff", f"retry now ({staff})")
        _publish(PaymentScheduled, payment)
    return payment


def mark_failed(*, payment_id, reason: str, staff: str = "") -> Payment:
    """Staff give up on a payment: failed for good (the contract will be suspended)."""
    if not reason.strip():
        raise DomainError("reason_required", "Say why the payment is failed.", status_code=400)
    with transaction.atomic():
        payment = Payment.objects.select_for_update().filter(pk=payment_id).first()
        if payment is None:
            raise NotFound("No such payment.", "payment_unknown")
        if payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.FAILED):
            raise DomainError("payment_settled", f"The payment is already {payment.status}.")
        _log(payment, "staff", f"marked failed ({staff}): {reason}")
        _fail(payment, reason.strip(), final=True)
    return payment
