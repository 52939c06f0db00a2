"""The debit date the customer is told is the one the bank is asked for: an invoice due
on a TARGET holiday is announced, collected and filed for the next business day."""

import datetime as dt
from pathlib import Path

import facturx
import pytest
from django.core import mail
from lxml import etree

from boissipay.sepa_calendar import debit_date, earliest_collection_date, submission_horizon
from invoicing import services as invoicing
from invoicing.models import Invoice
from payments import services as payments
from payments.models import Payment
from tests import factories
from tests.clock import freeze_module_at, frozen_at
from tests.factories import delivered, item
from tests.invoicing.test_billing_run import buy
from tests.payments.test_sepa_file import NS, sepa_settings  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db
_today = freeze_module_at(dt.date(2026, 11, 2))


@pytest.fixture
def due_on_new_years_day():
    """November's invoice, issued on 1 December 2026 with 31 days' terms: due on
    1 January 2027, a TARGET holiday (then a weekend: the debit is on Monday 4 January)."""
    contract = factories.billed_contract(payment_terms_days=31)
    buy(contract, dt.date(2026, 11, 10), item(12_000, vat_rate="20"))
    with frozen_at(dt.date(2026, 12, 1), 2), delivered():
        invoicing.run_billing(period="2026-11")
    invoice = Invoice.objects.get()
    assert invoice.due_date == dt.date(2027, 1, 1)
    return invoice


def test_the_invoice_its_e_mail_and_its_factur_x_announce_the_real_debit_date(due_on_new_years_day):
    [message] = mail.outbox
    assert "prélevé le 04/01/2027" in message.body
    _, pdf, _ = message.attachments[0]
    _, xml = facturx.get_xml_from_pdf(pdf, check_xsd=False)
    assert "04/01/2027" in xml.decode()
    assert "01/01/2027" not in message.body.split("prélevé le")[1]
    assert invoicing.invoice_document(due_on_new_years_day).debit_date == dt.date(2027, 1, 4)


def test_the_payment_is_due_on_the_announced_day(due_on_new_years_day):
    payment = Payment.objects.get(invoice_id=due_on_new_years_day.pk)
    assert (payment.original_due_date, payment.due_date) == (dt.date(2027, 1, 1), dt.date(2027, 1, 4))


def test_the_sepa_file_asks_the_bank_for_the_announced_day(due_on_new_years_day, sepa_settings):  # noqa: F811
    with frozen_at(dt.date(2026, 12, 30), 6):
        too_early = payments.submit_due_payments(gateway_name="sepa_file")
    assert too_early["due"] == 0  # the file goes one business day ahead, not earlier

    with frozen_at(dt.date(2026, 12, 31), 6), delivered():
        counts = payments.submit_due_payments(gateway_name="sepa_file")

    assert counts["submitted"] == 1
    [path] = sorted(Path(sepa_settings.PAYMENTS_SEPA_OUTPUT_DIR).glob("*.xml"))
    dates = etree.parse(str(path)).findall(".//p:ReqdColltnDt", NS)
    assert [element.text for element in dates] == ["2027-01-04"]


@pytest.mark.parametrize(
    ("due", "expected"),
    [
        (dt.date(2027, 1, 1), dt.date(2027, 1, 4)),  # New Year's Day, then a weekend
        (dt.date(2027, 3, 26), dt.date(2027, 3, 30)),  # Good Friday, then a weekend and Easter Monday
        (dt.date(2026, 12, 25), dt.date(2026, 12, 28)),  # Christmas, Boxing Day, then Sunday
        (dt.date(2028, 2, 29), dt.date(2028, 2, 29)),  # a leap day on a Tuesday
        (dt.date(2026, 12, 16), dt.date(2026, 12, 16)),  # an ordinary Wednesday
    ],
)
def test_the_debit_date_is_the_due_date_or_the_next_target_business_day(due, expected):
    assert debit_date(due) == expected


@pytest.mark.parametrize(
    ("today", "next_business_day"),
    [
        (dt.date(2026, 12, 31), dt.date(2027, 1, 4)),
        (dt.date(2026, 12, 15), dt.date(2026, 12, 16)),
        (dt.date(2027, 3, 25), dt.date(2027, 3, 30)),
    ],
)
def test_a_sepa_collection_takes_what_is_due_by_the_next_business_day_and_files_it_for_that_day(
    today, next_business_day
):
    assert submission_horizon(today, 1) == next_business_day
    assert submission_horizon(today, 0) == today  # a provider that needs no lead time: due today
    assert earliest_collection_date(next_business_day, today) == next_business_day
