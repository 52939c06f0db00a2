"""Back-office pages of billing: the operations (read-only: they are decisions, never
edited) and each contract's read model with its balance."""

from django.contrib import admin
from django.db.models import F
from django.db.models.functions import TruncMonth

from billing import selectors
from billing.exports import OperationResource
from billing.models import ContractAccount, Operation, OutOfScopeAttempt
from billing.selectors import month_bounds
from boissipay.admin_base import ExportMixin, ReadOnlyModelAdmin
from boissipay.clock import PARIS
from boissipay.money import format_money


class MonthFilter(admin.SimpleListFilter):
    """The month an operation was decided in, Europe/Paris."""

    title = "month"
    parameter_name = "month"

    def lookups(self, request, model_admin):
        months = (
            Operation.objects.annotate(month=TruncMonth("decided_at", tzinfo=PARIS))
            .values_list("month", flat=True)
            .distinct()
            .order_by("-month")[:24]
        )
        return [(month.strftime("%Y-%m"), month.strftime("%B %Y")) for month in months]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        start, end = month_bounds(self.value())
        return queryset.filter(decided_at__gte=start, decided_at__lt=end)


@admin.register(Operation)
class OperationAdmin(ExportMixin, ReadOnlyModelAdmin):
    resource_classes = [OperationResource]  # CSV and XLSX, as filtered (boissipay.exports)
    list_display = [
        "decided_at",
        "contract_reference",
        "type",
        "status",
        "reason_code",
        "external_ref",
        "amount_display",
        "balance_after_display",
        "settlement",
    ]
    list_filter = ["status", "type", "reason_code", MonthFilter, "settlement", "currency"]
    search_fields = ["external_ref", "contract_reference", "=contract_id", "=id", "purchase_order", "cost_centre"]
    date_hierarchy = "decided_at"
    list_select_related = False
    show_full_result_count = False  # counting millions of operations on every page is not worth it

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, operation):
        sign = -1 if operation.type == "refund" else 1
        return format_money(sign * operation.amount, operation.currency)

    @admin.display(description="balance after")
    def balance_after_display(self, operation):
        return format_money(operation.balance_after, operation.currency)


class BalanceFilter(admin.SimpleListFilter):
    title = "credit used"
    parameter_name = "credit"

    def lookups(self, request, model_admin):
        return [("over80", "Over 80 % of the limit"), ("full", "At or over the limit"), ("none", "Nothing owed")]

    def queryset(self, request, queryset):
        owed = F("unbilled") + F("invoiced_unpaid")
        if self.value() == "over80":
            return selectors.near_their_limit(queryset, 0.8)
        if self.value() == "full":
            return queryset.alias(owed=owed).filter(owed__gte=F("credit_limit"))
        if self.value() == "none":
            return queryset.alias(owed=owed).filter(owed=0)
        return queryset


@admin.register(ContractAccount)
class ContractAccountAdmin(ReadOnlyModelAdmin):
    list_display = [
        "reference",
        "customer_name",
        "status",
        "mandate_status",
        "ends_on",
        "credit_limit_display",
        "outstanding_display",
        "available_display",
        "contract_version",
    ]
    list_filter = ["status", "mandate_status", "currency", BalanceFilter]
    search_fields = ["reference", "customer_name", "=contract_id", "=customer_id", "mandate_reference"]
    readonly_fields = [
        "outstanding_display",
        "available_display",
        "unbilled_display",
        "invoiced_unpaid_display",
    ]

    @admin.display(description="credit limit", ordering="credit_limit")
    def credit_limit_display(self, account):
        return format_money(account.credit_limit, account.currency)

    @admin.display(description="outstanding")
    def outstanding_display(self, account):
        return format_money(account.outstanding, account.currency)

    @admin.display(description="available")
    def available_display(self, account):
        return format_money(account.available, account.currency)

    @admin.display(description="unbilled")
    def unbilled_display(self, account):
        return format_money(account.unbilled, account.currency)

    @admin.display(description="invoiced, unpaid")
    def invoiced_unpaid_display(self, account):
        return format_money(account.invoiced_unpaid, account.currency)


@admin.register(OutOfScopeAttempt)
class OutOfScopeAttemptAdmin(ReadOnlyModelAdmin):
    """Operations that customer-restricted keys sent on contracts they cannot see: kept
    here for staff, never in a contract's history."""

    list_display = ["attempted_at", "customer_id", "contract_id", "type", "external_ref", "amount_display"]
    list_filter = ["type", "currency"]
    search_fields = ["=customer_id", "=contract_id", "external_ref", "=id"]
    date_hierarchy = "attempted_at"

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, attempt):
        return format_money(attempt.amount, attempt.currency)
