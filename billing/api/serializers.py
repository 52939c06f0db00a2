"""Input and output serializers of the billing API (openapi/billing.yaml)."""

import datetime as dt
import re
import uuid
from decimal import Decimal

from django.utils import timezone
from rest_framework import serializers

from billing.models import Operation, OperationType
from boissipay.api.schema import ProblemSerializer
from boissipay.api.serializers import (
    MoneyAmountField,
    QueryFilterSerializer,
    StrictInputSerializer,
    StrictIntegerField,
    VatLineSerializer,
)

MAX_OPERATION_AMOUNT = 10**15  # minor units; anything above is a typo, not a booking
VAT_RATE = re.compile(r"^(100(\.0{1,2})?|[0-9]{1,2}(\.[0-9]{1,2})?)$")


class VatRateField(serializers.CharField):
    """A VAT rate in percent as a decimal string ("20", "5.5"): never a float."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or not VAT_RATE.match(data):
            raise serializers.ValidationError('A VAT rate in percent as a string, e.g. "20" or "5.5".')
        return Decimal(data)

    def to_representation(self, value):
        return str(value)


class ItemCreateSerializer(StrictInputSerializer):
    label = serializers.CharField(max_length=200)
    quantity = StrictIntegerField(min_value=1, max_value=10_000)
    unit_amount = MoneyAmountField(max_value=10**10, help_text="Minor units, excluding tax.")
    vat_rate = VatRateField()


class OrderCreateSerializer(StrictInputSerializer):
    reference = serializers.CharField(max_length=100)
    items = ItemCreateSerializer(many=True, min_length=1, max_length=100)


class OperationCreateSerializer(StrictInputSerializer):
    contract_id = serializers.UUIDField()
    type = serializers.ChoiceField(choices=OperationType.choices)
    external_ref = serializers.CharField(max_length=100)
    subscriber_ref = serializers.CharField(max_length=100, required=False)
    refund_of = serializers.UUIDField(required=False)
    purchase_order = serializers.CharField(max_length=100, required=False, allow_blank=True)
    cost_centre = serializers.CharField(max_length=100, required=False, allow_blank=True)
    travel_date = serializers.DateField(required=False)
    currency = serializers.RegexField(r"^[A-Z]{3}$", max_length=3)
    orders = OrderCreateSerializer(many=True, min_length=1, max_length=50)

    def validate(self, attrs):
        if attrs["type"] == OperationType.REFUND and "refund_of" not in attrs:
            raise serializers.ValidationError({"refund_of": ["A refund names the purchase it refunds."]})
        if attrs["type"] == OperationType.PURCHASE and "refund_of" in attrs:
            raise serializers.ValidationError({"refund_of": ["Only a refund names a purchase."]})
        total = sum(
            item["quantity"] * item["unit_amount"] * (1 + item["vat_rate"] / 100)
            for order in attrs["orders"]
            for item in order["items"]
        )
        if total > MAX_OPERATION_AMOUNT:
            raise serializers.ValidationError({"orders": [f"The operation's total exceeds {MAX_OPERATION_AMOUNT}."]})
        if total == 0:
            raise serializers.ValidationError({"orders": ["The operation's total is zero."]})
        return attrs


_operation_input = OperationCreateSerializer()


def validated_operation(data) -> dict:
    """OperationCreateSerializer(data=data)'s validated data, or the same ValidationError
    as `is_valid(raise_exception=True)`.

    A plainly valid body (exact JSON types, text needing no trimming, within every
    bound) is read by `_plainly_valid_operation`, at a fraction of DRF's cost; anything
    else goes through the serializer, which says what is wrong. A property test holds the
    short way to giving exactly what the serializer gives. One shared serializer
    instance: DRF would build the nested serializers' fields anew for every request."""
    plain = _plainly_valid_operation(data)
    return plain if plain is not None else _operation_input.run_validation(data)


_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_OPERATION_FIELDS = frozenset(OperationCreateSerializer._declared_fields)
_OPTIONAL_TEXT = {"subscriber_ref": (100, False), "purchase_order": (100, True), "cost_centre": (100, True)}


def _text(value, max_length: int, *, blank: bool = False) -> bool:
    """A string DRF's CharField would keep as it is: printable (no control, separator
    other than space, or surrogate), nothing to trim, within its length."""
    return (
        isinstance(value, str)
        and (blank or value != "")
        and len(value) <= max_length
        and value.isprintable()
        and value == value.strip()
    )


def _integer(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _plainly_valid_operation(data) -> dict | None:
    """The validated operation when `data` is plainly valid, else None (the serializer
    then decides, and explains)."""
    if not isinstance(data, dict) or not data.keys() <= _OPERATION_FIELDS:
        return None
    contract_id, type_, orders = data.get("contract_id"), data.get("type"), data.get("orders")
    if not (isinstance(contract_id, str) and _UUID.match(contract_id)):
        return None
    if type_ != OperationType.PURCHASE or "refund_of" in data:  # refunds take the long way
        return None
    if not _text(data.get("external_ref"), 100) or not isinstance(data.get("currency"), str):
        return None
    if not _CURRENCY.match(data["currency"]):
        return None
    for name, (max_length, blank) in _OPTIONAL_TEXT.items():
        if name in data and not _text(data[name], max_length, blank=blank):
            return None
    travel_date = None
    if "travel_date" in data:
        if not (isinstance(data["travel_date"], str) and _ISO_DATE.match(data["travel_date"])):
            return None
        try:
            travel_date = dt.date.fromisoformat(data["travel_date"])
        except ValueError:
            return None
    if not isinstance(orders, list) or not 1 <= len(orders) <= 50:
        return None
    valid_orders, total = [], Decimal(0)
    for order in orders:
        if not isinstance(order, dict) or order.keys() != {"reference", "items"}:
            return None
        items = order["items"]
        if not _text(order["reference"], 100) or not isinstance(items, list) or not 1 <= len(items) <= 100:
            return None
        valid_items = []
        for item in items:
            if not isinstance(item, dict) or item.keys() != {"label", "quantity", "unit_amount", "vat_rate"}:
                return None
            rate = item["vat_rate"]
            if not (
                _text(item["label"], 200)
                and _integer(item["quantity"], 1, 10_000)
                and _integer(item["unit_amount"], 0, 10**10)
                and isinstance(rate, str)
                and VAT_RATE.match(rate)
            ):
                return None
            vat_rate = Decimal(rate)
            total += item["quantity"] * item["unit_amount"] * (1 + vat_rate / 100)
            valid_items.append(
                {
                    "label": item["label"],
                    "quantity": item["quantity"],
                    "unit_amount": item["unit_amount"],
                    "vat_rate": vat_rate,
                }
            )
        valid_orders.append({"reference": order["reference"], "items": valid_items})
    if not 0 < total <= MAX_OPERATION_AMOUNT:
        return None
    validated = {"contract_id": uuid.UUID(contract_id), "type": type_, "external_ref": data["external_ref"]}
    validated.update((name, data[name]) for name in _OPTIONAL_TEXT if name in data)
    if travel_date is not None:
        validated["travel_date"] = travel_date
    validated.update(currency=data["currency"], orders=valid_orders)
    return validated


class ItemSerializer(serializers.Serializer):
    label = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_amount = serializers.IntegerField()
    vat_rate = serializers.CharField()
    amount_excl_tax = serializers.IntegerField()
    vat_amount = serializers.IntegerField()


class OrderSerializer(serializers.Serializer):
    reference = serializers.CharField()
    items = ItemSerializer(many=True)


class OperationSerializer(serializers.ModelSerializer):
    reason_code = serializers.SerializerMethodField()
    settlement = serializers.SerializerMethodField()
    vat_breakdown = VatLineSerializer(many=True)
    orders = OrderSerializer(many=True)

    class Meta:
        model = Operation
        fields = [
            "id",
            "contract_id",
            "contract_reference",
            "type",
            "status",
            "reason_code",
            "reason_detail",
            "external_ref",
            "subscriber_ref",
            "refund_of",
            "purchase_order",
            "cost_centre",
            "travel_date",
            "currency",
            "amount_excl_tax",
            "vat_amount",
            "amount",
            "vat_breakdown",
            "orders",
            "refunded_amount",
            "balance_after",
            "settlement",
            "decided_at",
        ]
        read_only_fields = fields

    def get_reason_code(self, operation) -> str | None:
        return operation.reason_code or None

    def get_settlement(self, operation) -> str | None:
        return operation.settlement or None


def operation_body(operation: Operation) -> dict:
    """What OperationSerializer(operation).data gives (a test holds them equal), built as
    a plain dict: on the purchase path DRF's field-by-field representation cost more than
    the decision's SQL."""
    return {
        "id": str(operation.id),
        "contract_id": str(operation.contract_id),
        "contract_reference": operation.contract_reference,
        "type": operation.type,
        "status": operation.status,
        "reason_code": operation.reason_code or None,
        "reason_detail": operation.reason_detail,
        "external_ref": operation.external_ref,
        "subscriber_ref": operation.subscriber_ref,
        "refund_of": str(operation.refund_of) if operation.refund_of else None,
        "purchase_order": operation.purchase_order,
        "cost_centre": operation.cost_centre,
        "travel_date": operation.travel_date.isoformat() if operation.travel_date else None,
        "currency": operation.currency,
        "amount_excl_tax": operation.amount_excl_tax,
        "vat_amount": operation.vat_amount,
        "amount": operation.amount,
        "vat_breakdown": [
            {"rate": str(line["rate"]), "base": int(line["base"]), "vat": int(line["vat"])}
            for line in operation.vat_breakdown
        ],
        "orders": [
            {
                "reference": str(order["reference"]),
                "items": [
                    {
                        "label": str(item["label"]),
                        "quantity": int(item["quantity"]),
                        "unit_amount": int(item["unit_amount"]),
                        "vat_rate": str(item["vat_rate"]),
                        "amount_excl_tax": int(item["amount_excl_tax"]),
                        "vat_amount": int(item["vat_amount"]),
                    }
                    for item in order["items"]
                ],
            }
            for order in operation.orders
        ],
        "refunded_amount": operation.refunded_amount,
        "balance_after": operation.balance_after,
        "settlement": operation.settlement or None,
        "decided_at": _datetime(operation.decided_at),
    }


def _datetime(value) -> str:
    """As DRF's DateTimeField represents it: in the current time zone, ISO 8601, UTC as Z."""
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class OperationRejectionSerializer(ProblemSerializer):
    errors = None
    detail = serializers.CharField()
    operation = OperationSerializer()


class BalanceSerializer(serializers.Serializer):
    contract_id = serializers.UUIDField()
    currency = serializers.CharField()
    credit_limit = serializers.IntegerField()
    outstanding = serializers.IntegerField()
    available = serializers.IntegerField()
    unbilled = serializers.IntegerField()
    invoiced_unpaid = serializers.IntegerField()


class OperationFilterSerializer(QueryFilterSerializer):
    period = serializers.RegexField(r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$", required=False)
    status = serializers.ChoiceField(choices=["accepted", "rejected"], required=False)
    type = serializers.ChoiceField(choices=OperationType.choices, required=False)
