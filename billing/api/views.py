"""Thin views of the billing API: parse, call one service or selector, answer.
The acceptance rules live in billing.services."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import selectors, services
from billing.api import serializers as io
from billing.errors import BillingErrorCode as Code
from billing.metrics import OPERATIONS
from billing.models import OperationStatus
from boissipay.api.errors import problem
from boissipay.api.idempotency import idempotent
from boissipay.api.pagination import StandardPagination
from boissipay.api.schema import REQUIRED_IDEMPOTENCY_KEY, page_of, problems
from boissipay.errors import NotFound

READ = "operations:read"
WRITE = "operations:write"


def _visible_account(request, contract_id):
    account = selectors.accounts_visible_to(request.user).filter(pk=contract_id).first()
    if account is None:
        raise NotFound("No such contract.", Code.CONTRACT_UNKNOWN)
    return account


def _request_from(data) -> services.OperationRequest:
    orders = tuple(
        services.Order(reference=order["reference"], items=tuple(services.Item(**item) for item in order["items"]))
        for order in data["orders"]
    )
    return services.OperationRequest(
        contract_id=data["contract_id"],
        type=data["type"],
        external_ref=data["external_ref"],
        currency=data["currency"],
        orders=orders,
        subscriber_ref=data.get("subscriber_ref", ""),
        refund_of=data.get("refund_of"),
        purchase_order=data.get("purchase_order", ""),
        cost_centre=data.get("cost_centre", ""),
        travel_date=data.get("travel_date"),
    )


class OperationListView(APIView):
    required_scopes = {"POST": WRITE}

    @extend_schema(
        operation_id="submitOperation",
        tags=["operations"],
        parameters=[REQUIRED_IDEMPOTENCY_KEY],
        request=io.OperationCreateSerializer,
        responses={
            201: io.OperationSerializer,
            **problems(400, 401, 403, 409),
            422: OpenApiResponse(io.OperationRejectionSerializer, description="Rejected by a rule."),
        },
    )
    def post(self, request):
        operation_request = _request_from(io.validated_operation(request.data if request.data is not None else {}))

        def perform():
            operation = services.submit_operation(request=operation_request, customer_scope=request.user.customer_id)
            OPERATIONS.labels(operation.type, operation.status, operation.reason_code or "").inc()
            body = io.operation_body(operation)
            if operation.status == OperationStatus.ACCEPTED:
                return Response(body, status=status.HTTP_201_CREATED)
            rejection = problem(422, operation.reason_code, "Operation rejected", operation.reason_detail)
            return Response({**rejection, "operation": body}, status=422)

        return idempotent(request, perform, required=True)


class OperationDetailView(APIView):
    required_scopes = {"GET": READ}

    @extend_schema(
        operation_id="getOperation",
        tags=["operations"],
        responses={200: io.OperationSerializer, **problems(401, 403, 404)},
    )
    def get(self, request, operation_id):
        operation = selectors.operations_visible_to(request.user).filter(pk=operation_id).first()
        if operation is None:
            raise NotFound("No such operation.", Code.OPERATION_UNKNOWN)
        return Response(io.operation_body(operation))


class ContractOperationListView(APIView):
    required_scopes = {"GET": READ}

    @extend_schema(
        operation_id="listContractOperations",
        tags=["operations"],
        parameters=[
            OpenApiParameter("period", str, description="Month decided in, Europe/Paris (YYYY-MM)."),
            OpenApiParameter("status", str, enum=["accepted", "rejected"]),
            OpenApiParameter("type", str, enum=["purchase", "refund"]),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses={200: page_of(io.OperationSerializer, "OperationPage"), **problems(400, 401, 403, 404)},
    )
    def get(self, request, contract_id):
        filters = io.OperationFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        account = _visible_account(request, contract_id)
        operations = selectors.filter_operations(
            selectors.operations_visible_to(request.user).filter(contract_id=account.contract_id),
            **filters.validated_data,
        )
        paginator = StandardPagination()
        page = paginator.paginate_queryset(operations, request, view=self)
        return paginator.get_paginated_response(io.OperationSerializer(page, many=True).data)


class ContractBalanceView(APIView):
    required_scopes = {"GET": READ}

    @extend_schema(
        operation_id="getContractBalance",
        tags=["balances"],
        responses={200: io.BalanceSerializer, **problems(401, 403, 404)},
    )
    def get(self, request, contract_id):
        account = _visible_account(request, contract_id)
        body = {
            "contract_id": account.contract_id,
            "currency": account.currency,
            "credit_limit": account.credit_limit,
            "outstanding": account.outstanding,
            "available": account.available,
            "unbilled": account.unbilled,
            "invoiced_unpaid": account.invoiced_unpaid,
        }
        return Response(io.BalanceSerializer(body).data)
