"""The Celery app: `celery -A config worker` / `celery -A config beat`.

Settings come from Django's (`CELERY_*`); Beat reads its schedule from the database
(django-celery-beat), where a migration created "monthly billing run"."""

import os

from celery import Celery
from celery.signals import beat_init, worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("boissipay")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


_heartbeats = {}


@worker_ready.connect
def _worker_beats(**kwargs):
    """The worker records a heartbeat (boissipay.heartbeat) while it runs."""
    from boissipay.heartbeat import beat_in_background

    _heartbeats["worker"] = beat_in_background("worker")


@worker_shutdown.connect
def _worker_stops_beating(**kwargs):
    if "worker" in _heartbeats:
        _heartbeats.pop("worker").set()


@beat_init.connect
def _beat_beats(**kwargs):
    """Beat records a heartbeat while it runs (removed at exit)."""
    from boissipay.heartbeat import beat_in_background

    _heartbeats["beat"] = beat_in_background("beat")
