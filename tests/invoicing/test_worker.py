"""The monthly job as production runs it: a real Celery worker process, fed through a
real broker (kombu's filesystem transport by default, CELERY_BROKER_URL when set),
runs the billing-run task and produces (and sends) the invoices."""

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from config.celery import app
from invoicing import services
from invoicing.models import BillingRun, Invoice
from invoicing.tasks import run_monthly_billing
from tests import eventkit, factories
from tests.invoicing.test_billing_run import buy

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker(transactional_db):
    if settings.CELERY_BROKER_URL == "filesystem://":
        queue_dir = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
        shutil.rmtree(queue_dir, ignore_errors=True)  # no message left by an earlier run
        Path(queue_dir).mkdir(parents=True)
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False  # this test's tasks go through the broker (put back below)
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            "test-worker@%h",
        ],
        cwd=ROOT,
        env=eventkit.subprocess_env("unused:0"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield child
    app.conf.task_always_eager = eager
    child.terminate()
    try:
        child.wait(15)
    except subprocess.TimeoutExpired:
        child.kill()


@pytest.mark.slow
def test_a_real_worker_runs_the_monthly_billing_task_and_the_invoices_are_issued_and_sent(worker):
    # Given purchases in the month before today (the month Beat's job invoices).
    month = services.previous_period()
    contract = factories.billed_contract()
    buy(contract, month + dt.timedelta(days=9))
    buy(contract, month + dt.timedelta(days=19))

    # When the task goes through the broker to the worker.
    run_monthly_billing.delay()

    # Then the worker invoiced the contract once, and sent the invoice.
    invoice = eventkit.wait_until(
        lambda: Invoice.objects.filter(status="sent").first(), timeout=90, interval=0.5, message="a sent invoice"
    )
    # (The invoice is sent when its chunk commits; the run's record is closed just after.)
    eventkit.wait_until(
        lambda: BillingRun.objects.exclude(status="running").exists(), timeout=30, message="the run finished"
    )
    assert (invoice.contract_id, invoice.period, invoice.operations_count) == (contract.pk, month, 2)
    billing_run = BillingRun.objects.get()
    assert (billing_run.trigger, billing_run.status, billing_run.invoices_count) == ("beat", "completed", 1)
    assert worker.poll() is None
