"""The operations list's export (boissipay.exports)."""

from billing.models import Operation
from boissipay.exports import ExportResource, money


class OperationResource(ExportResource):
    amount_excl_tax = money("amount_excl_tax", "amount_excl_tax")
    vat_amount = money("vat_amount", "vat_amount")
    amount = money("amount", "amount")

    class Meta:
        model = Operation
        fields = (
            "decided_at", "contract_reference", "type", "status", "reason_code", "external_ref", "subscriber_ref",
            "purchase_order", "cost_centre", "travel_date", "currency", "amount_excl_tax", "vat_amount", "amount",
            "settlement",
        )  # fmt: skip
        export_order = fields
