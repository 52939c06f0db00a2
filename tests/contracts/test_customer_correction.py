"""Correcting a customer (issue 17): its legal name, billing e-mail and structured address,
through the service, `PATCH /api/v1/customers/{id}` and the admin; the next invoice goes
to the corrected buyer and its Factur-X carries the address as it was entered."""

import datetime as dt
import json

import facturx
import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.test import Client
from lxml import etree

from boissipay.clock import PARIS
from boissipay.event_schemas import validate_event
from boissipay.history import history_of
from boissipay.models import OutboxEvent
from contracts import services
from contracts.models import Customer
from contracts.validators import Address
from invoicing import services as invoicing
from invoicing.models import Invoice, InvoicingContract
from tests import factories
from tests.clock import freeze_module_at
from tests.factories import settled

_today = freeze_module_at(dt.date(2026, 10, 1))
pytestmark = pytest.mark.django_db(transaction=True)
NS = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}
NEW_ADDRESS = {"lines": ["Bâtiment B", "3 allée des Cèdres"], "postcode": "31700", "city": "Blagnac"}


def patch(api, customer_id, body, **headers):
    return api.patch(f"/api/v1/customers/{customer_id}", json.dumps(body), content_type="application/json", **headers)


def key_client(*scopes, customer_id=None) -> Client:
    _, raw = factories.api_key(*scopes, customer_id=customer_id, name="ERP du client")
    return Client(HTTP_AUTHORIZATION=f"Api-Key {raw}")


def test_a_customer_registered_with_a_printed_address_gets_it_structured_and_a_bad_one_is_refused():
    customer = factories.customer(billing_address="12 avenue des Champs-Élysées\n75008 Paris")
    assert (customer.address_lines, customer.postcode, customer.city) == (
        "12 avenue des Champs-Élysées",
        "75008",
        "Paris",
    )
    with pytest.raises(Exception, match="postcode and the city on the last line"):
        factories.customer(billing_address="somewhere in Paris")
    with pytest.raises(Exception, match="five digits"):
        services.register_customer(
            legal_name="CSE X",
            siren=factories.siren_number(),
            billing_email="a@x.example",
            address=Address.of(["1 rue X"], "7500", "Paris"),
        )


def test_the_api_corrects_the_customer_and_its_next_invoice_goes_to_the_corrected_buyer():
    contract = factories.contract(credit_limit=1_000_000)
    settled()
    customer = contract.customer
    with time_machine.travel(dt.datetime(2026, 10, 12, 12, tzinfo=PARIS), tick=False):
        factories.purchase(contract.pk, 10_000)
    settled()

    api = key_client("contracts:read", "contracts:write")
    answer = patch(
        api,
        customer.pk,
        {"billing_email": "factures@cse-airbus.example", "address": NEW_ADDRESS, "reason": "Déménagement"},
        HTTP_IDEMPOTENCY_KEY="fix-1",
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["address"] == NEW_ADDRESS
    assert body["billing_address"] == "Bâtiment B\n3 allée des Cèdres\n31700 Blagnac"
    assert body["billing_email"] == "factures@cse-airbus.example"
    again = patch(
        api,
        customer.pk,
        {"billing_email": "factures@cse-airbus.example", "address": NEW_ADDRESS, "reason": "Déménagement"},
        HTTP_IDEMPOTENCY_KEY="fix-1",
    )
    assert again.status_code == 200 and again.json() == body
    settled()

    [corrected] = OutboxEvent.objects.filter(event_type="contracts.customer.corrected")
    validate_event(corrected.event_type, 1, corrected.payload)
    assert set(corrected.payload["changes"]) == {"billing_email", "billing_address", "address"}
    assert corrected.payload["reason"] == "Déménagement"
    assert corrected.payload["actor"]["type"] == "api_key"
    amended = OutboxEvent.objects.filter(event_type="contracts.contract.amended").latest("position")
    validate_event(amended.event_type, 1, amended.payload)
    assert amended.payload["contract"]["customer"]["billing_email"] == "factures@cse-airbus.example"
    assert history_of(Customer.objects.get(pk=customer.pk))[0].reason == "Déménagement"

    buyer = InvoicingContract.objects.get(pk=contract.pk).buyer
    assert buyer["address"] == NEW_ADDRESS and buyer["billing_email"] == "factures@cse-airbus.example"
    with time_machine.travel(dt.datetime(2026, 11, 1, 2, tzinfo=PARIS), tick=False):
        invoicing.run_billing(period="2026-10")
    settled()
    invoice = Invoice.objects.get(contract_id=contract.pk)
    _, xml = facturx.get_xml_from_pdf(invoicing.invoice_pdf(invoice_id=invoice.pk), check_xsd=True)
    buyer_address = etree.fromstring(xml).xpath("//ram:BuyerTradeParty/ram:PostalTradeAddress", namespaces=NS)[0]
    assert [element.text for element in buyer_address] == ["31700", "Bâtiment B", "3 allée des Cèdres", "Blagnac", "FR"]


def test_a_correction_is_refused_when_empty_or_bad_and_a_restricted_key_corrects_only_its_customer():
    mine, other = factories.customer(), factories.customer()
    api = key_client("contracts:read", "contracts:write", customer_id=mine.pk)
    for body, field in (
        ({}, None),
        ({"reason": "nothing else"}, None),
        ({"address": {**NEW_ADDRESS, "postcode": "3170"}}, "address.postcode"),
        ({"address": {**NEW_ADDRESS, "lines": []}}, "address.lines"),
        ({"billing_email": "not an e-mail"}, "billing_email"),
        ({"siren": "383474814"}, "siren"),
        ({"legal_name": "CSE\x00"}, None),
    ):
        answer = patch(api, mine.pk, body)
        assert answer.status_code == 400, (body, answer.content)
        assert answer["Content-Type"] == "application/problem+json"
        if field:
            assert field in answer.content.decode(), (body, answer.content)
    assert patch(api, other.pk, {"legal_name": "Someone else"}).status_code == 404
    assert key_client("contracts:read").patch(f"/api/v1/customers/{mine.pk}", "{}").status_code == 403
    assert Customer.objects.get(pk=mine.pk).billing_address == mine.billing_address
    assert not OutboxEvent.objects.filter(event_type="contracts.customer.corrected").exists()


def operator_client() -> Client:
    user = User.objects.create_user("paul.martin", password="not-used-here", is_staff=True)
    user.groups.add(Group.objects.get(name="Opérateur finance"))
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db(transaction=False)  # the staff groups come from a migration
def test_an_operator_corrects_the_customer_and_edits_the_contract_from_their_pages():
    contract = factories.contract(credit_limit=1_000_000)
    settled()
    staff = operator_client()
    customer_page = staff.get(f"/admin/contracts/customer/{contract.customer_id}/change/").content.decode()
    assert f"/admin/contracts/customer/{contract.customer_id}/correct/" in customer_page
    answer = staff.post(
        f"/admin/contracts/customer/{contract.customer_id}/correct/",
        {
            "legal_name": "CSE Airbus Blagnac",
            "billing_email": "compta@airbus.example",
            "address_lines": "3 allée des Cèdres",
            "postcode": "31700",
            "city": "Blagnac",
            "reason": "Courrier du client du 2 octobre",
        },
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    assert Customer.objects.get(pk=contract.customer_id).billing_address == "3 allée des Cèdres\n31700 Blagnac"
    change = history_of(Customer.objects.get(pk=contract.customer_id))[0]
    assert (change.actor["name"], change.reason) == ("paul.martin", "Courrier du client du 2 octobre")

    page = staff.get(f"/admin/contracts/contract/{contract.pk}/change/").content.decode()
    for button in ("amend/", "mandate/", "subscriber/", "do/suspend/", "do/cancel/"):
        assert f"/admin/contracts/contract/{contract.pk}/{button}" in page, button
    base = f"/admin/contracts/contract/{contract.pk}"
    bad = staff.post(f"{base}/amend/", {"credit_limit": "12,345", "reason": "x"})
    assert bad.status_code == 200 and "Au plus deux décimales" in bad.content.decode()
    assert (
        staff.post(f"{base}/amend/", {"credit_limit": "25 000,00", "ends_on": "", "reason": "Avenant n°2"}).status_code
        == 302
    )
    contract.refresh_from_db()
    assert (contract.credit_limit, contract.ends_on) == (2_500_000, None)
    assert history_of(contract)[0].reason == "Avenant n°2"

    from django.core.files.uploadedfile import SimpleUploadedFile

    mandate = {
        "reference": "UMR-NEW-1",
        "iban": "FR1420041010050500013M02606",
        "signed_on": "2026-09-30",
        "reason": "Nouvelle banque",
    }
    not_pdf = staff.post(f"{base}/mandate/", {**mandate, "signed_document": SimpleUploadedFile("m.pdf", b"hello")})
    assert not_pdf.status_code == 200 and "PDF" in not_pdf.content.decode()
    pdf = SimpleUploadedFile("mandat.pdf", b"%PDF-1.4\n% a signed mandate\n%%EOF\n", content_type="application/pdf")
    assert staff.post(f"{base}/mandate/", {**mandate, "signed_document": pdf}).status_code == 302
    current = contract.mandates.get(is_current=True)
    assert current.reference == "UMR-NEW-1" and current.signed_document.read().startswith(b"%PDF-")

    subscriber = {"external_ref": "EMP-9", "display_name": "Jeanne Martin", "monthly_cap": "800"}
    assert staff.post(f"{base}/subscriber/", subscriber).status_code == 302
    assert contract.subscribers.get(external_ref="EMP-9").monthly_cap == 80_000
    assert staff.post(f"{base}/do/suspend/", {"reason": "Retard de paiement"}).status_code == 302
    contract.refresh_from_db()
    assert contract.status == "suspended"
    reactivate = staff.get(f"/admin/contracts/contract/{contract.pk}/change/").content.decode()
    assert "do/reactivate/" in reactivate and "do/suspend/" not in reactivate

    reader = User.objects.create_user("lecture", password="x", is_staff=True)
    reader.groups.add(Group.objects.get(name="Contrôle crédit (lecture)"))
    reading = Client()
    reading.force_login(reader)
    assert reading.post(f"{base}/do/reactivate/", {}).status_code == 403
    assert "do/reactivate/" not in reading.get(f"/admin/contracts/contract/{contract.pk}/change/").content.decode()
