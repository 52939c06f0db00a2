"""Every answer under /api/ is problem+json: wrong methods, unknown paths, whatever DEBUG says."""

import json
import uuid

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from boissipay.api.auth import SCOPES
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def key():
    _, raw = factories.api_key(*SCOPES)
    return {"HTTP_AUTHORIZATION": f"Api-Key {raw}"}


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    return body


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("delete", "/api/v1/contracts/{id}", {"GET"}),
        ("put", "/api/v1/customers/{id}", {"GET"}),
        ("patch", "/api/v1/operations", {"POST"}),
    ],
)
def test_a_method_the_route_does_not_have_is_a_405_with_allow_even_with_every_scope(client, key, method, path, allowed):
    response = getattr(client, method)(path.format(id=uuid.uuid4()), **key)
    assert_problem(response, 405, "method_not_allowed")
    assert allowed <= {verb.strip() for verb in response["Allow"].split(",")}
    assert method.upper() not in response["Allow"]


def test_a_method_the_route_has_still_needs_its_scope(client):
    _, raw = factories.api_key("contracts:read")
    response = client.post(
        "/api/v1/customers", {}, content_type="application/json", HTTP_AUTHORIZATION=f"Api-Key {raw}"
    )
    assert_problem(response, 403, "forbidden")


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize(
    "path",
    ["/api/v1/contracts/not-a-uuid", "/api/v1/no-such-thing", "/api/nothing/here", "/api/schema/nope.yaml"],
)
def test_unknown_api_paths_are_problem_json_404_whatever_debug_says(client, key, settings, debug, path):
    settings.DEBUG = debug
    assert_problem(client.get(path, **key), 404, "not_found")


def test_outside_the_api_a_404_stays_a_page(client, settings):
    settings.DEBUG = False
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize("method", ["post", "patch", "put", "delete"])
def test_a_write_to_an_unknown_api_path_is_a_404_problem_not_a_csrf_page(key, method):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = getattr(client, method)("/api/v1/contracts/null,null", "{}", content_type="application/json", **key)
    assert_problem(response, 404, "not_found")


# --- hostile bodies ----------------------------------------------------------------------

JSON_ENDPOINTS = ["/api/v1/customers", "/api/v1/contracts", "/api/v1/operations", "/api/v1/payments/webhook"]


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize("body", ["[" * 50_000, '{"a":' * 50_000, "[" * 33 + "]" * 33])
def test_a_deeply_nested_body_is_a_400_problem_not_a_500(client, key, path, body):
    response = client.post(path, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="deep", **key)
    assert response.status_code in (400, 401)  # the webhook checks its signature first
    assert response["Content-Type"] == "application/problem+json"


def test_nesting_within_the_limit_is_parsed():
    from boissipay.api.parsers import loads_checked

    assert loads_checked("[" * 32 + "]" * 32) is not None
    assert loads_checked('{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}') == {"a": "[" * 40}


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
        max_leaves=12,
    ),
    st.booleans(),
)
def test_the_parser_refuses_exactly_the_bodies_holding_a_control_character(data, ascii_only):
    """Its shortcuts (no walk without a backslash or a DEL, no depth scan with few
    brackets) change nothing: same answer as walking every text and key."""
    from rest_framework.exceptions import ValidationError

    from boissipay.api.parsers import control_character_paths, loads_checked

    text = json.dumps(data, ensure_ascii=ascii_only)
    refused = control_character_paths(json.loads(text))
    try:
        loads_checked(text)
    except ValidationError:
        assert refused
    else:
        assert not refused


@pytest.mark.parametrize("character", ["\x00", "\x1b", "\x07", "\x7f", "\x0b"])
def test_control_characters_in_any_text_are_a_400_and_nothing_is_stored(client, key, character):
    from billing.models import Operation

    contract = factories.billed_contract()
    body = {
        "contract_id": str(contract.pk),
        "type": "purchase",
        "external_ref": "BKG-CTRL",
        "currency": "EUR",
        "cost_centre": f"CC{character}1",
        "orders": [{"reference": "O1", "items": [{"label": "x", "quantity": 1, "unit_amount": 100, "vat_rate": "0"}]}],
    }
    response = client.post(
        "/api/v1/operations", json.dumps(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY="ctrl", **key
    )
    problem = assert_problem(response, 400, "validation_error")
    assert problem["errors"][0]["field"] == "cost_centre"
    assert not Operation.objects.exists()


def test_tab_and_new_lines_stay_accepted_in_multi_line_text(client, key):
    body = {
        "legal_name": "CSE Tab\tCo",
        "siren": factories.siren_number(),
        "billing_email": "compta@cse.example",
        "billing_address": "1 rue de la Paix\r\n75002 Paris",
    }
    response = client.post("/api/v1/customers", json.dumps(body), content_type="application/json", **key)
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/contracts/{id}/subscribers/%00", 404, "not_found"),
        ("/api/v1/contracts/{id}/subscribers/a%00b", 404, "not_found"),
        ("/api/v1/contracts/{id}/subscribers/%1b", 404, "not_found"),
        ("/api/v1/contracts?status=%00", 400, "bad_request"),
    ],
)
def test_a_control_character_in_the_path_or_query_is_a_404_or_a_400_not_a_500(client, key, path, status, code):
    contract = factories.billed_contract()
    response = client.delete(path.format(id=contract.pk), **key)
    assert_problem(response, status, code)


# --- guessing ---------------------------------------------------------------------------------


def test_bad_api_keys_from_one_address_are_throttled_with_retry_after_and_a_good_key_too(client, settings, key):
    settings.API_KEY_FAILURE_LIMIT = 5
    for attempt in range(5):
        answer = client.get("/api/v1/contracts", HTTP_AUTHORIZATION=f"Api-Key bp_wrong{attempt}")
        assert answer.status_code == 401

    locked = client.get("/api/v1/contracts", HTTP_AUTHORIZATION="Api-Key bp_wrong-again")
    problem = assert_problem(locked, 429, "throttled")
    assert 1 <= int(locked["Retry-After"]) <= settings.API_KEY_FAILURE_WINDOW_SECONDS
    assert "Too many bad API keys" in problem["detail"]
    assert client.get("/api/v1/contracts", **key).status_code == 429  # the address is locked out
    elsewhere = client.get("/api/v1/contracts", REMOTE_ADDR="192.0.2.10", **key)
    assert elsewhere.status_code == 200


def test_failed_admin_logins_lock_the_address_out_even_for_the_right_password(client, settings, django_user_model):
    settings.AXES_FAILURE_LIMIT = 3
    django_user_model.objects.create_superuser("staff", "staff@boissipay.example", "a long passphrase 42")
    for _ in range(3):
        wrong = client.post("/admin/login/?next=/admin/", {"username": "staff", "password": "admin"})
        assert wrong.status_code in (200, 429)

    right = client.post("/admin/login/?next=/admin/", {"username": "staff", "password": "a long passphrase 42"})

    assert right.status_code == 429
    assert int(right["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())
    assert "_auth_user_id" not in client.session


def test_a_right_admin_login_works_under_the_limit(client, django_user_model):
    django_user_model.objects.create_superuser("staff", "staff@boissipay.example", "a long passphrase 42")
    client.post("/admin/login/?next=/admin/", {"username": "staff", "password": "wrong"})
    response = client.post("/admin/login/?next=/admin/", {"username": "staff", "password": "a long passphrase 42"})
    assert response.status_code == 302
    assert "_auth_user_id" in client.session


def test_back_office_passwords_follow_django_s_validators():
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    for weak in ("admin", "password1234", "123456789012"):
        with pytest.raises(ValidationError):
            validate_password(weak)
    validate_password("correct horse battery staple")


@pytest.mark.parametrize("body", ["null", "[]", '"revoke"', "1"])
def test_a_body_that_is_not_an_object_is_a_400_and_changes_nothing(client, key, body):
    from contracts.models import Mandate

    contract = factories.billed_contract()
    response = client.post(
        f"/api/v1/contracts/{contract.pk}/mandate/revoke", body, content_type="application/json", **key
    )
    assert_problem(response, 400, "validation_error")
    assert Mandate.objects.get(contract_id=contract.pk).status == "active"


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["", "0", "-1", "x", "1.5"])
def test_a_page_that_is_not_a_positive_integer_is_a_400_problem(page):
    from rest_framework.test import APIClient

    _, key = factories.api_key("invoices:read")
    response = APIClient(HTTP_AUTHORIZATION=f"Api-Key {key}").get(f"/api/v1/invoices?page={page}")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert "page" in response.content.decode()
