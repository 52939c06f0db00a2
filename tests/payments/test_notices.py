"""Telling the customer (issue 15, section 5): a failed debit and its new date, the last
attempt, the suspension, a return; in French with the English version, text and HTML,
with the overdue statement (penalties, 40 EUR indemnity), sent once and logged."""

import datetime as dt

import pytest
from django.core import mail

from payments import notices
from payments.models import Payment, PaymentLog
from tests import factories
from tests.clock import freeze_module_at
from tests.factories import settled
from tests.payments.bank_files import Booking, Reject, notification, status_report
from tests.payments.test_bank_files import collected_in_december, e2e, import_file

_today = freeze_module_at(dt.date(2026, 10, 1))
pytestmark = pytest.mark.django_db(transaction=True)


def one_collected_debit(amount: int = 10_000):
    """(contract, payment): a contract whose October purchase's debit went to the bank on
    1 December; the mails sent so far are forgotten."""
    contract = factories.contract()
    settled()
    [payment] = collected_in_december((contract, amount))
    mail.outbox.clear()
    return contract, payment


def customer_mail(contract) -> list:
    return [message for message in mail.outbox if message.to == [contract.customer.billing_email]]


def test_a_failed_debit_tells_the_customer_its_new_date_in_french_and_english(bank):
    contract, payment = one_collected_debit()

    import_file(bank, status_report([Reject(e2e(payment), "AM04", 10_000)]), day=dt.date(2026, 12, 2))

    [message] = customer_mail(contract)
    assert message.subject == (
        f"Prélèvement non effectué — facture {payment.invoice_number} / "
        f"Direct debit not collected — invoice {payment.invoice_number}"
    )
    assert "Provision insuffisante" in message.body and "Insufficient funds" in message.body
    assert "présenté de nouveau le 4 décembre 2026" in message.body
    assert "presented again on 4 December 2026" in message.body
    assert message.body.index("Bonjour") < message.body.index("-- English version --") < message.body.index("Hello")
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html" and "<p>Bonjour" in html
    log = PaymentLog.objects.get(payment=payment, kind="notice")
    assert contract.customer.billing_email in log.summary


def test_the_retry_before_the_last_attempt_says_it_is_the_last_and_what_follows(bank, settings):
    settings.PAYMENTS_RETRY_DAYS = [3]
    contract, payment = one_collected_debit()

    import_file(bank, status_report([Reject(e2e(payment), "AM04", 10_000)]), day=dt.date(2026, 12, 2))

    [message] = customer_mail(contract)
    assert message.subject.startswith("Dernière présentation du prélèvement")
    assert "une dernière fois le 4 décembre 2026" in message.body
    assert "the contract will be suspended" in message.body


def test_a_suspension_for_non_payment_shows_the_overdue_statement_with_penalties_and_indemnity(bank, settings):
    settings.LATE_PAYMENT_ECB_RATE = "2.15"
    contract, payment = one_collected_debit()

    # No mandate (MD01): failed for good at once; the statement is made on 8 December.
    import_file(bank, status_report([Reject(e2e(payment), "MD01", 10_000)]), day=dt.date(2026, 12, 8))

    [message] = customer_mail(contract)
    assert message.subject == (
        f"Contrat {contract.reference} suspendu pour impayé / Contract {contract.reference} suspended for non-payment"
    )
    assert "Un nouveau mandat de prélèvement SEPA doit être signé" in message.body
    # 100.00 EUR, 7 days late at 12.15 %: 100 x 0.1215 x 7 / 365 = 0.233 -> 0,23 EUR; plus 40 EUR.
    assert (
        "(7 jours) : 100,00\xa0€ ; pénalités de retard 0,23\xa0€ ; indemnité forfaitaire de recouvrement 40,00\xa0€"
        in (message.body)
    )
    assert "Total dû : 140,23\xa0€" in message.body
    assert "Total due: €140.23" in message.body
    assert "(7 days): €100.00; late-payment penalties €0.23; fixed recovery indemnity €40.00" in message.body


def test_a_return_tells_the_customer_the_payment_is_due_again(bank):
    contract = factories.contract()
    settled()
    [payment] = collected_in_december((contract, 10_000))
    import_file(bank, notification([Booking("settled", e2e(payment), 10_000)], message_id="N1"), "n1.xml")
    mail.outbox.clear()

    import_file(bank, notification([Booking("returned", e2e(payment), 10_000, "AC04")], message_id="N2"), "n2.xml")

    [message] = customer_mail(contract)
    assert message.subject.startswith("Prélèvement retourné")
    assert "rejeté par votre banque (AC04 Compte clôturé)" in message.body
    assert "returned by your bank (AC04 Closed account number)" in message.body
    assert "Le contrat est suspendu" in message.body


def test_a_notice_is_sent_once_however_often_its_task_runs(bank):
    contract, payment = one_collected_debit()

    context = {"retry_on": "2026-12-04", "reason_fr": "x", "reason_en": "y", "last_attempt": False}
    assert notices.send(str(payment.pk), "debit_failed", "once", context) is True
    assert notices.send(str(payment.pk), "debit_failed", "once", context) is False
    assert len(customer_mail(contract)) == 1
    assert Payment.objects.get(pk=payment.pk).log.filter(kind="notice").count() == 1
