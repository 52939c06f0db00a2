"""Thin views of the contracts API: parse with an input serializer, call one service,
answer with an output serializer. Rules live in contracts.services."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from boissipay.api.idempotency import idempotent
from boissipay.api.pagination import StandardPagination
from boissipay.api.schema import IDEMPOTENCY_KEY, page_of, problems
from boissipay.api.serializers import QueryFilterSerializer
from boissipay.clock import business_today
from boissipay.errors import NotFound
from contracts import selectors, services
from contracts.api import serializers as io
from contracts.errors import ContractErrorCode as Code

READ = "contracts:read"
WRITE = "contracts:write"


def _visible_contract(request, contract_id):
    """The contract if this key may see it; 404 otherwise (another customer's too)."""
    contract = selectors.contracts_visible_to(request.user).filter(pk=contract_id).first()
    if contract is None:
        raise NotFound("No such contract.", Code.CONTRACT_UNKNOWN)
    return contract


def _contract_response(request, contract_id, status_code=status.HTTP_200_OK) -> Response:
    return Response(io.ContractSerializer(_visible_contract(request, contract_id)).data, status=status_code)


def _parse(serializer_class, request):
    serializer = serializer_class(data=request.data if request.data is not None else {})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class CustomerListView(APIView):
    required_scopes = {"GET": READ, "POST": WRITE}

    @extend_schema(
        operation_id="listCustomers",
        tags=["customers"],
        parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        responses={200: page_of(io.CustomerSerializer, "CustomerPage"), **problems(400, 401, 403, 404)},
    )
    def get(self, request):
        QueryFilterSerializer(data=request.query_params.dict()).is_valid(raise_exception=True)
        paginator = StandardPagination()
        page = paginator.paginate_queryset(selectors.customers_visible_to(request.user), request, view=self)
        return paginator.get_paginated_response(io.CustomerSerializer(page, many=True).data)

    @extend_schema(
        operation_id="createCustomer",
        tags=["customers"],
        parameters=[IDEMPOTENCY_KEY],
        request=io.CustomerCreateSerializer,
        responses={201: io.CustomerSerializer, **problems(400, 401, 403, 409)},
    )
    def post(self, request):
        if request.user.customer_id:
            self.permission_denied(request, "A key restricted to one customer cannot register customers.")
        data = _parse(io.CustomerCreateSerializer, request)

        def perform():
            customer = services.register_customer(**data)
            return Response(io.CustomerSerializer(customer).data, status=status.HTTP_201_CREATED)

        return idempotent(request, perform)


class CustomerDetailView(APIView):
    required_scopes = {"GET": READ, "PATCH": WRITE}

    @extend_schema(
        operation_id="getCustomer",
        tags=["customers"],
        responses={200: io.CustomerSerializer, **problems(401, 403, 404)},
    )
    def get(self, request, customer_id):
        customer = get_object_or_404(selectors.customers_visible_to(request.user), pk=customer_id)
        return Response(io.CustomerSerializer(customer).data)

    @extend_schema(
        operation_id="correctCustomer",
        tags=["customers"],
        parameters=[IDEMPOTENCY_KEY],
        request=io.CustomerCorrectionSerializer,
        responses={200: io.CustomerSerializer, **problems(400, 401, 403, 404, 409)},
    )
    def patch(self, request, customer_id):
        get_object_or_404(selectors.customers_visible_to(request.user), pk=customer_id)
        data = _parse(io.CustomerCorrectionSerializer, request)

        def perform():
            customer = services.correct_customer(customer_id=customer_id, **data)
            return Response(io.CustomerSerializer(customer).data)

        return idempotent(request, perform)


class ContractFilterSerializer(QueryFilterSerializer):
    customer = serializers.UUIDField(required=False)
    status = serializers.ChoiceField(choices=["active", "suspended", "cancelled", "expired"], required=False)


class ContractListView(APIView):
    required_scopes = {"GET": READ, "POST": WRITE}

    @extend_schema(
        operation_id="listContracts",
        tags=["contracts"],
        parameters=[
            OpenApiParameter("customer", str, description="Only the contracts of this customer."),
            OpenApiParameter("status", str, enum=["active", "suspended", "cancelled", "expired"]),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses={200: page_of(io.ContractSerializer, "ContractPage"), **problems(400, 401, 403, 404)},
    )
    def get(self, request):
        filters = ContractFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        contracts = selectors.filter_contracts(
            selectors.contracts_visible_to(request.user),
            customer_id=filters.validated_data.get("customer"),
            status=filters.validated_data.get("status"),
            today=business_today(),
        )
        paginator = StandardPagination()
        page = paginator.paginate_queryset(contracts, request, view=self)
        return paginator.get_paginated_response(io.ContractSerializer(page, many=True).data)

    @extend_schema(
        operation_id="subscribeContract",
        tags=["contracts"],
        parameters=[IDEMPOTENCY_KEY],
        request=io.ContractCreateSerializer,
        responses={201: io.ContractSerializer, **problems(400, 401, 403, 404, 409)},
    )
    def post(self, request):
        data = _parse(io.ContractCreateSerializer, request)
        if not request.user.can_see_customer(data["customer_id"]):
            raise NotFound("No such customer.", Code.CUSTOMER_UNKNOWN)

        mandate = services.MandateDetails(**data.pop("mandate"))

        def perform():
            contract = services.subscribe_contract(**data, mandate=mandate)
            return _contract_response(request, contract.pk, status.HTTP_201_CREATED)

        return idempotent(request, perform)


class ContractDetailView(APIView):
    required_scopes = {"GET": READ, "PATCH": WRITE}

    @extend_schema(
        operation_id="getContract",
        tags=["contracts"],
        responses={200: io.ContractSerializer, **problems(401, 403, 404)},
    )
    def get(self, request, contract_id):
        return _contract_response(request, contract_id)

    @extend_schema(
        operation_id="amendContract",
        tags=["contracts"],
        request=io.ContractAmendSerializer,
        responses={200: io.ContractSerializer, **problems(400, 401, 403, 404, 409)},
    )
    def patch(self, request, contract_id):
        _visible_contract(request, contract_id)
        data = _parse(io.ContractAmendSerializer, request)
        services.amend_contract(contract_id=contract_id, **data)
        return _contract_response(request, contract_id)


def _contract_command(operation_id: str, summary: str, input_serializer, service, *, required_body: bool = True):
    """A POST /contracts/{id}/<command> view that runs one service on the contract."""

    class CommandView(APIView):
        required_scopes = {"POST": WRITE}

        @extend_schema(
            operation_id=operation_id,
            tags=["contracts"],
            summary=summary,
            request=input_serializer,
            responses={200: io.ContractSerializer, **problems(400, 401, 403, 404, 409)},
        )
        def post(self, request, contract_id):
            _visible_contract(request, contract_id)
            data = _parse(input_serializer, request)
            service(contract_id=contract_id, **data)
            return _contract_response(request, contract_id)

    CommandView.__name__ = f"{operation_id[0].upper()}{operation_id[1:]}View"
    return CommandView


SuspendContractView = _contract_command(
    "suspendContract", "Suspend an active contract", io.ReasonSerializer, services.suspend_contract
)
ReactivateContractView = _contract_command(
    "reactivateContract", "Reactivate a suspended contract", io.EmptySerializer, services.reactivate_contract
)
CancelContractView = _contract_command(
    "cancelContract", "Cancel a contract for good", io.ReasonSerializer, services.cancel_contract
)
RevokeMandateView = _contract_command(
    "revokeMandate", "Revoke the current mandate", io.OptionalReasonSerializer, services.revoke_mandate
)


class MandateView(APIView):
    required_scopes = {"PUT": WRITE}

    @extend_schema(
        operation_id="renewMandate",
        tags=["contracts"],
        request=io.MandateInputSerializer,
        responses={200: io.ContractSerializer, **problems(400, 401, 403, 404, 409)},
    )
    def put(self, request, contract_id):
        _visible_contract(request, contract_id)
        data = _parse(io.MandateInputSerializer, request)
        services.renew_mandate(contract_id=contract_id, mandate=services.MandateDetails(**data))
        return _contract_response(request, contract_id)


class SubscriberListView(APIView):
    required_scopes = {"POST": WRITE}

    @extend_schema(
        operation_id="registerSubscriber",
        tags=["contracts"],
        request=io.SubscriberCreateSerializer,
        responses={201: io.SubscriberSerializer, **problems(400, 401, 403, 404, 409)},
    )
    def post(self, request, contract_id):
        _visible_contract(request, contract_id)
        data = _parse(io.SubscriberCreateSerializer, request)
        subscriber = services.register_subscriber(contract_id=contract_id, **data)
        return Response(io.SubscriberSerializer(subscriber).data, status=status.HTTP_201_CREATED)


class SubscriberDetailView(APIView):
    required_scopes = {"DELETE": WRITE, "PATCH": WRITE}

    @extend_schema(
        operation_id="changeSubscriber",
        tags=["contracts"],
        request=io.SubscriberChangeSerializer,
        responses={200: io.SubscriberSerializer, **problems(400, 401, 403, 404, 409)},
    )
    def patch(self, request, contract_id, ref):
        _visible_contract(request, contract_id)
        data = _parse(io.SubscriberChangeSerializer, request)
        subscriber = services.set_subscriber_cap(contract_id=contract_id, external_ref=ref, **data)
        return Response(io.SubscriberSerializer(subscriber).data)

    @extend_schema(
        operation_id="removeSubscriber", tags=["contracts"], responses={204: None, **problems(401, 403, 404)}
    )
    def delete(self, request, contract_id, ref):
        _visible_contract(request, contract_id)
        services.remove_subscriber(contract_id=contract_id, external_ref=ref)
        return Response(status=status.HTTP_204_NO_CONTENT)
