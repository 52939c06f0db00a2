"""Every answer under /api/ is problem+json: wrong methods, unknown paths, whatever DEBUG says."""

import uuid

import pytest

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
