"""The operator's commands: `manage.py apikey` and `manage.py bootstrap_local`."""

import datetime as dt
import re
import uuid
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from boissipay.api.auth import digest
from boissipay.models import ApiKey
from devtools.management.commands.bootstrap_local import DEMO_KEY_NAME
from tests import factories

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def raw_key_in(output: str) -> str:
    match = re.search(r"\bbp_[\w-]+", output)
    assert match, f"no API key in the output:\n{output}"
    return match.group(0)


def create_key(*args) -> tuple[ApiKey, str]:
    output = run("apikey", "create", *args)
    key_id = re.search(r"^id:\s+(\S+)$", output, re.MULTILINE).group(1)
    return ApiKey.objects.get(pk=key_id), raw_key_in(output)


def list_contracts(raw_key: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return client.get("/api/v1/contracts")


# --- apikey ---------------------------------------------------------------------------


def test_a_created_key_is_printed_once_and_authenticates_the_client_system():
    _, raw = create_key("billing system", "--scope", "contracts:read")

    assert list_contracts(raw).status_code == 200


def test_only_the_digest_of_a_created_key_is_stored():
    key, raw = create_key("billing system", "--scope", "contracts:read")

    assert key.digest == digest(raw)
    stored = [str(value) for row in ApiKey.objects.values() for value in row.values()]
    assert not any(raw in value for value in stored)


def test_a_created_key_carries_the_scopes_asked_for():
    key, _ = create_key("billing system", "--scope", "contracts:read", "--scope", "invoices:read")

    assert key.scopes == ["contracts:read", "invoices:read"]


def test_creating_a_key_with_an_unknown_scope_fails_and_creates_nothing():
    with pytest.raises(CommandError, match="contracts:delete"):
        run("apikey", "create", "billing system", "--scope", "contracts:delete")

    assert not ApiKey.objects.exists()


def test_creating_a_key_without_a_scope_fails():
    with pytest.raises(CommandError, match="scope"):
        run("apikey", "create", "billing system")


def test_a_key_restricted_to_a_customer_sees_only_that_customers_contracts():
    mine = factories.contract()
    factories.contract()
    _, raw = create_key("cse portal", "--scope", "contracts:read", "--customer", str(mine.customer_id))

    listed = list_contracts(raw).json()

    assert [c["id"] for c in listed["results"]] == [str(mine.pk)]


def test_restricting_a_key_to_a_malformed_customer_id_fails():
    with pytest.raises(CommandError):
        run("apikey", "create", "cse portal", "--scope", "contracts:read", "--customer", "not-a-uuid")


def test_listing_keys_shows_each_key_but_never_the_raw_key():
    key, raw = create_key("billing system", "--scope", "contracts:read")

    output = run("apikey", "list")

    assert str(key.pk) in output
    assert "billing system" in output and "active" in output and "contracts:read" in output
    assert raw not in output


def test_a_revoked_key_no_longer_authenticates():
    key, raw = create_key("billing system", "--scope", "contracts:read")

    output = run("apikey", "revoke", str(key.pk))

    assert "Revoked" in output
    assert list_contracts(raw).status_code == 401
    assert "revoked" in run("apikey", "list")


def test_revoking_an_unknown_key_fails():
    with pytest.raises(CommandError, match="No API key"):
        run("apikey", "revoke", "00000000-0000-0000-0000-000000000000")


# --- bootstrap_local ------------------------------------------------------------------


@pytest.fixture
def admin_account(monkeypatch, settings, tmp_path):
    settings.LOCAL_DIR = tmp_path  # the demo key file of the developer's own local run is left alone
    settings.DEBUG = True  # a local run
    monkeypatch.setenv("BOISSIPAY_ADMIN_USER", "backoffice")
    monkeypatch.setenv("BOISSIPAY_ADMIN_PASSWORD", "s3cret-for-tests")
    return "backoffice", "s3cret-for-tests"


def test_bootstrap_creates_the_back_office_superuser(admin_account):
    username, password = admin_account

    run("bootstrap_local")

    user = get_user_model().objects.get(username=username)
    assert user.is_superuser and user.is_staff
    assert user.check_password(password)


def test_bootstrapping_twice_keeps_the_one_superuser_and_its_password(admin_account):
    username, password = admin_account
    run("bootstrap_local")
    get_user_model().objects.filter(username=username).update(email="changed@boissipay.example")

    output = run("bootstrap_local")

    users = get_user_model().objects.filter(username=username)
    assert users.count() == 1
    assert users.get().email == "changed@boissipay.example"
    assert users.get().check_password(password)
    assert "existing account" in output


def test_bootstrap_prints_the_urls_of_the_api_its_docs_and_the_back_office(admin_account):
    output = run("bootstrap_local", "--base-url", "http://boissipay.test:9000")

    assert "http://boissipay.test:9000/api/v1/" in output
    assert "http://boissipay.test:9000/api/docs/" in output
    assert "http://boissipay.test:9000/api/redoc/" in output
    assert "http://boissipay.test:9000/admin/" in output


def test_bootstrap_prints_a_demo_key_that_authenticates(admin_account):
    raw = raw_key_in(run("bootstrap_local"))

    assert list_contracts(raw).status_code == 200
    assert ApiKey.objects.get(digest=digest(raw)).name == DEMO_KEY_NAME


def test_bootstrapping_again_keeps_the_demo_key_that_works(admin_account):
    first = raw_key_in(run("bootstrap_local"))

    output = run("bootstrap_local")

    assert raw_key_in(output) == first
    assert "kept from the last run" in output
    assert list_contracts(first).status_code == 200
    assert ApiKey.objects.filter(name=DEMO_KEY_NAME, revoked_at__isnull=True).count() == 1


def test_a_demo_key_that_no_longer_works_is_replaced_and_the_output_says_so(admin_account):
    first = raw_key_in(run("bootstrap_local"))
    ApiKey.objects.filter(digest=digest(first)).update(revoked_at=timezone.now())

    output = run("bootstrap_local")

    second = raw_key_in(output)
    assert second != first
    assert "previous demo key no longer worked" in output
    assert list_contracts(first).status_code == 401
    assert list_contracts(second).status_code == 200


def test_the_demo_key_is_kept_readable_by_its_owner_only(admin_account, settings):
    raw = raw_key_in(run("bootstrap_local"))
    kept = settings.LOCAL_DIR / "demo-api-key"
    assert kept.read_text().strip() == raw
    assert kept.stat().st_mode & 0o077 == 0


def test_bootstrap_refuses_to_run_with_debug_off(monkeypatch, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="local runs only"):
        run("bootstrap_local")
    assert not get_user_model().objects.exists()


def test_a_key_can_only_be_restricted_to_a_known_customer():
    with pytest.raises(CommandError, match="No customer"):
        run("apikey", "create", "portal", "--scope", "contracts:read", "--customer", str(uuid.uuid4()))
    with pytest.raises(CommandError, match="No customer"):
        run("apikey", "create", "portal", "--scope", "contracts:read", "--customer", "not-a-uuid")
    assert not ApiKey.objects.exists()
    customer = factories.customer()
    assert "key:" in run("apikey", "create", "portal", "--scope", "contracts:read", "--customer", str(customer.pk))


# --- housekeeping -------------------------------------------------------------------------


@pytest.fixture
def frozen_now():
    """Housekeeping compares ages with now: a fixed now, whatever the real date."""
    from tests.clock import frozen_at

    with frozen_at(dt.date(2026, 6, 15), 4):
        yield timezone.now()


def test_answers_kept_for_retries_are_purged_once_older_than_the_retention(settings, frozen_now):
    import datetime as dt

    from django_celery_beat.models import PeriodicTask

    from boissipay.models import IdempotencyRecord
    from boissipay.tasks import purge_idempotency_records

    settings.IDEMPOTENCY_RETENTION_HOURS = 24
    key, _ = factories.api_key("operations:write")
    now = frozen_now
    for n, age in enumerate([dt.timedelta(hours=25), dt.timedelta(days=40), dt.timedelta(hours=23), dt.timedelta(0)]):
        record = IdempotencyRecord.objects.create(
            api_key=key,
            key=f"k{n}",
            method="POST",
            path="/api/v1/operations",
            request_digest="d",
            response_status=201,
            response_body={"customer": "secret"},
        )
        IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=now - age)

    assert purge_idempotency_records() == 2

    assert sorted(IdempotencyRecord.objects.values_list("key", flat=True)) == ["k2", "k3"]
    task = PeriodicTask.objects.get(name="purge idempotency records")
    assert (task.task, task.crontab.hour, task.crontab.minute) == ("boissipay.purge_idempotency_records", "3", "30")


def test_the_purge_works_in_batches(settings, frozen_now):
    import datetime as dt

    from boissipay import services
    from boissipay.models import IdempotencyRecord

    key, _ = factories.api_key("operations:write")
    IdempotencyRecord.objects.bulk_create(
        IdempotencyRecord(
            api_key=key,
            key=f"old{n}",
            method="POST",
            path="/p",
            request_digest="d",
            response_status=201,
            response_body={},
        )
        for n in range(25)
    )
    IdempotencyRecord.objects.update(created_at=frozen_now - dt.timedelta(days=30))
    assert services.purge_idempotency_records(older_than=dt.timedelta(days=7), batch_size=10) == 25
    assert not IdempotencyRecord.objects.exists()
