"""CSV and XLSX exports of the back office's lists, as filtered (issue 17)."""

import csv
import datetime as dt
import io
import re

import openpyxl
import pytest
import time_machine

from boissipay.clock import PARIS
from invoicing import services as invoicing
from invoicing.models import Invoice
from tests import factories
from tests.clock import freeze_module_at
from tests.factories import settled

_today = freeze_module_at(dt.date(2026, 10, 1))
pytestmark = pytest.mark.django_db(transaction=True)


def export(client, listing: str, query: str, fmt: str) -> bytes:
    """What the list's Export button gives for the filtered list, in `fmt` (CSV or XLSX)."""
    page = client.get(f"{listing}export/?{query}").content.decode()
    choices = dict((label, value) for value, label in re.findall(r'<option value="(\d+)"[^>]*>([a-z]+)</option>', page))
    fields = {name: "on" for name in re.findall(r'<input type="checkbox" name="([^"]+)"[^>]*checked', page)}
    resource = re.search(r'name="resource"[^>]*>\s*<option value="(\d+)"', page)
    body = {"format": choices[fmt.lower()], **fields, **({"resource": resource.group(1)} if resource else {})}
    answer = client.post(f"{listing}export/?{query}", body)
    assert answer.status_code == 200, answer.content[:500]
    return answer.content


def test_the_invoices_export_is_the_filtered_list_in_csv_and_xlsx(admin_client):
    paid_contract, other = factories.contract(), factories.contract()
    settled()
    factories.buy(paid_contract, 12_345, dt.date(2026, 10, 12))
    factories.buy(other, 500, dt.date(2026, 10, 12))
    with time_machine.travel(dt.datetime(2026, 11, 1, 2, tzinfo=PARIS), tick=False):
        invoicing.run_billing(period="2026-10")
    settled()
    chosen = Invoice.objects.get(contract_id=paid_contract.pk)
    Invoice.objects.filter(pk=chosen.pk).update(status="paid")

    rows = list(
        csv.DictReader(
            io.StringIO(
                export(admin_client, "/admin/invoicing/invoice/", "status__exact=paid", "CSV").decode("utf-8-sig")
            )
        )
    )
    assert [(row["number"], row["total_incl_tax"], row["currency"]) for row in rows] == [
        (chosen.number, "123.45", "EUR")
    ]
    assert rows[0]["buyer"] == paid_contract.customer.legal_name

    book = openpyxl.load_workbook(io.BytesIO(export(admin_client, "/admin/invoicing/invoice/", "", "XLSX")))
    sheet = book.active
    header = [cell.value for cell in sheet[1]]
    assert "number" in header and "total_incl_tax" in header
    assert sheet.max_row == 1 + Invoice.objects.count()


def test_the_operations_payments_and_contracts_lists_export_too(admin_client):
    contract = factories.contract()
    settled()
    factories.buy(contract, 999, dt.date(2026, 10, 12))
    operations = export(admin_client, "/admin/billing/operation/", "", "CSV").decode("utf-8-sig")
    assert "9.99" in operations and contract.reference in operations
    contracts = export(admin_client, "/admin/contracts/contract/", "", "CSV").decode("utf-8-sig")
    assert contract.reference in contracts and contract.customer.siren in contracts
    assert export(admin_client, "/admin/payments/payment/", "", "CSV").decode("utf-8-sig").startswith("invoice_number")
