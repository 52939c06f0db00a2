"""The back office as staff use it: lists, filters, searches and the actions, which go
through contracts.services (events recorded, illegal transitions refused)."""

import datetime as dt
from html.parser import HTMLParser

import pytest
from django.contrib.messages import get_messages

from boissipay.clock import business_today
from boissipay.models import ApiKey, OutboxEvent
from contracts import services
from contracts.models import Contract, ContractStatus, MandateStatus
from tests import factories

pytestmark = pytest.mark.django_db

CONTRACTS = "/admin/contracts/contract/"
CUSTOMERS = "/admin/contracts/customer/"
API_KEYS = "/admin/boissipay/apikey/"


def listed(response) -> set[str]:
    """The references (or names) of the rows a changelist shows."""
    assert response.status_code == 200, response.content
    return {str(row) for row in response.context["cl"].result_list}


def run_action(client, url, action, *objects, **extra):
    return client.post(url, {"action": action, "_selected_action": [str(o.pk) for o in objects], **extra})


class _FormFields(HTMLParser):
    """The name/value pairs a browser would submit from the page's form (text inputs empty)."""

    def __init__(self):
        super().__init__()
        self.fields: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("name") and attrs.get("type") != "submit":
            self.fields.append((attrs["name"], attrs.get("value") or ""))


def confirm_reason_form(client, url, form_page, reason):
    """Fill in the reason on the confirmation page and press its Confirm button."""
    parser = _FormFields()
    parser.feed(form_page.content.decode())
    data: dict[str, list[str]] = {}
    for name, value in parser.fields:
        data.setdefault(name, []).append(reason if name == "reason" else value)
    return client.post(url, {**data, "apply": "Confirm"})


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def events_of(contract) -> list[str]:
    return list(OutboxEvent.objects.filter(aggregate_id=str(contract.pk)).values_list("event_type", flat=True))


def status_of(contract) -> str:
    return Contract.objects.get(pk=contract.pk).status


# --- the contract list ----------------------------------------------------------------


def test_the_contract_list_shows_its_filters_and_search_box(admin_client):
    factories.contract(reference="CTR-SHOWN")

    response = admin_client.get(CONTRACTS)

    assert listed(response) == {"CTR-SHOWN"}
    page = response.content.decode()
    assert "Par statut" in page
    assert "Par devise" in page
    assert "Expiring within 30 days" in page
    assert 'id="searchbar"' in page


def test_the_status_filter_lists_only_contracts_in_that_status(admin_client):
    factories.contract(reference="CTR-RUNNING")
    suspended = factories.contract(reference="CTR-ON-HOLD")
    services.suspend_contract(contract_id=suspended.pk, reason="late payment")

    assert listed(admin_client.get(CONTRACTS, {"status__exact": "suspended"})) == {"CTR-ON-HOLD"}


def test_the_currency_filter_lists_only_contracts_in_that_currency(admin_client):
    factories.contract(reference="CTR-IN-EUR", currency="EUR")
    factories.contract(reference="CTR-IN-CHF", currency="CHF")

    assert listed(admin_client.get(CONTRACTS, {"currency__exact": "CHF"})) == {"CTR-IN-CHF"}


def test_the_expiring_filter_lists_contracts_ending_within_30_days(admin_client):
    today = business_today()
    start = today - dt.timedelta(days=300)
    factories.contract(reference="CTR-ENDS-SOON", starts_on=start, ends_on=today + dt.timedelta(days=10))
    factories.contract(reference="CTR-ENDS-LATER", starts_on=start, ends_on=today + dt.timedelta(days=31))
    factories.contract(reference="CTR-ENDED", starts_on=start, ends_on=today - dt.timedelta(days=1))
    factories.contract(reference="CTR-OPEN-ENDED", starts_on=start, ends_on=None)

    assert listed(admin_client.get(CONTRACTS, {"expiry": "30d"})) == {"CTR-ENDS-SOON"}


def test_the_expired_filter_lists_active_contracts_past_their_end_as_the_api_does(admin_client):
    today = business_today()
    start = today - dt.timedelta(days=300)
    factories.contract(reference="CTR-ENDED", starts_on=start, ends_on=today - dt.timedelta(days=1))
    cancelled = factories.contract(reference="CTR-CANCELLED", starts_on=start, ends_on=today - dt.timedelta(days=1))
    services.cancel_contract(contract_id=cancelled.pk, reason="end of relationship")
    factories.contract(reference="CTR-RUNNING", starts_on=start, ends_on=today + dt.timedelta(days=1))

    assert listed(admin_client.get(CONTRACTS, {"expiry": "expired"})) == {"CTR-ENDED"}


def test_credit_limits_are_shown_in_the_currency_s_own_units(admin_client):
    factories.contract(reference="CTR-EUR", currency="EUR", credit_limit=1_234_567)
    factories.contract(reference="CTR-JPY", currency="JPY", credit_limit=1_234_567)

    page = admin_client.get(CONTRACTS).content.decode().replace("\u202f", " ").replace("\xa0", " ")

    assert "12 345,67 €" in page
    assert "1 234 567 JPY" in page  # yen have no minor unit


def test_contracts_are_found_by_reference(admin_client):
    factories.contract(reference="CTR-WANTED")
    factories.contract(reference="CTR-OTHER")

    assert listed(admin_client.get(CONTRACTS, {"q": "CTR-WANTED"})) == {"CTR-WANTED"}


def test_contracts_are_found_by_customer_name(admin_client):
    airbus = factories.customer(legal_name="CSE Airbus Toulouse")
    factories.contract(customer_obj=airbus, reference="CTR-AIRBUS")
    factories.contract(customer_obj=factories.customer(legal_name="CSE Thales"), reference="CTR-THALES")

    assert listed(admin_client.get(CONTRACTS, {"q": "airbus"})) == {"CTR-AIRBUS"}


def test_contracts_are_found_by_customer_siren(admin_client):
    owner = factories.customer()
    factories.contract(customer_obj=owner, reference="CTR-BY-SIREN")
    factories.contract(reference="CTR-SOMEONE-ELSE")

    assert listed(admin_client.get(CONTRACTS, {"q": owner.siren})) == {"CTR-BY-SIREN"}


def test_customers_are_found_by_siren(admin_client):
    wanted = factories.customer(legal_name="CSE Wanted")
    factories.customer(legal_name="CSE Unwanted")

    assert listed(admin_client.get(CUSTOMERS, {"q": wanted.siren})) == {str(wanted)}


# --- contract actions -----------------------------------------------------------------


def test_reactivating_a_suspended_contract_makes_it_active_and_records_the_event(admin_client):
    contract = factories.contract()
    services.suspend_contract(contract_id=contract.pk, reason="late payment")

    response = run_action(admin_client, CONTRACTS, "reactivate", contract)

    assert response.status_code == 302
    assert status_of(contract) == ContractStatus.ACTIVE
    assert events_of(contract)[-1] == "contracts.contract.reactivated"
    assert "1 contrat(s) réactivé(s)." in messages_of(response)


@pytest.mark.parametrize("action", ["suspend", "cancel"])
def test_suspending_or_cancelling_asks_for_the_reason_first_and_changes_nothing_yet(admin_client, action):
    contract = factories.contract()

    response = run_action(admin_client, CONTRACTS, action, contract)

    assert response.status_code == 200
    assert 'name="reason"' in response.content.decode()
    assert contract.reference in response.content.decode()
    assert status_of(contract) == ContractStatus.ACTIVE
    assert events_of(contract) == ["contracts.contract.subscribed"]


def test_confirming_the_suspension_with_a_reason_suspends_the_contract_and_records_the_event(admin_client):
    contract = factories.contract()
    form_page = run_action(admin_client, CONTRACTS, "suspend", contract)

    response = confirm_reason_form(admin_client, CONTRACTS, form_page, "late payment")

    assert response.status_code == 302
    refreshed = Contract.objects.get(pk=contract.pk)
    assert (refreshed.status, refreshed.status_reason) == (ContractStatus.SUSPENDED, "late payment")
    event = OutboxEvent.objects.filter(aggregate_id=str(contract.pk)).last()
    assert event.event_type == "contracts.contract.suspended"
    assert event.payload["reason"] == "late payment"


def test_confirming_the_cancellation_with_a_reason_cancels_the_contract_and_records_the_event(admin_client):
    contract = factories.contract()
    form_page = run_action(admin_client, CONTRACTS, "cancel", contract)

    response = confirm_reason_form(admin_client, CONTRACTS, form_page, "end of relationship")

    assert response.status_code == 302
    refreshed = Contract.objects.get(pk=contract.pk)
    assert (refreshed.status, refreshed.status_reason) == (ContractStatus.CANCELLED, "end of relationship")
    assert events_of(contract)[-1] == "contracts.contract.cancelled"
    assert "1 contrat(s) résilié(s)." in messages_of(response)


def test_the_reason_posted_with_the_action_applies_it_to_every_selected_contract(admin_client):
    first, second = factories.contract(), factories.contract()

    run_action(admin_client, CONTRACTS, "suspend", first, second, apply="Confirm", reason="audit")

    assert status_of(first) == status_of(second) == ContractStatus.SUSPENDED


def test_revoking_the_mandate_from_the_back_office_revokes_it_and_records_the_event(admin_client):
    contract = factories.contract()

    run_action(admin_client, CONTRACTS, "revoke_mandate", contract, apply="Confirm", reason="debtor request")

    mandate = Contract.objects.get(pk=contract.pk).mandates.get(is_current=True)
    assert mandate.status == MandateStatus.REVOKED
    assert mandate.revocation_reason == "debtor request"
    assert events_of(contract)[-1] == "contracts.mandate.revoked"


def test_a_reason_is_required_to_suspend(admin_client):
    contract = factories.contract()

    response = run_action(admin_client, CONTRACTS, "suspend", contract, apply="Confirm", reason="")

    assert response.status_code == 200
    assert "Ce champ est obligatoire." in response.content.decode()  # the back office speaks French
    assert status_of(contract) == ContractStatus.ACTIVE


def test_reactivating_a_cancelled_contract_is_refused_with_an_error_and_changes_nothing(admin_client):
    contract = factories.contract()
    services.cancel_contract(contract_id=contract.pk, reason="end of relationship")
    events_before = events_of(contract)

    response = run_action(admin_client, CONTRACTS, "reactivate", contract)

    errors = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "error"]
    assert len(errors) == 1
    assert contract.reference in errors[0] and "cancelled" in errors[0]
    assert status_of(contract) == ContractStatus.CANCELLED
    assert events_of(contract) == events_before


def test_one_refused_contract_does_not_stop_the_others_of_the_selection(admin_client):
    suspended = factories.contract()
    services.suspend_contract(contract_id=suspended.pk, reason="late payment")
    cancelled = factories.contract()
    services.cancel_contract(contract_id=cancelled.pk, reason="end of relationship")

    response = run_action(admin_client, CONTRACTS, "reactivate", suspended, cancelled)

    assert status_of(suspended) == ContractStatus.ACTIVE
    assert status_of(cancelled) == ContractStatus.CANCELLED
    assert "1 contrat(s) réactivé(s)." in messages_of(response)


# --- API keys -------------------------------------------------------------------------


def test_revoking_an_api_key_from_the_back_office_revokes_it(admin_client):
    key, _ = factories.api_key("contracts:read", name="leaked key")
    other, _ = factories.api_key("contracts:read", name="kept key")

    response = run_action(admin_client, API_KEYS, "revoke", key)

    assert response.status_code == 302
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
    assert ApiKey.objects.get(pk=other.pk).revoked_at is None
    assert any("1 clé(s) révoquée(s) : refusée(s) partout sous 30 s" in m for m in messages_of(response))
