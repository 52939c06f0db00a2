"""The back office links related records (issue 17): contract, invoices, collections,
operations and customer lead to one another, and every such link works."""

import datetime as dt
import re

import pytest
import time_machine

from boissipay.clock import PARIS
from invoicing import services as invoicing
from invoicing.models import Invoice
from payments.models import Payment
from tests import factories
from tests.clock import freeze_module_at
from tests.factories import settled

_today = freeze_module_at(dt.date(2026, 10, 1))
pytestmark = pytest.mark.django_db(transaction=True)


def related_links(client, page: str) -> list[str]:
    html = client.get(page).content.decode()
    row = re.search(r'<span class="related-records">(.*?)</span>', html, re.S)
    assert row, f"no related records on {page}"
    return re.findall(r'href="([^"]+)"', row.group(1))


def test_every_related_link_of_a_contract_an_invoice_and_a_payment_works(admin_client):
    contract = factories.contract()
    settled()
    factories.buy(contract, 10_000, dt.date(2026, 10, 12))
    with time_machine.travel(dt.datetime(2026, 11, 1, 2, tzinfo=PARIS), tick=False):
        invoicing.run_billing(period="2026-10")
    settled()
    invoice = Invoice.objects.get(contract_id=contract.pk)
    payment = Payment.objects.get(invoice_id=invoice.pk)

    pages = {
        f"/admin/contracts/contract/{contract.pk}/change/": 5,
        f"/admin/invoicing/invoice/{invoice.pk}/change/": 3,
        f"/admin/payments/payment/{payment.pk}/change/": 2,
    }
    for page, count in pages.items():
        links = related_links(admin_client, page)
        assert len(links) == count, (page, links)
        for link in links:
            answer = admin_client.get(link.replace("&amp;", "&"))
            assert answer.status_code == 200, (page, link, answer.status_code)
    invoices = admin_client.get(f"/admin/invoicing/invoice/?contract_id={contract.pk}").content.decode()
    assert invoice.number in invoices


def test_the_back_office_is_titled_boissipay_without_a_view_site_link(admin_client):
    html = admin_client.get("/admin/").content.decode()
    assert "<title>" in html and "Boissipay" in html
    assert "View site" not in html and "Voir le site" not in html
