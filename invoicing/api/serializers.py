"""Input and output serializers of the invoicing API (openapi/invoicing.yaml)."""

from rest_framework import serializers

from boissipay.api.serializers import (
    QueryFilterSerializer,
    StrictBooleanField,
    StrictInputSerializer,
    VatLineSerializer,
)
from boissipay.clock import PARIS
from invoicing.models import BillableOperation, BillingRun, CreditNoteLine, Invoice

PERIOD = r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$"


class InvoiceSerializer(serializers.ModelSerializer):
    period = serializers.SerializerMethodField()
    vat_breakdown = VatLineSerializer(many=True)
    pdf_url = serializers.SerializerMethodField()
    corrects_id = serializers.UUIDField(allow_null=True, read_only=True)
    corrects_number = serializers.SerializerMethodField()

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "kind",
            "contract_id",
            "contract_reference",
            "period",
            "issue_date",
            "due_date",
            "currency",
            "total_excl_tax",
            "total_vat",
            "total_incl_tax",
            "vat_breakdown",
            "operations_count",
            "mandate_reference",
            "status",
            "sent_at",
            "paid_at",
            "pdf_url",
            "corrects_id",
            "corrects_number",
            "credited",
            "reason",
            "issued_by",
        ]
        read_only_fields = fields

    def get_period(self, invoice) -> str:
        return invoice.period.strftime("%Y-%m")

    def get_corrects_number(self, invoice) -> str | None:
        return invoice.corrects.number if invoice.corrects_id else None

    def get_pdf_url(self, invoice) -> str:
        return f"/api/v1/invoices/{invoice.pk}/pdf"


class InvoiceLineSerializer(serializers.ModelSerializer):
    """An operation on an invoice, or a line of a credit note issued on demand (`credit`)."""

    operation_id = serializers.UUIDField(allow_null=True, read_only=True)
    type = serializers.CharField(read_only=True)
    date = serializers.SerializerMethodField()
    vat_breakdown = VatLineSerializer(many=True)

    class Meta:
        model = BillableOperation
        fields = [
            "operation_id",
            "type",
            "date",
            "description",
            "external_ref",
            "purchase_order",
            "cost_centre",
            "amount_excl_tax",
            "vat_amount",
            "amount",
            "vat_breakdown",
        ]
        read_only_fields = fields

    def get_date(self, line) -> str:
        if isinstance(line, CreditNoteLine):
            return line.date.isoformat()
        return line.decided_at.astimezone(PARIS).date().isoformat()


class LifecycleStatusSerializer(serializers.Serializer):
    status = serializers.CharField()
    reason = serializers.CharField()
    source = serializers.CharField()
    occurred_at = serializers.DateTimeField()


class InvoiceDetailSerializer(InvoiceSerializer):
    lines = serializers.SerializerMethodField()
    lifecycle = serializers.SerializerMethodField()

    class Meta(InvoiceSerializer.Meta):
        fields = [
            *InvoiceSerializer.Meta.fields,
            "channel",
            "platform_message_id",
            "platform_status",
            "lifecycle",
            "lines",
        ]
        read_only_fields = fields

    def get_lifecycle(self, invoice) -> list[dict]:
        return LifecycleStatusSerializer(invoice.lifecycle.all(), many=True).data

    def get_lines(self, invoice) -> list[dict]:
        from invoicing.services import invoice_lines

        lines = invoice.credit_lines.order_by("position") if invoice.corrects_id else invoice_lines(invoice)
        return InvoiceLineSerializer(lines, many=True).data

    get_lines.__annotations__["return"] = InvoiceLineSerializer(many=True)
    get_lifecycle.__annotations__["return"] = LifecycleStatusSerializer(many=True)


class InvoiceFilterSerializer(QueryFilterSerializer):
    contract = serializers.UUIDField(required=False)
    period = serializers.RegexField(PERIOD, required=False)
    status = serializers.ChoiceField(choices=["issued", "sent", "paid", "failed", "cancelled"], required=False)


class CreditAmountSerializer(StrictInputSerializer):
    rate = serializers.RegexField(r"^[0-9]{1,2}(\.[0-9]{1,2})?$")
    amount_excl_tax = serializers.IntegerField(min_value=1, max_value=100_000_000_000)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)


class CreditNoteCreateSerializer(StrictInputSerializer):
    """Exactly one of `full`, `operation_ids` and `amounts` (invoicing.credit_notes says which is missing)."""

    full = StrictBooleanField(required=False)
    operation_ids = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=500, required=False)
    amounts = CreditAmountSerializer(many=True, required=False, min_length=1, max_length=50)
    reason = serializers.CharField(max_length=500)


class BillingRunCreateSerializer(StrictInputSerializer):
    period = serializers.RegexField(PERIOD)
    contract_reference = serializers.CharField(max_length=50, required=False)
    dry_run = StrictBooleanField(required=False, default=False)


class EarlyInvoiceCreateSerializer(StrictInputSerializer):
    contract_reference = serializers.CharField(max_length=50)
    reason = serializers.CharField(max_length=500)


class TotalsSerializer(serializers.Serializer):
    excl_tax = serializers.IntegerField()
    vat = serializers.IntegerField()
    incl_tax = serializers.IntegerField()


class BillingRunSerializer(serializers.ModelSerializer):
    period = serializers.SerializerMethodField()
    totals = serializers.DictField(child=TotalsSerializer())

    class Meta:
        model = BillingRun
        fields = [
            "id",
            "period",
            "trigger",
            "started_by",
            "contract_reference",
            "dry_run",
            "early",
            "reason",
            "status",
            "contracts_invoiced",
            "invoices_count",
            "credit_notes_count",
            "operations_count",
            "totals",
            "errors",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_period(self, run) -> str:
        return run.period.strftime("%Y-%m")


class PlatformStatusEventSerializer(serializers.Serializer):
    """A lifecycle status the e-invoicing platform calls back with."""

    event_id = serializers.CharField(max_length=100)
    message_id = serializers.CharField(max_length=100)
    invoice_number = serializers.CharField(max_length=20, required=False)
    status = serializers.ChoiceField(choices=["deposited", "received", "rejected", "refused", "approved", "paid"])
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    occurred_at = serializers.IntegerField(min_value=0, max_value=10**11)


class PlatformStatusReceiptSerializer(serializers.Serializer):
    received = serializers.BooleanField()
    applied = serializers.BooleanField()
