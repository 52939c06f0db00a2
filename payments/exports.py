"""The payments list's export (boissipay.exports)."""

from boissipay.exports import ExportResource, money
from payments.models import Payment


class PaymentResource(ExportResource):
    amount = money("amount", "amount")
    allocated = money("allocated", "paid_outside")
    credited = money("credited", "credited")

    class Meta:
        model = Payment
        fields = (
            "invoice_number", "contract_reference", "status", "amount", "allocated", "credited", "currency",
            "original_due_date", "due_date", "attempts", "gateway", "reason_code", "failure_reason", "on_hold",
        )  # fmt: skip
        export_order = fields
