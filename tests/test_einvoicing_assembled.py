"""E-invoicing as an operator runs it (issue 16): `make run`'s supervisor starts the
platform emulator beside gunicorn, the dispatcher and the Celery worker; an invoice is
deposited on it by the worker, and its statuses come back through the web server's
webhook, shown by the API."""

import requests

from devtools.embedded.kafka import free_port
from invoicing.models import BillableOperation, Invoice
from tests import eventkit, factories
from tests.test_run_local import _stop, local_run_env, purchase, start_local_run


def test_make_run_deposits_an_invoice_on_its_platform_emulator_and_shows_the_statuses(transactional_db, tmp_path):
    contract = factories.billed_contract(credit_limit=1_000_000)
    _, key = factories.api_key("operations:write", "billing-runs:write", "invoices:read")
    env = local_run_env(tmp_path)
    env.update(EINVOICING_GATEWAY="platform_emulator", EINVOICING_PLATFORM_URL=f"http://127.0.0.1:{free_port()}")
    base_url, headers = env["BOISSIPAY_BASE_URL"], {"Authorization": f"Api-Key {key}"}
    run = start_local_run(env, tmp_path)
    try:
        assert purchase(base_url, key, contract.pk, 1) == 201
        eventkit.wait_until(
            lambda: BillableOperation.objects.filter(contract_id=contract.pk).exists(),
            timeout=60,
            message="invoicing to take the purchase in",
        )
        early = requests.post(
            f"{base_url}/api/v1/early-invoices",
            json={"contract_reference": contract.reference, "reason": "final invoice"},
            headers={**headers, "Idempotency-Key": "early-1"},
            timeout=30,
        )
        assert early.status_code == 202, early.text
        eventkit.wait_until(
            lambda: Invoice.objects.filter(contract_id=contract.pk, platform_status="approved").exists(),
            timeout=120,
            interval=0.5,
            message="the worker to deposit the invoice and the platform to approve it",
        )
        invoice = Invoice.objects.get(contract_id=contract.pk)
        detail = requests.get(f"{base_url}/api/v1/invoices/{invoice.pk}", headers=headers, timeout=30).json()
        assert (detail["channel"], detail["status"]) == ("platform", "sent")
        assert [step["status"] for step in detail["lifecycle"]] == ["deposited", "received", "approved"]
        assert detail["platform_message_id"].startswith("msg_")
    finally:
        _stop(run)
    output = (tmp_path / "run.log").read_text()
    assert "e-invoicing platform emulator on" in output
    assert "exited with" not in output
