"""The floor of the operations benchmark: a bare Django view that does the essential SQL
of deciding a purchase, and nothing else.

It claims the Idempotency-Key, locks the contract's account, inserts the operation,
updates the account and inserts the outbox row, in one transaction, with psycopg through
Django's connection. No DRF, no authentication, no rules beyond the credit limit, no
response stored for replays. It is served by the same gunicorn, behind the same
middleware, as the real endpoint: `benchmarks/operations.py` starts gunicorn with
ROOT_URLCONF pointing here (the project's URLs plus this one). Never part of the product."""

import json
import uuid
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection, transaction
from django.http import HttpResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as project_urlpatterns

FLOOR_PATH = "bench/floor/operations"


@csrf_exempt
def decide_purchase(request):
    body = json.loads(request.body)
    key = request.headers["Idempotency-Key"]
    api_key_id = request.headers["X-Bench-Api-Key-Id"]
    excl = vat = 0
    for order in body["orders"]:
        for item in order["items"]:
            base = item["quantity"] * item["unit_amount"]
            excl += base
            vat += int((Decimal(base) * Decimal(item["vat_rate"]) / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    amount = excl + vat
    operation_id = uuid.uuid4()
    decided_at = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO boissipay_idempotencyrecord (api_key_id, key, method, path, request_digest, "
            "response_status, response_body, created_at) VALUES (%s, %s, 'POST', %s, '', 0, '{}', now()) "
            "ON CONFLICT (api_key_id, key) DO NOTHING RETURNING id",
            [api_key_id, key, request.path],
        )
        if cursor.fetchone() is None:
            return HttpResponse(b"{}", status=409, content_type="application/json")
        cursor.execute(
            "SELECT credit_limit, unbilled + invoiced_unpaid, customer_id, reference "
            "FROM billing_contractaccount WHERE contract_id = %s FOR UPDATE",
            [body["contract_id"]],
        )
        credit_limit, outstanding, customer_id, reference = cursor.fetchone()
        accepted = outstanding + amount <= credit_limit
        status = "accepted" if accepted else "rejected"
        cursor.execute(
            "INSERT INTO billing_operation (id, contract_id, customer_id, contract_reference, type, status, "
            "reason_code, reason_detail, external_ref, subscriber_ref, purchase_order, cost_centre, currency, "
            "amount_excl_tax, vat_amount, amount, vat_breakdown, orders, refunded_amount, balance_after, settlement, "
            "decided_at) VALUES (%s, %s, %s, %s, 'purchase', %s, %s, '', %s, '', %s, '', %s, %s, %s, %s, '[]', %s, "
            "0, %s, %s, %s)",
            [
                operation_id,
                body["contract_id"],
                customer_id,
                reference,
                status,
                "" if accepted else "credit_limit_exceeded",
                body["external_ref"],
                body.get("purchase_order", ""),
                body["currency"],
                excl,
                vat,
                amount,
                json.dumps(body["orders"]),
                outstanding + amount if accepted else None,
                "unbilled" if accepted else "",
                decided_at,
            ],
        )
        if accepted:
            cursor.execute(
                "UPDATE billing_contractaccount SET unbilled = unbilled + %s, updated_at = now() "
                "WHERE contract_id = %s",
                [amount, body["contract_id"]],
            )
        answer = {
            "id": str(operation_id),
            "contract_id": body["contract_id"],
            "status": status,
            "amount": amount,
            "decided_at": decided_at.isoformat(),
        }
        cursor.execute(
            "INSERT INTO boissipay_outboxevent (id, topic, aggregate_type, aggregate_id, event_type, schema_version, "
            "payload, occurred_at, attempts, last_error, dispatch_attempts, dispatched_at) "
            "VALUES (%s, 'boissipay.billing.v1', 'contract', %s, %s, 1, %s, now(), 0, '', 0, now())",
            [
                uuid.uuid4(),
                body["contract_id"],
                "billing.purchase_accepted" if accepted else "billing.operation_rejected",
                json.dumps({"operation": {**answer, "orders": body["orders"]}}),
            ],
        )
    return HttpResponse(json.dumps(answer), status=201 if accepted else 422, content_type="application/json")


urlpatterns = [path(FLOOR_PATH, decide_purchase), *project_urlpatterns]
