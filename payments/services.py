"""Commands of the payments context: collecting issued invoices by direct debit through
a gateway, applying the gateway's answers, retrying failures on a schedule.

A payment is marked submitted (in its own short transaction) before the gateway is
called, so an answer arriving at once finds it submitted; an answer is applied once,
whichever way it comes (webhook, status file, staff), thanks to the provider's event id."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from boissipay import outbox
from boissipay.clock import business_today
from boissipay.errors import DomainError, NotFound
from boissipay.sepa_calendar import debit_date, submission_horizon
from contracts.published import current_debtor_account
from payments import notices
from payments.events import (
    PaymentFailed,
    PaymentRefunded,
    PaymentReturned,
    PaymentScheduled,
    PaymentSubmitted,
    PaymentSucceeded,
)
from payments.gateways import Debit, gateway_named
from payments.models import (
    BankEntryOutcome,
    BankFile,
    BankFileEntry,
    Payment,
    PaymentItem,
    PaymentItemStatus,
    PaymentLog,
    PaymentStatus,
)

logger = logging.getLogger(__name__)


# --- what a reject or a return means (SEPA R-transactions) ----------------------------------------


@dataclass(frozen=True)
class ReasonPolicy:
    """What a bank's reason code means, in French and English, and what follows it: a new
    attempt (`retry`), or the contract suspended at once (`suspend`), asking the customer
    for a new mandate (`new_mandate`) or telling credit control (`credit_control`)."""

    fr: str
    en: str
    retry: bool
    suspend: bool
    new_mandate: bool = False
    credit_control: bool = False


# The one table of reason codes (ISO 20022 ExternalStatusReason1Code / ExternalReturnReason1Code
# as the EPC's SEPA Direct Debit rulebook uses them). A code not listed is taken at its
# most cautious: no retry, contract suspended, credit control told.
REASON_POLICIES: dict[str, ReasonPolicy] = {
    "AC01": ReasonPolicy("IBAN du débiteur incorrect", "Incorrect account number", False, True, new_mandate=True),
    "AC04": ReasonPolicy("Compte clôturé", "Closed account number", False, True, new_mandate=True),
    "AC06": ReasonPolicy("Compte bloqué", "Blocked account", False, True, new_mandate=True),
    "AC13": ReasonPolicy(
        "Compte d'un consommateur", "Debtor account is a consumer account", False, True, new_mandate=True
    ),
    "AG01": ReasonPolicy(
        "Opération interdite sur ce compte", "Transaction forbidden on this account", False, True, new_mandate=True
    ),
    "AG02": ReasonPolicy("Code opération invalide", "Invalid bank operation code", True, False),
    "AM04": ReasonPolicy("Provision insuffisante", "Insufficient funds", True, False),
    "AM05": ReasonPolicy("Opération en double", "Duplication", False, False, credit_control=True),
    "BE05": ReasonPolicy("Créancier non reconnu", "Unrecognised initiating party", False, False, credit_control=True),
    "CNOR": ReasonPolicy("Banque du créancier non joignable", "Creditor bank is not registered", True, False),
    "DNOR": ReasonPolicy(
        "Banque du débiteur non joignable", "Debtor bank is not registered", False, True, new_mandate=True
    ),
    "FF01": ReasonPolicy("Format de fichier invalide", "Invalid file format", True, False),
    "MD01": ReasonPolicy("Absence de mandat", "No mandate", False, True, new_mandate=True),
    "MD02": ReasonPolicy(
        "Mandat incomplet ou incorrect", "Missing or incorrect mandate information", False, True, new_mandate=True
    ),
    "MD06": ReasonPolicy(
        "Remboursement demandé par le débiteur", "Refund requested by the debtor", False, True, credit_control=True
    ),
    "MD07": ReasonPolicy("Débiteur décédé", "Debtor deceased", False, True, new_mandate=True, credit_control=True),
    "MS02": ReasonPolicy("Refus du débiteur", "Refused by the debtor", False, True, credit_control=True),
    "MS03": ReasonPolicy("Raison non communiquée par la banque", "Reason not specified by the bank", True, False),
    "RC01": ReasonPolicy("BIC incorrect", "Bank identifier incorrect", False, True, new_mandate=True),
    "RR01": ReasonPolicy(
        "Identification du débiteur manquante",
        "Missing debtor account or identification",
        False,
        True,
        new_mandate=True,
    ),
    "RR02": ReasonPolicy(
        "Nom ou adresse du débiteur manquant", "Missing debtor name or address", False, True, new_mandate=True
    ),
    "RR03": ReasonPolicy("Nom ou adresse du créancier manquant", "Missing creditor name or address", True, False),
    "RR04": ReasonPolicy("Raison réglementaire", "Regulatory reason", False, True, credit_control=True),
    "SL01": ReasonPolicy(
        "Service spécifique de la banque du débiteur",
        "Specific service of the debtor's bank",
        False,
        True,
        credit_control=True,
    ),
}
UNKNOWN_REASON = ReasonPolicy("Motif inconnu", "Unknown reason", False, True, credit_control=True)


def reason_policy(code: str) -> ReasonPolicy:
    return REASON_POLICIES.get(code.strip().upper(), UNKNOWN_REASON)


def reason_label(code: str) -> str:
    """`AM04 Provision insuffisante / Insufficient funds`: how a code is shown and logged."""
    policy = reason_policy(code)
    return f"{code} {policy.fr} / {policy.en}" if code else "no reason given"


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
        "allocated": payment.allocated,
        "credited": payment.credited,
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
        from payments.manual_payments import use_customer_credit

        use_customer_credit(payment)  # the customer's credit pays first
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
        Payment.objects.filter(status=PaymentStatus.PENDING, due_date__lte=horizon, on_hold="")
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
            .filter(pk=payment_id, status=PaymentStatus.PENDING, due_date__lte=horizon, on_hold="")
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
            amount=payment.to_collect,  # less what was paid otherwise (payments.manual_payments)
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
    final: bool | None = None,
    reason_code: str = "",
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
        from payments.credit_notes import close_when_nothing_to_collect, credited_in_full, settle_held_refunds

        if succeeded:
            payment.status = PaymentStatus.SUCCEEDED
            payment.settled_at = timezone.now()
            payment.failure_reason = ""
            payment.save()
            PaymentItem.objects.filter(invoice_id=payment.invoice_id).update(
                status=PaymentItemStatus.SETTLED, settled_at=payment.settled_at
            )
            _publish(PaymentSucceeded, payment)
            settle_held_refunds(payment, collected=True)
        else:
            payment.reason_code = reason_code[:4]
            settle_held_refunds(payment, collected=False)  # credit notes lower the next attempt
            if payment.to_collect == 0:  # ... to nothing: credited in full while at the bank
                payment.status = PaymentStatus.FAILED
                close_when_nothing_to_collect(payment, cancel=credited_in_full(payment))
                return payment
            _fail(payment, reason or "refused by the bank", final=final)
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
    """Why an answer's amount or currency is not the debit's ("" when it is): the invoice's
    amount less what was paid otherwise."""
    if (amount is None or amount == payment.to_collect) and (currency is None or currency == payment.currency):
        return ""
    return (
        f"The answer says {amount} {currency}; the debit is {payment.to_collect} {payment.currency}: nothing applied."
    )


def _fail(payment: Payment, reason: str, *, final: bool | None = None) -> None:
    """A failed attempt: retried on the schedule (PAYMENTS_RETRY_DAYS after the first
    due date), or failed for good after the last retry (or when `final`)."""
    retries = settings.PAYMENTS_RETRY_DAYS
    is_final = final if final is not None else payment.attempts > len(retries)
    payment.failure_reason = reason[:500]
    payment.status = PaymentStatus.FAILED
    policy = reason_policy(payment.reason_code) if payment.reason_code else None
    reasons = {"reason_fr": policy.fr if policy else reason, "reason_en": policy.en if policy else reason}
    if is_final:
        payment.save()
        _publish(PaymentFailed, payment, final=True, retry_on=None)
        notices.queue(
            payment,
            "contract_suspended",
            key=f"suspended:{payment.pk}:{payment.attempts}",
            new_mandate=bool(policy and policy.new_mandate),
            **reasons,
        )
        return
    retry_on = max(payment.original_due_date + dt.timedelta(days=retries[payment.attempts - 1]), business_today())
    payment.save()
    _publish(PaymentFailed, payment, final=False, retry_on=retry_on.isoformat())
    last = payment.attempts == len(retries)  # the next attempt is the last one
    notices.queue(
        payment,
        "last_attempt" if last else "debit_failed",
        key=f"failed:{payment.pk}:{payment.attempts}",
        retry_on=retry_on.isoformat(),
        last_attempt=last,
        **reasons,
    )
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


# --- after the debit: returns and refunds, and the bank's files ---------------------------------------


def payment_for_end_to_end_id(end_to_end_id: str, *, lock: bool = True) -> Payment | None:
    """The payment a SEPA end-to-end id names (`<payment id hex>-<attempt>`), locked
    unless the caller only needs to know it (the service it calls locks it)."""
    payment_hex = end_to_end_id.split("-", 1)[0]
    try:
        payment_id = uuid.UUID(hex=payment_hex)
    except ValueError:
        return None
    payments = Payment.objects.select_for_update() if lock else Payment.objects
    return payments.filter(pk=payment_id).first()


def record_return(
    *,
    end_to_end_id: str,
    reason_code: str,
    bank_reference: str,
    refunded: bool = False,
    amount: int | None = None,
    currency: str | None = None,
    source: str = "bank_file",
) -> tuple[str, Payment | None]:
    """A debit that came back after it succeeded: returned by the debtor's bank, or
    refunded at the debtor's request (`refunded`, MD06). The payment is returned (or
    refunded) and says so in its event. Billing puts the amount back in the outstanding
    balance and invoicing reopens the invoice, through that event. Then the reason
    code's policy applies: a new attempt, or the contract suspended.

    Returns (outcome, payment), outcome being one of BankEntryOutcome's values. Applied once
    per `bank_reference` whatever path brings it again."""
    with transaction.atomic():
        payment = payment_for_end_to_end_id(end_to_end_id)
        if payment is None:
            return BankEntryOutcome.UNKNOWN, None
        refusal = _mismatch(payment, amount, currency)
        if refusal:
            _log(payment, source, f"return refused: {refusal}")
            return BankEntryOutcome.REFUSED, payment
        label = reason_label(reason_code)
        what = "refunded to the debtor" if refunded else "returned"
        try:
            with transaction.atomic():
                _log(payment, source, f"{what}: {label}", {"end_to_end_id": end_to_end_id}, f"bank:{bank_reference}")
        except IntegrityError:
            return BankEntryOutcome.ALREADY_APPLIED, payment
        if payment.status != PaymentStatus.SUCCEEDED:
            _log(payment, source, f"ignored: the payment is {payment.status}, not collected")
            return BankEntryOutcome.IGNORED, payment
        policy = reason_policy(reason_code)
        payment.status = PaymentStatus.REFUNDED if refunded else PaymentStatus.RETURNED
        payment.reason_code = reason_code[:4]
        payment.failure_reason = f"{what}: {label}"[:500]
        payment.returned_at = timezone.now()
        payment.settled_at = None
        payment.save()
        PaymentItem.objects.filter(invoice_id=payment.invoice_id).update(
            status=PaymentItemStatus.PENDING, settled_at=None
        )
        from payments.credit_notes import close_when_nothing_to_collect, credited_in_full, settle_held_refunds

        # Refunds of credit notes not yet paid out are void: the money came back. They
        # lower what the next attempt takes.
        settle_held_refunds(payment, collected=False, also_owed=True)
        retry_on = _return_retry_date(payment) if policy.retry and payment.to_collect > 0 else None
        _publish(
            PaymentRefunded if refunded else PaymentReturned,
            payment,
            reason_code=reason_code,
            reason=label,
            suspend=policy.suspend or retry_on is None,
            new_mandate=policy.new_mandate,
            credit_control=policy.credit_control,
            retry_on=retry_on.isoformat() if retry_on else None,
            returned_on=business_today().isoformat(),
        )
        notices.queue(
            payment,
            "payment_returned",
            key=f"returned:{bank_reference}",
            refunded=refunded,
            reason_fr=f"{reason_code} {policy.fr}".strip(),
            reason_en=f"{reason_code} {policy.en}".strip(),
            retry_on=retry_on.isoformat() if retry_on else "",
            suspend=policy.suspend or retry_on is None,
            new_mandate=policy.new_mandate,
        )
        if retry_on is not None:
            payment.status = PaymentStatus.PENDING
            payment.due_date = retry_on
            payment.save()
            _publish(PaymentScheduled, payment)
        else:
            close_when_nothing_to_collect(payment, cancel=credited_in_full(payment))  # credited to nothing meanwhile
        return BankEntryOutcome.APPLIED, payment


def _return_retry_date(payment: Payment) -> dt.date | None:
    """When a returned debit is presented again: the first retry delay from today, while
    the payment has attempts left (PAYMENTS_RETRY_DAYS); None when it has none."""
    retries = settings.PAYMENTS_RETRY_DAYS
    if not retries or payment.attempts > len(retries):
        return None
    return business_today() + dt.timedelta(days=retries[0])


@dataclass
class BankFileReport:
    bank_file: BankFile
    already_imported: bool
    counts: dict[str, int]
    problems: list[str]


def import_bank_file(*, content: bytes, file_name: str, imported_by: str, progress=None) -> BankFileReport:
    """Apply a bank's pain.002 or camt.054 file (payments.bank_files): rejects fail the
    attempt under their code's policy, settlements succeed, returns and refunds reverse a
    success (`record_return`). The same file twice applies nothing (its SHA-256); every
    entry is kept with its outcome, an unknown end-to-end id included. Raises
    InvalidBankFile (nothing applied) when the file is not one we read or breaks its schema."""
    import hashlib

    from payments.bank_files import parse

    parsed = parse(content)
    digest = hashlib.sha256(content).hexdigest()
    with transaction.atomic():
        bank_file, created = BankFile.objects.get_or_create(
            sha256=digest,
            defaults={
                "kind": parsed.kind,
                "message_id": parsed.message_id[:35],
                "file_name": file_name[:255],
                "imported_by": imported_by[:150],
                "entries_count": len(parsed.entries),
            },
        )
    counts = dict.fromkeys(BankEntryOutcome.values, 0)
    problems: list[str] = []
    if not created:
        return BankFileReport(bank_file, True, counts, [f"already imported on {bank_file.imported_at:%Y-%m-%d %H:%M}"])
    for entry in parsed.entries:
        outcome, payment, detail = _apply_bank_entry(entry, source=f"{parsed.kind}:{bank_file.message_id}")
        BankFileEntry.objects.create(
            bank_file=bank_file,
            payment=payment,
            end_to_end_id=entry.end_to_end_id[:35],
            kind=entry.kind,
            reason_code=entry.reason_code[:4],
            amount=entry.amount,
            currency=entry.currency[:3],
            bank_reference=entry.bank_reference[:100],
            outcome=outcome,
            detail=detail[:500],
        )
        counts[outcome] += 1
        if outcome in (BankEntryOutcome.UNKNOWN, BankEntryOutcome.REFUSED):
            problems.append(f"{entry.end_to_end_id} ({entry.kind} {entry.reason_code}): {detail}")
        if progress:
            progress()
    return BankFileReport(bank_file, False, counts, problems)


def _apply_bank_entry(entry, *, source: str) -> tuple[str, Payment | None, str]:
    """(outcome, payment, detail) of one entry of a bank file."""
    if entry.kind in ("returned", "refunded"):
        outcome, payment = record_return(
            end_to_end_id=entry.end_to_end_id,
            reason_code=entry.reason_code,
            bank_reference=entry.bank_reference,
            refunded=entry.kind == "refunded",
            amount=entry.amount,
            currency=entry.currency or None,
            source="bank_file",
        )
        detail = reason_label(entry.reason_code) if outcome == BankEntryOutcome.APPLIED else outcome
        if outcome == BankEntryOutcome.UNKNOWN:
            detail = "no payment has this end-to-end id"
        return outcome, payment, detail
    payment = payment_for_end_to_end_id(entry.end_to_end_id, lock=False)  # record_outcome locks it
    if payment is None:
        return BankEntryOutcome.UNKNOWN, None, "no payment has this end-to-end id"
    succeeded = entry.kind == "settled"
    policy = reason_policy(entry.reason_code)
    try:
        applied = record_outcome(
            succeeded=succeeded,
            reason="" if succeeded else reason_label(entry.reason_code),
            payment_id=str(payment.pk),
            provider_event_id=f"bank:{entry.bank_reference}",
            end_to_end_id=entry.end_to_end_id,
            source="bank_file",
            amount=entry.amount,
            currency=entry.currency or None,
            final=None if succeeded or policy.retry else True,
            reason_code=entry.reason_code,
        )
    except DomainError as exc:
        return BankEntryOutcome.REFUSED, payment, exc.detail
    if applied is None:
        return BankEntryOutcome.IGNORED, payment, "already applied, or the payment was not awaiting it"
    return BankEntryOutcome.APPLIED, payment, "settled" if succeeded else reason_label(entry.reason_code)


def hold_for_einvoicing(*, invoice_id, status: str, reason: str, blocks: bool) -> bool:
    """The e-invoicing platform's status of the invoice: rejected or refused holds its
    debit for staff; approved releases a hold. Returns whether anything changed."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().filter(invoice_id=invoice_id).first()
        if payment is None:
            return False
        if blocks:
            held = f"e-invoicing: {status}" + (f" ({reason})" if reason else "")
            if payment.on_hold == held[:500]:
                return False
            payment.on_hold = held[:500]
        elif status == "approved" and payment.on_hold:
            payment.on_hold = ""
        else:
            return False
        payment.save(update_fields=["on_hold", "updated_at"])
        _log(
            payment, "einvoicing", (f"held: {payment.on_hold}" if payment.on_hold else "hold released: approved")[:500]
        )
        return True


def release_hold(*, payment_id, released_by: str) -> bool:
    """Staff settled the e-invoicing dispute: the debit goes ahead as planned."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().filter(pk=payment_id).exclude(on_hold="").first()
        if payment is None:
            return False
        _log(payment, "staff", f"hold released by {released_by} (was: {payment.on_hold})"[:500])
        payment.on_hold = ""
        payment.save(update_fields=["on_hold", "updated_at"])
        return True
