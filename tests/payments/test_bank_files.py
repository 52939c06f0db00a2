"""The bank's own files drive the money loop (issue 15): pain.002 rejects before
settlement, camt.054 settlements, returns and refunds after it, each under its reason
code's policy; a return puts the money back at risk where it belongs."""

import datetime as dt
import io

import pytest
import time_machine
from django.core.management import CommandError, call_command

from billing.models import ContractAccount
from boissipay.clock import PARIS
from boissipay.models import OutboxEvent
from contracts.models import Contract
from invoicing import services as invoicing
from invoicing.models import Invoice
from payments import services as payments
from payments.bank_files import InvalidBankFile, parse
from payments.models import BankFile, BankFileEntry, Payment, PaymentLog
from tests import factories
from tests.clock import freeze_module_at
from tests.factories import buy, settled
from tests.payments.bank_files import Booking, Reject, notification, statement, status_report

# Every test here starts on Thursday 1 October 2026 (Paris), whatever the real date.
_today = freeze_module_at(dt.date(2026, 10, 1))

DECEMBER_1 = dt.date(2026, 12, 1)
pytestmark = pytest.mark.django_db(transaction=True)


def collected_in_december(*contracts_and_amounts) -> list[Payment]:
    """Each contract buys in October, is invoiced on 1 November and its debit goes to the
    bank on 1 December (a pain.008 file). Returns the submitted payments, in order."""
    for contract, amount in contracts_and_amounts:
        buy(contract, amount, dt.date(2026, 10, 12))
    with time_machine.travel(dt.datetime(2026, 11, 1, 2, tzinfo=PARIS), tick=False):
        invoicing.run_billing(period="2026-10")
    settled()
    with time_machine.travel(dt.datetime(2026, 11, 30, 9, tzinfo=PARIS), tick=False):
        payments.submit_due_payments(today=dt.date(2026, 11, 30))  # the file reaches the bank the day before
    settled()
    submitted = [Payment.objects.get(contract_id=contract.pk) for contract, _ in contracts_and_amounts]
    assert {payment.status for payment in submitted} == {"submitted"}
    return submitted


def import_file(tmp_path, content: bytes, name: str = "bank.xml", day: dt.date = dt.date(2026, 12, 10)) -> str:
    """Import as staff would on `day` (camt.054s come days after the debit; a pain.002
    the day after it)."""
    path = tmp_path / name
    path.write_bytes(content)
    out = io.StringIO()
    with time_machine.travel(dt.datetime(day.year, day.month, day.day, 8, tzinfo=PARIS), tick=False):
        call_command("import_bank_file", str(path), "--by", "compta@agence", stdout=out)
    settled()
    return out.getvalue()


def e2e(payment: Payment) -> str:
    return payments.end_to_end_id_of(payment)


def outstanding(contract) -> int:
    return ContractAccount.objects.get(pk=contract.pk).outstanding


def test_a_return_after_success_puts_the_amount_back_at_risk_and_suspends_for_a_closed_account(bank):
    contract = factories.contract(credit_limit=50_000)
    settled()
    [payment] = collected_in_december((contract, 50_000))
    assert buy(contract, 1).reason_code == "credit_limit_exceeded"

    # The bank credits the collection (camt.054): paid, the credit is free again.
    import_file(bank, notification([Booking("settled", e2e(payment), 50_000)], message_id="NTF-1"), "ntf1.xml")
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"
    assert Invoice.objects.get(pk=payment.invoice_id).status == "paid"
    assert outstanding(contract) == 0

    # Days later the debtor's bank returns it: the account is closed (AC04).
    returned = notification([Booking("returned", e2e(payment), 50_000, "AC04")], message_id="NTF-2")
    output = import_file(bank, returned, "ntf2.xml")

    payment.refresh_from_db()
    assert (payment.status, payment.reason_code) == ("returned", "AC04")
    assert "AC04 Compte clôturé / Closed account number" in payment.failure_reason
    assert Invoice.objects.get(pk=payment.invoice_id).status == "sent"  # unpaid again
    assert outstanding(contract) == 50_000  # back, through the events
    assert Contract.objects.get(pk=contract.pk).status == "suspended"
    assert "new direct-debit mandate" in Contract.objects.get(pk=contract.pk).status_reason
    assert buy(contract, 100).reason_code == "contract_not_active"
    event = OutboxEvent.objects.filter(event_type="payments.payment.returned").latest("position")
    assert (event.payload["reason_code"], event.payload["suspend"], event.payload["retry_on"]) == ("AC04", True, None)
    assert "Applied" in output and ": 1" in output
    assert set(BankFile.objects.values_list("kind", flat=True)) == {"camt.054"}


def test_a_return_for_insufficient_funds_is_presented_again_and_the_next_purchase_sees_the_restored_outstanding(bank):
    contract = factories.contract(credit_limit=60_000)
    settled()
    [payment] = collected_in_december((contract, 50_000))
    import_file(bank, notification([Booking("settled", e2e(payment), 50_000)], message_id="NTF-1"), "ntf1.xml")
    assert buy(contract, 55_000).status == "accepted"  # the credit freed by the payment
    assert outstanding(contract) == 55_000

    import_file(bank, notification([Booking("returned", e2e(payment), 50_000, "AM04")], message_id="NTF-2"), "r.xml")

    payment.refresh_from_db()
    assert payment.status == "pending"  # presented again...
    assert payment.due_date == dt.date(2026, 12, 13)  # ...3 days after the return was applied
    assert outstanding(contract) == 105_000  # the returned 50,000 counts again
    assert buy(contract, 1).reason_code == "credit_limit_exceeded"
    assert Contract.objects.get(pk=contract.pk).status == "active"
    assert OutboxEvent.objects.filter(event_type="payments.payment.returned", payload__retry_on="2026-12-13").exists()


def test_a_refund_at_the_debtors_request_suspends_and_tells_credit_control(bank):
    contract = factories.contract(credit_limit=50_000)
    settled()
    [payment] = collected_in_december((contract, 20_000))
    import_file(bank, notification([Booking("settled", e2e(payment), 20_000)], message_id="NTF-1"), "ntf1.xml")

    import_file(bank, notification([Booking("refunded", e2e(payment), 20_000, "MD06")], message_id="NTF-2"), "r.xml")

    payment.refresh_from_db()
    assert payment.status == "refunded"
    event = OutboxEvent.objects.filter(event_type="payments.payment.refunded").latest("position")
    assert (event.payload["credit_control"], event.payload["suspend"]) == (True, True)
    assert Contract.objects.get(pk=contract.pk).status == "suspended"
    assert outstanding(contract) == 20_000


def test_pain002_rejects_follow_their_codes_policy_retry_or_suspend_at_once(bank):
    short_of_money = factories.contract()
    no_mandate = factories.contract()
    settled()
    first, second = collected_in_december((short_of_money, 10_000), (no_mandate, 7_000))

    output = import_file(
        bank,
        status_report([Reject(e2e(first), "AM04", 10_000), Reject(e2e(second), "MD01", 7_000)], accepted=["x-1"]),
        day=dt.date(2026, 12, 2),
    )

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.reason_code, first.due_date) == ("pending", "AM04", dt.date(2026, 12, 4))
    assert (second.status, second.reason_code) == ("failed", "MD01")
    assert Contract.objects.get(pk=short_of_money.pk).status == "active"
    assert Contract.objects.get(pk=no_mandate.pk).status == "suspended"
    assert Invoice.objects.get(pk=second.invoice_id).status == "failed"
    assert "Applied" in output
    assert BankFile.objects.get().kind == "pain.002"


def test_the_same_file_twice_applies_nothing_and_the_same_entry_in_another_file_neither(bank):
    contract = factories.contract()
    settled()
    [payment] = collected_in_december((contract, 10_000))
    content = notification([Booking("settled", e2e(payment), 10_000)], message_id="NTF-1")
    import_file(bank, content, "a.xml")
    logs = PaymentLog.objects.count()

    again = import_file(bank, content, "a-again.xml")

    assert "already imported" in again
    assert BankFile.objects.count() == 1 and PaymentLog.objects.count() == logs
    returned = notification([Booking("returned", e2e(payment), 10_000, "AC06")], message_id="NTF-2")
    import_file(bank, returned, "b.xml")
    import_file(bank, returned.replace(b"<CreDtTm>2026-12-10T06:30:00", b"<CreDtTm>2026-12-10T06:31:00", 1), "b2.xml")
    assert [entry.outcome for entry in BankFileEntry.objects.order_by("id")] == ["applied", "applied", "already"]
    assert OutboxEvent.objects.filter(event_type="payments.payment.returned").count() == 1


def test_an_unknown_end_to_end_id_is_reported_and_kept_never_dropped(bank):
    output = import_file(bank, notification([Booking("returned", "0" * 32 + "-1", 4_200, "AC04")]), "u.xml")

    [entry] = BankFileEntry.objects.all()
    assert (entry.outcome, entry.end_to_end_id, entry.amount, entry.reason_code) == (
        "unknown",
        "0" * 32 + "-1",
        4_200,
        "AC04",
    )
    assert "! 00000000000000000000000000000000-1 (returned AC04): no payment has this end-to-end id" in output


def test_a_return_whose_amount_is_not_the_payments_is_refused_and_reported(bank):
    contract = factories.contract()
    settled()
    [payment] = collected_in_december((contract, 10_000))
    import_file(bank, notification([Booking("settled", e2e(payment), 10_000)], message_id="NTF-1"), "a.xml")

    output = import_file(bank, notification([Booking("returned", e2e(payment), 9_999, "AC04")], message_id="N2"))

    assert Payment.objects.get(pk=payment.pk).status == "succeeded"
    assert BankFileEntry.objects.get(bank_file__message_id="N2").outcome == "refused"
    assert "! " in output


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"not xml at all", "Not well-formed XML"),
        (b'<Document xmlns="urn:example"/>', "Not a bank file we read"),
        (
            b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"><Nope/></Document>',
            "does not follow its ISO 20022 schema",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08">&x;</Document>',
            "has no DOCTYPE",
        ),
    ],
)
def test_a_file_that_is_not_a_valid_bank_file_is_refused_whole(bank, content, said):
    with pytest.raises(InvalidBankFile, match=said):
        parse(content)
    path = bank / "bad.xml"
    path.write_bytes(content)
    with pytest.raises(CommandError, match="Nothing was applied"):
        call_command("import_bank_file", str(path), stdout=io.StringIO())
    assert BankFile.objects.count() == 0


def test_every_reason_code_a_bank_sends_has_a_policy_in_french_and_english():
    for code in ("AC01", "AC04", "AC06", "AG01", "AM04", "MD01", "MD06", "MS02", "MS03", "SL01", "RR04"):
        policy = payments.reason_policy(code)
        assert policy is not payments.UNKNOWN_REASON and policy.fr and policy.en, code
    assert payments.reason_policy("AM04").retry and not payments.reason_policy("AM04").suspend
    assert payments.reason_policy("MD01").suspend and payments.reason_policy("MD01").new_mandate
    assert payments.reason_policy("MD06").credit_control
    unknown = payments.reason_policy("ZZ99")
    assert (unknown.retry, unknown.suspend, unknown.credit_control) == (False, True, True)


def test_staff_import_a_bank_file_from_the_admin_and_see_its_entries(bank, admin_client):
    contract = factories.contract()
    settled()
    [payment] = collected_in_december((contract, 10_000))
    content = notification([Booking("settled", e2e(payment), 10_000)], message_id="NTF-ADMIN")
    upload = io.BytesIO(content)
    upload.name = "releve-camt054.xml"

    page = admin_client.post("/admin/payments/bankfile/upload/", {"file": upload})
    settled()

    assert page.status_code == 200
    assert "Applied: 1" in page.content.decode()
    bank_file = BankFile.objects.get(message_id="NTF-ADMIN")
    assert bank_file.imported_by == "admin" and bank_file.file_name == "releve-camt054.xml"
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"
    assert "Importer un fichier bancaire" in admin_client.get("/admin/payments/bankfile/").content.decode()
    detail = admin_client.get(f"/admin/payments/bankfile/{bank_file.pk}/change/").content.decode()
    assert e2e(payment) in detail


def test_a_file_the_schema_refuses_is_refused_in_the_admin_too(bank, admin_client):
    upload = io.BytesIO(b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.11"/>')
    upload.name = "bad.xml"
    page = admin_client.post("/admin/payments/bankfile/upload/", {"file": upload})
    assert "Rien n&#x27;a été appliqué" in page.content.decode()
    assert BankFile.objects.count() == 0


def test_the_payments_list_shows_the_reason_code_in_french_and_english(bank, admin_client):
    contract = factories.contract()
    settled()
    [payment] = collected_in_december((contract, 10_000))
    import_file(bank, status_report([Reject(e2e(payment), "MD01", 10_000)]), day=dt.date(2026, 12, 2))

    page = admin_client.get("/admin/payments/payment/?reason_code=MD01").content.decode()

    assert "MD01 Absence de mandat / No mandate" in page
    assert payment.invoice_number in page


def test_a_camt053_statement_settles_and_returns_like_a_notification(bank):
    contract = factories.contract(credit_limit=50_000)
    settled()
    [payment] = collected_in_december((contract, 30_000))

    import_file(bank, statement([Booking("settled", e2e(payment), 30_000)], message_id="STMT-1"), "s1.xml")
    assert (Payment.objects.get(pk=payment.pk).status, outstanding(contract)) == ("succeeded", 0)

    import_file(bank, statement([Booking("returned", e2e(payment), 30_000, "MD01")], message_id="STMT-2"), "s2.xml")
    assert (Payment.objects.get(pk=payment.pk).status, outstanding(contract)) == ("returned", 30_000)
    assert BankFile.objects.get(message_id="STMT-2").kind == "camt.053"
