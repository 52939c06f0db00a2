"""Rules of the contracts context, through its services."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from boissipay.errors import DomainError, NotFound
from boissipay.models import OutboxEvent
from contracts import services
from contracts.models import Contract, Mandate
from tests import factories
from tests.clock import freeze_module_at

# Every test here starts on one frozen "today" (Paris, ticking), whatever the real date.
_today = freeze_module_at(dt.date(2026, 1, 15))

pytestmark = pytest.mark.django_db


def events_of(contract) -> list[str]:
    return list(OutboxEvent.objects.filter(aggregate_id=str(contract.pk)).values_list("event_type", flat=True))


# --- customers ------------------------------------------------------------------------


def test_registering_a_customer_normalises_siren_and_vat_and_records_an_event():
    customer = factories.customer(siren="732 829 320", vat_number="fr 44 732829320")
    assert customer.siren == "732829320"
    assert customer.vat_number == "FR44732829320"
    event = OutboxEvent.objects.get(aggregate_id=str(customer.pk))
    assert event.event_type == "contracts.customer.registered"
    assert event.payload["customer"]["siren"] == "732829320"


@pytest.mark.parametrize("siren", ["732829321", "12345", "abcdefghi"])
def test_a_customer_with_an_invalid_siren_is_refused(siren):
    with pytest.raises(ValidationError):
        factories.customer(siren=siren)


def test_a_customer_with_an_invalid_vat_number_is_refused():
    with pytest.raises(ValidationError):
        factories.customer(vat_number="FR00000000000")


def test_a_customer_with_an_unknown_country_is_refused():
    with pytest.raises(ValidationError):
        factories.customer(country="XX")


def test_a_second_customer_with_the_same_siren_is_refused():
    factories.customer(siren="552100554")
    with pytest.raises(DomainError) as refused:
        factories.customer(siren="552100554")
    assert refused.value.code == "customer_already_exists"


# --- subscribing ----------------------------------------------------------------------


def test_subscribing_a_contract_stores_its_first_mandate_and_publishes_the_contract_state():
    contract = factories.contract(credit_limit=500_000)
    mandate = contract.mandates.get()
    assert mandate.is_current and mandate.status == "active"
    event = OutboxEvent.objects.get(aggregate_id=str(contract.pk))
    assert event.event_type == "contracts.contract.subscribed"
    state = event.payload["contract"]
    assert state["credit_limit"] == 500_000
    assert state["mandate"]["reference"] == mandate.reference
    assert state["mandate"]["iban_masked"] == "FR14*******************2606"
    assert factories.IBAN not in str(event.payload)


def test_a_contract_in_an_unknown_currency_is_refused():
    with pytest.raises(ValidationError):
        factories.contract(currency="EUX")


def test_a_contract_with_a_negative_credit_limit_is_refused():
    with pytest.raises(ValidationError):
        factories.contract(credit_limit=-1)


def test_a_contract_ending_before_it_starts_is_refused():
    with pytest.raises(ValidationError):
        factories.contract(starts_on=dt.date(2026, 5, 1), ends_on=dt.date(2026, 4, 30))


def test_a_contract_with_an_invalid_iban_is_refused_and_nothing_is_written():
    owner = factories.customer()
    before = OutboxEvent.objects.count()
    with pytest.raises(ValidationError):
        factories.contract(customer_obj=owner, mandate=factories.mandate_details(iban="FR1420041010050500013M02607"))
    assert not Contract.objects.filter(customer=owner).exists()
    assert OutboxEvent.objects.count() == before


def test_a_contract_with_an_invalid_bic_is_refused():
    with pytest.raises(ValidationError):
        factories.contract(mandate=factories.mandate_details(bic="NOTABIC"))


def test_contract_references_are_unique():
    factories.contract(reference="CTR-UNIQUE")
    with pytest.raises(DomainError) as refused:
        factories.contract(reference="CTR-UNIQUE")
    assert refused.value.code == "contract_reference_taken"


def test_a_contract_for_an_unknown_customer_is_refused():
    with pytest.raises(NotFound):
        services.subscribe_contract(
            customer_id="00000000-0000-0000-0000-000000000000",
            reference="CTR-X",
            credit_limit=1,
            starts_on=dt.date(2026, 1, 1),
            mandate=factories.mandate_details(),
        )


def test_the_database_refuses_a_second_current_mandate():
    contract = factories.contract()
    with pytest.raises(IntegrityError), transaction.atomic():
        Mandate.objects.create(
            contract=contract, reference="UMR-DUP", iban=factories.IBAN, signed_on=dt.date(2026, 1, 1)
        )


def test_the_database_refuses_a_negative_credit_limit():
    contract = factories.contract()
    with pytest.raises(IntegrityError), transaction.atomic():
        Contract.objects.filter(pk=contract.pk).update(credit_limit=-5)


# --- transitions ----------------------------------------------------------------------


def test_suspending_then_reactivating_moves_the_status_and_publishes_each_change():
    contract = factories.contract()
    services.suspend_contract(contract_id=contract.pk, reason="unpaid invoice")
    contract.refresh_from_db()
    assert (contract.status, contract.status_reason) == ("suspended", "unpaid invoice")
    services.reactivate_contract(contract_id=contract.pk)
    contract.refresh_from_db()
    assert contract.status == "active"
    assert events_of(contract) == [
        "contracts.contract.subscribed",
        "contracts.contract.suspended",
        "contracts.contract.reactivated",
    ]
    versions = [e.payload["contract"]["version"] for e in OutboxEvent.objects.filter(aggregate_id=str(contract.pk))]
    assert versions == [1, 2, 3]


def test_suspending_a_suspended_contract_is_refused():
    contract = factories.contract()
    services.suspend_contract(contract_id=contract.pk, reason="x")
    with pytest.raises(DomainError) as refused:
        services.suspend_contract(contract_id=contract.pk, reason="again")
    assert refused.value.code == "contract_already_suspended"


def test_reactivating_an_active_contract_is_refused():
    contract = factories.contract()
    with pytest.raises(DomainError) as refused:
        services.reactivate_contract(contract_id=contract.pk)
    assert refused.value.code == "contract_not_suspended"


@pytest.mark.parametrize(
    "command",
    [
        lambda c: services.reactivate_contract(contract_id=c.pk),
        lambda c: services.suspend_contract(contract_id=c.pk, reason="x"),
        lambda c: services.amend_contract(contract_id=c.pk, credit_limit=1),
        lambda c: services.cancel_contract(contract_id=c.pk, reason="twice"),
        lambda c: services.renew_mandate(contract_id=c.pk, mandate=factories.mandate_details()),
        lambda c: services.register_subscriber(contract_id=c.pk, external_ref="E1", display_name="Ann"),
    ],
    ids=["reactivate", "suspend", "amend", "cancel", "renew-mandate", "register-subscriber"],
)
def test_a_cancelled_contract_never_comes_back(command):
    contract = factories.contract()
    services.cancel_contract(contract_id=contract.pk, reason="customer left")
    count = OutboxEvent.objects.count()
    with pytest.raises(DomainError) as refused:
        command(contract)
    assert refused.value.code == "contract_cancelled"
    assert refused.value.status == 409
    assert OutboxEvent.objects.count() == count


def test_a_suspended_contract_can_be_cancelled():
    contract = factories.contract()
    services.suspend_contract(contract_id=contract.pk, reason="x")
    services.cancel_contract(contract_id=contract.pk, reason="closed")
    contract.refresh_from_db()
    assert contract.status == "cancelled"


def test_an_expired_contract_shows_as_expired():
    contract = factories.contract(ends_on=dt.date(2026, 3, 31))
    assert contract.lifecycle_status(dt.date(2026, 3, 31)) == "active"
    assert contract.lifecycle_status(dt.date(2026, 4, 1)) == "expired"


# --- amendments -----------------------------------------------------------------------


def test_amending_the_limit_and_end_date_publishes_the_changes():
    contract = factories.contract(credit_limit=100, ends_on=dt.date(2027, 1, 1))
    services.amend_contract(contract_id=contract.pk, credit_limit=250, ends_on=dt.date(2028, 1, 1))
    event = OutboxEvent.objects.filter(aggregate_id=str(contract.pk)).last()
    assert event.event_type == "contracts.contract.amended"
    assert event.payload["changes"] == {
        "credit_limit": {"from": 100, "to": 250},
        "ends_on": {"from": "2027-01-01", "to": "2028-01-01"},
    }


def test_an_amendment_that_changes_nothing_publishes_nothing():
    contract = factories.contract(credit_limit=100)
    services.amend_contract(contract_id=contract.pk, credit_limit=100)
    assert events_of(contract) == ["contracts.contract.subscribed"]


def test_an_amendment_ending_the_contract_before_its_start_is_refused():
    contract = factories.contract(starts_on=dt.date(2026, 1, 1))
    with pytest.raises(ValidationError):
        services.amend_contract(contract_id=contract.pk, ends_on=dt.date(2025, 12, 31))


# --- mandates -------------------------------------------------------------------------


def test_renewing_the_mandate_replaces_the_current_one():
    contract = factories.contract()
    first = contract.mandates.get()
    services.renew_mandate(contract_id=contract.pk, mandate=factories.mandate_details(iban=factories.OTHER_IBAN))
    first.refresh_from_db()
    current = contract.mandates.get(is_current=True)
    assert not first.is_current
    assert current.iban == factories.OTHER_IBAN
    event = OutboxEvent.objects.filter(aggregate_id=str(contract.pk)).last()
    assert event.event_type == "contracts.mandate.renewed"
    assert event.payload["previous_mandate_reference"] == first.reference


def test_revoking_the_mandate_marks_it_revoked_and_a_second_revocation_is_refused():
    contract = factories.contract()
    services.revoke_mandate(contract_id=contract.pk, reason="debtor request")
    mandate = contract.mandates.get(is_current=True)
    assert mandate.status == "revoked"
    with pytest.raises(DomainError) as refused:
        services.revoke_mandate(contract_id=contract.pk)
    assert refused.value.code == "mandate_not_active"


def test_a_mandate_reference_cannot_be_reused():
    contract = factories.contract(mandate=factories.mandate_details(reference="UMR-TAKEN"))
    with pytest.raises(DomainError) as refused:
        services.renew_mandate(contract_id=contract.pk, mandate=factories.mandate_details(reference="UMR-TAKEN"))
    assert refused.value.code == "mandate_reference_taken"


def test_a_mandate_is_valid_only_while_active_and_not_expired():
    contract = factories.contract(mandate=factories.mandate_details(expires_on=dt.date(2026, 6, 30)))
    mandate = contract.mandates.get()
    assert mandate.is_valid_on(dt.date(2026, 6, 30))
    assert not mandate.is_valid_on(dt.date(2026, 7, 1))


# --- subscribers ----------------------------------------------------------------------


def test_registering_and_removing_a_subscriber_is_published():
    contract = factories.contract()
    services.register_subscriber(contract_id=contract.pk, external_ref="EMP-1", display_name="Ann Martin")
    event = OutboxEvent.objects.filter(aggregate_id=str(contract.pk)).last()
    assert event.payload["contract"]["subscribers"] == [
        {"external_ref": "EMP-1", "display_name": "Ann Martin", "monthly_cap": None}
    ]
    services.remove_subscriber(contract_id=contract.pk, external_ref="EMP-1")
    event = OutboxEvent.objects.filter(aggregate_id=str(contract.pk)).last()
    assert event.event_type == "contracts.subscriber.removed"
    assert event.payload["contract"]["subscribers"] == []


def test_a_subscriber_cannot_be_registered_twice_but_can_come_back_after_removal():
    contract = factories.contract()
    services.register_subscriber(contract_id=contract.pk, external_ref="EMP-1", display_name="Ann")
    with pytest.raises(DomainError) as refused:
        services.register_subscriber(contract_id=contract.pk, external_ref="EMP-1", display_name="Ann")
    assert refused.value.code == "subscriber_already_registered"
    services.remove_subscriber(contract_id=contract.pk, external_ref="EMP-1")
    services.register_subscriber(contract_id=contract.pk, external_ref="EMP-1", display_name="Ann")
    assert contract.subscribers.filter(removed_at__isnull=True).count() == 1


def test_removing_an_unknown_subscriber_is_refused():
    contract = factories.contract()
    with pytest.raises(NotFound) as refused:
        services.remove_subscriber(contract_id=contract.pk, external_ref="NOBODY")
    assert refused.value.code == "subscriber_unknown"


# --- outbox ---------------------------------------------------------------------------


def test_a_rolled_back_change_records_no_event():
    contract = factories.contract()
    count = OutboxEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.suspend_contract(contract_id=contract.pk, reason="x")
        raise RuntimeError("the caller's transaction fails")
    contract.refresh_from_db()
    assert contract.status == "active"
    assert OutboxEvent.objects.count() == count
