"""The aged-receivables report (issue 17): what each customer owes, by how late."""

import datetime as dt

import pytest
import time_machine

from boissipay.clock import PARIS
from invoicing import selectors
from invoicing.models import Invoice
from tests import factories
from tests.clock import freeze_module_at
from tests.factories import settled

_today = freeze_module_at(dt.date(2026, 10, 1))
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("late_days", "bucket"),
    [(-3, "not_due"), (0, "not_due"), (1, "1_30"), (30, "1_30"), (31, "31_60"), (61, "61_90"), (91, "over_90")],
)
def test_an_amount_falls_in_the_bucket_of_its_days_past_due(late_days, bucket):
    due = dt.date(2026, 12, 1)
    assert selectors.age_bucket(due, due + dt.timedelta(days=late_days)) == bucket


def test_each_customer_owes_what_its_invoices_ask_less_what_was_paid_or_credited(admin_client):
    early, late = factories.contract(), factories.contract()
    settled()
    factories.buy(early, 10_000, dt.date(2026, 10, 12))
    factories.buy(late, 20_000, dt.date(2026, 10, 12))
    with time_machine.travel(dt.datetime(2026, 11, 1, 2, tzinfo=PARIS), tick=False):
        from invoicing import services as invoicing

        invoicing.run_billing(period="2026-10")
    settled()
    # Due on 1 December: the early customer's was partly paid by transfer and credited.
    Invoice.objects.filter(contract_id=early.pk).update(paid_outside=3_000, credited=1_000)

    rows = {row["customer"]: row for row in selectors.aged_receivables(dt.date(2027, 1, 15))}  # 45 days late
    assert rows[early.customer.legal_name]["31_60"] == 6_000
    assert rows[late.customer.legal_name]["31_60"] == 20_000
    assert rows[late.customer.legal_name]["not_due"] == 0 and rows[late.customer.legal_name]["total"] == 20_000
    Invoice.objects.filter(contract_id=late.pk).update(status="paid")
    assert late.customer.legal_name not in {row["customer"] for row in selectors.aged_receivables(dt.date(2027, 1, 15))}

    page = admin_client.get("/admin/invoicing/invoice/aged-receivables/")
    text = page.content.decode()
    assert page.status_code == 200 and early.customer.legal_name in text and "60,00" in text
    assert "Balance âgée" in admin_client.get("/admin/invoicing/invoice/").content.decode()
