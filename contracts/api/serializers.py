from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from boissipay.api.serializers import MoneyAmountField, StrictInputSerializer
from boissipay.clock import business_today
from contracts.validators import Address

# --- input ----------------------------------------------------------------------------


class AddressSerializer(StrictInputSerializer):
    lines = serializers.ListField(
        child=serializers.CharField(max_length=100), min_length=1, max_length=3, help_text="One to three street lines."
    )
    postcode = serializers.CharField(max_length=16)
    city = serializers.CharField(max_length=100)

    def to_internal_value(self, data):
        fields = super().to_internal_value(data)
        return Address.of(fields["lines"], fields["postcode"], fields["city"])


class CustomerCreateSerializer(StrictInputSerializer):
    legal_name = serializers.CharField(max_length=200)
    siren = serializers.CharField(max_length=11)
    vat_number = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    billing_email = serializers.EmailField(max_length=254)
    address = AddressSerializer(required=False)
    billing_address = serializers.CharField(
        max_length=1000, required=False, help_text="Instead of `address`: the lines, then 'postcode city' last."
    )
    country = serializers.CharField(min_length=2, max_length=2, required=False, default="FR")

    def validate(self, attrs):
        if ("address" in attrs) == ("billing_address" in attrs):
            raise serializers.ValidationError({"address": "Give the address, or the billing_address text (not both)."})
        return attrs


class CustomerCorrectionSerializer(StrictInputSerializer):
    legal_name = serializers.CharField(max_length=200, required=False)
    billing_email = serializers.EmailField(max_length=254, required=False)
    address = AddressSerializer(required=False)
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)

    def validate(self, attrs):
        if not attrs.keys() - {"reason"}:
            raise serializers.ValidationError("Give at least one of legal_name, billing_email, address.")
        return attrs


class MandateInputSerializer(StrictInputSerializer):
    reference = serializers.CharField(max_length=35)
    iban = serializers.CharField(max_length=42)
    bic = serializers.CharField(max_length=11, required=False, allow_blank=True, default="")
    signed_on = serializers.DateField()
    expires_on = serializers.DateField(required=False, allow_null=True, default=None)


VAT_SCHEMES = ["standard", "travel_agent_margin"]


class ContractCreateSerializer(StrictInputSerializer):
    customer_id = serializers.UUIDField()
    reference = serializers.CharField(max_length=50)
    currency = serializers.RegexField(r"^[A-Z]{3}$", required=False, default="EUR", help_text="Upper-case ISO 4217.")
    credit_limit = MoneyAmountField()
    starts_on = serializers.DateField()
    ends_on = serializers.DateField(required=False, allow_null=True, default=None)
    payment_terms_days = serializers.IntegerField(min_value=0, max_value=365, required=False, default=30)
    vat_scheme = serializers.ChoiceField(choices=VAT_SCHEMES, required=False, default="standard")
    mandate = MandateInputSerializer()


class ContractAmendSerializer(StrictInputSerializer):
    credit_limit = MoneyAmountField(required=False)
    ends_on = serializers.DateField(required=False, allow_null=True)
    vat_scheme = serializers.ChoiceField(choices=VAT_SCHEMES, required=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Give credit_limit, ends_on and/or vat_scheme.", code="empty_amendment")
        return attrs


class ReasonSerializer(StrictInputSerializer):
    reason = serializers.CharField(max_length=500)


class OptionalReasonSerializer(StrictInputSerializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class EmptySerializer(StrictInputSerializer):
    pass


MAX_CAP = 10**13  # minor units: a bound no real monthly cap reaches


class SubscriberCreateSerializer(StrictInputSerializer):
    external_ref = serializers.CharField(max_length=100)
    display_name = serializers.CharField(max_length=200)
    monthly_cap = serializers.IntegerField(min_value=1, max_value=MAX_CAP, required=False, allow_null=True)


class SubscriberChangeSerializer(StrictInputSerializer):
    monthly_cap = serializers.IntegerField(min_value=1, max_value=MAX_CAP, allow_null=True)


# --- output ---------------------------------------------------------------------------


class CustomerSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    legal_name = serializers.CharField()
    siren = serializers.CharField()
    vat_number = serializers.CharField()
    billing_email = serializers.EmailField()
    billing_address = serializers.CharField()
    address = serializers.SerializerMethodField()
    country = serializers.CharField()
    created_at = serializers.DateTimeField()

    @extend_schema_field(AddressSerializer)
    def get_address(self, customer) -> dict:
        return {"lines": customer.address_lines.splitlines(), "postcode": customer.postcode, "city": customer.city}


class MandateSerializer(serializers.Serializer):
    reference = serializers.CharField()
    iban_masked = serializers.CharField(source="masked_iban")
    bic = serializers.CharField()
    signed_on = serializers.DateField()
    expires_on = serializers.DateField(allow_null=True)
    status = serializers.ChoiceField(choices=["active", "revoked"])


class SubscriberSerializer(serializers.Serializer):
    external_ref = serializers.CharField()
    display_name = serializers.CharField()
    monthly_cap = serializers.IntegerField(allow_null=True)
    registered_at = serializers.DateTimeField()


class ContractSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    customer_id = serializers.UUIDField()
    reference = serializers.CharField()
    currency = serializers.CharField()
    credit_limit = serializers.IntegerField(min_value=0)
    starts_on = serializers.DateField()
    ends_on = serializers.DateField(allow_null=True)
    payment_terms_days = serializers.IntegerField(min_value=0)
    vat_scheme = serializers.CharField()
    status = serializers.SerializerMethodField()
    status_reason = serializers.CharField()
    mandate = serializers.SerializerMethodField()
    subscribers = serializers.SerializerMethodField()
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(serializers.ChoiceField(choices=["active", "suspended", "cancelled", "expired"]))
    def get_status(self, contract) -> str:
        return contract.lifecycle_status(business_today())

    @extend_schema_field(MandateSerializer(allow_null=True))
    def get_mandate(self, contract) -> dict | None:
        mandates = getattr(contract, "current_mandates", None)
        if mandates is None:
            mandates = list(contract.mandates.filter(is_current=True))
        return MandateSerializer(mandates[0]).data if mandates else None

    @extend_schema_field(SubscriberSerializer(many=True))
    def get_subscribers(self, contract) -> list:
        subscribers = getattr(contract, "registered", None)
        if subscribers is None:
            subscribers = contract.subscribers.filter(removed_at__isnull=True)
        return SubscriberSerializer(subscribers, many=True).data
