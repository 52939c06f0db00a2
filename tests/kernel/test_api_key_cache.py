"""Each web process keeps the API keys it has seen for API_KEY_CACHE_SECONDS, so that a
request does not look its key up: a revoked key is refused by every process within that
time, never later."""

import datetime as dt

from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from boissipay import services as platform
from boissipay.api import auth
from boissipay.models import ApiKey
from tests import factories


class Clock:
    def __init__(self):
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def client_with(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return client


def test_a_revoked_key_is_refused_once_the_cache_time_has_passed(db, settings, monkeypatch):
    settings.API_KEY_CACHE_SECONDS = 30
    clock = Clock()
    monkeypatch.setattr(auth.api_keys, "clock", clock)
    key, raw = factories.api_key("contracts:read")
    client = client_with(raw)
    # Given a key this process has used (and so keeps) ...
    assert client.get("/api/v1/contracts").status_code == 200

    # ... when it is revoked (from the admin, in another process) ...
    platform.revoke_api_key(key_id=key.pk)
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None

    # ... then this process may still take it for the documented time, and no longer.
    clock.now += 29
    assert client.get("/api/v1/contracts").status_code == 200
    clock.now += 2
    response = client.get("/api/v1/contracts")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def test_a_kept_key_is_not_looked_up_again(db, settings, monkeypatch):
    settings.API_KEY_CACHE_SECONDS = 30
    monkeypatch.setattr(auth.api_keys, "clock", Clock())
    _, raw = factories.api_key("contracts:read")
    client = client_with(raw)
    with CaptureQueriesContext(connection) as first:
        assert client.get("/api/v1/customers").status_code == 200
    with CaptureQueriesContext(connection) as second:
        assert client.get("/api/v1/customers").status_code == 200
    assert sum(ApiKey._meta.db_table in query["sql"] for query in first.captured_queries) == 1
    assert sum(ApiKey._meta.db_table in query["sql"] for query in second.captured_queries) == 0


def test_an_unknown_key_is_never_kept_and_each_try_counts_as_a_failure(db, settings):
    settings.API_KEY_FAILURE_LIMIT = 3
    client = client_with("bp_not-a-key")
    assert [client.get("/api/v1/contracts").status_code for _ in range(4)] == [401, 401, 401, 429]


def test_the_cache_is_bounded(monkeypatch):
    cache = auth.ApiKeyCache(clock=Clock())
    monkeypatch.setattr(auth.ApiKeyCache, "MAX_ENTRIES", 3)
    client = auth.Client(key_id="k", name="n", scopes=frozenset(), customer_id=None)
    for n in range(4):
        cache.put(f"digest-{n}", client, None)
    assert cache.get("digest-0") is None and cache.get("digest-3") is not None


def test_a_key_over_its_rate_limit_gets_a_429_problem_with_retry_after_and_others_go_on(db, settings):
    from tests.clock import frozen_at

    settings.API_RATE_LIMIT_PER_MINUTE = 3
    _, busy = factories.api_key("contracts:read")
    _, other = factories.api_key("contracts:read")
    busy_client, other_client = client_with(busy), client_with(other)
    with frozen_at(dt.date(2026, 6, 15), 10):  # at the start of a minute: the window does not end mid-test
        answers = [busy_client.get("/api/v1/contracts") for _ in range(4)]
        assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
        refused = answers[-1]
        assert refused["Content-Type"] == "application/problem+json"
        assert refused.json()["code"] == "throttled"
        assert 1 <= int(refused["Retry-After"]) <= 60
        assert other_client.get("/api/v1/contracts").status_code == 200
