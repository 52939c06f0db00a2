"""The Celery app: `celery -A config worker` / `celery -A config beat`.

Settings come from Django's (`CELERY_*`); Beat reads its schedule from the database
(django-celery-beat), where a migration created "monthly billing run"."""

import contextlib
import os

from celery import Celery
from celery.signals import beat_init, task_postrun, task_prerun, worker_ready, worker_shutdown

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


_acting: dict[str, contextlib.ExitStack] = {}


@task_prerun.connect
def _task_acts_as_itself(task_id=None, task=None, **kwargs):
    """What a task changes is done by the system, named after the task (boissipay.actor).
    An eager task (tests, the demo) keeps the actor of whoever called it."""
    from boissipay import actor

    if task is not None and not task.request.is_eager:
        scope = contextlib.ExitStack()
        scope.enter_context(actor.acting_as(actor.system(f"task {task.name}")))
        scope.enter_context(actor.audited())
        _acting[task_id] = scope


@task_postrun.connect
def _task_done_acting(task_id=None, **kwargs):
    scope = _acting.pop(task_id, None)
    if scope is not None:
        scope.close()
