"""Telling the customer (dunning): an e-mail when a debit fails and will be presented
again (the last attempt announced as such), when the contract is suspended for
non-payment, and when a return or a refund reverses a payment.

Each message is in French with its English version below, with a text and an HTML part,
and ends with the statement of the contract's overdue invoices: the late-payment
penalties (article L441-10: the ECB rate plus 10 points, LATE_PAYMENT_ECB_RATE) and the
40 EUR recovery indemnity per invoice (article D441-5), as the invoices' legal mentions
promise. They are queued after commit and sent by a Celery task with retries; each is
sent once (its key in the payment's log) and logged on the payment, where staff see it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from babel.dates import format_date
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string

from boissipay.clock import business_today
from boissipay.money import format_money
from payments.models import Payment, PaymentLog, PaymentStatus

SUBJECTS = {
    "debit_failed": ("Prélèvement non effectué — facture {number}", "Direct debit not collected — invoice {number}"),
    "last_attempt": (
        "Dernière présentation du prélèvement — facture {number}",
        "Last presentation of the direct debit — invoice {number}",
    ),
    "contract_suspended": ("Contrat {contract} suspendu pour impayé", "Contract {contract} suspended for non-payment"),
    "payment_returned": ("Prélèvement retourné — facture {number}", "Direct debit returned — invoice {number}"),
}
RECOVERY_INDEMNITY = 4_000  # 40 EUR per invoice paid late (article D441-5), in minor units
UNPAID = (PaymentStatus.PENDING, PaymentStatus.SUBMITTED, PaymentStatus.FAILED, PaymentStatus.RETURNED,
          PaymentStatus.REFUNDED)  # fmt: skip


def queue(payment: Payment, kind: str, *, key: str, **context) -> None:
    """Send the notice once the caller's transaction commits (never for a change rolled back)."""
    from payments.tasks import send_notice

    payment_id = str(payment.pk)
    transaction.on_commit(lambda: send_notice.delay(payment_id, kind, key, context))


@dataclass(frozen=True)
class OverdueLine:
    invoice_number: str
    due_on: dt.date
    days_late: int
    amount: int
    penalty: int
    currency: str


def overdue_statement(contract_id, today: dt.date) -> list[OverdueLine]:
    """The contract's invoices past their due date and not collected, with the penalties
    run so far: amount * (ECB rate + 10 points) * days late / 365, to the cent."""
    rate = (Decimal(settings.LATE_PAYMENT_ECB_RATE) + 10) / 100
    lines = []
    for payment in Payment.objects.filter(contract_id=contract_id, status__in=UNPAID, original_due_date__lt=today):
        days = (today - payment.original_due_date).days
        penalty = (Decimal(payment.amount) * rate * days / 365).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        lines.append(OverdueLine(payment.invoice_number, payment.original_due_date, days, payment.amount, int(penalty),
                                 payment.currency))  # fmt: skip
    return sorted(lines, key=lambda line: (line.due_on, line.invoice_number))


def send(payment_id: str, kind: str, key: str, context: dict) -> bool:
    """Render and send one notice; False when it was already sent (or nobody to send to)."""
    from contracts.published import billing_contact

    payment = Payment.objects.get(pk=payment_id)
    contact = billing_contact(payment.contract_id)
    if contact is None or not contact.email:
        PaymentLog.objects.create(payment=payment, kind="notice", summary=f"{kind} not sent: no billing e-mail")
        return False
    today = business_today()
    lines = overdue_statement(payment.contract_id, today)
    fr, en = SUBJECTS[kind]
    names = {"number": payment.invoice_number, "contract": payment.contract_reference}
    subject = f"{fr.format(**names)} / {en.format(**names)}"
    text = render_to_string(f"payments/notices/{_template(kind)}.txt", _context(payment, lines, today, context))
    html = render_to_string("payments/notices/notice.html", {"subject": subject, "text": text})
    with transaction.atomic():
        try:
            with transaction.atomic():
                PaymentLog.objects.create(
                    payment=payment,
                    kind="notice",
                    summary=f"{kind} e-mailed to {contact.email}: {subject}"[:500],
                    payload={"kind": kind, "to": contact.email, "overdue": len(lines)},
                    provider_event_id=f"notice:{key}"[:100],
                )
        except IntegrityError:
            return False  # sent already (a retried task, a repeated event)
        message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [contact.email])
        message.attach_alternative(html, "text/html")
        message.send()  # an error rolls the log back: the task's retry sends it again
    return True


def _template(kind: str) -> str:
    return "debit_failed" if kind == "last_attempt" else kind


def _context(payment: Payment, lines: list[OverdueLine], today: dt.date, extra: dict) -> dict:
    retry_on = dt.date.fromisoformat(extra["retry_on"]) if extra.get("retry_on") else None
    total = sum(line.amount + line.penalty + RECOVERY_INDEMNITY for line in lines)
    return {
        **extra,
        "payment": payment,
        "amount": format_money(payment.amount, payment.currency),
        "amount_en": format_money(payment.amount, payment.currency, locale="en_GB"),
        "seller": settings.SELLER,
        "retry_on_fr": format_date(retry_on, "d MMMM y", locale="fr_FR") if retry_on else "",
        "retry_on_en": format_date(retry_on, "d MMMM y", locale="en_GB") if retry_on else "",
        "today_fr": format_date(today, "d MMMM y", locale="fr_FR"),
        "today_en": format_date(today, "d MMMM y", locale="en_GB"),
        "ecb_rate": settings.LATE_PAYMENT_ECB_RATE,
        "overdue": [
            {
                "invoice_number": line.invoice_number,
                "due_fr": format_date(line.due_on, "d MMMM y", locale="fr_FR"),
                "due_en": format_date(line.due_on, "d MMMM y", locale="en_GB"),
                "days_late": line.days_late,
                "amount": format_money(line.amount, line.currency),
                "penalty": format_money(line.penalty, line.currency),
                "indemnity": format_money(RECOVERY_INDEMNITY, "EUR"),
                "amount_en": format_money(line.amount, line.currency, locale="en_GB"),
                "penalty_en": format_money(line.penalty, line.currency, locale="en_GB"),
                "indemnity_en": format_money(RECOVERY_INDEMNITY, "EUR", locale="en_GB"),
            }
            for line in lines
        ],
        "overdue_total": format_money(total, payment.currency),
        "overdue_total_en": format_money(total, payment.currency, locale="en_GB"),
    }
