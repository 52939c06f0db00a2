"""Back-office pages of invoicing: billing runs (with "run billing for a month"),
invoices (PDF link, "resend"), the monthly batches with what they will invoice, and the
operations waiting to be billed."""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
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
from boissipay.clock import PARIS, business_today
from boissipay.errors import DomainError
from boissipay.money import format_money
from invoicing import services
from invoicing.exports import InvoiceResource
from invoicing.models import (
    BillableOperation,
    BillingBatch,
    BillingBatchVat,
    BillingRun,
    Invoice,
    InvoiceLifecycleStatus,
    InvoicingContract,
)


class BillingRunForm(forms.Form):
    period = forms.RegexField(
        regex=r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$",
        help_text="The month to invoice, YYYY-MM (Europe/Paris).",
        error_messages={"invalid": "A month, YYYY-MM."},
    )
    contract_reference = forms.CharField(max_length=50, required=False, help_text="Only this contract (optional).")
    dry_run = forms.BooleanField(required=False, help_text="Count and total what would be invoiced; write nothing.")


class EarlyInvoiceForm(forms.Form):
    contract_reference = forms.CharField(max_length=50, help_text="The contract to invoice now.")
    reason = forms.CharField(
        max_length=500, widget=forms.Textarea(attrs={"rows": 3}), help_text="Why it is invoiced before its month ends."
    )


def _queue_run(request, *, period, contract_reference="", dry_run=False) -> BillingRun:
    from invoicing.tasks import execute_billing_run

    with transaction.atomic():
        run = services.start_billing_run(
            period=period,
            trigger="admin",
            started_by=request.user.get_username(),
            contract_reference=contract_reference,
            dry_run=dry_run,
        )
        transaction.on_commit(lambda: execute_billing_run.delay(str(run.pk)))
    return run


@admin.register(BillingRun)
class BillingRunAdmin(DetailActionsMixin, AuditTrailMixin, ReadOnlyModelAdmin):
    list_display = [
        "created_at",
        "period_display",
        "status",
        "trigger",
        "started_by",
        "dry_run",
        "early",
        "contracts_invoiced",
        "invoices_count",
        "credit_notes_count",
        "operations_count",
        "totals_display",
        "duration",
    ]
    list_filter = ["status", "trigger", "early", "dry_run", "period"]
    search_fields = ["=id", "started_by", "contract_reference"]
    actions = ["run_again"]
    change_list_template = "admin/invoicing/billingrun/change_list.html"

    def get_urls(self):
        custom = [
            path("run/", self.admin_site.admin_view(self.run_billing_view), name="invoicing_billingrun_run_billing"),
            path(
                "early/", self.admin_site.admin_view(self.invoice_early_view), name="invoicing_billingrun_invoice_early"
            ),
        ]
        return custom + super().get_urls()

    def run_billing_view(self, request):
        """The "run billing for a month" page."""
        if not self.has_view_permission(request) or not request.user.has_perm("invoicing.add_billingrun"):
            messages.error(request, _("You may not start billing runs."))
            return redirect("admin:invoicing_billingrun_changelist")
        previous = services.previous_period(business_today()).strftime("%Y-%m")
        form = BillingRunForm(request.POST or None, initial={"period": previous})
        if request.method == "POST" and form.is_valid():
            try:
                run = _queue_run(request, **form.cleaned_data)
            except DomainError as exc:
                form.add_error("period", exc.detail)
            else:
                messages.success(
                    request,
                    _("Billing run for %(period)s queued (%(id)s).") % {"period": f"{run.period:%Y-%m}", "id": run.pk},
                )
                return redirect("admin:invoicing_billingrun_changelist")
        context = {**self.admin_site.each_context(request), "form": form, "title": _("Run billing for a month")}
        return render(request, "admin/invoicing/billingrun/run_billing.html", context)

    def invoice_early_view(self, request):
        """The "invoice a contract early" page: staff's explicit request, recorded as such."""
        if not self.has_view_permission(request) or not request.user.has_perm("invoicing.add_billingrun"):
            messages.error(request, _("You may not start billing runs."))
            return redirect("admin:invoicing_billingrun_changelist")
        form = EarlyInvoiceForm(request.POST or None, initial={"contract_reference": request.GET.get("contract", "")})
        if request.method == "POST" and form.is_valid():
            from invoicing.tasks import execute_billing_run

            try:
                with transaction.atomic():
                    run = services.start_early_invoice(
                        trigger="admin", started_by=request.user.get_username(), **form.cleaned_data
                    )
                    transaction.on_commit(lambda: execute_billing_run.delay(str(run.pk)))
            except DomainError as exc:
                form.add_error("contract_reference" if exc.status == 404 else "reason", exc.detail)
            else:
                messages.success(
                    request,
                    _("Early invoice of %(contract)s queued (%(id)s).")
                    % {"contract": run.contract_reference, "id": run.pk},
                )
                return redirect("admin:invoicing_billingrun_changelist")
        context = {**self.admin_site.each_context(request), "form": form, "title": _("Invoice a contract early")}
        return render(request, "admin/invoicing/billingrun/invoice_early.html", context)

    @admin.action(description="Run billing again for the selected runs' months", permissions=["operate"])
    def run_again(self, request, queryset):
        for period in sorted({run.period for run in queryset}):
            try:
                _queue_run(request, period=period.strftime("%Y-%m"))
            except DomainError as exc:
                self.message_user(request, exc.detail, messages.ERROR)
            else:
                self.message_user(request, _("Billing run for %(period)s queued.") % {"period": f"{period:%Y-%m}"})

    @admin.display(description="period", ordering="period")
    def period_display(self, run):
        return run.period.strftime("%Y-%m")

    @admin.display(description="totals incl. tax")
    def totals_display(self, run):
        return ", ".join(format_money(t["incl_tax"], currency) for currency, t in sorted(run.totals.items())) or "—"


class PeriodFilter(admin.SimpleListFilter):
    title = "period"
    parameter_name = "period"

    def lookups(self, request, model_admin):
        periods = Invoice.objects.values_list("period", flat=True).distinct().order_by("-period")[:24]
        return [(p.strftime("%Y-%m"), p.strftime("%B %Y")) for p in periods]

    def queryset(self, request, queryset):
        if self.value():
            year, month = self.value().split("-")
            return queryset.filter(period__year=int(year), period__month=int(month))
        return queryset


class SendingFailedFilter(admin.SimpleListFilter):
    """Invoices the worker could not send (render or mail errors): staff act on them."""

    title = "sending"
    parameter_name = "sending"

    def lookups(self, request, model_admin):
        return [("failed", "Sending failed")]

    def queryset(self, request, queryset):
        if self.value() == "failed":
            return queryset.filter(sending_failures__gt=0)
        return queryset


class LifecycleInline(TabularInline):
    """The invoice's life on the e-invoicing platform, oldest first."""

    model = InvoiceLifecycleStatus
    extra = 0
    can_delete = False
    fields = readonly_fields = ["occurred_at", "status", "reason", "source", "event_id"]
    verbose_name_plural = "e-invoicing platform statuses"

    def has_add_permission(self, request, obj=None):
        return False


class PlatformStatusFilter(admin.SimpleListFilter):
    title = "e-invoicing"
    parameter_name = "platform"

    def lookups(self, request, model_admin):
        return [("attention", "Rejected or refused (collection held)"), ("approved", "Approved"), ("email", "E-mailed")]

    def queryset(self, request, queryset):
        if self.value() == "attention":
            return queryset.filter(platform_status__in=["rejected", "refused"])
        if self.value() == "approved":
            return queryset.filter(platform_status="approved")
        if self.value() == "email":
            return queryset.filter(channel="email")
        return queryset


@admin.register(Invoice)
class InvoiceAdmin(DetailActionsMixin, AuditTrailMixin, ExportMixin, ReadOnlyModelAdmin):
    resource_classes = [InvoiceResource]  # CSV and XLSX, as filtered (boissipay.exports)
    import_export_change_list_template = "admin/invoicing/invoice/change_list.html"  # + the aged receivables
    list_display = [
        "number",
        "kind",
        "contract_reference",
        "issue_date",  # the period: its filter, and the invoice's page
        "due_date",
        "total_display",
        "status",
        "sending_state",  # how many times it was sent: on its page
        "pdf_link",
    ]
    list_filter = ["status", "kind", SendingFailedFilter, PlatformStatusFilter, PeriodFilter, "currency"]
    inlines = [LifecycleInline]
    search_fields = ["number", "contract_reference", "=contract_id", "buyer__legal_name"]
    readonly_fields = ["related", "pdf_link", "lines_table", "credit_notes_display"]

    @admin.display(description="related")
    def related(self, invoice):
        """The contract, its collection and its operations, in their own pages."""
        return related_records(
            admin_link("contracts_contract_change", f"contract {invoice.contract_reference}", invoice.contract_id),
            admin_link("payments_payment_changelist", "its collection", query=f"?invoice_id={invoice.pk}"),
            admin_link("billing_operation_changelist", "its operations", query=f"?invoice_id={invoice.pk}"),
        )

    actions = ["resend"]

    @admin.display(description="credit notes")
    def credit_notes_display(self, invoice):
        """A credit note: the invoice it corrects. An invoice: its credit notes, and the
        page to issue one."""
        if invoice.corrects_id:
            url = reverse("admin:invoicing_invoice_change", args=[invoice.corrects_id])
            return format_html(
                'Corrects <a href="{}">{}</a> — {} (by {})', url, invoice.corrects.number, invoice.reason,
                invoice.issued_by,
            )  # fmt: skip
        links = format_html_join(
            ", ",
            '<a href="{}">{}</a> ({})',
            (
                (reverse("admin:invoicing_invoice_change", args=[note.pk]), note.number,
                 format_money(-note.total_incl_tax, note.currency))
                for note in invoice.credit_notes.order_by("number")
            ),
        )  # fmt: skip
        issue = ""
        if invoice.kind == "invoice" and invoice.status != "cancelled":
            issue = format_html(
                ' <a class="button" href="{}">Issue a credit note</a>',
                reverse("admin:invoicing_invoice_credit", args=[invoice.pk]),
            )
        credited = format_money(invoice.credited, invoice.currency) if invoice.credited else "nothing"
        return format_html("Credited: {}. {}{}", credited, links, issue)

    @admin.display(description="sending")
    def sending_state(self, invoice):
        if not invoice.sending_failures:
            return "—"
        return format_html(
            '<span style="color:#ba2121" title="{}">failed {} time(s)</span>',
            invoice.sending_error,
            invoice.sending_failures,
        )

    @admin.display(description="period", ordering="period")
    def period_display(self, invoice):
        return invoice.period.strftime("%Y-%m")

    @admin.display(description="total incl. tax", ordering="total_incl_tax")
    def total_display(self, invoice):
        return format_money(invoice.total_incl_tax, invoice.currency)

    @admin.display(description="lines")
    def lines_table(self, invoice):
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    line.decided_at.astimezone(PARIS).date(),
                    line.description,
                    line.purchase_order,
                    line.cost_centre,
                    format_money(line.amount, line.currency),
                )
                for line in services.invoice_lines(invoice)
            ),
        ) if not invoice.corrects_id else format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (line.date, line.description, line.purchase_order, line.cost_centre,
                 format_money(line.amount, invoice.currency))
                for line in invoice.credit_lines.order_by("position")
            ),
        )  # fmt: skip
        header = "<tr><th>date</th><th>operation</th><th>purchase order</th><th>cost centre</th><th>incl. tax</th></tr>"
        return format_html("<table>{}{}</table>", mark_safe(header), rows)  # noqa: S308 (constant markup)

    @admin.display(description="PDF")
    def pdf_link(self, invoice):
        url = reverse("admin:invoicing_invoice_pdf", args=[invoice.pk])
        return format_html('<a href="{}">{}.pdf</a>', url, invoice.number)

    def get_urls(self):
        custom = [
            path("<uuid:invoice_id>/pdf/", self.admin_site.admin_view(self.pdf_view), name="invoicing_invoice_pdf"),
            path(
                "aged-receivables/",
                self.admin_site.admin_view(self.aged_receivables_view),
                name="invoicing_invoice_aged_receivables",
            ),
            path(
                "<uuid:invoice_id>/credit-note/",
                self.admin_site.admin_view(self.credit_view),
                name="invoicing_invoice_credit",
            ),
        ]
        return custom + super().get_urls()

    def aged_receivables_view(self, request):
        """What each customer owes, by how late (invoicing.selectors.aged_receivables)."""
        from django.core.exceptions import PermissionDenied

        from invoicing import selectors

        if not self.has_view_permission(request):
            raise PermissionDenied
        today = business_today()
        rows = selectors.aged_receivables(today)
        buckets = [(key, selectors.AGE_LABELS[key]) for key in selectors.AGE_BUCKETS]
        table = [
            {
                "customer": row["customer"],
                "currency": row["currency"],
                "invoices": row["invoices"],
                "amounts": [format_money(row[key], row["currency"]) for key, _ in buckets],
                "total": format_money(row["total"], row["currency"]),
                "late": row["total"] > row["not_due"],
            }
            for row in rows
        ]
        totals: dict[str, dict[str, int]] = {}
        for row in rows:
            sums = totals.setdefault(row["currency"], dict.fromkeys([*selectors.AGE_BUCKETS, "total"], 0))
            for key in sums:
                sums[key] += row[key]
        footer = [
            {
                "currency": currency,
                "amounts": [format_money(sums[key], currency) for key, _ in buckets],
                "total": format_money(sums["total"], currency),
            }
            for currency, sums in sorted(totals.items())
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Balance âgée au {today:%d/%m/%Y}",
            "buckets": [label for _, label in buckets],
            "rows": table,
            "footer": footer,
            "opts": self.model._meta,
        }
        return render(request, "admin/invoicing/invoice/aged_receivables.html", context)

    def credit_view(self, request, invoice_id):
        """Issue a credit note (invoicing.credit_notes) against this invoice."""
        from django.core.exceptions import PermissionDenied
        from django.shortcuts import get_object_or_404

        from invoicing import credit_notes

        if not request.user.has_perm("invoicing.add_invoice"):
            raise PermissionDenied
        invoice = get_object_or_404(Invoice, pk=invoice_id)
        form = CreditNoteForm(invoice, request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            how = data["how"]
            try:
                note = credit_notes.issue_credit_note(
                    invoice_id=invoice.pk,
                    issued_by=request.user.get_username(),
                    reason=data["reason"],
                    full=how == "full",
                    operation_ids=data["operation_ids"] if how == "operations" else None,
                    amounts=[
                        credit_notes.AmountLine(
                            rate=data["rate"],
                            amount_excl_tax=int(data["amount"] * 100),
                            description=data["description"],
                        )
                    ]
                    if how == "amount"
                    else None,
                )
            except DomainError as exc:
                form.add_error(None, exc.detail)
            else:
                self.message_user(
                    request,
                    _("Credit note %(number)s issued for %(amount)s.")
                    % {"number": note.number, "amount": format_money(-note.total_incl_tax, note.currency)},
                )
                return redirect("admin:invoicing_invoice_change", note.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Issue a credit note against %(number)s") % {"number": invoice.number},
            "invoice": invoice,
            "form": form,
            "opts": self.model._meta,
        }
        return render(request, "admin/invoicing/invoice/credit_note.html", context)

    def pdf_view(self, request, invoice_id):
        from django.http import HttpResponse

        invoice = Invoice.objects.get(pk=invoice_id)
        response = HttpResponse(services.invoice_pdf(invoice_id=invoice_id), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{invoice.number}.pdf"'
        return response

    @admin.action(description="Resend the selected invoices by e-mail", permissions=["operate"])
    def resend(self, request, queryset):
        from invoicing.tasks import send_invoice

        invoices = list(queryset)
        for invoice in invoices:
            send_invoice.delay(str(invoice.pk), resend=True)
        self.message_user(request, _("%(count)d invoice(s) queued for sending.") % {"count": len(invoices)})


class CreditNoteForm(forms.Form):
    """In full, chosen operations, or an amount at one of the invoice's VAT rates."""

    how = forms.ChoiceField(
        choices=[
            ("full", "In full: cancel the invoice (its operations are invoiced again)"),
            ("operations", "The operations ticked below"),
            ("amount", "An amount at a VAT rate"),
        ],
        widget=forms.RadioSelect,
    )
    operation_ids = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    rate = forms.ChoiceField(required=False, help_text="VAT rate, percent")
    amount = forms.DecimalField(
        required=False, max_digits=14, decimal_places=2, min_value=Decimal("0.01"), help_text="Excl. tax."
    )
    description = forms.CharField(required=False, max_length=200)
    reason = forms.CharField(max_length=500, help_text="Shown on the credit note.")

    def __init__(self, invoice, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["operation_ids"].choices = [
            (str(line.operation_id), f"{line.description} — {format_money(line.amount, line.currency)}")
            for line in services.invoice_lines(invoice)
        ]
        self.fields["rate"].choices = [(line["rate"], f"{line['rate']} %") for line in invoice.vat_breakdown]

    def clean(self):
        data = super().clean()
        if data.get("how") == "operations" and not data.get("operation_ids"):
            self.add_error("operation_ids", "Tick the operations to credit.")
        if data.get("how") == "amount" and (not data.get("rate") or not data.get("amount")):
            self.add_error("amount", "Give the amount and its VAT rate.")
        return data


@admin.register(InvoicingContract)
class InvoicingContractAdmin(ReadOnlyModelAdmin):
    list_display = ["reference", "buyer_name", "currency", "payment_terms_days", "mandate_reference"]
    search_fields = ["reference", "=contract_id", "buyer__legal_name"]

    @admin.display(description="buyer")
    def buyer_name(self, contract):
        return contract.buyer.get("legal_name", "")


@admin.register(BillableOperation)
class BillableOperationAdmin(ReadOnlyModelAdmin):
    list_display = ["decided_at", "external_ref", "type", "amount_display", "period", "batch"]
    list_filter = [("batch__invoice", admin.EmptyFieldListFilter), "type", "period"]
    search_fields = ["external_ref", "=operation_id", "=contract_id", "purchase_order"]
    list_select_related = ["batch"]

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, operation):
        return format_money(operation.amount, operation.currency)


class BillingBatchVatInline(TabularInline):
    model = BillingBatchVat
    fields = readonly_fields = ["rate", "base", "vat"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(BillingBatch)
class BillingBatchAdmin(ReadOnlyModelAdmin):
    """A contract's month of operations: what the next run will invoice while it is open."""

    list_display = [
        "contract_reference",
        "period_display",
        "operations_count",
        "total_display",
        "invoice",
        "created_at",
    ]
    list_filter = [("invoice", admin.EmptyFieldListFilter), "period"]
    search_fields = ["contract_reference", "=contract_id", "invoice__number"]
    list_select_related = ["invoice"]
    readonly_fields = [
        "contract_id",
        "period",
        "invoice",
        "operations_count",
        "total_excl_tax",
        "total_vat",
        "total_incl_tax",
        "created_at",
    ]
    inlines = [BillingBatchVatInline]

    def get_queryset(self, request):
        contracts = InvoicingContract.objects.filter(contract_id=OuterRef("contract_id"))
        return (
            super()
            .get_queryset(request)
            .annotate(
                contract_reference=Subquery(contracts.values("reference")[:1]),
                currency=Subquery(contracts.values("currency")[:1]),
            )
        )

    @admin.display(description="contract", ordering="contract_reference")
    def contract_reference(self, batch):
        return batch.contract_reference or batch.contract_id

    @admin.display(description="month", ordering="period")
    def period_display(self, batch):
        return batch.period.strftime("%Y-%m")

    @admin.display(description="total incl. tax", ordering="total_incl_tax")
    def total_display(self, batch):
        return format_money(batch.total_incl_tax, batch.currency) if batch.currency else batch.total_incl_tax
