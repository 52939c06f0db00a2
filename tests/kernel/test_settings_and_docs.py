"""How the platform starts and presents itself: settings read from the environment, the
embedded PostgreSQL shared between processes, the API docs, the health check and the
idempotency of client writes under a real race."""

import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest
import yaml
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from contracts import services
from contracts.models import Contract
from tests import factories
from tests.contracts.test_api import contract_body

# --- settings, read in a fresh process ------------------------------------------------


def start_django(*, code: str = "", **env_changes: str | None) -> subprocess.CompletedProcess:
    """Run `django.setup()` with config.settings in a new interpreter, then `code`.
    A None value removes the variable from the environment."""
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    script = "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'; django.setup()\n" + code
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _database_url() -> str:
    db = settings.DATABASES["default"]
    host = urllib.parse.quote(db["HOST"], safe="")
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{host}:{db['PORT']}/{db['NAME']}"


PRODUCTION = {
    "DEBUG": "0",
    "DATABASE_URL": _database_url(),
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",  # the machine's Redis, as in production
    "BOISSIPAY_ALLOW_DEV_SECRET": None,
    "SECRET_KEY": "Hq7-vN2pX9rT4wLz8bC1mK6sD3fG0jY5aE_uR-tW2qZ7xV4nB8cM1kP6lS9dF3hJ",
    "PAYMENTS_WEBHOOK_SECRET": "whsec_" + "p" * 32,
    "PAYMENTS_GATEWAY": "sepa_file",
    "EINVOICING_GATEWAY": "platform",
    "EINVOICING_PLATFORM_URL": "https://api.platform.example",
    "EINVOICING_PLATFORM_TOKEN": "pa_" + "t" * 32,
    "EINVOICING_WEBHOOK_SECRET": "whsec_" + "e" * 32,
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "EMAIL_HOST": "smtp.boissipay.example",
}


def test_production_settings_start_when_every_secret_and_setting_is_a_real_one():
    started = start_django(code="from django.conf import settings; print(settings.DEBUG)", **PRODUCTION)

    assert started.returncode == 0, started.stderr
    assert started.stdout.split()[-1] == "False"


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY is missing or is the development key"),
        ({"SECRET_KEY": "dev-only-insecure-secret-key-change-me"}, "SECRET_KEY is missing or is the development key"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY is shorter than 50 characters or not random"),
        ({"PAYMENTS_WEBHOOK_SECRET": None}, "PAYMENTS_WEBHOOK_SECRET is missing or is the public development secret"),
        (
            {"PAYMENTS_WEBHOOK_SECRET": "whsec_local_development_only"},
            "PAYMENTS_WEBHOOK_SECRET is missing or is the public development secret",
        ),
        ({"PAYMENTS_GATEWAY": None}, "PAYMENTS_GATEWAY is the local provider emulator"),
        ({"EINVOICING_GATEWAY": None}, "EINVOICING_GATEWAY is the local platform emulator"),
        ({"EINVOICING_PLATFORM_TOKEN": None}, "EINVOICING_PLATFORM_TOKEN is missing or the development token"),
        ({"EINVOICING_WEBHOOK_SECRET": None}, "EINVOICING_WEBHOOK_SECRET is missing, short or the public development"),
        ({"PAYMENTS_GATEWAY": "emulator"}, "PAYMENTS_GATEWAY is the local provider emulator"),
        ({"EMAIL_BACKEND": None}, "keeps invoices on this machine"),
        ({"EMAIL_HOST": None}, "EMAIL_HOST is not set"),
        ({"DATABASE_URL": None}, "DATABASE_URL is not set"),
        ({"KAFKA_BOOTSTRAP_SERVERS": None}, "KAFKA_BOOTSTRAP_SERVERS is not set"),
        ({"CELERY_BROKER_URL": None}, "CELERY_BROKER_URL is not set"),
    ],
)
def test_production_settings_refuse_a_development_secret_or_default(change, said):
    started = start_django(**{**PRODUCTION, **change})

    assert started.returncode != 0
    assert "ImproperlyConfigured" in started.stderr
    assert said in started.stderr


def test_production_settings_name_every_problem_at_once():
    started = start_django(DEBUG="0", BOISSIPAY_ALLOW_DEV_SECRET=None, SECRET_KEY=None, PAYMENTS_WEBHOOK_SECRET=None)

    assert started.returncode != 0
    for name in ("SECRET_KEY", "PAYMENTS_WEBHOOK_SECRET", "PAYMENTS_GATEWAY", "EMAIL_BACKEND"):
        assert name in started.stderr


def test_the_emulator_is_allowed_in_production_settings_only_when_asked_explicitly():
    started = start_django(**{**PRODUCTION, "PAYMENTS_GATEWAY": "emulator", "PAYMENTS_ALLOW_EMULATOR": "1"})

    assert started.returncode == 0, started.stderr


def test_the_local_mail_files_are_readable_by_their_owner_only(settings, tmp_path):
    from django.core import mail

    backend = mail.get_connection("boissipay.mail.PrivateFileEmailBackend", file_path=str(tmp_path / "mail"))
    mail.EmailMessage("Facture", "Bonjour", "from@boissipay.example", ["to@cse.example"], connection=backend).send()

    [written] = list((tmp_path / "mail").iterdir())
    assert written.stat().st_mode & 0o077 == 0
    assert (tmp_path / "mail").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(("debug", "expected"), [(None, "False"), ("", "False"), ("0", "False"), ("1", "True")])
def test_debug_is_off_unless_asked_for(debug, expected):
    started = start_django(
        code="from django.conf import settings; print(settings.DEBUG)",
        DEBUG=debug,
        SECRET_KEY="a-real-production-secret",
    )

    assert started.returncode == 0, started.stderr
    assert started.stdout.strip().splitlines()[-1] == expected


def test_every_process_finds_the_same_embedded_postgresql_instead_of_starting_another():
    if os.environ.get("DATABASE_URL"):
        pytest.skip("DATABASE_URL is set: the embedded PostgreSQL server is not used")
    started = start_django(
        code="import json; from django.conf import settings; "
        "db = settings.DATABASES['default']; print(json.dumps([db['HOST'], db['PORT']]))",
        BOISSIPAY_ALLOW_DEV_SECRET="1",
    )

    assert started.returncode == 0, started.stderr
    ours = settings.DATABASES["default"]
    assert json.loads(started.stdout.strip().splitlines()[-1]) == [ours["HOST"], ours["PORT"]]


# --- the API documentation ------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_the_api_documentation_pages_render(client, url):
    response = client.get(url)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "/api/schema/" in response.content.decode()


def test_the_merged_openapi_document_lists_the_contracts_api(client):
    response = client.get("/api/schema/")

    assert response.status_code == 200
    assert "yaml" in response["Content-Type"]
    document = yaml.safe_load(response.content)
    assert "/api/v1/contracts" in document["paths"]
    assert "/api/v1/customers" in document["paths"]


def test_each_context_serves_its_own_openapi_document(client):
    response = client.get("/api/schema/contracts.yaml")

    assert response.status_code == 200
    on_disk = (settings.BASE_DIR / "openapi" / "contracts.yaml").read_text()
    assert yaml.safe_load(response.content) == yaml.safe_load(on_disk)


def test_an_unknown_openapi_document_is_not_found(client):
    assert client.get("/api/schema/nothing.yaml").status_code == 404


# --- health ---------------------------------------------------------------------------


def outbox_backlog(client) -> int:
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == "ok"
    return body["outbox"]["backlog"]


@pytest.mark.django_db
def test_the_health_check_reports_the_outbox_backlog_growing_with_new_events(client):
    owner = factories.customer()
    before = outbox_backlog(client)

    factories.contract(customer_obj=owner)

    assert outbox_backlog(client) == before + 1


# --- idempotency under a real race ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_retries_of_a_contract_creation_create_one_contract_and_get_the_same_answer(monkeypatch):
    subscribe = services.subscribe_contract

    def slow_subscribe(**kwargs):
        contract = subscribe(**kwargs)
        time.sleep(0.3)  # hold the transaction open: the other request arrives while the key is claimed
        return contract

    monkeypatch.setattr(services, "subscribe_contract", slow_subscribe)
    customer = factories.customer()
    _, raw = factories.api_key("contracts:read", "contracts:write")
    body = json.dumps(contract_body(customer.pk))
    start = threading.Barrier(2)
    answers = [None, None]

    def post(slot: int) -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}", HTTP_IDEMPOTENCY_KEY="subscribe-ctr-api-1")
            start.wait(timeout=10)
            answers[slot] = client.post("/api/v1/contracts", data=body, content_type="application/json")
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=post, args=(slot,)) for slot in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert all(answer is not None for answer in answers), "a request did not answer"
    assert [answer.status_code for answer in answers] == [201, 201], [a.content for a in answers]
    assert answers[0].json() == answers[1].json()
    assert sorted(answer.get("Idempotent-Replayed", "") for answer in answers) == ["", "true"]
    assert Contract.objects.filter(reference="CTR-API-1").count() == 1


def resolved(node, document: dict, depth: int = 0):
    """`node` with every local $ref of `document` replaced by what it names."""
    assert depth < 50, "a $ref cycle"
    if isinstance(node, dict):
        if "$ref" in node and node["$ref"].startswith("#/"):
            target = document
            for part in node["$ref"][2:].split("/"):
                target = target[part]
            return resolved(target, document, depth + 1)
        return {key: resolved(value, document, depth + 1) for key, value in node.items()}
    if isinstance(node, list):
        return [resolved(value, document, depth + 1) for value in node]
    return node


def test_every_operation_documents_the_same_responses_in_the_served_document_as_in_its_own_file(client):
    served = yaml.safe_load(client.get("/api/schema/").content)
    compared = 0
    for path in sorted((settings.BASE_DIR / "openapi").glob("*.yaml")):
        if path.stem == "asyncapi":
            continue
        own = yaml.safe_load(path.read_text())
        for route, item in own["paths"].items():
            for method, operation in item.items():
                if method not in {"get", "post", "put", "patch", "delete"}:
                    continue
                expected = resolved(operation, own)
                assert resolved(served["paths"][route][method], served) == expected, f"{method.upper()} {route}"
                compared += 1
    assert compared >= 25


def test_the_served_document_keeps_each_contexts_own_problem_codes(client):
    served = yaml.safe_load(client.get("/api/schema/").content)
    conflict = resolved(served["paths"]["/api/v1/operations"]["post"]["responses"]["409"], served)
    assert "duplicate_external_ref" in yaml.safe_dump(conflict)
    not_found = resolved(served["paths"]["/api/v1/contracts/{id}"]["get"]["responses"]["404"], served)
    assert "payment_unknown" not in yaml.safe_dump(not_found)


# --- where the service is reached ------------------------------------------------------

PRINT_URLS = "from django.conf import settings; print(settings.BASE_URL, settings.PAYMENTS_WEBHOOK_URL)"


def test_the_webhook_url_derives_from_the_one_base_url_setting():
    started = start_django(
        code=PRINT_URLS, BOISSIPAY_BASE_URL="http://127.0.0.1:8123/", PAYMENTS_WEBHOOK_URL=None, DEBUG="1"
    )
    assert started.returncode == 0, started.stderr
    assert started.stdout.split() == ["http://127.0.0.1:8123", "http://127.0.0.1:8123/api/v1/payments/webhook"]


def test_an_env_file_gives_the_base_url_to_every_command_of_the_checkout_and_the_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("BOISSIPAY_BASE_URL=http://127.0.0.1:8011\n")
    common = {
        "BOISSIPAY_READ_ENV_FILE": "1",
        "BOISSIPAY_ENV_FILE": str(env_file),
        "PAYMENTS_WEBHOOK_URL": None,
        "DEBUG": "1",
    }

    from_file = start_django(code=PRINT_URLS, BOISSIPAY_BASE_URL=None, **common)
    from_environment = start_django(code=PRINT_URLS, BOISSIPAY_BASE_URL="http://127.0.0.1:9000", **common)

    assert from_file.stdout.split()[1] == "http://127.0.0.1:8011/api/v1/payments/webhook", from_file.stderr
    assert from_environment.stdout.split()[0] == "http://127.0.0.1:9000"


def test_the_local_run_serves_where_the_base_url_says():
    from devtools.management.commands.run_local import served_address

    assert served_address("http://127.0.0.1:8011") == ("127.0.0.1", 8011)
    assert served_address("http://localhost") == ("localhost", 80)


def test_check_deploy_finds_nothing_in_production_settings_behind_a_tls_proxy():
    """`manage.py check --deploy` on the production shape (DEBUG off, real secrets, TLS
    ended by a proxy): HSTS, the HTTPS redirect, secure cookies, a random SECRET_KEY, and
    drf-spectacular's warnings fixed at their source."""
    checked = start_django(
        code=(
            "from django.core.management import call_command\n"
            "call_command('check', deploy=True, fail_level='WARNING')\n"
            "from django.conf import settings\n"
            "print(settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS, settings.SECURE_REDIRECT_EXEMPT)"
        ),
        **PRODUCTION,
        BEHIND_TLS_PROXY="1",
    )
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert "True 31536000 ['^health/', '^metrics$']" in checked.stdout


@pytest.mark.parametrize("secret", ["k" * 60, "django-insecure-" + "abcdefghij" * 5, "Ab3$" * 10])
def test_production_refuses_a_secret_key_that_is_not_random(secret):
    started = start_django(**{**PRODUCTION, "SECRET_KEY": secret})
    assert started.returncode != 0
    assert "SECRET_KEY is shorter than 50 characters or not random" in started.stderr
