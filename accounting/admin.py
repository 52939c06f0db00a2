"""The ledger in the back office: entries with their lines (read-only: they are written
from the events), and the FEC of a period, as a page and as an action on entries."""

import datetime as dt
import io

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Max, Min, Sum
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.dateparse import parse_date
from django.utils.html import format_html

from accounting import fec, statements
from accounting.models import EntryLine, JournalEntry, LedgerCustomer
from boissipay.admin_base import ReadOnlyModelAdmin, TabularInline
from boissipay.money import format_money


class EntryLineInline(TabularInline):
    model = EntryLine
    extra = 0
    can_delete = False
    fields = ["account", "account_label", "customer_id", "debit_display", "credit_display"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="débit")
    def debit_display(self, line):
        return format_money(line.debit, line.entry.currency) if line.debit else ""

    @admin.display(description="crédit")
    def credit_display(self, line):
        return format_money(line.credit, line.entry.currency) if line.credit else ""


class PeriodForm(forms.Form):
    start = forms.DateField(label="Du")
    end = forms.DateField(label="Au (date de clôture)")

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise forms.ValidationError("La date de début est après la date de fin.")
        return data


def fec_response(start: dt.date, end: dt.date) -> HttpResponse:
    buffer = io.BytesIO()
    fec.write(start, end, buffer)
    response = HttpResponse(buffer.getvalue(), content_type=f"text/plain; charset={fec.ENCODING}")
    response["Content-Disposition"] = f'attachment; filename="{fec.file_name(end)}"'
    return response


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyModelAdmin):
    list_display = ["entry_date", "journal", "number", "piece_ref", "label", "amount_display", "currency"]
    list_filter = ["journal", "kind", ("entry_date", admin.DateFieldListFilter), "currency"]
    search_fields = ["piece_ref", "label", "source_ref"]
    date_hierarchy = "entry_date"
    inlines = [EntryLineInline]
    readonly_fields = [f.name for f in JournalEntry._meta.fields]
    actions = ["export_fec"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(total_debit=Sum("lines__debit"))

    @admin.display(description="montant", ordering="total_debit")
    def amount_display(self, entry):
        return format_money(entry.total_debit, entry.currency)

    def get_urls(self):
        return [
            path("fec/", self.admin_site.admin_view(self.fec_view), name="accounting_journalentry_fec"),
            *super().get_urls(),
        ]

    def fec_view(self, request):
        """The FEC of a period, as a file (the same as `manage.py export_fec`)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = PeriodForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            return fec_response(form.cleaned_data["start"], form.cleaned_data["end"])
        return TemplateResponse(
            request,
            "admin/accounting/fec_form.html",
            {
                **self.admin_site.each_context(request),
                "title": "Fichier des écritures comptables (FEC)",
                "form": form,
                "opts": self.opts,
            },
        )

    @admin.action(description="Exporter le FEC de la période des écritures sélectionnées")
    def export_fec(self, request, queryset):
        bounds = queryset.aggregate(start=Min("entry_date"), end=Max("entry_date"))
        return fec_response(bounds["start"], bounds["end"])


@admin.register(LedgerCustomer)
class LedgerCustomerAdmin(ReadOnlyModelAdmin):
    """The customers' accounts (411): each one's statement of account as a PDF."""

    list_display = ["legal_name", "siren", "statement_link"]
    search_fields = ["legal_name", "siren"]

    @admin.display(description="relevé de compte")
    def statement_link(self, customer):
        return format_html(
            '<a href="{}">PDF de l\'année</a>', reverse("admin:accounting_ledgercustomer_statement", args=[customer.pk])
        )

    def get_urls(self):
        return [
            path(
                "<uuid:customer_id>/statement/",
                self.admin_site.admin_view(self.statement_view),
                name="accounting_ledgercustomer_statement",
            ),
            *super().get_urls(),
        ]

    def statement_view(self, request, customer_id):
        """`?start=YYYY-MM-DD&end=YYYY-MM-DD&currency=EUR`: this year so far by default."""
        from boissipay.clock import business_today

        if not self.has_view_permission(request):
            raise PermissionDenied
        customer = get_object_or_404(LedgerCustomer, pk=customer_id)
        today = business_today()
        start = parse_date(request.GET.get("start", "")) or today.replace(month=1, day=1)
        end = parse_date(request.GET.get("end", "")) or today
        currency = request.GET.get("currency", "EUR")
        if start > end or not (len(currency) == 3 and currency.isalpha()):
            raise Http404("Une période (start <= end) et une devise de trois lettres.")
        pdf = statements.render_pdf(statements.statement(customer, start, end, currency.upper()))
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="releve-{customer.siren}-{end:%Y%m%d}.pdf"'
        return response
