"""Every task of Boissipay is bounded in time and retried on a passing fault (issue 14),
and the worker sends the task events Flower shows."""

from django.conf import settings

from boissipay.task_policy import PASSING_FAULTS
from config.celery import app


def boissipay_tasks():
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}


def test_every_task_has_a_soft_and_a_hard_time_limit_and_retries():
    tasks = boissipay_tasks()

    assert {"invoicing.run_monthly_billing", "payments.collect_due_payments", "boissipay.purge_event_records"} <= set(
        tasks
    )
    for name, task in tasks.items():
        assert task.soft_time_limit and task.time_limit > task.soft_time_limit, name
        assert task.max_retries and task.max_retries >= 3, name
        assert set(PASSING_FAULTS) <= set(task.autoretry_for) or Exception in task.autoretry_for, name
        assert task.retry_backoff and task.retry_jitter, name


def test_the_worker_sends_task_events_for_flower_and_tasks_are_bounded_by_default():
    assert settings.CELERY_WORKER_SEND_TASK_EVENTS is True
    assert app.conf.worker_send_task_events is True
    assert app.conf.task_send_sent_event is True
    assert app.conf.task_time_limit > app.conf.task_soft_time_limit > 0
