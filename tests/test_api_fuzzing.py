"""schemathesis over the contract-first documents, against the live application in
process: no 5xx, and every response within what the document promises."""

import uuid

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from boissipay.api.auth import SCOPES
from tests import factories

app = get_wsgi_application()
contracts_api = schemathesis.openapi.from_wsgi("/api/schema/contracts.yaml", app)
billing_api = schemathesis.openapi.from_wsgi("/api/schema/billing.yaml", app)
invoicing_api = schemathesis.openapi.from_wsgi("/api/schema/invoicing.yaml", app)
payments_api = schemathesis.openapi.from_wsgi("/api/schema/payments.yaml", app)

FUZZ = settings(
    max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True
)


@pytest.fixture
def auth_header(db, settings):
    # schemathesis sends bad keys on purpose (to check they are refused): not a guesser.
    settings.API_KEY_FAILURE_LIMIT = 1_000_000
    # As Django's test client does: keep the test's connection (and transaction) open
    # across the requests the WSGI app serves.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield from _auth_header()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _auth_header():
    contract = factories.billed_contract()  # something to find, amend, buy against and refuse
    _, raw = factories.api_key(*SCOPES)
    yield {"Authorization": f"Api-Key {raw}"}, contract


@pytest.mark.django_db
@contracts_api.parametrize()
@FUZZ
def test_contracts_api_honours_its_document(case, auth_header):
    headers, _ = auth_header
    # Schema-valid is not always valid: the document cannot express a SIREN's or an
    # IBAN's check digits, so a 400 for them is right and that one check is left out.
    case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])


@pytest.mark.django_db
@billing_api.parametrize()
@FUZZ
def test_billing_api_honours_its_document(case, auth_header):
    headers, contract = auth_header
    if case.operation.path.startswith("/api/v1/contracts") and _is_uuid(case.path_parameters.get("id")):
        case.path_parameters["id"] = str(contract.pk)  # a real contract, to go past the 404
    # Schema-valid is not always acceptable: a refund must name its purchase, a total
    # cannot be zero, and a business rule answers 422; so that one check is left out.
    case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])


@pytest.mark.django_db
@invoicing_api.parametrize()
@FUZZ
def test_invoicing_api_honours_its_document(case, auth_header):
    headers, contract = auth_header
    if case.operation.path.endswith("/credit-notes") and _is_uuid(case.path_parameters.get("id")):
        case.path_parameters["id"] = str(_an_invoice(contract).pk)  # a real invoice, to go past the 404
    # A schema-valid billing run may still ask for a month that has not started: 400; a
    # schema-valid credit note may credit more than the invoice holds: 422.
    case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])


def _an_invoice(contract):
    """An issued invoice of the contract with one operation at 20 % VAT (100.00 + 20.00),
    written directly: the fuzzer credits it in full, by operation or by amount."""
    import datetime as dt

    from django.utils import timezone

    from invoicing.models import BillableOperation, BillingBatch, Invoice, InvoicingContract

    buyer = InvoicingContract.objects.get(pk=contract.pk).buyer
    vat = [{"rate": "20.00", "base": 10_000, "vat": 2_000}]
    invoice = Invoice.objects.create(
        number=f"BP-2026-{uuid.uuid4().int % 900_000 + 100_000:06d}",
        kind="invoice",
        contract_id=contract.pk,
        contract_reference=contract.reference,
        customer_id=contract.customer_id,
        buyer=buyer,
        period=dt.date(2026, 10, 1),
        issue_date=dt.date(2026, 11, 1),
        due_date=dt.date(2026, 12, 1),
        currency="EUR",
        total_excl_tax=10_000,
        total_vat=2_000,
        total_incl_tax=12_000,
        vat_breakdown=vat,
        operations_count=1,
        status="sent",
    )
    batch = BillingBatch.objects.create(contract_id=contract.pk, period=invoice.period, invoice=invoice)
    BillableOperation.objects.create(
        operation_id=uuid.uuid4(),
        contract_id=contract.pk,
        batch=batch,
        type="purchase",
        external_ref="BKG-FUZZ",
        description="Purchase BKG-FUZZ",
        currency="EUR",
        amount_excl_tax=10_000,
        vat_amount=2_000,
        amount=12_000,
        vat_breakdown=vat,
        decided_at=timezone.make_aware(dt.datetime(2026, 10, 12, 12)),
        period=invoice.period,
    )
    return invoice


@pytest.mark.django_db
@payments_api.parametrize()
@FUZZ
def test_payments_api_honours_its_document(case, auth_header):
    headers, _ = auth_header
    # A webhook the fuzzer makes up cannot carry a valid signature: 401 is right for it.
    case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
