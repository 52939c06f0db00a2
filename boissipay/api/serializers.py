"""Serializer base classes shared by every context's API."""

from rest_framework import serializers


class StrictInputSerializer(serializers.Serializer):
    """An input serializer that refuses fields it does not know, so a client's typo is
    a 400 rather than silently ignored, and numbers where text is expected."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [serializers.ErrorDetail("Unknown field.", code="unknown_field")] for name in unknown}
                )
            # DRF turns 12 into "12" for a text field: JSON's types are part of the contract.
            not_text = sorted(
                name
                for name, field in self.fields.items()
                if isinstance(field, serializers.CharField | serializers.UUIDField)
                and data.get(name) is not None
                and not isinstance(data[name], str)
            )
            if not_text:
                raise serializers.ValidationError(
                    {name: [serializers.ErrorDetail("Not a string.", code="invalid")] for name in not_text}
                )
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: floats, booleans and numeric strings are refused."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class MoneyAmountField(StrictIntegerField):
    """An amount in integer minor units (cents)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", 10**15)
        super().__init__(**kwargs)


class VatLineSerializer(serializers.Serializer):
    """One VAT rate's share of an amount: rate in percent ("20.00"), base and VAT in minor units."""

    rate = serializers.CharField()
    base = serializers.IntegerField()
    vat = serializers.IntegerField()


class QueryFilterSerializer(serializers.Serializer):
    """Query parameters of a list: an unknown parameter is a 400, not silently ignored (a
    misspelt filter must not answer with everything). Paging parameters are allowed."""

    PAGING = frozenset({"page", "page_size"})

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields) - self.PAGING)
        if unknown:
            error = serializers.ErrorDetail("Unknown query parameter.", code="unknown_parameter")
            raise serializers.ValidationError({name or "(empty name)": [error] for name in unknown})
        return super().to_internal_value({key: value for key, value in data.items() if key not in self.PAGING})


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only: not 0, 1, "yes" or "true"."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data
