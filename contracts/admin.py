"""Back-office pages for customers and contracts. Every state change goes through
contracts.services, so events are recorded and illegal transitions refused."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from boissipay.admin_base import (
    AuditTrailMixin,
    DetailActionsMixin,
    ExportMixin,
    ModelAdmin,
    OperateMixin,
    PresentedFieldsMixin,
    TabularInline,
    admin_link,
    related_records,
)
from boissipay.clock import business_today
from boissipay.errors import DomainError
from boissipay.money import format_money
from contracts import selectors, services
from contracts.admin_pages import ContractPages, CustomerPages
from contracts.exports import ContractResource
from contracts.models import Contract, Customer, Mandate, Subscriber


class MandateInline(TabularInline):
    model = Mandate
    extra = 0
    can_delete = False
    fields = ["reference", "masked_iban", "bic", "signed_on", "expires_on", "status", "is_current", "revoked_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class SubscriberInline(TabularInline):
    model = Subscriber
    extra = 0
    can_delete = False
    show_change_link = True  # where staff set the monthly cap
    fields = ["external_ref", "display_name", "monthly_cap", "registered_at", "removed_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class ExpiringSoonFilter(admin.SimpleListFilter):
    title = "expiry"
    parameter_name = "expiry"

    def lookups(self, request, model_admin):
        return [("30d", "Expiring within 30 days"), ("expired", "Expired")]

    def queryset(self, request, queryset):
        today = business_today()
        if self.value() == "30d":
            return queryset.filter(pk__in=selectors.expiring_within(30, today=today))
        if self.value() == "expired":  # as the API's status=expired: ended while active, not cancelled
            return selectors.filter_contracts(queryset, status="expired", today=today)
        return queryset


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"size": 60}))


@admin.register(Customer)
class CustomerAdmin(CustomerPages, AuditTrailMixin, OperateMixin, ModelAdmin):
    list_display = ["legal_name", "siren", "vat_number", "billing_email", "postcode", "city", "country", "created_at"]
    list_filter = ["country"]
    search_fields = ["legal_name", "siren", "vat_number", "billing_email", "city"]
    readonly_fields = ["statement", "last_change", *[f.name for f in Customer._meta.fields]]

    @admin.display(description="relevé de compte")
    def statement(self, customer):
        """Its statement of account (the ledger's, accounting context), as a PDF."""
        return admin_link("accounting_ledgercustomer_statement", "PDF de l'année", customer.pk)

    def has_add_permission(self, request):
        return False  # customers are registered through the API (services validate and publish)

    def has_change_permission(self, request, obj=None):
        return False  # corrected through the "Corriger" page (contracts.services.correct_customer)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Subscriber)
class SubscriberAdmin(DetailActionsMixin, AuditTrailMixin, OperateMixin, ModelAdmin):
    """Staff set a subscriber's monthly cap here (through contracts.services, so the
    contract's event carries it to billing); the rest is read-only."""

    list_display = ["external_ref", "display_name", "contract", "cap_display", "registered_at", "removed_at"]
    list_filter = [("removed_at", admin.EmptyFieldListFilter)]
    search_fields = ["external_ref", "display_name", "contract__reference"]
    list_select_related = ["contract"]
    fields = ["contract", "external_ref", "display_name", "monthly_cap", "registered_at", "removed_at"]
    readonly_fields = ["contract", "external_ref", "display_name", "registered_at", "removed_at"]

    @admin.display(description="monthly cap", ordering="monthly_cap")
    def cap_display(self, subscriber):
        if subscriber.monthly_cap is None:
            return "—"
        return format_money(subscriber.monthly_cap, subscriber.contract.currency)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    actions = ["remove"]

    @admin.action(description="Retirer les abonnés sélectionnés", permissions=["operate"])
    def remove(self, request, queryset):
        done = 0
        for subscriber in queryset.filter(removed_at__isnull=True).order_by("pk"):
            try:
                services.remove_subscriber(
                    contract_id=subscriber.contract_id, external_ref=subscriber.external_ref, reason="admin"
                )
                done += 1
            except (DomainError, ValidationError) as exc:
                self.message_user(request, f"{subscriber}: {exc}", messages.ERROR)
        if done:
            self.message_user(request, f"{done} abonné(s) retiré(s).", messages.SUCCESS)

    def save_model(self, request, obj, form, change):
        try:
            services.set_subscriber_cap(
                contract_id=obj.contract_id, external_ref=obj.external_ref, monthly_cap=obj.monthly_cap
            )
        except (DomainError, ValidationError) as exc:
            self.message_user(request, f"{obj}: {exc}", messages.ERROR)


@admin.register(Contract)
class ContractAdmin(ContractPages, AuditTrailMixin, PresentedFieldsMixin, ExportMixin, OperateMixin, ModelAdmin):
    resource_classes = [ContractResource]  # CSV and XLSX, as filtered (boissipay.exports)
    list_display = ["reference", "customer", "status", "currency", "credit_limit_display", "starts_on", "ends_on"]
    list_filter = ["status", "currency", ExpiringSoonFilter]
    search_fields = ["reference", "customer__legal_name", "customer__siren", "mandates__reference"]
    list_select_related = ["customer"]
    readonly_fields = ["related", "last_change", *[f.name for f in Contract._meta.fields]]

    @admin.display(description="related")
    def related(self, contract):
        """Its customer, balance, invoices, collections and operations, in their own pages."""
        return related_records(
            admin_link("contracts_customer_change", contract.customer.legal_name, contract.customer_id),
            admin_link("billing_contractaccount_change", "balance", contract.pk),
            admin_link("invoicing_invoice_changelist", "invoices", query=f"?contract_id={contract.pk}"),
            admin_link("payments_payment_changelist", "collections", query=f"?contract_id={contract.pk}"),
            admin_link("billing_operation_changelist", "operations", query=f"?contract_id={contract.pk}"),
        )

    inlines = [MandateInline, SubscriberInline]
    actions = ["suspend", "reactivate", "cancel", "revoke_mandate"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return obj is None  # the list and its actions; the form is read-only

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="credit limit", ordering="credit_limit")
    def credit_limit_display(self, contract):
        return format_money(contract.credit_limit, contract.currency)

    def _apply(self, request, queryset, verb, command):
        done = 0
        for contract in queryset.order_by("pk"):
            try:
                command(contract)
                done += 1
            except (DomainError, ValidationError) as exc:
                self.message_user(request, f"{contract.reference}: {exc}", messages.ERROR)
        if done:
            self.message_user(
                request, _("%(count)d contract(s) %(done)s.") % {"count": done, "done": verb}, messages.SUCCESS
            )

    def _with_reason(self, request, queryset, verb, title, command):
        if "apply" in request.POST:
            form = ReasonForm(request.POST)
            if form.is_valid():
                reason = form.cleaned_data["reason"]
                self._apply(request, queryset, verb, lambda c: command(contract_id=c.pk, reason=reason))
                return None
        else:
            form = ReasonForm()
        return render(
            request,
            "admin/contracts/reason_form.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "form": form,
                "contracts": queryset,
                "action": request.POST.get("action"),
                "checkbox_name": ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            },
        )

    @admin.action(description="Suspend selected contracts", permissions=["operate"])
    def suspend(self, request, queryset):
        return self._with_reason(
            request,
            queryset,
            pgettext("contracts done", "suspended"),
            _("Suspend contracts"),
            services.suspend_contract,
        )

    @admin.action(description="Reactivate selected contracts", permissions=["operate"])
    def reactivate(self, request, queryset):
        self._apply(
            request,
            queryset,
            pgettext("contracts done", "reactivated"),
            lambda c: services.reactivate_contract(contract_id=c.pk),
        )

    @admin.action(description="Cancel selected contracts (final)", permissions=["operate"])
    def cancel(self, request, queryset):
        return self._with_reason(
            request, queryset, pgettext("contracts done", "cancelled"), _("Cancel contracts"), services.cancel_contract
        )

    @admin.action(description="Revoke the direct-debit mandate of selected contracts", permissions=["operate"])
    def revoke_mandate(self, request, queryset):
        return self._with_reason(
            request,
            queryset,
            pgettext("contracts done", "had their mandate revoked"),
            _("Revoke mandates"),
            services.revoke_mandate,
        )
