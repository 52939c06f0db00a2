"""The contracts API as client systems use it. Every response is also checked against
openapi/contracts.yaml by the test client."""

import datetime as dt
import json

import pytest

from boissipay.models import OutboxEvent
from contracts.models import Contract, Customer
from tests import factories
from tests.conftest import post_json

pytestmark = pytest.mark.django_db

CUSTOMER = {
    "legal_name": "CSE Airbus Toulouse",
    "siren": "383474814",
    "vat_number": "FR89383474814",
    "billing_email": "compta@cse-airbus.example",
    "billing_address": "1 rond-point Maurice Bellonte\n31700 Blagnac",
    "country": "FR",
}


def contract_body(customer_id, **overrides):
    body = {
        "customer_id": str(customer_id),
        "reference": "CTR-API-1",
        "currency": "EUR",
        "credit_limit": 5_000_000,
        "starts_on": factories.years_from(factories.today(), -1).isoformat(),
        "ends_on": factories.years_from(factories.today(), 2).isoformat(),
        "payment_terms_days": 30,
        "mandate": {
            "reference": "UMR-API-1",
            "iban": factories.IBAN,
            "bic": factories.BIC,
            "signed_on": factories.years_from(factories.today(), -1).isoformat(),
        },
    }
    body.update(overrides)
    return body


def assert_problem(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code
    return response.json()


# --- a contract's life, end to end -----------------------------------------------------


def test_a_client_system_runs_a_contract_through_its_life(make_client):
    api = make_client("contracts:read", "contracts:write")
    customer = post_json(api, "/api/v1/customers", CUSTOMER)
    assert customer.status_code == 201
    customer_id = customer.json()["id"]

    created = post_json(api, "/api/v1/contracts", contract_body(customer_id))
    assert created.status_code == 201
    contract = created.json()
    assert contract["status"] == "active"
    assert contract["credit_limit"] == 5_000_000
    assert contract["mandate"]["iban_masked"] == "FR14*******************2606"
    assert factories.IBAN not in created.content.decode()
    url = f"/api/v1/contracts/{contract['id']}"

    assert post_json(api, f"{url}/subscribers", {"external_ref": "EMP-1", "display_name": "Ann"}).status_code == 201
    assert api.get(url).json()["subscribers"][0]["external_ref"] == "EMP-1"

    suspended = post_json(api, f"{url}/suspend", {"reason": "late payment"})
    assert suspended.json()["status"] == "suspended"
    assert post_json(api, f"{url}/reactivate", {}).json()["status"] == "active"

    amended = api.patch(url, data=json.dumps({"credit_limit": 6_000_000}), content_type="application/json")
    assert amended.json()["credit_limit"] == 6_000_000

    renewed = api.put(
        f"{url}/mandate",
        data=json.dumps({"reference": "UMR-API-2", "iban": factories.OTHER_IBAN, "signed_on": "2026-06-01"}),
        content_type="application/json",
    )
    assert renewed.json()["mandate"]["reference"] == "UMR-API-2"
    assert post_json(api, f"{url}/mandate/revoke", {"reason": "debtor"}).json()["mandate"]["status"] == "revoked"
    assert api.delete(f"{url}/subscribers/EMP-1").status_code == 204

    cancelled = post_json(api, f"{url}/cancel", {"reason": "end of relationship"})
    assert cancelled.json()["status"] == "cancelled"
    assert_problem(post_json(api, f"{url}/reactivate", {}), 409, "contract_cancelled")

    types = list(OutboxEvent.objects.filter(aggregate_id=contract["id"]).values_list("event_type", flat=True))
    assert types == [
        "contracts.contract.subscribed",
        "contracts.subscriber.registered",
        "contracts.contract.suspended",
        "contracts.contract.reactivated",
        "contracts.contract.amended",
        "contracts.mandate.renewed",
        "contracts.mandate.revoked",
        "contracts.subscriber.removed",
        "contracts.contract.cancelled",
    ]


def test_contracts_are_listed_with_filters_and_pagination(api):
    owner = factories.customer()
    factories.contract(customer_obj=owner)
    suspended = factories.contract(customer_obj=owner)
    post_json(api, f"/api/v1/contracts/{suspended.pk}/suspend", {"reason": "x"})
    factories.contract()

    page = api.get(f"/api/v1/contracts?customer={owner.pk}&page_size=1").json()
    assert page["count"] == 2 and len(page["results"]) == 1 and page["next"]
    only_suspended = api.get(f"/api/v1/contracts?customer={owner.pk}&status=suspended").json()
    assert [c["id"] for c in only_suspended["results"]] == [str(suspended.pk)]


def test_an_expired_contract_is_listed_as_expired(api):
    contract = factories.contract(starts_on=dt.date(2020, 1, 1), ends_on=dt.date(2021, 1, 1))
    assert api.get(f"/api/v1/contracts/{contract.pk}").json()["status"] == "expired"
    listed = api.get("/api/v1/contracts?status=expired").json()
    assert [c["id"] for c in listed["results"]] == [str(contract.pk)]


# --- bad input: 400, nothing written ---------------------------------------------------


def test_malformed_json_is_a_400_and_writes_nothing(api):
    response = api.post("/api/v1/customers", data="{not json", content_type="application/json")
    assert_problem(response, 400, "malformed_request")
    assert not Customer.objects.exists()


def test_unknown_fields_are_refused(api):
    body = assert_problem(post_json(api, "/api/v1/customers", {**CUSTOMER, "discount": 10}), 400, "validation_error")
    assert body["errors"] == [{"field": "discount", "code": "unknown_field", "message": "Unknown field."}]
    assert not Customer.objects.exists()


@pytest.mark.parametrize("credit_limit", ["5000", 50.5, True, -1, None])
def test_a_credit_limit_that_is_not_a_non_negative_integer_is_refused(api, credit_limit):
    owner = factories.customer()
    response = post_json(api, "/api/v1/contracts", contract_body(owner.pk, credit_limit=credit_limit))
    body = assert_problem(response, 400, "validation_error")
    assert body["errors"][0]["field"] == "credit_limit"
    assert not Contract.objects.exists()


def test_a_bad_iban_is_a_400_naming_the_field(api):
    owner = factories.customer()
    body = contract_body(owner.pk)
    body["mandate"]["iban"] = "FR7630006000011234567890188"
    problem = assert_problem(post_json(api, "/api/v1/contracts", body), 400, "validation_error")
    assert problem["errors"][0]["field"] == "mandate.iban"  # the full path, as other nested errors
    assert not Contract.objects.exists()


def test_a_bad_siren_is_a_400(api):
    assert_problem(post_json(api, "/api/v1/customers", {**CUSTOMER, "siren": "123456789"}), 400, "validation_error")


def test_an_oversized_body_is_a_400(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = post_json(api, "/api/v1/customers", {**CUSTOMER, "billing_address": "x" * 5000})
    assert_problem(response, 400, "request_too_large")
    assert not Customer.objects.exists()


def test_a_body_that_is_not_an_object_is_refused(api):
    assert_problem(post_json(api, "/api/v1/customers", [1, 2]), 400, "validation_error")


def test_an_empty_amendment_is_refused(api):
    contract = factories.contract()
    response = api.patch(f"/api/v1/contracts/{contract.pk}", data="{}", content_type="application/json")
    assert_problem(response, 400, "validation_error")


def test_a_second_customer_with_the_same_siren_is_a_409(api):
    assert post_json(api, "/api/v1/customers", CUSTOMER).status_code == 201
    assert_problem(post_json(api, "/api/v1/customers", CUSTOMER), 409, "customer_already_exists")


# --- authentication, scopes, customer restriction -------------------------------------


def test_nothing_under_the_api_is_anonymous(client, db):
    for path in ["/api/v1/customers", "/api/v1/contracts", f"/api/v1/contracts/{factories.contract().pk}"]:
        response = client.get(path)
        assert_problem(response, 401, "unauthenticated")
        assert response["WWW-Authenticate"] == "Api-Key"


def test_a_wrong_or_revoked_key_is_refused(make_client, client):
    client.credentials = None
    response = client.get("/api/v1/contracts", HTTP_AUTHORIZATION="Api-Key bp_not-a-key")
    assert_problem(response, 401, "unauthenticated")
    from boissipay import services as platform
    from boissipay.models import ApiKey

    key, raw = factories.api_key("contracts:read")
    platform.revoke_api_key(key_id=key.pk)
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
    assert_problem(client.get("/api/v1/contracts", HTTP_AUTHORIZATION=f"Api-Key {raw}"), 401, "unauthenticated")


def test_a_read_only_key_cannot_write(make_client):
    reader = make_client("contracts:read")
    assert reader.get("/api/v1/contracts").status_code == 200
    assert_problem(post_json(reader, "/api/v1/customers", CUSTOMER), 403, "forbidden")
    assert not Customer.objects.exists()


def test_a_key_without_contract_scopes_cannot_read_contracts(make_client):
    assert_problem(make_client("operations:read").get("/api/v1/contracts"), 403, "forbidden")


def test_a_customer_restricted_key_sees_only_its_customer(make_client):
    mine, theirs = factories.contract(), factories.contract()
    api = make_client("contracts:read", "contracts:write", customer_id=mine.customer_id)

    listed = api.get("/api/v1/contracts").json()
    assert [c["id"] for c in listed["results"]] == [str(mine.pk)]
    assert api.get(f"/api/v1/contracts/{mine.pk}").status_code == 200
    assert_problem(api.get(f"/api/v1/contracts/{theirs.pk}"), 404, "contract_unknown")
    assert_problem(api.get(f"/api/v1/customers/{theirs.customer_id}"), 404, "not_found")
    assert_problem(post_json(api, f"/api/v1/contracts/{theirs.pk}/suspend", {"reason": "x"}), 404, "contract_unknown")
    theirs.refresh_from_db()
    assert theirs.status == "active"
    other_customer_contract = contract_body(theirs.customer_id, reference="CTR-SNEAKY")
    assert_problem(post_json(api, "/api/v1/contracts", other_customer_contract), 404, "customer_unknown")
    assert_problem(post_json(api, "/api/v1/customers", CUSTOMER), 403, "forbidden")


def test_an_unknown_contract_is_a_404(api):
    assert_problem(api.get("/api/v1/contracts/00000000-0000-0000-0000-000000000000"), 404, "contract_unknown")


def test_an_unknown_api_path_is_a_problem_404(client, db):
    _, raw = factories.api_key("contracts:read")
    response = client.get("/api/v1/nothing-here", HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


# --- idempotency ----------------------------------------------------------------------


def test_a_retried_contract_creation_with_the_same_key_creates_one_contract(api):
    owner = factories.customer()
    body = contract_body(owner.pk)
    first = post_json(api, "/api/v1/contracts", body, HTTP_IDEMPOTENCY_KEY="req-1")
    again = post_json(api, "/api/v1/contracts", body, HTTP_IDEMPOTENCY_KEY="req-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Contract.objects.count() == 1


def test_an_idempotency_key_reused_for_another_body_is_refused(api):
    owner = factories.customer()
    post_json(api, "/api/v1/contracts", contract_body(owner.pk), HTTP_IDEMPOTENCY_KEY="req-2")
    other = contract_body(owner.pk, reference="CTR-OTHER")
    other["mandate"]["reference"] = "UMR-OTHER"
    assert_problem(
        post_json(api, "/api/v1/contracts", other, HTTP_IDEMPOTENCY_KEY="req-2"), 409, "idempotency_key_reused"
    )
    assert Contract.objects.count() == 1


@pytest.mark.parametrize("currency", ["eur", "Eur", "XXX", "XTS", "XAU", "BOV", "ZZZ"])
def test_a_contract_currency_must_be_an_upper_case_iso_4217_currency(api, currency):
    owner = factories.customer()
    problem = assert_problem(
        post_json(api, "/api/v1/contracts", contract_body(owner.pk, currency=currency)), 400, "validation_error"
    )
    assert problem["errors"][0]["field"] == "currency"
    assert not Contract.objects.exists()


def test_a_contract_in_swiss_francs_is_accepted(api):
    owner = factories.customer()
    response = post_json(api, "/api/v1/contracts", contract_body(owner.pk, currency="CHF"))
    assert response.status_code == 201, response.content
