"""The acceptance rules of SPEC.md "billing", each with its edges, through the service."""

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest
import time_machine

from billing.models import ContractAccount, Operation
from billing.services import price, submit_operation
from boissipay.errors import DomainError
from boissipay.models import OutboxEvent
from contracts import services as contracts
from payments.models import PaymentItem
from tests import factories
from tests.clock import freeze_module_at
from tests.factories import delivered, item, operation_request, purchase, refund

# Every test here starts on one frozen "today" (Paris, ticking), whatever the real date:
# the contracts its factories make are valid on the dates the tests travel to.
_today = freeze_module_at(dt.date(2026, 6, 15))

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")


def balance(contract) -> int:
    return ContractAccount.objects.get(pk=contract.pk).outstanding


# --- amounts ---------------------------------------------------------------------------------


def test_the_amount_is_computed_from_the_items_with_vat_rounded_half_up_per_item():
    pricing = price(
        factories.operation_request(
            uuid.uuid4(), item(1_005, quantity=3, vat_rate="10"), item(999, vat_rate="5.5"), item(2_000)
        ).orders
    )
    # 3 x 10.05 = 30.15 → VAT 3.015 → 3.02; 9.99 → VAT 0.54945 → 0.55; 20.00 at 0 %
    assert pricing.amount_excl_tax == 3_015 + 999 + 2_000
    assert pricing.vat_amount == 302 + 55
    assert pricing.amount == 6_014 + 357
    assert pricing.vat_breakdown == [
        {"rate": "0.00", "base": 2_000, "vat": 0},
        {"rate": "10.00", "base": 3_015, "vat": 302},
        {"rate": "5.50", "base": 999, "vat": 55},
    ]


# --- the credit limit ------------------------------------------------------------------------


def test_a_purchase_exactly_up_to_the_credit_limit_is_accepted():
    contract = factories.billed_contract(credit_limit=100_000)
    purchase(contract.pk, 60_000)
    operation = purchase(contract.pk, 40_000)
    assert operation.status == "accepted"
    assert operation.balance_after == 100_000
    assert balance(contract) == 100_000


def test_a_purchase_one_minor_unit_over_the_credit_limit_is_rejected_and_recorded():
    contract = factories.billed_contract(credit_limit=100_000)
    purchase(contract.pk, 60_000)
    operation = purchase(contract.pk, 40_001)
    assert (operation.status, operation.reason_code) == ("rejected", "credit_limit_exceeded")
    assert Operation.objects.filter(pk=operation.pk, status="rejected").exists()
    assert balance(contract) == 60_000


def test_a_refund_frees_credit_for_a_new_purchase():
    contract = factories.billed_contract(credit_limit=100_000)
    first = purchase(contract.pk, 100_000)
    refund(contract.pk, first.pk, 30_000)
    assert purchase(contract.pk, 30_000).status == "accepted"
    assert purchase(contract.pk, 1).reason_code == "credit_limit_exceeded"


def test_a_lowered_credit_limit_applies_to_the_next_purchase():
    contract = factories.billed_contract(credit_limit=100_000)
    purchase(contract.pk, 50_000)
    with delivered():
        contracts.amend_contract(contract_id=contract.pk, credit_limit=50_000)
    assert purchase(contract.pk, 1).reason_code == "credit_limit_exceeded"


# --- the contract and its validity -----------------------------------------------------------


def test_a_purchase_on_a_contract_billing_does_not_know_is_rejected_as_unknown():
    operation = purchase(uuid.uuid4(), 1_000)
    assert (operation.status, operation.reason_code) == ("rejected", "contract_unknown")


def test_a_purchase_on_another_customers_contract_is_treated_as_unknown():
    contract = factories.billed_contract()
    other_customer = factories.customer()
    operation = submit_operation(request=operation_request(contract.pk), customer_scope=other_customer.pk)
    assert operation.reason_code == "contract_unknown"
    assert operation.customer_id == other_customer.pk
    assert not Operation.objects.filter(contract_id=contract.pk).exists()  # not in that contract's history


@pytest.mark.parametrize("change", ["suspend", "cancel"])
def test_a_purchase_on_a_suspended_or_cancelled_contract_is_rejected(change):
    contract = factories.billed_contract()
    with delivered():
        getattr(contracts, f"{change}_contract")(contract_id=contract.pk, reason="Credit control")
    assert purchase(contract.pk).reason_code == "contract_not_active"


def test_a_reactivated_contract_accepts_purchases_again():
    contract = factories.billed_contract()
    with delivered():
        contracts.suspend_contract(contract_id=contract.pk, reason="Credit control")
        contracts.reactivate_contract(contract_id=contract.pk)
    assert purchase(contract.pk).status == "accepted"


def test_a_contract_ending_today_in_paris_accepts_purchases_today_and_not_tomorrow():
    contract = factories.billed_contract(ends_on=dt.date(2026, 11, 30))
    # 23:30 in Paris on the last day is 22:30 UTC: still the contract's last day.
    with time_machine.travel(dt.datetime(2026, 11, 30, 23, 30, tzinfo=PARIS), tick=False):
        assert purchase(contract.pk).status == "accepted"
    with time_machine.travel(dt.datetime(2026, 12, 1, 0, 0, 30, tzinfo=PARIS), tick=False):
        assert purchase(contract.pk).reason_code == "contract_expired"


def test_a_contract_that_has_not_started_rejects_purchases():
    contract = factories.billed_contract(starts_on=dt.date(2027, 1, 1))
    with time_machine.travel(dt.datetime(2026, 12, 31, 23, 59, tzinfo=PARIS), tick=False):
        assert purchase(contract.pk).reason_code == "contract_not_active"


# --- the mandate -----------------------------------------------------------------------------


def test_a_purchase_with_a_revoked_mandate_is_rejected():
    contract = factories.billed_contract()
    with delivered():
        contracts.revoke_mandate(contract_id=contract.pk, reason="Debtor withdrew consent")
    assert purchase(contract.pk).reason_code == "mandate_invalid"


def test_a_purchase_after_the_mandate_expired_is_rejected_and_accepted_on_its_last_day():
    contract = factories.billed_contract(mandate=factories.mandate_details(expires_on=dt.date(2026, 12, 15)))
    with time_machine.travel(dt.datetime(2026, 12, 15, 12, 0, tzinfo=PARIS), tick=False):
        assert purchase(contract.pk).status == "accepted"
    with time_machine.travel(dt.datetime(2026, 12, 16, 12, 0, tzinfo=PARIS), tick=False):
        assert purchase(contract.pk).reason_code == "mandate_invalid"


def test_a_renewed_mandate_makes_purchases_possible_again():
    contract = factories.billed_contract()
    with delivered():
        contracts.revoke_mandate(contract_id=contract.pk, reason="Bank changed")
        contracts.renew_mandate(contract_id=contract.pk, mandate=factories.mandate_details(iban=factories.OTHER_IBAN))
    assert purchase(contract.pk).status == "accepted"


# --- currency and subscribers ----------------------------------------------------------------


def test_a_purchase_in_another_currency_is_rejected():
    contract = factories.billed_contract(currency="EUR")
    assert purchase(contract.pk, currency="USD").reason_code == "currency_mismatch"


def test_a_contract_with_subscribers_requires_a_registered_one():
    contract = factories.billed_contract()
    with delivered():
        contracts.register_subscriber(contract_id=contract.pk, external_ref="EMP-1", display_name="Jeanne Martin")
    assert purchase(contract.pk).reason_code == "subscriber_unknown"
    assert purchase(contract.pk, subscriber_ref="EMP-2").reason_code == "subscriber_unknown"
    assert purchase(contract.pk, subscriber_ref="EMP-1").status == "accepted"


def test_a_removed_subscriber_can_no_longer_buy():
    contract = factories.billed_contract()
    with delivered():
        contracts.register_subscriber(contract_id=contract.pk, external_ref="EMP-1", display_name="Jeanne Martin")
        contracts.register_subscriber(contract_id=contract.pk, external_ref="EMP-2", display_name="Paul Durand")
        contracts.remove_subscriber(contract_id=contract.pk, external_ref="EMP-1")
    assert purchase(contract.pk, subscriber_ref="EMP-1").reason_code == "subscriber_unknown"


# --- refunds ---------------------------------------------------------------------------------


def test_a_refund_up_to_what_remains_refundable_is_accepted_and_one_unit_more_is_rejected():
    contract = factories.billed_contract()
    bought = purchase(contract.pk, 10_000)
    assert refund(contract.pk, bought.pk, 6_000).status == "accepted"
    assert refund(contract.pk, bought.pk, 4_001).reason_code == "refund_exceeds_purchase"
    assert refund(contract.pk, bought.pk, 4_000).status == "accepted"
    bought.refresh_from_db()
    assert bought.refunded_amount == 10_000
    assert balance(contract) == 0


def test_a_refund_on_a_suspended_contract_is_accepted():
    contract = factories.billed_contract()
    bought = purchase(contract.pk, 10_000)
    with delivered():
        contracts.suspend_contract(contract_id=contract.pk, reason="Credit control")
    operation = refund(contract.pk, bought.pk, 10_000)
    assert operation.status == "accepted"
    assert operation.balance_after == 0


def test_a_refund_of_an_unknown_purchase_is_rejected():
    contract = factories.billed_contract()
    assert refund(contract.pk, uuid.uuid4(), 100).reason_code == "purchase_unknown"


def test_a_refund_of_another_contracts_purchase_is_rejected():
    contract, other = factories.billed_contract(), factories.billed_contract()
    bought = purchase(other.pk, 10_000)
    assert refund(contract.pk, bought.pk, 100).reason_code == "purchase_unknown"


def test_a_refund_of_a_rejected_purchase_is_rejected():
    contract = factories.billed_contract(credit_limit=100)
    rejected = purchase(contract.pk, 1_000)
    assert refund(contract.pk, rejected.pk, 100).reason_code == "purchase_unknown"


# --- counted once, recorded always -----------------------------------------------------------


def test_the_same_booking_cannot_be_accepted_twice_on_a_contract():
    contract = factories.billed_contract()
    purchase(contract.pk, 1_000, external_ref="BKG-42")
    with pytest.raises(DomainError) as refused:
        purchase(contract.pk, 1_000, external_ref="BKG-42")
    assert refused.value.code == "duplicate_external_ref"
    assert balance(contract) == 1_000


def test_a_rejected_booking_can_be_submitted_again_once_it_fits():
    contract = factories.billed_contract(credit_limit=1_000)
    assert purchase(contract.pk, 2_000, external_ref="BKG-7").status == "rejected"
    assert purchase(contract.pk, 1_000, external_ref="BKG-7").status == "accepted"


def test_each_decision_publishes_its_event():
    contract = factories.billed_contract(credit_limit=10_000)
    bought = purchase(contract.pk, 10_000)
    refund(contract.pk, bought.pk, 1_000)
    purchase(contract.pk, 5_000)
    types = list(
        OutboxEvent.objects.filter(topic="boissipay.billing.v1")
        .order_by("position")
        .values_list("event_type", flat=True)
    )
    assert types == ["billing.operation.accepted", "billing.operation.refunded", "billing.operation.rejected"]


def test_payments_records_a_pending_item_for_each_accepted_operation_only():
    contract = factories.billed_contract(credit_limit=10_000)
    bought = purchase(contract.pk, 10_000)
    given_back = refund(contract.pk, bought.pk, 1_000)
    purchase(contract.pk, 5_000)  # rejected
    items = {item.operation_id: (item.amount, item.status) for item in PaymentItem.objects.all()}
    assert items == {bought.pk: (10_000, "pending"), given_back.pk: (-1_000, "pending")}
