"""The README's run command: every process the configuration needs, served by gunicorn,
kept running, and stopped cleanly (children, embedded broker) on Ctrl-C or SIGTERM."""

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.parse
import uuid
from pathlib import Path

import psutil
import pytest
import requests
from django.db import connection

from boissipay.models import Heartbeat
from devtools.embedded.kafka import free_port
from devtools.management.commands.run_local import local_processes
from tests import eventkit, factories
from tests.kernel.test_observability import sample

ROOT = Path(__file__).resolve().parents[1]


def test_the_local_run_starts_web_relay_dispatcher_celery_worker_and_beat(settings):
    processes = local_processes("127.0.0.1", 8000)
    assert {"web", "relay", "dispatcher", "worker", "beat", "flower"} <= set(processes)
    assert "release" not in processes  # migrations are `make run`'s first step
    assert processes["dispatcher"][-1] == "dispatch_events"
    assert processes["web"][1:4] == ["-m", "gunicorn", "config.wsgi"]
    assert processes["beat"][3:6] == ["-A", "config", "beat"]
    assert processes["worker"][3:6] == ["-A", "config", "worker"]


def test_with_every_context_fed_from_kafka_no_dispatcher_is_started(settings):
    settings.EVENT_FEED = dict.fromkeys(settings.EVENT_FEED, "kafka")
    assert "dispatcher" not in local_processes("127.0.0.1", 8000)


def test_a_context_fed_from_kafka_gets_its_consumer(settings):
    settings.EVENT_FEED = {**settings.EVENT_FEED, "billing": "kafka"}
    processes = local_processes("127.0.0.1", 8000)
    assert processes["consume-billing"][-2:] == ["--context", "billing"]
    assert "consume-payments" not in processes


# --- the assembled local run ------------------------------------------------------------


def local_run_env(tmp_path: Path) -> dict:
    """`make run`'s environment, on the test database, with a local folder of its own (its
    own embedded broker, started and stopped by the run) and ports nobody else uses."""
    env = eventkit.subprocess_env("unused:0")
    db = connection.settings_dict
    host = urllib.parse.quote(db["HOST"], safe="")
    env["DATABASE_URL"] = f"postgres://{db['USER']}:{db['PASSWORD']}@{host}:{db['PORT']}/{db['NAME']}"
    env.pop("KAFKA_BOOTSTRAP_SERVERS")
    env.pop("DJANGO_SETTINGS_MODULE")
    env.pop("BOISSIPAY_DB_NAME", None)
    env.update(
        DEBUG="1",
        BOISSIPAY_LOCAL_DIR=str(tmp_path),
        BOISSIPAY_BASE_URL=f"http://127.0.0.1:{free_port()}",
        PAYMENTS_EMULATOR_URL=f"http://127.0.0.1:{free_port()}",
        CELERY_TASK_ALWAYS_EAGER="0",
        CELERY_QUEUE_DIR=str(tmp_path / "celery"),
        WEB_CONCURRENCY="2",
        FLOWER_PORT=str(free_port()),
        FLOWER_BASIC_AUTH="ops:flower-test-password",
    )
    return env


def purchase(base_url: str, key: str, contract_id, n: int) -> int | str:
    body = {
        "contract_id": str(contract_id),
        "type": "purchase",
        "external_ref": f"BKG-LOCAL-{n}",
        "currency": "EUR",
        "orders": [
            {
                "reference": "ORD-1",
                "items": [{"label": "Paris-Nice", "quantity": 1, "unit_amount": 100, "vat_rate": "10"}],
            }
        ],
    }
    headers = {"Authorization": f"Api-Key {key}", "Idempotency-Key": uuid.uuid4().hex}
    try:
        return requests.post(f"{base_url}/api/v1/operations", json=body, headers=headers, timeout=60).status_code
    except requests.RequestException as error:
        return type(error).__name__


@pytest.mark.slow
def test_the_local_run_serves_60_concurrent_purchases_restarts_a_dead_child_and_stops_cleanly(
    transactional_db, tmp_path
):
    contract = factories.billed_contract(credit_limit=10_000_000)
    _, key = factories.api_key("operations:write")
    env = local_run_env(tmp_path)
    base_url = env["BOISSIPAY_BASE_URL"]
    run = start_local_run(env, tmp_path)
    try:
        children = psutil.Process(run.pid).children(recursive=True)
        broker_state = json.loads((tmp_path / "kafka.json").read_text())

        outcomes = []
        threads = [
            threading.Thread(target=lambda n=n: outcomes.append(purchase(base_url, key, contract.pk, n)))
            for n in range(60)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        assert sorted(map(str, outcomes)) == ["201"] * 60

        # Every long-running process beats, and readiness says so.
        kinds = {"relay", "dispatcher", "worker", "beat"}
        eventkit.wait_until(
            lambda: kinds <= set(Heartbeat.objects.values_list("kind", flat=True)),
            timeout=60,
            message="a heartbeat from each process",
        )
        ready = requests.get(f"{base_url}/health/ready", timeout=30).json()
        assert kinds <= {process["kind"] for process in ready["processes"]["beating"]}, ready

        # Metrics, open on a local run: the 60 decisions counted across both web workers.
        metrics = requests.get(f"{base_url}/metrics", timeout=30).text
        assert sample(metrics, "boissipay_operations_total", type="purchase", status="accepted") == 60
        assert "boissipay_outbox_backlog" in metrics

        # Flower, started from the Procfile too, sees the worker (task events on).
        flower = f"http://127.0.0.1:{env['FLOWER_PORT']}"
        assert requests.get(f"{flower}/api/workers", timeout=10).status_code == 401
        eventkit.wait_until(
            lambda: _flower_workers(flower, ("ops", "flower-test-password")),
            timeout=60,
            message="Flower to list the worker",
        )

        relay = _child(run, "relay_outbox")
        relay.kill()
        eventkit.wait_until(
            lambda: (found := _child(run, "relay_outbox")) is not None and found.pid != relay.pid,
            timeout=30,
            message="the supervisor to restart the relay",
        )
        assert _healthy(base_url)  # the others went on

        run.send_signal(signal.SIGTERM)
        assert run.wait(60) == 0
    finally:
        _stop(run)
    output = (tmp_path / "run.log").read_text()
    assert "relay exited with -9; restarting it" in output
    assert "every process stopped" in output and "embedded Kafka broker stopped" in output
    # Those that stopped cleanly removed their heartbeat; the killed relay could not.
    assert list(Heartbeat.objects.values_list("name", flat=True)) == [f"relay@{socket.gethostname()}:{relay.pid}"]
    still_running = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert still_running == []
    assert not psutil.pid_exists(broker_state["pid"]) or psutil.Process(broker_state["pid"]).status() == "zombie"
    assert not (tmp_path / "kafka.json").exists()


def start_local_run(env: dict, tmp_path: Path) -> subprocess.Popen:
    """`manage.py run_local` with `env`, its output in tmp_path/run.log, once it serves."""
    with open(tmp_path / "run.log", "w") as log:
        run = subprocess.Popen(
            [sys.executable, "manage.py", "run_local"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        eventkit.wait_until(lambda: _healthy(env["BOISSIPAY_BASE_URL"]), timeout=90, message="the local run to serve")
    except AssertionError:
        _stop(run)
        raise
    return run


def _stop(run: subprocess.Popen) -> None:
    """Whatever happened, leave no process of this run behind."""
    if run.poll() is None:
        children = psutil.Process(run.pid).children(recursive=True)
        run.send_signal(signal.SIGTERM)
        try:
            run.wait(60)
        except subprocess.TimeoutExpired:
            run.kill()
            run.wait()
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def _healthy(base_url: str) -> bool:
    try:
        return requests.get(f"{base_url}/api/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _flower_workers(flower: str, auth: tuple[str, str]) -> list[str]:
    try:
        return list(requests.get(f"{flower}/api/workers?refresh=1", auth=auth, timeout=10).json())
    except (requests.RequestException, ValueError):
        return []


def _child(run: subprocess.Popen, marker: str):
    for child in psutil.Process(run.pid).children():
        try:
            if any(marker in part for part in child.cmdline()):
                return child
        except psutil.NoSuchProcess:
            continue
    return None


def test_the_embedded_postgresql_stops_on_request():
    from devtools.embedded.postgres import embedded_server_info, stop_embedded_server

    # Beside the checkout's own: the server runs as its own system user, which must reach it.
    pgdata = ROOT / ".local" / f"pg-stop-test-{uuid.uuid4().hex[:8]}"
    try:
        embedded_server_info(pgdata)
        assert (pgdata / "postmaster.pid").exists()

        stop_embedded_server(pgdata)

        assert not (pgdata / "postmaster.pid").exists()
    finally:
        stop_embedded_server(pgdata)
        shutil.rmtree(pgdata, ignore_errors=True)
