"""Thin views of the invoicing API."""

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from boissipay import signatures
from boissipay.api.idempotency import idempotent
from boissipay.api.pagination import StandardPagination
from boissipay.api.schema import IDEMPOTENCY_KEY, REQUIRED_IDEMPOTENCY_KEY, page_of, problems
from boissipay.api.webhooks import signed_json
from boissipay.errors import NotFound
from invoicing import credit_notes, einvoicing, selectors, services
from invoicing.api import serializers as io
from invoicing.models import BillingRun

READ = "invoices:read"
CREDIT = "invoices:credit"
RUNS = "billing-runs:write"


def _visible_invoice(request, invoice_id):
    invoice = selectors.invoices_visible_to(request.user).filter(pk=invoice_id).first()
    if invoice is None:
        raise NotFound("No such invoice.", "invoice_unknown")
    return invoice


class InvoiceListView(APIView):
    required_scopes = {"GET": READ}

    @extend_schema(
        operation_id="listInvoices",
        tags=["invoices"],
        parameters=[
            OpenApiParameter("contract", str, description="Only this contract's invoices."),
            OpenApiParameter("period", str, description="The month invoiced (YYYY-MM)."),
            OpenApiParameter("status", str, enum=["issued", "sent", "paid", "failed", "cancelled"]),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses={200: page_of(io.InvoiceSerializer, "InvoicePage"), **problems(400, 401, 403, 404)},
    )
    def get(self, request):
        filters = io.InvoiceFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        invoices = selectors.filter_invoices(selectors.invoices_visible_to(request.user), **filters.validated_data)
        paginator = StandardPagination()
        page = paginator.paginate_queryset(invoices, request, view=self)
        return paginator.get_paginated_response(io.InvoiceSerializer(page, many=True).data)


class InvoiceDetailView(APIView):
    required_scopes = {"GET": READ}

    @extend_schema(
        operation_id="getInvoice",
        tags=["invoices"],
        responses={200: io.InvoiceDetailSerializer, **problems(401, 403, 404)},
    )
    def get(self, request, invoice_id):
        return Response(io.InvoiceDetailSerializer(_visible_invoice(request, invoice_id)).data)


class InvoicePdfView(APIView):
    required_scopes = {"GET": READ}

    @extend_schema(
        operation_id="getInvoicePdf",
        tags=["invoices"],
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF."),
            **problems(401, 403, 404),
        },
    )
    def get(self, request, invoice_id):
        invoice = _visible_invoice(request, invoice_id)
        pdf = services.invoice_pdf(invoice_id=invoice.pk)
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{invoice.number}.pdf"'
        return response


class CreditNoteView(APIView):
    """Staff credit an invoice (invoicing.credit_notes), in full or in part."""

    required_scopes = {"POST": CREDIT}

    @extend_schema(
        operation_id="issueCreditNote",
        tags=["invoices"],
        parameters=[REQUIRED_IDEMPOTENCY_KEY],
        request=io.CreditNoteCreateSerializer,
        responses={201: io.InvoiceDetailSerializer, **problems(400, 401, 403, 404, 409, 422)},
    )
    def post(self, request, invoice_id):
        if request.user.customer_id is not None:
            self.permission_denied(request, "A key restricted to one customer cannot issue credit notes.")
        invoice = _visible_invoice(request, invoice_id)
        body = io.CreditNoteCreateSerializer(data=request.data if isinstance(request.data, dict) else {})
        body.is_valid(raise_exception=True)
        data = body.validated_data

        def perform():
            note = credit_notes.issue_credit_note(
                invoice_id=invoice.pk,
                issued_by=f"api key {request.user.name}",
                reason=data["reason"],
                full=data.get("full", False),
                operation_ids=[str(value) for value in data["operation_ids"]] if "operation_ids" in data else None,
                amounts=[credit_notes.AmountLine(**line) for line in data["amounts"]] if "amounts" in data else None,
            )
            return Response(io.InvoiceDetailSerializer(note).data, status=status.HTTP_201_CREATED)

        return idempotent(request, perform, required=True)


def _queued(run: BillingRun) -> Response:
    """Hand the recorded run to a worker once the request commits; answer 202 with it."""
    from invoicing.tasks import execute_billing_run

    transaction.on_commit(lambda: execute_billing_run.delay(str(run.pk)))
    return Response(io.BillingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class BillingRunListView(APIView):
    required_scopes = {"POST": RUNS}

    @extend_schema(
        operation_id="startBillingRun",
        tags=["billing-runs"],
        parameters=[IDEMPOTENCY_KEY],
        request=io.BillingRunCreateSerializer,
        responses={202: io.BillingRunSerializer, **problems(400, 401, 403, 409)},
    )
    def post(self, request):
        if request.user.customer_id:
            self.permission_denied(request, "A key restricted to one customer cannot start billing runs.")
        serializer = io.BillingRunCreateSerializer(data=request.data if request.data is not None else {})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        def perform():
            return _queued(
                services.start_billing_run(
                    period=data["period"],
                    trigger="api",
                    started_by=f"API key {request.user.name}",
                    contract_reference=data.get("contract_reference", ""),
                    dry_run=data["dry_run"],
                )
            )

        return idempotent(request, perform)


class EarlyInvoiceView(APIView):
    required_scopes = {"POST": RUNS}

    @extend_schema(
        operation_id="invoiceContractEarly",
        tags=["billing-runs"],
        parameters=[IDEMPOTENCY_KEY],
        request=io.EarlyInvoiceCreateSerializer,
        responses={202: io.BillingRunSerializer, **problems(400, 401, 403, 404, 409)},
    )
    def post(self, request):
        if request.user.customer_id:
            self.permission_denied(request, "A key restricted to one customer cannot invoice early.")
        serializer = io.EarlyInvoiceCreateSerializer(data=request.data if request.data is not None else {})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        def perform():
            return _queued(
                services.start_early_invoice(
                    contract_reference=data["contract_reference"],
                    reason=data["reason"],
                    trigger="api",
                    started_by=f"API key {request.user.name}",
                )
            )

        return idempotent(request, perform, required=True)


class BillingRunDetailView(APIView):
    required_scopes = {"GET": RUNS}

    @extend_schema(
        operation_id="getBillingRun",
        tags=["billing-runs"],
        responses={200: io.BillingRunSerializer, **problems(401, 403, 404)},
    )
    def get(self, request, run_id):
        if request.user.customer_id:
            self.permission_denied(request, "A key restricted to one customer cannot read billing runs.")
        run = BillingRun.objects.filter(pk=run_id).first()
        if run is None:
            raise NotFound("No such billing run.", "billing_run_unknown")
        return Response(io.BillingRunSerializer(run).data)


class PlatformWebhookView(APIView):
    """The e-invoicing platform's lifecycle statuses (invoicing.einvoicing). Authenticated
    by its signature (the payment provider's scheme), not a key."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="receivePlatformStatus",
        tags=["webhooks"],
        auth=[],
        parameters=[OpenApiParameter(signatures.HEADER, str, OpenApiParameter.HEADER, required=True)],
        request=io.PlatformStatusEventSerializer,
        responses={200: io.PlatformStatusReceiptSerializer, **problems(400, 401, 404)},
    )
    def post(self, request):
        data = signed_json(
            request,
            secret=settings.EINVOICING_WEBHOOK_SECRET,
            tolerance_seconds=settings.PAYMENTS_WEBHOOK_TOLERANCE_SECONDS,
        )
        event = io.PlatformStatusEventSerializer(data=data if isinstance(data, dict) else {})
        event.is_valid(raise_exception=True)
        fields = event.validated_data
        applied = einvoicing.apply_status(
            event_id=fields["event_id"],
            message_id=fields["message_id"],
            status=fields["status"],
            reason=fields["reason"],
            occurred_at=dt.datetime.fromtimestamp(fields["occurred_at"], tz=dt.UTC),
        )
        return Response({"received": True, "applied": applied})
