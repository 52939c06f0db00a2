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


# The rows the data migrations write: staff groups and their permissions, Beat's schedule.
MIGRATIONS_DATA = (
    "boissipay.migrations.0004_idempotency_purge_schedule",
    "boissipay.migrations.0006_event_records_purge_schedule",
    "boissipay.migrations.0010_staff_roles",
    "boissipay.migrations.0012_operators_correct_customers",
    "boissipay.migrations.0013_roles_read_the_ledger",
    "invoicing.migrations.0002_monthly_billing_schedule",
    "payments.migrations.0003_daily_collection_schedule",
)


def _migrations_data_back(sender, using="default", **kwargs):
    """A transactional test ends by emptying every table, and Django then sends
    post_migrate (its permissions come back that way): the data migrations' rows come
    back too, so that a test run after it (in any order, as under pytest-xdist) finds the
    database as migrated."""
    import importlib

    from django.apps import apps
    from django.db import connections

    if sender.label != "boissipay":  # once per flush
        return
    with connections[using].schema_editor(atomic=False) as editor:
        for module in MIGRATIONS_DATA:
            for operation in importlib.import_module(module).Migration.operations:
                operation.code(apps, editor)


def pytest_configure(config):
    from django.db.models.signals import post_migrate

    post_migrate.connect(_migrations_data_back, dispatch_uid="tests.migrations_data_back")


@pytest.fixture(autouse=True)
def _tasks_stay_eager(request):
    """Tasks run inline in the tests (config/settings_test.py): a test that turns that off
    for itself, or makes another Celery app current, must undo it, or the tests after it
    on the same worker would queue their tasks for a worker that is not there. And no
    test starts inside a transaction an earlier one left open."""
    from config.celery import app

    before = app.conf.task_always_eager
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or bool(marker and marker.kwargs.get("transaction"))
    if transactional:
        from django.db import connection

        assert not connection.in_atomic_block, "an earlier test left the database connection in a transaction"
    yield
    from celery import current_app

    after = app.conf.task_always_eager
    assert after == before, f"this test left Celery's task_always_eager at {after!r} (was {before!r})"
    # A Celery(...) made without set_as_current=False becomes the app of every shared task.
    assert current_app._get_current_object() is app, "this test left another Celery app current"
