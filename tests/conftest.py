import json

import pytest
from rest_framework.test import APIClient

from boissipay.api.auth import SCOPES
from tests import factories
from tests.openapi_check import validate_response


class ContractCheckedClient(APIClient):
    """An API client whose every response under /api/v1/ must match the OpenAPI documents."""

    def request(self, **kwargs):
        response = super().request(**kwargs)
        path = kwargs["PATH_INFO"]
        if path.startswith("/api/v1/"):
            document = validate_response(
                kwargs["REQUEST_METHOD"],
                path,
                response.status_code,
                response.content,
                response.get("Content-Type", "application/json"),
            )
            assert document is not None, f"{kwargs['REQUEST_METHOD']} {path} is in no OpenAPI document"
        return response


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with no counted failures (bad API keys per address, ...)."""
    from django.core.cache import cache

    from boissipay.api.auth import api_keys

    cache.clear()
    api_keys.clear()
    yield


@pytest.fixture
def make_client(db):
    def make(*scopes: str, customer_id=None) -> ContractCheckedClient:
        _, raw = factories.api_key(*(scopes or SCOPES), customer_id=customer_id)
        client = ContractCheckedClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
        return client

    return make


@pytest.fixture
def api(make_client) -> ContractCheckedClient:
    """A client system with every scope."""
    return make_client()


def post_json(client, path, body, **headers):
    return client.post(path, data=json.dumps(body), content_type="application/json", **headers)


@pytest.fixture(scope="session")
def kafka_broker():
    """The Kafka-protocol broker of the test session: KAFKA_BOOTSTRAP_SERVERS when set
    (Apache Kafka), else an embedded Tansu broker this session owns (so a test may stop
    and restart it)."""
    import os

    from devtools.embedded.kafka import LocalBroker

    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield ExternalBroker(os.environ["KAFKA_BOOTSTRAP_SERVERS"])
        return
    broker = LocalBroker().start()
    yield broker
    broker.stop()


class ExternalBroker:
    process = None

    def __init__(self, servers: str):
        self.bootstrap_servers = servers


@pytest.fixture
def event_dispatcher(transactional_db):
    """The event dispatcher running beside the test, as `make run` runs it: events that
    commit on other threads (a webhook on the live server, say) reach their handlers
    without the test asking. A test waits for it with `factories.settled()`."""
    import threading

    from django.db import connection

    from boissipay.dispatcher import EventDispatcher

    stop = threading.Event()
    dispatcher = EventDispatcher()  # reads its settings here, not in the thread while a test changes them

    def dispatch():
        try:
            dispatcher.run(stop=stop)
        finally:
            connection.close()

    thread = threading.Thread(target=dispatch, name="event-dispatcher", daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(10)
