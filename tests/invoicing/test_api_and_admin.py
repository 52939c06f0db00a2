"""The invoicing API (held to openapi/invoicing.yaml) and its back-office pages."""

import datetime as dt
import uuid

import pytest
from django.core import mail

from invoicing.models import BillingRun, Invoice
from tests import factories
from tests.clock import freeze_module_at
from tests.conftest import post_json
from tests.factories import delivered, item
from tests.invoicing.test_billing_run import buy, on, run

# Every test here starts on one frozen "today" (Paris, ticking), whatever the real date:
# the contracts its factories make are valid on the dates the tests travel to.
_today = freeze_module_at(dt.date(2026, 11, 10))  # admin sessions last two weeks: near the days visited

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoiced():
    contract = factories.billed_contract(reference="CTR-INV")
    buy(contract, dt.date(2026, 10, 3), item(10_000, vat_rate="20"), purchase_order="PO-9")
    run()
    return contract


# --- API -------------------------------------------------------------------------------------


def test_invoices_are_listed_and_filtered(api, invoiced):
    other = factories.billed_contract()
    buy(other, dt.date(2026, 10, 4))
    run()
    assert api.get("/api/v1/invoices").json()["count"] == 2
    mine = api.get(f"/api/v1/invoices?contract={invoiced.pk}&period=2026-10&status=issued").json()
    assert [i["contract_reference"] for i in mine["results"]] == ["CTR-INV"]
    assert api.get("/api/v1/invoices?period=2026-09").json()["count"] == 0
    assert api.get("/api/v1/invoices?period=2026-13").status_code == 400


def test_an_invoice_shows_its_lines(api, invoiced):
    invoice = Invoice.objects.get()
    body = api.get(f"/api/v1/invoices/{invoice.pk}").json()
    assert (body["number"], body["total_incl_tax"], body["period"]) == ("BP-2026-000001", 12_000, "2026-10")
    [line] = body["lines"]
    assert (line["purchase_order"], line["amount"], line["date"]) == ("PO-9", 12_000, "2026-10-03")


def test_the_pdf_is_served(api, invoiced):
    invoice = Invoice.objects.get()
    response = api.get(f"/api/v1/invoices/{invoice.pk}/pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")


def test_a_customer_restricted_key_sees_only_its_invoices(make_client, invoiced):
    other = factories.billed_contract()
    buy(other, dt.date(2026, 10, 4))
    run()
    client = make_client("invoices:read", customer_id=invoiced.customer_id)
    assert [i["contract_reference"] for i in client.get("/api/v1/invoices").json()["results"]] == ["CTR-INV"]
    foreign = Invoice.objects.get(contract_id=other.pk)
    assert client.get(f"/api/v1/invoices/{foreign.pk}").status_code == 404
    assert client.get(f"/api/v1/invoices/{foreign.pk}/pdf").status_code == 404


def test_reading_invoices_needs_the_scope(make_client, invoiced):
    assert make_client("operations:read").get("/api/v1/invoices").status_code == 403


def test_staff_start_a_billing_run_and_follow_it(make_client):
    contract = factories.billed_contract()
    buy(contract, dt.date(2026, 10, 3))
    staff = make_client("billing-runs:write")
    with on(dt.date(2026, 11, 2)), delivered():
        response = post_json(staff, "/api/v1/billing-runs", {"period": "2026-10"}, HTTP_IDEMPOTENCY_KEY="run-1")
    assert response.status_code == 202
    body = response.json()
    assert (body["status"], body["trigger"]) == ("queued", "api")
    followed = staff.get(f"/api/v1/billing-runs/{body['id']}").json()
    assert (followed["status"], followed["invoices_count"]) == ("completed", 1)  # the task ran (eagerly here)
    assert len(mail.outbox) == 1


def test_a_billing_run_for_a_month_not_ended_or_a_bad_period_is_refused(make_client):
    staff = make_client("billing-runs:write")
    with on(dt.date(2026, 11, 30)):
        current = post_json(staff, "/api/v1/billing-runs", {"period": "2026-11"})
        future = post_json(staff, "/api/v1/billing-runs", {"period": "2027-01"})
        bad = post_json(staff, "/api/v1/billing-runs", {"period": "2026-1"})
    assert (current.status_code, current.json()["code"]) == (400, "period_not_ended")
    assert "early invoice" in current.json()["detail"]
    assert (future.status_code, future.json()["code"]) == (400, "period_not_ended")
    assert (bad.status_code, bad.json()["code"]) == (400, "validation_error")
    assert not BillingRun.objects.exists()


def test_staff_invoice_a_contract_early_through_the_api(make_client):
    contract = factories.billed_contract(reference="CTR-EARLY")
    buy(contract, dt.date(2026, 11, 3))
    staff = make_client("billing-runs:write")
    with on(dt.date(2026, 11, 18)), delivered():
        response = post_json(
            staff,
            "/api/v1/early-invoices",
            {"contract_reference": "CTR-EARLY", "reason": "Contract cancelled on 2026-11-17"},
            HTTP_IDEMPOTENCY_KEY="early-1",
        )
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["early"], body["reason"], body["trigger"]) == (True, "Contract cancelled on 2026-11-17", "api")
    assert staff.get(f"/api/v1/billing-runs/{body['id']}").json()["status"] == "completed"
    [invoice] = Invoice.objects.all()
    assert (invoice.contract_reference, invoice.issue_date) == ("CTR-EARLY", dt.date(2026, 11, 18))


def test_an_early_invoice_needs_an_unrestricted_staff_key_a_reason_and_a_known_contract(make_client):
    factories.billed_contract(reference="CTR-EARLY")
    customer = factories.customer()
    restricted = make_client("billing-runs:write", customer_id=customer.pk)
    staff = make_client("billing-runs:write")
    body = {"contract_reference": "CTR-EARLY", "reason": "cancelled"}
    assert post_json(restricted, "/api/v1/early-invoices", body, HTTP_IDEMPOTENCY_KEY="k1").status_code == 403
    assert post_json(make_client("invoices:read"), "/api/v1/early-invoices", body).status_code == 403
    no_reason = post_json(staff, "/api/v1/early-invoices", {**body, "reason": " "}, HTTP_IDEMPOTENCY_KEY="k2")
    unknown = post_json(
        staff, "/api/v1/early-invoices", {**body, "contract_reference": "NOPE"}, HTTP_IDEMPOTENCY_KEY="k3"
    )
    assert no_reason.status_code == 400
    assert (unknown.status_code, unknown.json()["code"]) == (404, "contract_unknown")
    assert not BillingRun.objects.exists()


def test_billing_runs_are_for_unrestricted_staff_keys(make_client):
    customer = factories.customer()
    restricted = make_client("billing-runs:write", customer_id=customer.pk)
    assert post_json(restricted, "/api/v1/billing-runs", {"period": "2026-10"}).status_code == 403
    assert make_client("invoices:read").get(f"/api/v1/billing-runs/{uuid.uuid4()}").status_code == 403


# --- admin -----------------------------------------------------------------------------------


def test_the_invoice_list_has_filters_search_and_a_pdf_link(admin_client, invoiced):
    response = admin_client.get("/admin/invoicing/invoice/")
    page = response.content.decode()
    assert "BP-2026-000001" in page
    for title in ("Par statut", "Par nature", "Par période"):
        assert title in page
    assert 'id="searchbar"' in page
    invoice = Invoice.objects.get()
    pdf = admin_client.get(f"/admin/invoicing/invoice/{invoice.pk}/pdf/")
    assert pdf.content.startswith(b"%PDF")
    assert admin_client.get("/admin/invoicing/invoice/", {"period": "2026-10"}).context["cl"].result_count == 1
    assert admin_client.get("/admin/invoicing/invoice/", {"q": "CTR-INV"}).context["cl"].result_count == 1


def test_staff_resend_an_invoice_from_the_admin(admin_client, invoiced):
    invoice = Invoice.objects.get()
    response = admin_client.post(
        "/admin/invoicing/invoice/", {"action": "resend", "_selected_action": [str(invoice.pk)]}, follow=True
    )
    assert response.status_code == 200
    invoice.refresh_from_db()
    assert (len(mail.outbox), invoice.sent_count) == (1, 1)


def test_staff_run_billing_for_a_month_from_the_admin(admin_client):
    contract = factories.billed_contract()
    buy(contract, dt.date(2026, 10, 3))
    listing = admin_client.get("/admin/invoicing/billingrun/")
    assert "Facturer un mois" in listing.content.decode()
    with on(dt.date(2026, 11, 2)), delivered():
        form = admin_client.get("/admin/invoicing/billingrun/run/")
        assert 'value="2026-10"' in form.content.decode()  # the previous month is proposed
        response = admin_client.post("/admin/invoicing/billingrun/run/", {"period": "2026-10"}, follow=True)
    assert response.status_code == 200
    billing_run = BillingRun.objects.get()
    assert (billing_run.trigger, billing_run.status, billing_run.started_by) == ("admin", "completed", "admin")
    assert Invoice.objects.count() == 1


def test_staff_invoice_a_contract_early_from_the_admin_and_the_run_says_who_and_why(admin_client):
    contract = factories.billed_contract(reference="CTR-ADM-EARLY")
    buy(contract, dt.date(2026, 11, 3))
    assert "Facturer un contrat par anticipation" in admin_client.get("/admin/invoicing/billingrun/").content.decode()
    with on(dt.date(2026, 11, 18)), delivered():
        refused = admin_client.post("/admin/invoicing/billingrun/run/", {"period": "2026-11"})
        assert "ends on 2026-11-30" in refused.content.decode()
        response = admin_client.post(
            "/admin/invoicing/billingrun/early/",
            {"contract_reference": "CTR-ADM-EARLY", "reason": "Final invoice"},
            follow=True,
        )
    assert response.status_code == 200
    billing_run = BillingRun.objects.get()
    assert (billing_run.early, billing_run.trigger, billing_run.started_by, billing_run.reason) == (
        True,
        "admin",
        "admin",
        "Final invoice",
    )
    assert Invoice.objects.get().contract_reference == "CTR-ADM-EARLY"


def test_the_billing_run_list_shows_who_ran_what(admin_client, invoiced):
    page = admin_client.get("/admin/invoicing/billingrun/").content.decode()
    assert "completed" in page and "2026-10" in page


def test_the_batch_list_shows_what_each_contract_s_month_will_invoice(admin_client, invoiced):
    from invoicing.models import BillingBatch

    contract = factories.billed_contract(reference="CTR-OPEN")
    buy(contract, dt.date(2026, 11, 3), item(2_500, vat_rate="20"))
    buy(contract, dt.date(2026, 11, 4), item(500, vat_rate="10"))

    listing = admin_client.get("/admin/invoicing/billingbatch/", {"invoice__isempty": "1"})
    assert listing.status_code == 200
    page = listing.content.decode().replace("\u202f", " ").replace("\xa0", " ")
    assert [batch.contract_reference for batch in listing.context["cl"].result_list] == ["CTR-OPEN"]
    assert "35,50 €" in page and "2026-11" in page  # 25.00 + 20 % and 5.00 + 10 %
    assert "Par période" in page and "Par facture" in page
    found = admin_client.get("/admin/invoicing/billingbatch/", {"q": "CTR-INV"}).context["cl"].result_list
    assert [batch.invoice.number for batch in found] == ["BP-2026-000001"]

    batch = BillingBatch.objects.get(contract_id=contract.pk)
    detail = admin_client.get(f"/admin/invoicing/billingbatch/{batch.pk}/change/").content.decode()
    assert "20.00" in detail and "10.00" in detail
