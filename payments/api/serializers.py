"""Serializers of the payments API (openapi/payments.yaml)."""

from rest_framework import serializers

from boissipay.api.serializers import QueryFilterSerializer, StrictIntegerField
from payments.manual_payments import manual_payment_state
from payments.models import Payment
from payments.services import reason_label


class PaymentSerializer(serializers.ModelSerializer):
    reason = serializers.SerializerMethodField(help_text="The reason code in French and English.")

    def get_reason(self, payment) -> str:
        return reason_label(payment.reason_code) if payment.reason_code else ""

    class Meta:
        model = Payment
        fields = [
            "id",
            "invoice_id",
            "invoice_number",
            "contract_id",
            "contract_reference",
            "amount",
            "allocated",
            "currency",
            "original_due_date",
            "due_date",
            "status",
            "gateway",
            "attempts",
            "mandate_reference",
            "sequence_type",
            "failure_reason",
            "reason_code",
            "reason",
            "returned_at",
            "created_at",
            "submitted_at",
            "settled_at",
        ]
        read_only_fields = fields


class PaymentFilterSerializer(QueryFilterSerializer):
    invoice = serializers.UUIDField(required=False)
    contract = serializers.UUIDField(required=False)
    status = serializers.ChoiceField(choices=["pending", "submitted", "succeeded", "failed"], required=False)


class WebhookEventSerializer(serializers.Serializer):
    event_id = serializers.CharField(max_length=100)
    type = serializers.ChoiceField(choices=["charge.succeeded", "charge.failed"])
    charge_id = serializers.CharField(max_length=100)
    payment_id = serializers.UUIDField(required=False)
    end_to_end_id = serializers.CharField(max_length=35, required=False)
    amount = StrictIntegerField()
    currency = serializers.RegexField(r"^[A-Z]{3}$")
    failure_code = serializers.CharField(max_length=50, required=False, allow_null=True, allow_blank=True)
    failure_message = serializers.CharField(max_length=500, required=False, allow_null=True, allow_blank=True)
    created = serializers.IntegerField(required=False)


class WebhookReceiptSerializer(serializers.Serializer):
    received = serializers.BooleanField()
    applied = serializers.BooleanField()


class ManualPaymentCreateSerializer(serializers.Serializer):
    customer_id = serializers.UUIDField()
    method = serializers.ChoiceField(choices=["transfer", "cheque"])
    amount = StrictIntegerField(min_value=1, max_value=100_000_000_000)
    currency = serializers.RegexField(r"^[A-Z]{3}$")
    received_on = serializers.DateField()
    bank_reference = serializers.CharField(min_length=1, max_length=100)
    invoice_ids = serializers.ListField(child=serializers.UUIDField(), required=False, max_length=100)

    def validate(self, attrs):
        unknown = set(self.initial_data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
        return attrs


class AllocationSerializer(serializers.Serializer):
    invoice_id = serializers.UUIDField()
    invoice_number = serializers.CharField()
    amount = serializers.IntegerField()


class ManualPaymentSerializer(serializers.Serializer):
    """The answer of POST /payments/manual (built by `manual_payment_body`)."""

    id = serializers.UUIDField()
    customer_id = serializers.UUIDField()
    method = serializers.ChoiceField(choices=["transfer", "cheque"])
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    received_on = serializers.DateField()
    bank_reference = serializers.CharField()
    unallocated = serializers.IntegerField()
    recorded_by = serializers.CharField()
    allocations = AllocationSerializer(many=True)


def manual_payment_body(manual) -> dict:
    """The API's view of a recorded manual payment: its event state, and where it went."""
    state = dict(manual_payment_state(manual))
    return {
        "id": state.pop("manual_payment_id"),
        **state,
        "allocations": [
            {"invoice_id": str(a.payment.invoice_id), "invoice_number": a.payment.invoice_number, "amount": a.amount}
            for a in manual.allocations.select_related("payment")
        ],
    }
