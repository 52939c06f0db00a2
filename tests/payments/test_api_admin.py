"""The payments API (held to openapi/payments.yaml), admin, command and daily schedule."""

import datetime as dt
import io
import re
import uuid

import pytest
from django.core.management import call_command

from contracts.models import Contract
from payments.models import Payment
from tests import factories
from tests.clock import frozen_at

pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 12, 15)  # the day staff bring a retry forward (a Tuesday in Paris)


def a_payment(contract=None, **overrides) -> Payment:
    contract = contract or factories.billed_contract()
    fields = {
        "invoice_id": uuid.uuid4(),
        "invoice_number": f"BP-2026-{uuid.uuid4().int % 10**6:06d}",
        "contract_id": contract.pk,
        "contract_reference": contract.reference,
        "customer_id": contract.customer_id,
        "amount": 12_000,
        "currency": "EUR",
        "original_due_date": dt.date(2026, 12, 1),
        "due_date": dt.date(2026, 12, 1),
    }
    fields.update(overrides)
    return Payment.objects.create(**fields)


def test_payments_are_listed_filtered_and_read(api):
    pending, succeeded = a_payment(), a_payment(status="succeeded")
    assert api.get("/api/v1/payments").json()["count"] == 2
    listed = api.get("/api/v1/payments?status=succeeded").json()["results"]
    assert [p["id"] for p in listed] == [str(succeeded.pk)]
    by_invoice = api.get(f"/api/v1/payments?invoice={pending.invoice_id}").json()["results"]
    assert [p["invoice_number"] for p in by_invoice] == [pending.invoice_number]
    assert api.get(f"/api/v1/payments/{pending.pk}").json()["status"] == "pending"
    assert api.get("/api/v1/payments?stauts=failed").status_code == 400  # a misspelt filter is an error


def test_a_customer_restricted_key_sees_only_its_payments(make_client):
    mine, theirs = a_payment(), a_payment()
    client = make_client("payments:read", customer_id=mine.customer_id)
    assert [p["id"] for p in client.get("/api/v1/payments").json()["results"]] == [str(mine.pk)]
    assert client.get(f"/api/v1/payments/{theirs.pk}").status_code == 404


def test_reading_payments_needs_the_scope(make_client):
    assert make_client("invoices:read").get("/api/v1/payments").status_code == 403


def test_staff_bring_a_retry_forward_from_the_admin(admin_client):
    payment = a_payment(due_date=dt.date(2030, 1, 4), attempts=1, failure_reason="AM04")
    with frozen_at(TODAY):
        response = admin_client.post(
            "/admin/payments/payment/", {"action": "retry_now", "_selected_action": [str(payment.pk)]}, follow=True
        )
    assert response.status_code == 200
    payment.refresh_from_db()
    assert payment.due_date <= TODAY + dt.timedelta(days=1)
    assert payment.log.filter(kind="staff").exists()


def test_staff_mark_a_payment_failed_with_a_reason_which_suspends_the_contract(admin_client):
    contract = factories.billed_contract()
    payment = a_payment(contract)
    url = "/admin/payments/payment/"
    form = admin_client.post(url, {"action": "mark_failed", "_selected_action": [str(payment.pk)]})
    assert b'name="reason"' in form.content
    with factories.delivered():
        admin_client.post(
            url, {"action": "mark_failed", "_selected_action": [str(payment.pk)], "reason": "Customer insolvent"}
        )
    payment.refresh_from_db()
    assert (payment.status, payment.failure_reason) == ("failed", "Customer insolvent")
    assert Contract.objects.get(pk=contract.pk).status == "suspended"


def test_the_payments_list_has_filters_and_search(admin_client):
    payment = a_payment()
    page = admin_client.get("/admin/payments/payment/").content.decode()
    for title in ("Par statut", "Par prestataire", "Par date d&#x27;échéance"):
        assert title in page
    found = admin_client.get("/admin/payments/payment/", {"q": payment.invoice_number})
    assert found.context["cl"].result_count == 1
    detail = admin_client.get(f"/admin/payments/payment/{payment.pk}/change/")
    assert detail.status_code == 200


def test_collect_payments_hands_the_due_ones_to_the_gateway(settings, tmp_path):
    settings.PAYMENTS_SEPA_OUTPUT_DIR = tmp_path
    due, later = a_payment(), a_payment(due_date=dt.date(2026, 12, 20))
    out = io.StringIO()
    call_command("collect_payments", "--date", "2026-12-01", "--gateway", "sepa_file", stdout=out)
    assert "submitted: 1" in out.getvalue()
    due.refresh_from_db()
    later.refresh_from_db()
    assert (due.status, due.gateway, due.sequence_type) == ("submitted", "sepa_file", "FRST")
    assert later.status == "pending"
    assert len(list(tmp_path.glob("pain008-*.xml"))) == 1


def test_beat_collects_due_payments_every_morning(db):
    from django_celery_beat.models import PeriodicTask

    from config.celery import app

    task = PeriodicTask.objects.get(name="collect due payments")
    assert (task.crontab.minute, task.crontab.hour, str(task.crontab.timezone)) == ("0", "6", "Europe/Paris")
    app.loader.import_default_modules()
    assert task.task in app.tasks


def test_a_payments_page_offers_its_actions_each_confirmed_then_run_on_that_payment_only(admin_client):
    payment, other = a_payment(due_date=dt.date(2030, 1, 4), attempts=1), a_payment(due_date=dt.date(2030, 1, 4))
    page = admin_client.get(f"/admin/payments/payment/{payment.pk}/change/").content.decode()
    act = f"/admin/payments/payment/{payment.pk}/act/"
    assert {"retry_now", "mark_failed", "release_hold"} <= set(re.findall(rf'href="{act}(\w+)/"', page))

    # Asked first; a GET changes nothing.
    asked = admin_client.get(f"{act}retry_now/")
    assert asked.status_code == 200 and "Confirmer" in asked.content.decode()
    payment.refresh_from_db()
    assert payment.due_date == dt.date(2030, 1, 4)

    # Confirmed, with another payment slipped into the post: only this page's is retried.
    with frozen_at(TODAY):
        done = admin_client.post(f"{act}retry_now/", {"apply": "1", "_selected_action": [str(other.pk)]})
    assert done.status_code == 302 and done["Location"] == f"/admin/payments/payment/{payment.pk}/change/"
    payment.refresh_from_db()
    other.refresh_from_db()
    assert payment.due_date <= TODAY + dt.timedelta(days=1)
    assert other.due_date == dt.date(2030, 1, 4)

    # An action with a reason shows its own form straight away, posted back to the same address.
    form = admin_client.get(f"{act}mark_failed/")
    assert form.status_code == 200 and b'name="reason"' in form.content
    assert admin_client.post(f"{act}mark_failed/", {"apply": "1"}).status_code == 200  # no reason: asked again
    with factories.delivered():
        admin_client.post(f"{act}mark_failed/", {"apply": "1", "reason": "Client en liquidation"})
    payment.refresh_from_db()
    assert (payment.status, payment.failure_reason) == ("failed", "Client en liquidation")
    assert admin_client.get(f"{act}no_such_action/").status_code == 403


def test_read_only_staff_see_no_action_menu_and_are_refused(client):
    from django.contrib.auth.models import Group, User

    payment = a_payment(due_date=dt.date(2030, 1, 4), attempts=1)
    user = User.objects.create_user("lecteur", password="not-used-here", is_staff=True)
    user.groups.add(Group.objects.get(name="Contrôle crédit (lecture)"))
    client.force_login(user)
    page = client.get(f"/admin/payments/payment/{payment.pk}/change/").content.decode()
    assert "/admin/payments/payment/" in page and "/act/" not in page
    assert client.post(f"/admin/payments/payment/{payment.pk}/act/retry_now/", {"apply": "1"}).status_code == 403
    payment.refresh_from_db()
    assert payment.due_date == dt.date(2030, 1, 4)
