"""Production settings as a whole (DEBUG off, real secrets, SMTP, the SEPA gateway), served
by gunicorn with gunicorn.conf.py as a deployment serves them: hostile requests get
problem+json answers, never a 500 or Django's pages."""

import contextlib
import json
import subprocess
import sys
import urllib.parse

import pytest
import requests
from django.db import connection

from boissipay.models import Heartbeat
from devtools.embedded.kafka import free_port
from tests import eventkit, factories
from tests.contracts.test_api import contract_body
from tests.kernel.test_observability import sample
from tests.kernel.test_settings_and_docs import PRODUCTION
from tests.test_run_local import ROOT, _healthy

pytestmark = pytest.mark.slow
METRICS_TOKEN = "metrics-token-" + "m" * 40


def production_env(**changes: str) -> dict:
    """Production settings (DEBUG off, real secrets) on the test database."""
    db = connection.settings_dict
    host = urllib.parse.quote(db["HOST"], safe="")
    env = {**eventkit.subprocess_env("unused:0"), **{k: v for k, v in PRODUCTION.items() if v is not None}}
    for name in ("BOISSIPAY_ALLOW_DEV_SECRET", "DJANGO_SETTINGS_MODULE", "BOISSIPAY_DB_NAME"):
        env.pop(name, None)
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}:{db['PASSWORD']}@{host}:{db['PORT']}/{db['NAME']}",
        METRICS_TOKEN=METRICS_TOKEN,
        **changes,
    )
    return env


@pytest.fixture
def production_server(transactional_db, tmp_path):
    port = free_port()
    env = production_env(GUNICORN_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="2")
    with open(tmp_path / "web.log", "w") as log:
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "--config", "gunicorn.conf.py"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        eventkit.wait_until(lambda: _healthy(base_url), timeout=60, message="gunicorn with production settings")
        yield base_url
    finally:
        web.terminate()
        web.wait(30)


@contextlib.contextmanager
def processes(commands: dict[str, list[str]], env: dict, logs):
    """The Procfile's processes as compose runs them, each logging to `logs/<name>.log`;
    terminated on the way out."""
    children = {}
    try:
        for name, command in commands.items():
            with open(logs / f"{name}.log", "w") as log:
                children[name] = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        yield children
    finally:
        for child in children.values():
            child.terminate()
        for child in children.values():
            child.wait(60)


def call(method: str, url: str, **kwargs) -> requests.Response:
    return requests.request(method, url, timeout=30, **kwargs)


def test_production_settings_under_gunicorn_answer_hostile_requests_with_problems(production_server):
    _, key = factories.api_key("contracts:read", "contracts:write", "operations:write")
    headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json", "Idempotency-Key": "k"}

    answers = {
        "deep nesting": call("post", f"{production_server}/api/v1/operations", data="[" * 50_000, headers=headers),
        "control character": call(
            "post", f"{production_server}/api/v1/customers", data=json.dumps({"legal_name": "A\x1bB"}), headers=headers
        ),
        "NUL in the path": call(
            "delete", f"{production_server}/api/v1/contracts/{factories.contract().pk}/subscribers/%00", headers=headers
        ),
        "unknown path": call("get", f"{production_server}/api/v1/nothing", headers=headers),
        "wrong method": call("delete", f"{production_server}/api/v1/customers", headers=headers),
        "forged webhook": call(
            "post",
            f"{production_server}/api/v1/payments/webhook",
            data="{}",
            headers={"Content-Type": "application/json", "Boissipay-Signature": "t=1,v1=abc"},
        ),
    }

    statuses = {name: response.status_code for name, response in answers.items()}
    assert statuses == {
        "deep nesting": 400,
        "control character": 400,
        "NUL in the path": 404,
        "unknown path": 404,
        "wrong method": 405,
        "forged webhook": 401,
    }
    assert {response.headers["Content-Type"] for response in answers.values()} == {"application/problem+json"}
    assert call("get", f"{production_server}/admin/login/").status_code == 200  # the back office is served


def test_production_settings_under_gunicorn_decide_a_purchase_and_answer_the_health_probes(production_server):
    contract = factories.billed_contract()
    _, key = factories.api_key("operations:write")
    purchase = call(
        "post",
        f"{production_server}/api/v1/operations",
        json={
            "contract_id": str(contract.pk),
            "type": "purchase",
            "external_ref": "BKG-PROD-1",
            "currency": "EUR",
            "orders": [
                {
                    "reference": "ORD-1",
                    "items": [{"label": "Paris → Lyon", "quantity": 1, "unit_amount": 4500, "vat_rate": "10"}],
                }
            ],
        },
        headers={"Authorization": f"Api-Key {key}", "Idempotency-Key": "prod-1"},
    )
    assert purchase.status_code == 201, purchase.text
    assert purchase.json()["amount"] == 4950

    assert call("get", f"{production_server}/health/live").json() == {"status": "ok"}
    ready = call("get", f"{production_server}/health/ready")
    assert ready.status_code == 200  # PostgreSQL answers; no Kafka here, which is reported, not fatal
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["kafka"].startswith("unreachable")
    assert ready.json()["status"] == "degraded"


def test_production_logs_json_lines_with_request_ids_and_no_iban_nor_key_and_metrics_add_up_the_workers(
    production_server, tmp_path
):
    customer = factories.customer()
    _, key = factories.api_key("contracts:write", "operations:write")
    headers = {"Authorization": f"Api-Key {key}"}
    created = call(
        "post",
        f"{production_server}/api/v1/contracts",
        json=contract_body(customer.pk, reference="CTR-LOGS-1", mandate={**contract_body(customer.pk)["mandate"]}),
        headers={**headers, "Idempotency-Key": "logs-1", "X-Request-ID": "req-logs-1"},
    )
    assert created.status_code == 201, created.text
    assert created.headers["X-Request-ID"] == "req-logs-1"
    # A mandate refused (the IBAN in the body is wrong), a refused key, and some reads.
    wrong_iban = {**contract_body(customer.pk)["mandate"], "iban": factories.IBAN[:-1] + "0", "reference": "UMR-LOGS-2"}
    refused = call(
        "post",
        f"{production_server}/api/v1/contracts",
        json=contract_body(customer.pk, reference="CTR-LOGS-2", mandate=wrong_iban),
        headers={**headers, "Idempotency-Key": "logs-2", "X-Request-ID": "req-logs-2"},
    )
    assert refused.status_code == 400
    assert (
        call("get", f"{production_server}/api/v1/contracts", headers={"Authorization": "Api-Key bp_wrong"}).status_code
        == 401
    )
    for _ in range(20):
        assert call("get", f"{production_server}/health/live").status_code == 200

    scraped = call("get", f"{production_server}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert scraped.status_code == 200
    assert call("get", f"{production_server}/metrics").status_code == 401
    # Both gunicorn workers' counts, whichever served the scrape (PROMETHEUS_MULTIPROC_DIR).
    assert sample(scraped.text, "django_http_requests_total_by_method_total", method="GET") >= 21

    log = (tmp_path / "web.log").read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line.get("request_id") == "req-logs-2" for line in lines), log  # the refused request's warning
    assert factories.IBAN not in log and factories.IBAN[:-1] + "0" not in log
    assert key not in log and "bp_wrong" not in log


@pytest.mark.kafka
def test_production_relay_consumer_and_prefork_worker_run_with_debug_off(transactional_db, tmp_path, kafka_broker):
    """The Procfile's relay, a consumer and the Celery worker (prefork, Redis), as compose
    runs them: with production settings, JSON logs, their heartbeats and metrics."""
    env = production_env(
        KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap_servers,
        KAFKA_MAX_POLL_INTERVAL_MS="3000",
        EVENT_FEED_PAYMENTS="kafka",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/13",
        CELERY_WORKER_CONCURRENCY="1",
    )
    ports = {"relay": free_port(), "consumer": free_port()}
    commands = {
        "relay": [sys.executable, "manage.py", "relay_outbox", "--metrics-port", str(ports["relay"])],
        "consumer": [sys.executable, "manage.py", "consume_events", "--context", "payments",
                     "--metrics-port", str(ports["consumer"])],
        "worker": [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO", "--without-gossip",
                   "--without-mingle"],
    }  # fmt: skip
    with processes(commands, env, tmp_path) as children:
        factories.billed_contract()  # contract events in the outbox, for the relay

        def published() -> float:
            try:
                text = requests.get(f"http://127.0.0.1:{ports['relay']}/metrics", timeout=5).text
            except requests.RequestException:
                return 0
            return sample(text, "boissipay_relay_published_total")

        eventkit.wait_until(lambda: published() >= 1, timeout=60, message="the relay to publish and count it")
        kinds = {"relay", "consumer-payments", "worker"}
        eventkit.wait_until(
            lambda: kinds <= set(Heartbeat.objects.values_list("kind", flat=True)),
            timeout=90,
            message="a heartbeat from the relay, the consumer and the worker",
        )
        for kind in kinds:
            alive = subprocess.run(
                [sys.executable, "manage.py", "process_alive", kind], cwd=ROOT, env=env, capture_output=True,
                text=True, timeout=60, check=False,
            )  # fmt: skip
            assert alive.returncode == 0, alive.stderr
        assert all(child.poll() is None for child in children.values())
    worker_log = (tmp_path / "worker.log").read_text()
    assert "prefork" in worker_log
    relay_lines = [line for line in (tmp_path / "relay.log").read_text().splitlines() if line.startswith("{")]
    assert relay_lines and all("level" in json.loads(line) for line in relay_lines)


def test_production_worker_deposits_an_invoice_and_gunicorn_takes_the_platforms_statuses_with_debug_off(
    transactional_db, tmp_path, monkeypatch
):
    """E-invoicing as deployed (issue 16): the prefork worker on Redis deposits an invoice
    on the platform (here our emulator, at EINVOICING_PLATFORM_URL), and the platform's
    signed statuses come back through gunicorn; DEBUG off, production secrets."""
    import datetime as dt

    from celery import Celery

    from devtools.platform_emulator import PlatformEmulator
    from invoicing import services as invoicing
    from invoicing.models import Invoice
    from tests.clock import frozen_at

    port = free_port()
    emulator = PlatformEmulator(
        webhook_url=f"http://127.0.0.1:{port}/api/v1/einvoicing/webhook",
        secret=PRODUCTION["EINVOICING_WEBHOOK_SECRET"],
        token=PRODUCTION["EINVOICING_PLATFORM_TOKEN"],
        outcomes={"delay_seconds": 0.1},
    ).start()
    env = production_env(
        GUNICORN_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="1",
        EINVOICING_PLATFORM_URL=emulator.url,
        CELERY_BROKER_URL="redis://127.0.0.1:6379/13",
        CELERY_WORKER_CONCURRENCY="1",
    )
    commands = {
        "web": [sys.executable, "-m", "gunicorn", "config.wsgi", "--config", "gunicorn.conf.py"],
        "worker": [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO", "--without-gossip",
                   "--without-mingle"],
    }  # fmt: skip
    children = {}
    for name, command in commands.items():
        with open(tmp_path / f"{name}.log", "w") as log:
            children[name] = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        # An invoice issued on a frozen day, not sent here: the production worker sends it.
        monkeypatch.setattr(invoicing, "_send_later", lambda ids: None)
        with frozen_at(dt.date(2026, 10, 1)):
            contract = factories.contract()
            factories.settled()
            factories.buy(contract, 10_000, dt.date(2026, 10, 12))
        with frozen_at(dt.date(2026, 11, 1), hour=2):
            invoicing.run_billing(period="2026-10")
        invoice = Invoice.objects.get(contract_id=contract.pk)
        eventkit.wait_until(lambda: _healthy(f"http://127.0.0.1:{port}"), timeout=60, message="gunicorn")
        # Not the current app: every shared task of this process would go to Redis after it.
        production = Celery(broker="redis://127.0.0.1:6379/13", set_as_current=False)
        production.send_task("invoicing.send_invoice", args=[str(invoice.pk)])

        eventkit.wait_until(
            lambda: Invoice.objects.filter(pk=invoice.pk, platform_status="approved").exists(),
            timeout=120,
            interval=0.5,
            message="the worker to deposit the invoice and gunicorn to take the platform's statuses",
        )
        invoice.refresh_from_db()
        assert (invoice.channel, invoice.status) == ("platform", "sent")
        assert list(invoice.lifecycle.order_by("id").values_list("status", flat=True)) == [
            "deposited",
            "received",
            "approved",
        ]
        assert len(emulator.deposits) == 1
        assert all(child.poll() is None for child in children.values())
    finally:
        for child in children.values():
            child.terminate()
        for child in children.values():
            child.wait(60)
        emulator.stop()
    assert "prefork" in (tmp_path / "worker.log").read_text()


def test_production_ledger_consumer_books_the_invoices_from_kafka_and_the_back_office_asks_for_2fa(
    production_server, tmp_path, kafka_broker, settings
):
    """The Procfile's relay and `consume-accounting`, with DEBUG off: the ledger is written
    from the invoicing events read on Kafka (this test's own process does not feed the
    accounting context); gunicorn's admin login asks for the two-factor code and answers
    in French; the API in English."""
    from accounting.models import EntryLine, JournalEntry
    from invoicing import services as invoicing
    from tests.factories import buy, settled

    settings.EVENT_FEED = {**settings.EVENT_FEED, "accounting": "kafka"}  # only the consumer feeds it
    env = production_env(KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap_servers, KAFKA_MAX_POLL_INTERVAL_MS="3000")
    commands = {
        "relay": [sys.executable, "manage.py", "relay_outbox"],
        "consume-accounting": [sys.executable, "manage.py", "consume_events", "--context", "accounting"],
    }
    with processes(commands, env, tmp_path) as children:
        contract = factories.billed_contract()
        buy(contract, 12_000)  # now: the processes beside this test run on the real clock, any day
        invoicing.invoice_early(contract_reference=contract.reference, reason="test", trigger="command", started_by="t")
        settled()
        eventkit.wait_until(
            lambda: JournalEntry.objects.filter(journal="VE").exists(),
            timeout=90,
            message="the ledger consumer to book the invoice",
        )
        entry = JournalEntry.objects.get(journal="VE")
        lines = EntryLine.objects.filter(entry=entry)
        assert sum(line.debit for line in lines) == sum(line.credit for line in lines) == 12_000
        assert all(child.poll() is None for child in children.values())

    login = call("GET", f"{production_server}/admin/login/")
    assert login.status_code == 200 and 'name="otp_token"' in login.text and '<html lang="fr"' in login.text
    problem = call("GET", f"{production_server}/api/v1/contracts", headers={"Accept-Language": "fr"})
    assert problem.status_code == 401 and "An API key is required" in problem.json()["detail"]
