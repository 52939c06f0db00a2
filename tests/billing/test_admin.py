"""Billing's back-office pages: operations (read-only) and each contract's balance."""

import pytest

from tests import factories
from tests.factories import purchase, refund

pytestmark = pytest.mark.django_db

OPERATIONS = "/admin/billing/operation/"
ACCOUNTS = "/admin/billing/contractaccount/"


def listed(response) -> list:
    assert response.status_code == 200, response.content
    return list(response.context["cl"].result_list)


@pytest.fixture
def decided():
    contract = factories.billed_contract(reference="CTR-ADMIN", credit_limit=50_000)
    bought = purchase(contract.pk, 30_000, external_ref="BKG-ACCEPTED")
    purchase(contract.pk, 30_000, external_ref="BKG-TOO-MUCH")
    refund(contract.pk, bought.pk, 5_000, external_ref="BKG-REFUND")
    return contract


def test_the_operations_list_shows_its_filters_and_search_box(admin_client, decided):
    response = admin_client.get(OPERATIONS)
    assert len(listed(response)) == 3
    page = response.content.decode()
    for title in ("Par statut", "Par type", "Par code motif", "Par mois"):
        assert title in page
    assert 'id="searchbar"' in page
    assert "300,00" in page  # money shown in major units


def test_rejected_operations_are_filtered_by_reason_code(admin_client, decided):
    rows = listed(admin_client.get(OPERATIONS, {"reason_code": "credit_limit_exceeded"}))
    assert [row.external_ref for row in rows] == ["BKG-TOO-MUCH"]


def test_operations_are_filtered_by_type_and_status(admin_client, decided):
    assert [r.external_ref for r in listed(admin_client.get(OPERATIONS, {"type__exact": "refund"}))] == ["BKG-REFUND"]
    assert len(listed(admin_client.get(OPERATIONS, {"status__exact": "accepted"}))) == 2


def test_operations_are_filtered_by_month(admin_client, decided):
    month = listed(admin_client.get(OPERATIONS))[0].decided_at.strftime("%Y-%m")
    assert len(listed(admin_client.get(OPERATIONS, {"month": month}))) == 3
    assert listed(admin_client.get(OPERATIONS, {"month": "2020-01"})) == []


def test_operations_are_found_by_external_reference_and_contract(admin_client, decided):
    assert [r.external_ref for r in listed(admin_client.get(OPERATIONS, {"q": "BKG-ACCEPTED"}))] == ["BKG-ACCEPTED"]
    assert len(listed(admin_client.get(OPERATIONS, {"q": "CTR-ADMIN"}))) == 3


def test_operations_cannot_be_changed_or_deleted(admin_client, decided):
    operation = listed(admin_client.get(OPERATIONS))[0]
    page = admin_client.get(f"{OPERATIONS}{operation.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert admin_client.post(f"{OPERATIONS}{operation.pk}/delete/").status_code == 403


def test_the_contract_accounts_show_the_current_balance(admin_client, decided):
    response = admin_client.get(ACCOUNTS, {"q": "CTR-ADMIN"})
    [account] = listed(response)
    assert account.outstanding == 25_000
    page = response.content.decode()
    assert "250,00" in page and "500,00" in page  # outstanding and limit, in euros
    assert listed(admin_client.get(ACCOUNTS, {"credit": "over80"})) == []
    assert [a.reference for a in listed(admin_client.get(ACCOUNTS, {"credit": "none"}))] == []
    detail = admin_client.get(f"{ACCOUNTS}{account.pk}/change/")
    assert "250,00" in detail.content.decode()
