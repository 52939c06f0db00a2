"""/health/live and /health/ready, and the heartbeats of the long-running processes."""

import datetime as dt
import threading

import pytest
from django.utils import timezone

from boissipay import health
from boissipay.dispatcher import EventDispatcher
from boissipay.models import Heartbeat
from tests import eventkit
from tests.clock import freeze_module_at
from tests.kernel.test_settings_and_docs import start_django

# One frozen, ticking "today" for every test here: heartbeats are dated from it.
_today = freeze_module_at(dt.date(2026, 6, 15))


@pytest.fixture(autouse=True)
def _fresh_readiness():
    health._cache.clear()
    yield
    health._cache.clear()


def test_liveness_needs_nothing(client):
    response = client.get("/health/live")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@pytest.mark.kafka
def test_ready_when_postgresql_kafka_and_the_celery_broker_answer(client, db, settings, kafka_broker):
    settings.KAFKA_BOOTSTRAP_SERVERS = kafka_broker.bootstrap_servers
    Heartbeat.objects.create(name="relay@host:1", kind="relay", beat_at=timezone.now())
    response = client.get("/health/ready")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "kafka": "ok", "celery_broker": "ok", "processes": "ok"}
    assert [p["process"] for p in body["processes"]["beating"]] == ["relay@host:1"]


def test_a_process_that_stopped_beating_is_reported_and_an_unreachable_kafka_too(client, db, settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:1"
    now = timezone.now()
    Heartbeat.objects.create(name="relay@host:1", kind="relay", beat_at=now - dt.timedelta(seconds=90))
    Heartbeat.objects.create(name="dispatcher@host:2", kind="dispatcher", beat_at=now)
    Heartbeat.objects.create(name="relay@old-host:3", kind="relay", beat_at=now - dt.timedelta(days=2))

    response = client.get("/health/ready")

    body = response.json()
    assert response.status_code == 200  # the API still takes purchases: its outbox holds them
    assert body["status"] == "degraded"
    assert body["checks"]["kafka"].startswith("unreachable")
    assert body["checks"]["processes"] == "1 stopped beating"
    assert [p["process"] for p in body["processes"]["stopped"]] == ["relay@host:1"]
    assert not Heartbeat.objects.filter(name="relay@old-host:3").exists()  # remains of a long-gone process


def test_not_ready_without_postgresql():
    started = start_django(
        code="from boissipay.health import readiness; status, body = readiness(); print(status, body['status'])",
        DATABASE_URL="postgres://nobody@127.0.0.1:1/nowhere",
        KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1",
    )
    assert started.returncode == 0, started.stderr
    assert started.stdout.split()[-2:] == ["503", "unavailable"]


def test_a_running_dispatcher_beats_and_removes_its_heartbeat_when_it_stops(transactional_db):
    stop = threading.Event()
    thread = threading.Thread(target=lambda: EventDispatcher().run(stop=stop))
    thread.start()
    try:
        row = eventkit.wait_until(
            lambda: Heartbeat.objects.filter(kind="dispatcher").first(), timeout=10, message="a heartbeat"
        )
        assert row.name.startswith("dispatcher@")
    finally:
        stop.set()
        thread.join(10)
    assert not Heartbeat.objects.filter(kind="dispatcher").exists()
