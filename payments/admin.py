"""Back-office pages of payments."""

from django.contrib import admin

from boissipay.money import format_money
from payments.models import PaymentItem


@admin.register(PaymentItem)
class PaymentItemAdmin(admin.ModelAdmin):
    list_display = ["created_at", "external_ref", "operation_type", "amount_display", "status", "invoice_id"]
    list_filter = ["status", "operation_type", "currency"]
    search_fields = ["external_ref", "=operation_id", "=contract_id", "=invoice_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, item):
        return format_money(item.amount, item.currency)
