"""What /health/live and /health/ready check.

Live: the process answers (no dependency: a restart would not help a database outage).
Ready: PostgreSQL answers (else 503: this process cannot serve); Kafka and the Celery
broker are reachable, and every long-running process still beats (else the answer stays
200 but says "degraded" and what: the API keeps taking purchases while Kafka is down,
its outbox holds them, so a load balancer must not take it out for that). Each check
has a short time-out; the result is kept for READINESS_CACHE_SECONDS per process."""

from __future__ import annotations

import time
from importlib import import_module

from django.conf import settings
from django.db import connection

from boissipay import heartbeat

_cache: dict = {}


def readiness() -> tuple[int, dict]:
    """(HTTP status, body)."""
    cached = _cache.get("ready")
    if cached and cached[0] > time.monotonic():
        return cached[1]
    checks = {"database": _database(), "kafka": _kafka(), "celery_broker": _celery_broker()}
    beating, stopped = heartbeat.processes() if checks["database"] == "ok" else ([], [])
    checks["processes"] = "ok" if not stopped else f"{len(stopped)} stopped beating"
    status = 503 if checks["database"] != "ok" else 200
    body = {
        "status": "unavailable" if status == 503 else ("ok" if set(checks.values()) == {"ok"} else "degraded"),
        "checks": checks,
        "processes": {"beating": beating, "stopped": stopped},
    }
    _cache["ready"] = (time.monotonic() + settings.READINESS_CACHE_SECONDS, (status, body))
    return status, body


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"


def _kafka() -> str:
    from kafka import KafkaAdminClient

    from boissipay.kafka_config import client_options

    servers = settings.KAFKA_BOOTSTRAP_SERVERS or (
        settings.EMBEDDED_KAFKA and import_module(settings.EMBEDDED_KAFKA).running_local_broker()
    )
    if not servers:
        return "unreachable: the embedded broker is not running"
    try:
        admin = KafkaAdminClient(
            **client_options(servers), request_timeout_ms=3000, bootstrap_timeout_ms=3000, client_id="boissipay-health"
        )
        try:
            admin.list_topics()
        finally:
            admin.close()
        return "ok"
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"


def _celery_broker() -> str:
    from config.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
        return "ok"
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"
