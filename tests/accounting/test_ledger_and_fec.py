"""The ledger and the FEC (issue 17, section 4): a quarter of invoices, a credit note,
collections, a return, a refund and a transfer come out as a FEC of 18 columns whose
every entry balances, and whose journals add up to the invoices and payments of the
period."""

import datetime as dt
import io
from collections import defaultdict
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from accounting import fec, services
from accounting.models import EntryLine, JournalEntry
from boissipay.clock import PARIS
from boissipay.models import OutboxEvent
from invoicing import services as invoicing
from invoicing.credit_notes import AmountLine, issue_credit_note
from invoicing.models import Invoice
from payments import services as payments
from payments.credit_notes import export_refunds
from payments.manual_payments import record_manual_payment
from payments.models import Payment
from tests import factories
from tests.clock import freeze_module_at
from tests.factories import item, settled
from tests.payments.bank_files import Booking, notification
from tests.payments.test_bank_files import e2e, import_file

_today = freeze_module_at(dt.date(2026, 10, 1))
pytestmark = pytest.mark.django_db(transaction=True)


def on(day: dt.date, hour: int = 10):
    return time_machine.travel(dt.datetime(day.year, day.month, day.day, hour, tzinfo=PARIS), tick=False)


def buy(contract, *items):
    from billing.services import submit_operation

    with on(dt.date(2026, 10, 12), 12):
        operation = submit_operation(request=factories.operation_request(contract.pk, *items))
    settled()
    assert operation.status == "accepted"


def read_fec(content: bytes) -> list[dict]:
    text = content.decode(fec.ENCODING)
    lines = text.split("\r\n")
    assert lines[-1] == ""
    header, *body = (line.split("\t") for line in lines[:-1])
    assert header == list(fec.COLUMNS)
    assert all(len(row) == 18 for row in body)
    return [dict(zip(fec.COLUMNS, row, strict=True)) for row in body]


def minor(text: str) -> int:
    return int(Decimal(text.replace(",", ".")) * 100)


def quarter(bank):
    """Two customers buy in October at 20 % and 10 %; invoiced on 1 November; debited
    on 1 December. A's debit is collected, then credited 40 € (a refund, paid out by
    transfer); B's debit is collected, then returned for insufficient funds, and B pays
    by transfer instead."""
    a = factories.contract(credit_limit=1_000_000, customer_obj=factories.customer(legal_name="CSE Aéro\u2019Club"))
    b = factories.contract(credit_limit=1_000_000)
    settled()
    buy(a, item(10_000, vat_rate="20", label="Billet Paris → Nice"), item(5_000, vat_rate="10"))
    buy(b, item(20_000, vat_rate="10"))
    with on(dt.date(2026, 11, 1), 2):
        invoicing.run_billing(period="2026-10")
    settled()
    with on(dt.date(2026, 11, 30), 9):
        payments.submit_due_payments(today=dt.date(2026, 11, 30))
    settled()
    pay_a, pay_b = (Payment.objects.get(contract_id=contract.pk) for contract in (a, b))
    bookings = [Booking("settled", e2e(pay_a), pay_a.amount), Booking("settled", e2e(pay_b), pay_b.amount)]
    import_file(bank, notification(bookings, message_id="N1"), "n1.xml", day=dt.date(2026, 12, 2))
    import_file(
        bank,
        notification([Booking("returned", e2e(pay_b), pay_b.amount, "AM04")], message_id="N2"),
        "n2.xml",
        day=dt.date(2026, 12, 8),
    )
    with on(dt.date(2026, 12, 10)):
        issue_credit_note(
            invoice_id=pay_a.invoice_id,
            amounts=[AmountLine("20", 3_334)],
            reason="Geste commercial",
            issued_by="compta@agence",
        )
    settled()
    with on(dt.date(2026, 12, 14)):
        export_refunds(exported_by="tresorerie@agence")
    settled()
    with on(dt.date(2026, 12, 15)):
        record_manual_payment(
            customer_id=b.customer_id,
            amount=pay_b.amount,
            currency="EUR",
            received_on=dt.date(2026, 12, 15),
            method="transfer",
            bank_reference="VIR-B-1",
            recorded_by="compta@agence",
        )
    settled()
    return a, b, pay_a, pay_b


def test_the_quarters_fec_has_18_columns_balanced_entries_and_adds_up_to_the_invoices_and_payments(bank, tmp_path):
    a, b, pay_a, _ = quarter(bank)
    out = io.StringIO()
    call_command("export_fec", "--from", "2026-10-01", "--to", "2026-12-31", "--output", str(tmp_path), stdout=out)
    path = tmp_path / "732829320FEC20261231.txt"
    rows = read_fec(path.read_bytes())

    entries = defaultdict(list)
    for row in rows:
        entries[(row["JournalCode"], row["EcritureNum"])].append(row)
        assert (minor(row["Debit"]) == 0) != (minor(row["Credit"]) == 0)  # one side per line
        for column in ("EcritureDate", "PieceDate", "ValidDate"):
            assert len(row[column]) == 8 and row[column].isdigit()
    for key, lines in entries.items():
        assert sum(minor(r["Debit"]) for r in lines) == sum(minor(r["Credit"]) for r in lines), key
    for journal in ("VE", "BQ"):  # numbered from 1 without gaps
        numbers = sorted(int(num.split("-")[1]) for code, num in entries if code == journal)
        assert numbers == list(range(1, len(numbers) + 1)), journal

    def total(journal, account, side):
        return sum(minor(r[side]) for r in rows if r["JournalCode"] == journal and r["CompteNum"] == account)

    invoices = Invoice.objects.filter(kind="invoice")
    notes = Invoice.objects.filter(kind="credit_note")
    assert total("VE", "411000", "Debit") == sum(i.total_incl_tax for i in invoices) == 17_500 + 22_000
    assert total("VE", "411000", "Credit") == -sum(n.total_incl_tax for n in notes) == 4_001
    assert total("VE", "706000", "Credit") - total("VE", "706000", "Debit") == 35_000 - 3_334
    assert total("VE", "445712", "Credit") - total("VE", "445712", "Debit") == 2_000 - 667
    assert total("VE", "445711", "Credit") == 500 + 2_000
    assert total("BQ", "512000", "Debit") == 17_500 + 22_000 + 22_000  # two collections, one transfer
    assert total("BQ", "512000", "Credit") == 22_000 + 4_001  # the return, the refund paid out
    customer_b = f"C{b.customer.siren}"
    b_lines = [r for r in rows if r["CompAuxNum"] == customer_b]
    assert sum(minor(r["Debit"]) - minor(r["Credit"]) for r in b_lines) == 0  # B owes nothing in the end
    assert {r["CompAuxLib"] for r in rows if r["CompAuxNum"] == f"C{a.customer.siren}"} == {"CSE Aéro'Club"}
    assert any("Billet" not in r["EcritureLib"] and r["PieceRef"] == pay_a.invoice_number for r in rows)
    debit = sum(minor(r["Debit"]) for r in rows)
    assert debit == sum(minor(r["Credit"]) for r in rows) == 131_002
    said = " ".join(out.getvalue().replace("\u202f", " ").replace("\xa0", " ").split())
    assert f"{len(entries)} entries, {len(rows)} lines, debit 1 310,02 € = credit 1 310,02 €" in said


def test_each_event_is_recorded_once_and_an_unbalanced_entry_is_never_written(bank):
    quarter(bank)
    count = JournalEntry.objects.count()
    from boissipay import bus
    from boissipay.bus import message_from_outbox

    for row in OutboxEvent.objects.filter(event_type__in=["invoicing.invoice.issued", "payments.payment.succeeded"]):
        message = message_from_outbox(row)
        for handler in bus.handlers_for(row.event_type, context="accounting"):
            assert bus.deliver(handler, message) is False  # the inbox: applied already
            handler.func(message)  # and even past the inbox: recorded once
    assert JournalEntry.objects.count() == count
    with pytest.raises(services.Unbalanced):
        services.record_entry(
            event_id="00000000-0000-0000-0000-000000000001",
            event_type="test",
            journal="VE",
            kind="invoice",
            source_ref="forged",
            entry_date=dt.date(2026, 12, 31),
            piece_ref="X",
            piece_date=dt.date(2026, 12, 31),
            label="forged",
            currency="EUR",
            lines=[services.Line("411000", "Clients", 100), services.Line("706000", "Ventes", -99)],
        )
    assert not JournalEntry.objects.filter(source_ref="forged").exists()
    assert not EntryLine.objects.filter(debit=0, credit=0).exists()


def test_staff_download_the_fec_of_a_period_from_the_ledgers_pages(bank):
    quarter(bank)
    staff = Client()
    staff.force_login(User.objects.create_superuser("comptable", password="x"))
    page = staff.get("/admin/accounting/journalentry/")
    assert page.status_code == 200 and "/admin/accounting/journalentry/fec/" in page.content.decode()
    answer = staff.post("/admin/accounting/journalentry/fec/", {"start": "2026-12-01", "end": "2026-12-31"})
    assert answer.status_code == 200
    assert answer["Content-Disposition"] == 'attachment; filename="732829320FEC20261231.txt"'
    rows = read_fec(answer.content)
    assert rows and {r["EcritureDate"][:6] for r in rows} == {"202612"}
    bad = staff.post("/admin/accounting/journalentry/fec/", {"start": "2026-12-31", "end": "2026-12-01"})
    assert bad.status_code == 200 and "après la date de fin" in bad.content.decode()
    selected = list(JournalEntry.objects.filter(journal="VE").values_list("pk", flat=True))
    action = staff.post(
        "/admin/accounting/journalentry/", {"action": "export_fec", "_selected_action": [str(pk) for pk in selected]}
    )
    assert action.status_code == 200 and read_fec(action.content)
    entry = JournalEntry.objects.first()
    assert staff.get(f"/admin/accounting/journalentry/{entry.pk}/change/").status_code == 200


def test_a_customers_statement_lists_its_movements_with_the_running_balance_as_a_pdf(bank):
    import pypdf

    from accounting import statements
    from accounting.models import LedgerCustomer

    _a, b, _pay_a, pay_b = quarter(bank)
    customer = LedgerCustomer.objects.get(pk=b.customer_id)
    data = statements.statement(customer, dt.date(2026, 10, 1), dt.date(2026, 12, 31))
    assert [(m.debit, m.credit) for m in data.movements] == [
        (pay_b.amount, 0),  # the invoice
        (0, pay_b.amount),  # collected
        (pay_b.amount, 0),  # returned
        (0, pay_b.amount),  # paid by transfer
    ]
    assert [m.balance for m in data.movements] == [22_000, 0, 22_000, 0] and data.closing == 0
    assert statements.statement(customer, dt.date(2026, 12, 5), dt.date(2026, 12, 31)).opening == 0

    staff = Client()
    staff.force_login(User.objects.create_superuser("comptable", password="x"))
    customer_page = staff.get(f"/admin/contracts/customer/{b.customer_id}/change/").content.decode()
    url = f"/admin/accounting/ledgercustomer/{b.customer_id}/statement/"
    assert url in customer_page
    answer = staff.get(f"{url}?start=2026-10-01&end=2026-12-31")
    assert answer.status_code == 200 and answer["Content-Type"] == "application/pdf"
    text = " ".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(answer.content)).pages)
    assert "Relevé de compte" in text and pay_b.invoice_number in text and "VIR-B-1" in text
    assert staff.get(f"{url}?start=2026-12-31&end=2026-10-01").status_code == 404
