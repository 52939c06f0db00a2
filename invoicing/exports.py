"""The invoices list's export (boissipay.exports)."""

from import_export import fields

from boissipay.exports import ExportResource, money
from invoicing.models import Invoice


class InvoiceResource(ExportResource):
    buyer = fields.Field(column_name="buyer")
    total_excl_tax = money("total_excl_tax", "total_excl_tax")
    total_vat = money("total_vat", "total_vat")
    total_incl_tax = money("total_incl_tax", "total_incl_tax")
    credited = money("credited", "credited")

    class Meta:
        model = Invoice
        fields = (
            "number", "kind", "status", "contract_reference", "buyer", "period", "issue_date", "due_date",
            "currency", "total_excl_tax", "total_vat", "total_incl_tax", "credited", "channel", "platform_status",
        )  # fmt: skip
        export_order = fields

    def dehydrate_buyer(self, invoice) -> str:
        return invoice.buyer.get("legal_name", "")
