"""Staff roles (issue 17): read-only credit control, finance operator and administrator,
as Django groups created by a migration, each held to what it may and may not do."""

import datetime as dt

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from tests import factories
from tests.clock import freeze_module_at
from tests.factories import settled

_today = freeze_module_at(dt.date(2026, 10, 14))
pytestmark = pytest.mark.django_db

CREDIT_CONTROL, OPERATOR, ADMINISTRATOR = "Contrôle crédit (lecture)", "Opérateur finance", "Administrateur"


def staff(role: str) -> Client:
    user = User.objects.create_user(f"user-{role[:5]}", password="not-used-here", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def actions(client: Client, listing: str) -> list[str]:
    """The admin actions the list offers this user (whether the list has rows or not)."""
    from django.apps import apps
    from django.contrib import admin
    from django.test import RequestFactory

    app_label, model_name = listing.strip("/").split("/")[1:3]
    model_admin = admin.site._registry[apps.get_model(app_label, model_name)]
    request = RequestFactory().get(listing)
    request.user = client.user
    return list(model_admin.get_actions(request))


def test_the_roles_exist_after_migrating():
    assert set(Group.objects.values_list("name", flat=True)) >= {CREDIT_CONTROL, OPERATOR, ADMINISTRATOR}


def test_credit_control_reads_everything_and_changes_nothing():
    contract = factories.contract()
    settled()
    client = staff(CREDIT_CONTROL)
    for listing in (
        "/admin/contracts/contract/",
        "/admin/billing/operation/",
        "/admin/invoicing/invoice/",
        "/admin/payments/payment/",
        "/admin/boissipay/deadletter/",
    ):
        assert client.get(listing).status_code == 200, listing
    assert "suspend" not in actions(client, "/admin/contracts/contract/")
    assert "retry_now" not in actions(client, "/admin/payments/payment/")
    assert "replay" not in actions(client, "/admin/boissipay/deadletter/")
    suspended = client.post("/admin/contracts/contract/", {"action": "suspend", "_selected_action": [contract.pk]})
    assert suspended.status_code in (200, 302)
    contract.refresh_from_db()
    assert contract.status == "active"  # the action was not there to run
    assert client.get("/admin/payments/manualpayment/record/").status_code == 403
    assert client.get("/admin/payments/bankfile/upload/").status_code == 403
    assert client.get("/admin/boissipay/apikey/").status_code == 403
    assert client.get("/admin/auth/user/").status_code == 403


def test_a_finance_operator_does_the_days_work_but_manages_no_account_or_key():
    contract = factories.contract()
    settled()
    client = staff(OPERATOR)
    assert "suspend" in actions(client, "/admin/contracts/contract/")
    assert "retry_now" in actions(client, "/admin/payments/payment/")
    assert "replay" in actions(client, "/admin/boissipay/deadletter/")
    assert client.get("/admin/payments/manualpayment/record/").status_code == 200
    assert client.get("/admin/payments/bankfile/upload/").status_code == 200
    subscriber_page = client.get("/admin/contracts/subscriber/")
    assert subscriber_page.status_code == 200
    asked = client.post(
        "/admin/contracts/contract/", {"action": "suspend", "_selected_action": [contract.pk]}
    )  # asks the reason first
    assert asked.status_code == 200 and "reason" in asked.content.decode()
    assert client.get("/admin/boissipay/apikey/").status_code == 403
    assert client.get("/admin/auth/user/").status_code == 403


def test_an_administrator_manages_staff_accounts_and_api_keys():
    client = staff(ADMINISTRATOR)
    assert client.get("/admin/auth/user/").status_code == 200
    assert client.get("/admin/boissipay/apikey/").status_code == 200
    assert "revoke" in actions(client, "/admin/boissipay/apikey/")
    assert client.get("/admin/payments/manualpayment/record/").status_code == 200


def test_credit_control_reads_the_ledger_and_downloads_the_fec_but_writes_no_entry():
    client = staff(CREDIT_CONTROL)
    assert client.get("/admin/accounting/journalentry/").status_code == 200
    assert client.get("/admin/accounting/journalentry/fec/").status_code == 200
    assert not client.user.has_perm("accounting.change_journalentry")
    assert not client.user.has_perm("accounting.delete_journalentry")
