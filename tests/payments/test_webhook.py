"""The provider's webhook: signed, fresh, applied once."""

import datetime as dt
import json
import time
import uuid

import pytest

from boissipay.models import OutboxEvent
from payments import signatures
from payments.models import Payment, PaymentLog
from tests.clock import freeze_module_at

# Every test here starts on one frozen "today" (Paris, ticking), whatever the real date.
_today = freeze_module_at(dt.date(2026, 11, 20))

pytestmark = pytest.mark.django_db

WEBHOOK = "/api/v1/payments/webhook"


@pytest.fixture
def submitted(settings):
    settings.PAYMENTS_RETRY_DAYS = [3, 7]
    payment = Payment.objects.create(
        invoice_id=uuid.uuid4(),
        invoice_number="BP-2026-000042",
        contract_id=uuid.uuid4(),
        contract_reference="CTR-WH",
        amount=12_000,
        currency="EUR",
        original_due_date=dt.date(2026, 12, 1),
        due_date=dt.date(2026, 12, 1),
        status="submitted",
        gateway="emulator",
        attempts=1,
        provider_reference="ch_123",
    )
    return payment


def event(payment, *, kind="charge.succeeded", event_id="evt_1", **extra) -> dict:
    return {
        "event_id": event_id,
        "type": kind,
        "charge_id": payment.provider_reference,
        "payment_id": str(payment.pk),
        "end_to_end_id": f"{payment.pk.hex}-{payment.attempts}",
        "amount": payment.amount,
        "currency": payment.currency,
        "failure_code": extra.pop("failure_code", None),
        "failure_message": extra.pop("failure_message", None),
        "created": int(time.time()),
        **extra,
    }


def deliver(api, body: dict, *, secret=None, timestamp=None, signature=None):
    from django.conf import settings

    raw = json.dumps(body).encode()
    header = (
        signature
        if signature is not None
        else signatures.sign(raw, secret or settings.PAYMENTS_WEBHOOK_SECRET, timestamp)
    )
    return api.post(WEBHOOK, data=raw, content_type="application/json", HTTP_BOISSIPAY_SIGNATURE=header)


def test_a_signed_success_marks_the_payment_succeeded(api, submitted):
    response = deliver(api, event(submitted))
    assert response.status_code == 200
    assert response.json() == {"received": True, "applied": True}
    submitted.refresh_from_db()
    assert submitted.status == "succeeded"


def test_a_signed_failure_schedules_the_first_retry(api, submitted):
    body = event(submitted, kind="charge.failed", failure_code="insufficient_funds", failure_message="No money")
    assert deliver(api, body).status_code == 200
    submitted.refresh_from_db()
    assert (submitted.status, submitted.due_date, submitted.failure_reason) == (
        "pending",
        dt.date(2026, 12, 4),
        "insufficient_funds No money",
    )


@pytest.mark.parametrize(
    "forge",
    [
        {"secret": "not-the-secret"},
        {"timestamp": int(time.time()) - 301},
        {"signature": ""},
        {"signature": "t=abc,v1=zz"},
        {"signature": "garbage"},
    ],
    ids=["wrong secret", "older than 5 minutes", "missing", "malformed time", "malformed header"],
)
def test_a_bad_or_stale_signature_is_refused_and_changes_nothing(api, submitted, forge):
    response = deliver(api, event(submitted), **forge)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"
    submitted.refresh_from_db()
    assert submitted.status == "submitted"
    assert not PaymentLog.objects.exists()


def test_a_body_changed_after_signing_is_refused(api, submitted):
    from django.conf import settings

    raw = json.dumps(event(submitted)).encode()
    header = signatures.sign(raw, settings.PAYMENTS_WEBHOOK_SECRET)
    tampered = raw.replace(b"charge.succeeded", b"charge.failed")
    response = api.post(WEBHOOK, data=tampered, content_type="application/json", HTTP_BOISSIPAY_SIGNATURE=header)
    assert response.status_code == 401


def test_the_same_event_delivered_twice_is_applied_once(api, submitted):
    first = deliver(api, event(submitted))
    again = deliver(api, event(submitted))
    assert (first.json()["applied"], again.json()["applied"]) == (True, False)
    assert PaymentLog.objects.filter(provider_event_id="evt_1").count() == 1


def test_an_answer_about_an_earlier_attempt_is_ignored(api, submitted):
    stale = event(submitted, kind="charge.failed", end_to_end_id=f"{submitted.pk.hex}-0", failure_code="x")
    assert deliver(api, stale).json()["applied"] is False
    submitted.refresh_from_db()
    assert submitted.status == "submitted"


def test_an_unknown_payment_is_a_404(api, submitted):
    body = event(submitted, payment_id=str(uuid.uuid4()), charge_id="ch_unknown")
    response = deliver(api, body)
    assert (response.status_code, response.json()["code"]) == (404, "payment_unknown")


def test_a_signed_but_invalid_body_is_a_400(api, submitted):
    response = deliver(api, {"event_id": "evt_9", "type": "charge.refunded", "charge_id": "ch_123"})
    assert response.status_code == 400


@pytest.mark.parametrize(("amount", "currency"), [(1, "EUR"), (None, "USD"), (1, "USD")])
def test_an_answer_whose_amount_or_currency_is_not_the_payments_is_refused_logged_and_changes_nothing(
    api, submitted, amount, currency
):
    body = event(submitted, amount=submitted.amount if amount is None else amount, currency=currency)

    response = deliver(api, body)

    assert (response.status_code, response.json()["code"]) == (422, "amount_mismatch")
    submitted.refresh_from_db()
    assert submitted.status == "submitted"
    assert not OutboxEvent.objects.filter(event_type="payments.payment.succeeded").exists()
    [log] = PaymentLog.objects.filter(payment=submitted, summary__startswith="refused")
    assert f"the debit is {submitted.amount} EUR" in log.summary
    assert deliver(api, event(submitted, event_id="evt_2")).json()["applied"] is True  # the real answer still counts


def test_an_answer_without_its_amount_is_a_400(api, submitted):
    body = event(submitted)
    del body["amount"]
    assert deliver(api, body).status_code == 400
    submitted.refresh_from_db()
    assert submitted.status == "submitted"


@pytest.mark.parametrize("header", ["t={now},v1=é", "t={now},v1=\u00e9\u00e9", "t=1,v1=abc,é=1"])
def test_a_signature_header_with_non_ascii_characters_is_a_401(api, submitted, header):
    raw = json.dumps(event(submitted)).encode()
    value = header.format(now=int(time.time()))
    response = api.post(
        WEBHOOK, data=raw, content_type="application/json", HTTP_BOISSIPAY_SIGNATURE=value.encode().decode("latin-1")
    )
    assert (response.status_code, response.json()["code"]) == (401, "invalid_signature")
