"""Back-office pages of payments: collections (with "retry now" and "mark failed"), the
log of gateway calls and webhooks, and the per-operation payment items."""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _

from boissipay.admin_base import (
    AuditTrailMixin,
    DetailActionsMixin,
    ExportMixin,
    ReadOnlyModelAdmin,
    TabularInline,
    admin_link,
    related_records,
)
from boissipay.clock import business_today
from boissipay.errors import DomainError
from boissipay.money import format_money
from payments import credit_notes, manual_payments, selectors, services
from payments.bank_files import InvalidBankFile
from payments.exports import PaymentResource
from payments.models import (
    Allocation,
    BankEntryOutcome,
    BankFile,
    BankFileEntry,
    ManualPayment,
    ManualPaymentMethod,
    Payment,
    PaymentItem,
    PaymentLog,
    Refund,
    RefundExport,
    RefundStatus,
)


class LogInline(TabularInline):
    model = PaymentLog
    extra = 0
    can_delete = False
    fields = ["created_at", "kind", "summary", "provider_event_id"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"size": 60}))


class OverdueFilter(admin.SimpleListFilter):
    """Debits not collected after the invoice's due date (the dashboard's figure)."""

    title = "retard"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "En retard")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return selectors.overdue(queryset, business_today())
        return queryset


@admin.register(Payment)
class PaymentAdmin(DetailActionsMixin, ExportMixin, ReadOnlyModelAdmin):
    readonly_fields = ["related"]

    @admin.display(description="related")
    def related(self, payment):
        """Its invoice and its contract, in their own pages."""
        return related_records(
            admin_link("invoicing_invoice_change", f"invoice {payment.invoice_number}", payment.invoice_id),
            admin_link("contracts_contract_change", f"contract {payment.contract_reference}", payment.contract_id),
        )

    resource_classes = [PaymentResource]  # CSV and XLSX, as filtered (boissipay.exports)
    list_display = [
        "invoice_number",
        "contract_reference",
        "amount_display",
        "status",
        "gateway",
        "due_date",
        "attempts",
        "reason_display",
    ]
    list_filter = [
        "status",
        OverdueFilter,
        "gateway",
        "reason_code",
        ("on_hold", admin.EmptyFieldListFilter),
        ("due_date", admin.DateFieldListFilter),
        "currency",
    ]
    search_fields = ["invoice_number", "contract_reference", "=id", "=invoice_id", "mandate_reference"]
    date_hierarchy = "due_date"
    inlines = [LogInline]
    actions = ["retry_now", "mark_failed", "release_hold"]
    actions_with_a_form = ("mark_failed",)

    @admin.action(
        description="Release the hold (the e-invoicing dispute is settled): debit as planned", permissions=["operate"]
    )
    def release_hold(self, request, queryset):
        released = 0
        for payment in queryset.exclude(on_hold=""):
            if services.release_hold(payment_id=payment.pk, released_by=request.user.get_username()):
                released += 1
        self.message_user(request, _("%(count)d payment(s) released.") % {"count": released})

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, payment):
        return format_money(payment.amount, payment.currency)

    @admin.display(description="reason", ordering="reason_code")
    def reason_display(self, payment):
        """The bank's reason code in French and English (payments.services.REASON_POLICIES)."""
        if payment.reason_code:
            return services.reason_label(payment.reason_code)
        return payment.failure_reason

    @admin.action(description="Retry now (collect with the next run, today)", permissions=["operate"])
    def retry_now(self, request, queryset):
        for payment in queryset:
            try:
                services.retry_now(payment_id=payment.pk, staff=request.user.get_username())
            except DomainError as exc:
                self.message_user(request, f"{payment.invoice_number}: {exc.detail}", messages.WARNING)
            else:
                self.message_user(
                    request, _("%(number)s: will be collected today.") % {"number": payment.invoice_number}
                )

    @admin.action(description="Mark failed for good (suspends the contract)…", permissions=["operate"])
    def mark_failed(self, request, queryset):
        form = ReasonForm(request.POST if "reason" in request.POST else None)
        if form.is_bound and form.is_valid():
            for payment in queryset:
                try:
                    services.mark_failed(
                        payment_id=payment.pk, reason=form.cleaned_data["reason"], staff=request.user.get_username()
                    )
                except DomainError as exc:
                    self.message_user(request, f"{payment.invoice_number}: {exc.detail}", messages.WARNING)
                else:
                    self.message_user(request, _("%(number)s: marked failed.") % {"number": payment.invoice_number})
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Mark the payments failed for good"),
            "objects": queryset,
            "form": form,
            "action": "mark_failed",
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "opts": self.model._meta,
        }
        return render(request, "admin/payments/reason_form.html", context)


@admin.register(PaymentLog)
class PaymentLogAdmin(ReadOnlyModelAdmin):
    list_display = ["created_at", "kind", "payment", "summary", "provider_event_id"]
    list_filter = ["kind"]
    search_fields = ["=provider_event_id", "summary", "payment__invoice_number"]
    list_select_related = ["payment"]


@admin.register(PaymentItem)
class PaymentItemAdmin(ReadOnlyModelAdmin):
    list_display = ["created_at", "external_ref", "operation_type", "amount_display", "status", "invoice_id"]
    list_filter = ["status", "operation_type", "currency"]
    search_fields = ["external_ref", "=operation_id", "=contract_id", "=invoice_id"]

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, item):
        return format_money(item.amount, item.currency)


class BankFileEntryInline(TabularInline):
    model = BankFileEntry
    extra = 0
    can_delete = False
    fields = ["end_to_end_id", "kind", "reason_code", "amount", "currency", "outcome", "detail", "payment"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class BankFileForm(forms.Form):
    file = forms.FileField(help_text="pain.002.001.11, camt.054.001.08 or camt.053.001.08, as the bank sent it.")


@admin.register(BankFile)
class BankFileAdmin(ReadOnlyModelAdmin):
    """The bank's files, each with its entries and what became of them; "Import a bank
    file" applies a new one (the same as `manage.py import_bank_file`)."""

    list_display = ["imported_at", "kind", "message_id", "file_name", "entries_count", "imported_by"]
    list_filter = ["kind"]
    search_fields = ["message_id", "file_name", "=sha256", "entries__end_to_end_id"]
    inlines = [BankFileEntryInline]

    def get_urls(self):
        upload = path("upload/", self.admin_site.admin_view(self.upload_view), name="payments_bankfile_upload")
        return [upload, *super().get_urls()]

    def upload_view(self, request):
        if not request.user.has_perm("payments.add_bankfile"):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        form = BankFileForm(request.POST or None, request.FILES or None)
        report = None
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                report = services.import_bank_file(
                    content=upload.read(), file_name=upload.name, imported_by=request.user.get_username()
                )
            except InvalidBankFile as exc:
                form.add_error("file", _("%(error)s Nothing was applied.") % {"error": exc})
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import a bank file"),
            "form": form,
            "report": report,
            "counts": [(o.label, report.counts[o.value]) for o in BankEntryOutcome] if report else [],
            "opts": self.model._meta,
        }
        return render(request, "admin/payments/bank_file_upload.html", context)


class AllocationInline(TabularInline):
    model = Allocation
    extra = 0
    can_delete = False
    fields = ["payment", "amount_display", "created_at"]
    readonly_fields = fields

    @admin.display(description="amount")
    def amount_display(self, allocation):
        return format_money(allocation.amount, allocation.manual_payment.currency)

    def has_add_permission(self, request, obj=None):
        return False


class ManualPaymentForm(forms.Form):
    customer_id = forms.UUIDField(label="Customer id")
    method = forms.ChoiceField(choices=ManualPaymentMethod.choices[:2])
    amount = forms.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"), help_text="In euros.")
    currency = forms.CharField(max_length=3, initial="EUR")
    received_on = forms.DateField(help_text="YYYY-MM-DD")
    bank_reference = forms.CharField(max_length=100)
    invoice_ids = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Invoice ids to pay, in order, separated by spaces; empty: oldest unpaid first.",
    )


@admin.register(ManualPayment)
class ManualPaymentAdmin(AuditTrailMixin, ReadOnlyModelAdmin):
    """Transfers and cheques received outside the debit, with the invoices they paid and
    the credit left; "Record a payment received" records one (manual_payments service)."""

    list_display = ["received_on", "method", "bank_reference", "amount_display", "unallocated_display", "recorded_by"]
    list_filter = ["method", "currency"]
    search_fields = ["bank_reference", "=customer_id"]
    inlines = [AllocationInline]

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, manual):
        return format_money(manual.amount, manual.currency)

    @admin.display(description="credit left", ordering="unallocated")
    def unallocated_display(self, manual):
        return format_money(manual.unallocated, manual.currency)

    def get_urls(self):
        record = path("record/", self.admin_site.admin_view(self.record_view), name="payments_manualpayment_record")
        return [record, *super().get_urls()]

    def record_view(self, request):
        if not request.user.has_perm("payments.add_manualpayment"):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        form = ManualPaymentForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                manual = manual_payments.record_manual_payment(
                    customer_id=data["customer_id"],
                    amount=int(data["amount"] * 100),
                    currency=data["currency"].upper(),
                    received_on=data["received_on"],
                    method=data["method"],
                    bank_reference=data["bank_reference"],
                    recorded_by=request.user.get_username(),
                    invoice_ids=data["invoice_ids"].split() or None,
                )
            except DomainError as exc:
                form.add_error(None, exc.detail)
            else:
                self.message_user(
                    request,
                    _("%(payment)s: recorded; credit left %(credit)s.")
                    % {"payment": manual, "credit": format_money(manual.unallocated, manual.currency)},
                )
                return redirect("admin:payments_manualpayment_change", manual.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Record a payment received"),
            "form": form,
            "opts": self.model._meta,
        }
        return render(request, "admin/payments/manual_payment_form.html", context)


@admin.register(Refund)
class RefundAdmin(ReadOnlyModelAdmin):
    """Money owed back after a credit note on a collected invoice; "Export" writes the
    owed ones into a pain.001 credit-transfer file for the bank."""

    list_display = ["credit_note_number", "payment", "amount_display", "status", "export", "created_at"]
    list_filter = ["status", "currency"]
    search_fields = ["credit_note_number", "=contract_id", "=customer_id", "payment__invoice_number"]
    list_select_related = ["payment", "export"]
    actions = ["export_owed"]

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, refund):
        return format_money(refund.amount, refund.currency)

    @admin.action(description="Export every owed refund as a SEPA credit transfer (pain.001)", permissions=["operate"])
    def export_owed(self, request, queryset):
        if not request.user.has_perm("payments.add_refundexport"):
            self.message_user(request, _("You may not export refunds."), messages.ERROR)
            return None
        try:
            export = credit_notes.export_refunds(exported_by=request.user.get_username())
        except DomainError as exc:
            self.message_user(request, exc.detail, messages.ERROR)
            return None
        if export is None:
            owed = Refund.objects.filter(status=RefundStatus.OWED).count()
            self.message_user(
                request,
                _("No refund to export.")
                if not owed
                else _("%(count)d owed refund(s) have no account to pay them to.") % {"count": owed},
                messages.WARNING,
            )
            return None
        self.message_user(request, _("%(export)s: exported.") % {"export": export})
        return redirect("admin:payments_refundexport_change", export.pk)


@admin.register(RefundExport)
class RefundExportAdmin(ReadOnlyModelAdmin):
    list_display = ["message_id", "count", "total_display", "exported_by", "created_at"]
    readonly_fields = ["download"]

    @admin.display(description="total", ordering="total")
    def total_display(self, export):
        return format_money(export.total, export.currency)

    @admin.display(description="pain.001")
    def download(self, export):
        from django.urls import reverse
        from django.utils.html import format_html

        url = reverse("admin:payments_refundexport_xml", args=[export.pk])
        return format_html('<a href="{}">{}.xml</a>', url, export.message_id)

    def get_urls(self):
        xml = path("<uuid:export_id>/xml/", self.admin_site.admin_view(self.xml_view), name="payments_refundexport_xml")
        return [xml, *super().get_urls()]

    def xml_view(self, request, export_id):
        from django.http import HttpResponse
        from django.shortcuts import get_object_or_404

        export = get_object_or_404(RefundExport, pk=export_id)
        response = HttpResponse(export.xml, content_type="application/xml")
        response["Content-Disposition"] = f'attachment; filename="pain001-{export.message_id}.xml"'
        return response
