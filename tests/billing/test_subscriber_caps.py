"""Per-traveller caps (issue 16, section 3): a subscriber's purchases of the month
(Europe/Paris) stay within their monthly cap, race-free like the contract's limit;
refunds free it; the cap is set through the contracts API and admin and travels in the
contract events."""

import datetime as dt
import threading

import pytest
import time_machine
from django.db import connection
from rest_framework.test import APIClient

from billing.models import ContractAccount, Operation
from billing.services import submit_operation
from boissipay.clock import PARIS
from boissipay.models import OutboxEvent
from contracts import services as contracts
from tests import factories
from tests.clock import freeze_module_at
from tests.factories import operation_request, settled

_today = freeze_module_at(dt.date(2026, 10, 14))
pytestmark = pytest.mark.django_db(transaction=True)


def capped_contract(cap=10_000):
    contract = factories.contract(credit_limit=1_000_000)
    with factories.delivered():
        contracts.register_subscriber(
            contract_id=contract.pk, external_ref="EMP-1", display_name="Jeanne Martin", monthly_cap=cap
        )
        contracts.register_subscriber(contract_id=contract.pk, external_ref="EMP-2", display_name="Paul Durand")
    settled()
    return contract


def buy(contract, amount, subscriber="EMP-1", at=None):
    request = operation_request(contract.pk, factories.item(amount), subscriber_ref=subscriber)
    if at is None:
        operation = submit_operation(request=request)
    else:
        with time_machine.travel(at, tick=False):
            operation = submit_operation(request=request)
    settled()
    return operation


def test_a_subscriber_spends_up_to_their_cap_in_a_paris_month_and_no_further():
    contract = capped_contract(10_000)
    assert ContractAccount.objects.get(pk=contract.pk).subscriber_caps == {"EMP-1": 10_000}

    assert buy(contract, 6_000).status == "accepted"
    refused = buy(contract, 5_000)
    assert (refused.status, refused.reason_code) == ("rejected", "subscriber_limit_exceeded")
    assert "spent 6000 this month" in refused.reason_detail and "available 4000" in refused.reason_detail
    assert buy(contract, 4_000).status == "accepted"  # exactly the cap
    assert buy(contract, 50_000, subscriber="EMP-2").status == "accepted"  # no cap: only the contract's limit
    assert buy(contract, 1, at=dt.datetime(2026, 10, 31, 23, 30, tzinfo=PARIS)).reason_code == (
        "subscriber_limit_exceeded"
    )
    # 1 November 00:30 in Paris is still 31 October in UTC: a new month all the same.
    assert buy(contract, 10_000, at=dt.datetime(2026, 11, 1, 0, 30, tzinfo=PARIS)).status == "accepted"


def test_a_refund_frees_the_cap_and_a_cap_changed_mid_month_counts_what_was_spent():
    contract = capped_contract(10_000)
    purchase = buy(contract, 8_000)
    assert buy(contract, 3_000).reason_code == "subscriber_limit_exceeded"

    refund = submit_operation(
        request=operation_request(
            contract.pk, factories.item(5_000), type="refund", refund_of=purchase.pk, subscriber_ref="EMP-1"
        )
    )
    settled()
    assert refund.status == "accepted"
    assert buy(contract, 7_000).status == "accepted"  # 8,000 - 5,000 + 7,000 = 10,000

    with factories.delivered():
        contracts.set_subscriber_cap(contract_id=contract.pk, external_ref="EMP-1", monthly_cap=12_000)
    settled()
    assert buy(contract, 2_001).reason_code == "subscriber_limit_exceeded"
    assert buy(contract, 2_000).status == "accepted"
    with factories.delivered():
        contracts.set_subscriber_cap(contract_id=contract.pk, external_ref="EMP-1", monthly_cap=None)
    settled()
    assert ContractAccount.objects.get(pk=contract.pk).subscriber_caps == {}
    assert buy(contract, 100_000).status == "accepted"


def test_concurrent_purchases_of_one_subscriber_never_exceed_the_cap():
    contract = capped_contract(10_000)
    purchases, amount = 20, 3_000  # 60,000 asked for; 3 fit
    barrier = threading.Barrier(purchases)
    outcomes, errors = [], []

    def purchase(n):
        try:
            barrier.wait()
            request = operation_request(
                contract.pk, factories.item(amount), subscriber_ref="EMP-1", external_ref=f"CAP-{n}"
            )
            outcomes.append(submit_operation(request=request).status)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=purchase, args=(n,)) for n in range(purchases)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    settled()

    assert errors == []
    assert outcomes.count("accepted") == 10_000 // amount
    spent = Operation.objects.filter(contract_id=contract.pk, subscriber_ref="EMP-1", status="accepted")
    assert sum(op.amount for op in spent) == 9_000
    assert set(
        Operation.objects.filter(contract_id=contract.pk, status="rejected").values_list("reason_code", flat=True)
    ) == {"subscriber_limit_exceeded"}


def test_staff_set_a_cap_through_the_api_and_the_admin(admin_client, admin_user):
    contract = capped_contract(10_000)
    _, key = factories.api_key("contracts:write", "contracts:read")
    api = APIClient(HTTP_AUTHORIZATION=f"Api-Key {key}")

    registered = api.post(
        f"/api/v1/contracts/{contract.pk}/subscribers",
        {"external_ref": "EMP-3", "display_name": "Lou Petit", "monthly_cap": 50_000},
        format="json",
    )
    assert (registered.status_code, registered.json()["monthly_cap"]) == (201, 50_000)
    changed = api.patch(f"/api/v1/contracts/{contract.pk}/subscribers/EMP-3", {"monthly_cap": 20_000}, format="json")
    assert (changed.status_code, changed.json()["monthly_cap"]) == (200, 20_000)
    for bad in ({"monthly_cap": 0}, {"monthly_cap": "lots"}, {}, {"monthly_cap": 1, "extra": 1}):
        answer = api.patch(f"/api/v1/contracts/{contract.pk}/subscribers/EMP-3", bad, format="json")
        assert answer.status_code == 400 and answer["Content-Type"] == "application/problem+json"
    assert (
        api.patch(f"/api/v1/contracts/{contract.pk}/subscribers/NOPE", {"monthly_cap": 1}, format="json").status_code
        == 404
    )
    settled()
    event = OutboxEvent.objects.filter(event_type="contracts.subscriber.cap_changed").latest("position")
    assert event.payload["subscriber"] == {"external_ref": "EMP-3", "display_name": "Lou Petit", "monthly_cap": 20_000}
    assert ContractAccount.objects.get(pk=contract.pk).subscriber_caps == {"EMP-1": 10_000, "EMP-3": 20_000}

    subscriber = contract.subscribers.get(external_ref="EMP-1")
    page = admin_client.get(f"/admin/contracts/subscriber/{subscriber.pk}/change/")
    assert page.status_code == 200
    saved = admin_client.post(f"/admin/contracts/subscriber/{subscriber.pk}/change/", {"monthly_cap": "25000"})
    assert saved.status_code == 302
    settled()
    assert ContractAccount.objects.get(pk=contract.pk).subscriber_caps["EMP-1"] == 25_000
    assert "250,00" in admin_client.get("/admin/contracts/subscriber/").content.decode()
