"""The operations API, held to openapi/billing.yaml by the test client."""

import json
import uuid

import pytest

from billing.models import Operation, OutOfScopeAttempt
from boissipay.models import OutboxEvent
from contracts import services as contracts
from payments.models import PaymentItem
from tests import factories
from tests.conftest import post_json
from tests.factories import delivered

pytestmark = pytest.mark.django_db

OPERATIONS = "/api/v1/operations"


def purchase_body(contract, *, unit_amount=10_000, vat_rate="20", **overrides) -> dict:
    body = {
        "contract_id": str(contract.pk),
        "type": "purchase",
        "external_ref": f"BKG-{uuid.uuid4().hex[:10]}",
        "purchase_order": "PO-2026-118",
        "cost_centre": "CC-SALES",
        "currency": "EUR",
        "orders": [
            {
                "reference": "ORD-1",
                "items": [{"label": "Paris → Nice", "quantity": 2, "unit_amount": unit_amount, "vat_rate": vat_rate}],
            }
        ],
    }
    body.update(overrides)
    return body


def submit(client, body, key=None):
    with delivered():
        return post_json(client, OPERATIONS, body, HTTP_IDEMPOTENCY_KEY=key or uuid.uuid4().hex)


@pytest.fixture
def contract():
    return factories.billed_contract(credit_limit=100_000)


def test_an_accepted_purchase_answers_201_with_its_computed_amount_and_the_balance_after(api, contract):
    response = submit(api, purchase_body(contract, unit_amount=10_000, vat_rate="20"))
    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["reason_code"], body["settlement"]) == ("accepted", None, "unbilled")
    assert (body["amount_excl_tax"], body["vat_amount"], body["amount"]) == (20_000, 4_000, 24_000)
    assert body["vat_breakdown"] == [{"rate": "20.00", "base": 20_000, "vat": 4_000}]
    assert body["balance_after"] == 24_000
    assert (body["purchase_order"], body["cost_centre"]) == ("PO-2026-118", "CC-SALES")


def test_a_client_cannot_set_the_amount(api, contract):
    response = submit(api, {**purchase_body(contract), "amount": 1})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "amount"


def test_a_rejected_purchase_answers_422_with_its_reason_and_is_readable_afterwards(api, contract):
    response = submit(api, purchase_body(contract, unit_amount=60_000, vat_rate="0"))
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "credit_limit_exceeded"
    assert body["operation"]["status"] == "rejected"
    stored = api.get(f"{OPERATIONS}/{body['operation']['id']}")
    assert stored.status_code == 200
    assert stored.json()["reason_code"] == "credit_limit_exceeded"


def test_a_purchase_on_an_unknown_contract_is_rejected_with_contract_unknown(api):
    body = purchase_body(factories.billed_contract())
    body["contract_id"] = str(uuid.uuid4())
    response = submit(api, body)
    assert (response.status_code, response.json()["code"]) == (422, "contract_unknown")


def test_a_refund_is_accepted_and_lowers_the_balance(api, contract):
    bought = submit(api, purchase_body(contract, unit_amount=10_000, vat_rate="0")).json()
    body = purchase_body(contract, unit_amount=5_000, vat_rate="0", type="refund", refund_of=bought["id"])
    response = submit(api, body)
    assert response.status_code == 201
    assert (response.json()["type"], response.json()["balance_after"]) == ("refund", 10_000)


def test_a_refund_must_name_its_purchase(api, contract):
    response = submit(api, purchase_body(contract, type="refund"))
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "refund_of"


# --- idempotency -----------------------------------------------------------------------------


def test_the_same_key_and_body_give_back_the_first_answer_and_create_nothing(api, contract):
    body = purchase_body(contract)
    first = submit(api, body, key="retry-1")
    again = submit(api, body, key="retry-1")
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again["Idempotent-Replayed"] == "true"
    assert Operation.objects.count() == 1
    assert PaymentItem.objects.count() == 1


def test_a_replayed_rejection_is_the_same_rejection(api, contract):
    body = purchase_body(contract, unit_amount=90_000)
    first = submit(api, body, key="retry-2")
    again = submit(api, body, key="retry-2")
    assert (first.status_code, again.status_code) == (422, 422)
    assert again.json() == first.json()
    assert again["Content-Type"] == "application/problem+json"
    assert Operation.objects.count() == 1


def test_the_same_key_with_another_body_is_refused(api, contract):
    submit(api, purchase_body(contract), key="retry-3")
    response = submit(api, purchase_body(contract, unit_amount=1), key="retry-3")
    assert (response.status_code, response.json()["code"]) == (409, "idempotency_key_reused")
    assert Operation.objects.count() == 1


def test_an_operation_without_an_idempotency_key_is_refused(api, contract):
    response = post_json(api, OPERATIONS, purchase_body(contract))
    assert (response.status_code, response.json()["code"]) == (400, "idempotency_key_required")
    assert Operation.objects.count() == 0


def test_the_same_booking_under_a_new_key_is_a_conflict(api, contract):
    body = purchase_body(contract)
    submit(api, body)
    response = submit(api, body)
    assert (response.status_code, response.json()["code"]) == (409, "duplicate_external_ref")
    assert Operation.objects.count() == 1


def test_a_booking_resent_under_a_new_key_at_the_credit_limit_is_a_duplicate_not_a_rejection(api, contract):
    body = purchase_body(contract, unit_amount=50_000, vat_rate="0")  # 100,000: the whole limit
    assert submit(api, body).status_code == 201

    response = submit(api, body, key="a-new-key")

    assert (response.status_code, response.json()["code"]) == (409, "duplicate_external_ref")
    assert list(Operation.objects.values_list("status", flat=True)) == ["accepted"]


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("orders", 0, "items", 0, "unit_amount"), 100.5),
        (("orders", 0, "items", 0, "unit_amount"), "100"),
        (("orders", 0, "items", 0, "unit_amount"), -1),
        (("orders", 0, "items", 0, "quantity"), 0),
        (("orders", 0, "items", 0, "vat_rate"), 20),
        (("orders", 0, "items", 0, "vat_rate"), "101"),
        (("orders",), []),
        (("currency",), "eur"),
        (("type",), "gift"),
        (("contract_id",), "CTR-1"),
    ],
    ids=[
        "float amount",
        "amount as text",
        "negative amount",
        "zero quantity",
        "vat rate as number",
        "vat over 100",
        "no orders",
        "lowercase currency",
        "unknown type",
        "not a uuid",
    ],
)
def test_invalid_operations_get_a_400_problem_and_change_nothing(api, contract, path, value):
    body = purchase_body(contract)
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    response = submit(api, body)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert Operation.objects.count() == 0


def test_malformed_json_gets_a_400_problem(api):
    response = api.post(OPERATIONS, data="{", content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    assert (response.status_code, response.json()["code"]) == (400, "malformed_request")


def test_an_all_free_operation_is_refused(api, contract):
    response = submit(api, purchase_body(contract, unit_amount=0))
    assert response.status_code == 400


# --- reading ---------------------------------------------------------------------------------


def test_the_balance_shows_limit_outstanding_and_available(api, contract):
    submit(api, purchase_body(contract, unit_amount=15_000, vat_rate="0"))
    response = api.get(f"/api/v1/contracts/{contract.pk}/balance")
    assert response.status_code == 200
    assert response.json() == {
        "contract_id": str(contract.pk),
        "currency": "EUR",
        "credit_limit": 100_000,
        "outstanding": 30_000,
        "available": 70_000,
        "unbilled": 30_000,
        "invoiced_unpaid": 0,
    }


def test_a_contracts_operations_are_listed_newest_first_and_filtered(api, contract):
    bought = submit(api, purchase_body(contract, unit_amount=1_000)).json()
    submit(api, purchase_body(contract, unit_amount=90_000))  # rejected
    submit(api, purchase_body(contract, unit_amount=100, type="refund", refund_of=bought["id"]))
    listing = api.get(f"/api/v1/contracts/{contract.pk}/operations").json()
    assert [op["type"] for op in listing["results"]] == ["refund", "purchase", "purchase"]
    rejected = api.get(f"/api/v1/contracts/{contract.pk}/operations?status=rejected").json()
    assert [op["reason_code"] for op in rejected["results"]] == ["credit_limit_exceeded"]
    refunds = api.get(f"/api/v1/contracts/{contract.pk}/operations?type=refund").json()
    assert refunds["count"] == 1


def test_the_period_filter_takes_the_paris_month(api, contract):
    submit(api, purchase_body(contract, unit_amount=1_000))
    this_month = Operation.objects.get().decided_at.astimezone(factories_paris()).strftime("%Y-%m")
    assert api.get(f"/api/v1/contracts/{contract.pk}/operations?period={this_month}").json()["count"] == 1
    assert api.get(f"/api/v1/contracts/{contract.pk}/operations?period=2020-01").json()["count"] == 0
    assert api.get(f"/api/v1/contracts/{contract.pk}/operations?period=2026-13").status_code == 400


def factories_paris():
    from boissipay.clock import PARIS

    return PARIS


# --- who may see and do what -----------------------------------------------------------------


def test_reading_needs_the_operations_read_scope(make_client, contract):
    client = make_client("operations:write")
    assert client.get(f"/api/v1/contracts/{contract.pk}/balance").status_code == 403


def test_submitting_needs_the_operations_write_scope(make_client, contract):
    client = make_client("operations:read")
    assert submit(client, purchase_body(contract)).status_code == 403
    assert Operation.objects.count() == 0


def test_a_key_without_credentials_is_refused(client, contract):
    response = client.get(f"/api/v1/contracts/{contract.pk}/balance")
    assert response.status_code == 401


def test_a_customer_restricted_key_sees_only_its_customers_contracts_and_operations(make_client, api, contract):
    other = factories.billed_contract()
    foreign = submit(api, purchase_body(other)).json()
    mine = make_client("operations:read", "operations:write", customer_id=contract.customer_id)
    assert mine.get(f"/api/v1/contracts/{other.pk}/balance").status_code == 404
    assert mine.get(f"/api/v1/contracts/{other.pk}/operations").status_code == 404
    assert mine.get(f"{OPERATIONS}/{foreign['id']}").status_code == 404
    response = submit(mine, purchase_body(other))
    assert (response.status_code, response.json()["code"]) == (422, "contract_unknown")
    assert submit(mine, purchase_body(contract)).status_code == 201


def test_a_restricted_key_writes_nothing_into_another_customers_contract_history(make_client, api, contract):
    other = factories.billed_contract()
    mine = make_client("operations:read", "operations:write", customer_id=contract.customer_id)
    outbox_before = OutboxEvent.objects.count()

    response = submit(mine, purchase_body(other, external_ref="BKG-FOREIGN"))

    assert (response.status_code, response.json()["code"]) == (422, "contract_unknown")
    assert api.get(f"/api/v1/contracts/{other.pk}/operations").json()["count"] == 0
    assert not Operation.objects.filter(contract_id=other.pk).exists()
    assert mine.get(f"{OPERATIONS}/{response.json()['operation']['id']}").status_code == 404
    assert OutboxEvent.objects.count() == outbox_before  # nothing published in that contract's stream
    attempt = OutOfScopeAttempt.objects.get()  # kept for staff only
    assert (attempt.id, attempt.contract_id, attempt.customer_id, attempt.external_ref) == (
        uuid.UUID(response.json()["operation"]["id"]),
        other.pk,
        contract.customer_id,
        "BKG-FOREIGN",
    )


def test_a_restricted_key_on_a_contract_nobody_knows_is_answered_like_a_foreign_one(make_client, contract):
    mine = make_client("operations:read", "operations:write", customer_id=contract.customer_id)
    unknown_id = uuid.uuid4()
    response = submit(mine, {**purchase_body(contract), "contract_id": str(unknown_id)})
    assert (response.status_code, response.json()["code"]) == (422, "contract_unknown")
    assert not Operation.objects.filter(contract_id=unknown_id).exists()
    assert OutOfScopeAttempt.objects.filter(contract_id=unknown_id).count() == 1


def test_an_unknown_operation_is_a_404_problem(api):
    response = api.get(f"{OPERATIONS}/{uuid.uuid4()}")
    assert (response.status_code, response.json()["code"]) == (404, "operation_unknown")


def test_a_suspended_contract_rejects_purchases_through_the_api(api, contract):
    with delivered():
        contracts.suspend_contract(contract_id=contract.pk, reason="Unpaid invoice")
    response = submit(api, purchase_body(contract))
    assert (response.status_code, response.json()["code"]) == (422, "contract_not_active")
    assert json.loads(response.content)["operation"]["status"] == "rejected"


def test_the_answer_to_a_purchase_is_what_the_operation_serializer_gives(db):
    from decimal import Decimal

    from billing.api.serializers import OperationSerializer, operation_body
    from billing.services import submit_operation

    contract = factories.billed_contract(credit_limit=50_000)
    with delivered():
        contracts.register_subscriber(contract_id=contract.pk, external_ref="EMP-9", display_name="Ana")
    mixed = (
        factories.item(4_500, quantity=2, vat_rate="10", label="Paris → Lyon"),
        factories.item(1_234, vat_rate="5.5", label="Navette"),
    )
    decided = [
        submit_operation(request=factories.operation_request(contract.pk, *mixed, subscriber_ref="EMP-9")),
        submit_operation(
            request=factories.operation_request(contract.pk, factories.item(99_999), subscriber_ref="EMP-9")
        ),
        submit_operation(request=factories.operation_request(uuid.uuid4())),
    ]
    accepted = decided[0]
    decided.append(
        submit_operation(
            request=factories.operation_request(
                contract.pk, factories.item(1_000), type="refund", refund_of=accepted.pk, subscriber_ref="EMP-9"
            )
        )
    )
    assert [operation.status for operation in decided] == ["accepted", "rejected", "rejected", "accepted"]
    for operation in decided:
        # As answered (the instance the service built) and as read back from the database.
        assert operation_body(operation) == OperationSerializer(operation).data
        stored = Operation.objects.get(pk=operation.pk)
        assert operation_body(stored) == OperationSerializer(stored).data
    rates = {Decimal(line["rate"]) for line in operation_body(accepted)["vat_breakdown"]}
    assert rates == {Decimal(10), Decimal("5.5")}
