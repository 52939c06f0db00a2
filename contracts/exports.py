"""The contracts list's export (boissipay.exports)."""

from import_export import fields

from boissipay.exports import ExportResource, money
from contracts.models import Contract


class ContractResource(ExportResource):
    customer = fields.Field(attribute="customer__legal_name", column_name="customer")
    siren = fields.Field(attribute="customer__siren", column_name="siren")
    credit_limit = money("credit_limit", "credit_limit")

    class Meta:
        model = Contract
        fields = (
            "reference", "customer", "siren", "status", "currency", "credit_limit", "starts_on", "ends_on",
            "payment_terms_days", "vat_scheme",
        )  # fmt: skip
        export_order = fields
