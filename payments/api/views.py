"""Thin views of the payments API, and the provider's signed webhook."""

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from boissipay.api.idempotency import idempotent
from boissipay.api.pagination import StandardPagination
from boissipay.api.schema import REQUIRED_IDEMPOTENCY_KEY, page_of, problems
from boissipay.api.webhooks import signed_json
from boissipay.errors import NotFound
from payments import manual_payments, selectors, services, signatures
from payments.api import serializers as io
from payments.metrics import WEBHOOK_SIGNATURE_FAILURES

READ = "payments:read"
MANUAL = "payments:manual"


class PaymentListView(APIView):
    required_scopes = {"GET": READ}

    @extend_schema(
        operation_id="listPayments",
        tags=["payments"],
        parameters=[
            OpenApiParameter("invoice", str),
            OpenApiParameter("contract", str),
            OpenApiParameter("status", str, enum=["pending", "submitted", "succeeded", "failed"]),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses={200: page_of(io.PaymentSerializer, "PaymentPage"), **problems(400, 401, 403, 404)},
    )
    def get(self, request):
        filters = io.PaymentFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        payments = selectors.filter_payments(selectors.payments_visible_to(request.user), **filters.validated_data)
        paginator = StandardPagination()
        page = paginator.paginate_queryset(payments, request, view=self)
        return paginator.get_paginated_response(io.PaymentSerializer(page, many=True).data)


class PaymentDetailView(APIView):
    required_scopes = {"GET": READ}

    @extend_schema(
        operation_id="getPayment", tags=["payments"], responses={200: io.PaymentSerializer, **problems(401, 403, 404)}
    )
    def get(self, request, payment_id):
        payment = selectors.payments_visible_to(request.user).filter(pk=payment_id).first()
        if payment is None:
            raise NotFound("No such payment.", "payment_unknown")
        return Response(io.PaymentSerializer(payment).data)


class PaymentWebhookView(APIView):
    """The provider's answer about a debit. Authenticated by its signature, not a key."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="receivePaymentWebhook",
        tags=["webhooks"],
        auth=[],
        parameters=[OpenApiParameter(signatures.HEADER, str, OpenApiParameter.HEADER, required=True)],
        request=io.WebhookEventSerializer,
        responses={200: io.WebhookReceiptSerializer, **problems(400, 401, 404, 422)},
    )
    def post(self, request):
        data = signed_json(
            request,
            secret=settings.PAYMENTS_WEBHOOK_SECRET,
            tolerance_seconds=settings.PAYMENTS_WEBHOOK_TOLERANCE_SECONDS,
            on_bad_signature=WEBHOOK_SIGNATURE_FAILURES.inc,
        )
        event = io.WebhookEventSerializer(data=data if isinstance(data, dict) else {})
        event.is_valid(raise_exception=True)
        fields = event.validated_data
        failure = " ".join(filter(None, [fields.get("failure_code"), fields.get("failure_message")]))
        payment = services.record_outcome(
            succeeded=fields["type"] == "charge.succeeded",
            reason=failure,
            payment_id=str(fields["payment_id"]) if fields.get("payment_id") else None,
            provider_reference=fields["charge_id"],
            provider_event_id=fields["event_id"],
            end_to_end_id=fields.get("end_to_end_id"),
            source="webhook",
            payload=data,
            amount=fields["amount"],
            currency=fields["currency"],
        )
        return Response({"received": True, "applied": payment is not None})


class ManualPaymentView(APIView):
    """Money received outside the debit (payments.manual_payments), recorded by a staff system."""

    required_scopes = {"POST": MANUAL}

    @extend_schema(
        operation_id="recordManualPayment",
        tags=["payments"],
        parameters=[REQUIRED_IDEMPOTENCY_KEY],
        request=io.ManualPaymentCreateSerializer,
        responses={201: io.ManualPaymentSerializer, **problems(400, 401, 403, 404, 409, 422)},
    )
    def post(self, request):
        body = io.ManualPaymentCreateSerializer(data=request.data if isinstance(request.data, dict) else {})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        scope = request.user.customer_id
        if scope is not None and str(scope) != str(data["customer_id"]):
            raise NotFound("No such customer.", "not_found")

        def perform():
            manual = manual_payments.record_manual_payment(
                customer_id=data["customer_id"],
                amount=data["amount"],
                currency=data["currency"],
                received_on=data["received_on"],
                method=data["method"],
                bank_reference=data["bank_reference"],
                recorded_by=f"api key {request.user.name}",
                invoice_ids=[str(i) for i in data["invoice_ids"]] if "invoice_ids" in data else None,
            )
            return Response(io.manual_payment_body(manual), status=201)

        return idempotent(request, perform, required=True)
