"""The staff's editing pages of a contract and a customer (issue 17): each form calls one
service of contracts.services, so the change is validated, published as an event and
kept in the audit trail with the staff user and the reason given. The contract's page
shows them, and its actions, as buttons (`object_buttons`)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from boissipay.errors import DomainError
from boissipay.money import to_major, to_minor
from contracts import services
from contracts.models import Contract, ContractStatus, Customer
from contracts.validators import Address


class ReasonField(forms.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 500)
        kwargs.setdefault("label", "Motif")
        kwargs.setdefault("widget", forms.TextInput(attrs={"size": 60}))
        super().__init__(**kwargs)


class MoneyField(forms.CharField):
    """An amount typed in major units ("150 000,00"), kept in minor units."""

    def __init__(self, *, currency: str = "EUR", **kwargs):
        self.currency = currency
        super().__init__(**kwargs)

    def to_python(self, value):
        text = (super().to_python(value) or "").replace("\u202f", "").replace("\xa0", "").replace(" ", "")
        if not text:
            return None
        try:
            amount = Decimal(text.replace(",", "."))
        except InvalidOperation:
            raise ValidationError("Un montant, par exemple 150000,00.") from None
        if not amount.is_finite() or amount < 0:
            raise ValidationError("Un montant positif ou nul.")
        try:
            return to_minor(amount, self.currency)
        except ValueError:
            raise ValidationError("Au plus deux décimales.") from None


class AmendForm(forms.Form):
    credit_limit = MoneyField(label="Limite de crédit")
    ends_on = forms.DateField(label="Fin du contrat", required=False, help_text="Vide : sans fin.")
    reason = ReasonField()


class MandateForm(forms.Form):
    reference = forms.CharField(label="Référence unique du mandat (RUM)", max_length=35)
    iban = forms.CharField(label="IBAN", max_length=42)
    bic = forms.CharField(label="BIC", max_length=11, required=False)
    signed_on = forms.DateField(label="Signé le")
    expires_on = forms.DateField(label="Expire le", required=False)
    signed_document = forms.FileField(label="Mandat signé (PDF)")
    reason = ReasonField()


class SubscriberForm(forms.Form):
    external_ref = forms.CharField(label="Référence", max_length=100)
    display_name = forms.CharField(label="Nom", max_length=200)
    monthly_cap = MoneyField(label="Plafond mensuel", required=False, help_text="Vide : la limite du contrat seule.")


class CustomerForm(forms.Form):
    legal_name = forms.CharField(label="Raison sociale", max_length=200)
    billing_email = forms.EmailField(label="E-mail de facturation")
    address_lines = forms.CharField(label="Adresse (1 à 3 lignes)", widget=forms.Textarea(attrs={"rows": 3}))
    postcode = forms.CharField(label="Code postal", max_length=16)
    city = forms.CharField(label="Ville", max_length=100)
    reason = ReasonField()


def _fail(form: forms.Form, exc: Exception) -> None:
    """A service's refusal, on the form: a field's error beside it, anything else on top."""
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            name = field.removeprefix("address.").replace("lines", "address_lines")
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, str(exc))


class ContractPages:
    """Mixed into ContractAdmin: the editing pages and the buttons of a contract's page."""

    def get_urls(self):
        wrap = self.admin_site.admin_view  # type: ignore[attr-defined]
        return [
            path("<uuid:contract_id>/amend/", wrap(self.amend_view), name="contracts_contract_amend"),
            path("<uuid:contract_id>/mandate/", wrap(self.mandate_view), name="contracts_contract_mandate"),
            path("<uuid:contract_id>/subscriber/", wrap(self.subscriber_view), name="contracts_contract_subscriber"),
            path("<uuid:contract_id>/do/<str:action>/", wrap(self.action_view), name="contracts_contract_do"),
            *super().get_urls(),  # type: ignore[misc]
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        contract = Contract.objects.filter(pk=object_id).first()
        buttons = self.object_buttons(request, contract) if contract else []
        return super().change_view(  # type: ignore[misc]
            request, object_id, form_url, {**(extra_context or {}), "object_buttons": buttons}
        )

    def object_buttons(self, request, contract: Contract) -> list[tuple[str, str]]:
        if not self.has_operate_permission(request) or contract.status == ContractStatus.CANCELLED:  # type: ignore[attr-defined]
            return []

        def url(name, *args):
            return reverse(f"admin:contracts_contract_{name}", args=[contract.pk, *args])

        buttons = [
            ("Modifier limite / fin", url("amend")),
            ("Renouveler le mandat", url("mandate")),
            ("Ajouter un abonné", url("subscriber")),
        ]
        if contract.status == ContractStatus.SUSPENDED:
            buttons.append(("Réactiver", url("do", "reactivate")))
        else:
            buttons.append(("Suspendre", url("do", "suspend")))
        if contract.mandates.filter(is_current=True, status="active").exists():
            buttons.append(("Révoquer le mandat", url("do", "revoke_mandate")))
        buttons.append(("Résilier", url("do", "cancel")))
        return buttons

    # --- pages ---------------------------------------------------------------------------

    def _contract(self, request, contract_id) -> Contract:
        if not self.has_operate_permission(request):  # type: ignore[attr-defined]
            raise PermissionDenied
        return get_object_or_404(Contract.objects.select_related("customer"), pk=contract_id)

    def _page(self, request, contract, title, form, submit="Enregistrer"):
        return TemplateResponse(
            request,
            "admin/contracts/edit_form.html",
            {
                **self.admin_site.each_context(request),  # type: ignore[attr-defined]
                "title": title,
                "subtitle": str(contract),
                "form": form,
                "submit": submit,
                "object": contract,
                "opts": Contract._meta,
                "back": reverse("admin:contracts_contract_change", args=[contract.pk]),
            },
        )

    def _done(self, request, contract, message):
        self.message_user(request, message, messages.SUCCESS)  # type: ignore[attr-defined]
        return redirect("admin:contracts_contract_change", contract.pk)

    def amend_view(self, request, contract_id):
        contract = self._contract(request, contract_id)
        form = AmendForm(
            request.POST or None,
            initial={"credit_limit": to_major(contract.credit_limit, contract.currency), "ends_on": contract.ends_on},
        )
        form.fields["credit_limit"].currency = contract.currency  # type: ignore[attr-defined]
        if request.method == "POST" and form.is_valid():
            try:
                services.amend_contract(
                    contract_id=contract.pk,
                    credit_limit=form.cleaned_data["credit_limit"],
                    ends_on=form.cleaned_data["ends_on"],
                    reason=form.cleaned_data["reason"],
                )
                return self._done(request, contract, f"{contract.reference} : contrat modifié.")
            except (DomainError, ValidationError) as exc:
                _fail(form, exc)
        return self._page(request, contract, "Modifier la limite de crédit et la fin du contrat", form)

    def mandate_view(self, request, contract_id):
        contract = self._contract(request, contract_id)
        form = MandateForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                services.renew_mandate(
                    contract_id=contract.pk,
                    mandate=services.MandateDetails(
                        reference=data["reference"],
                        iban=data["iban"],
                        bic=data["bic"],
                        signed_on=data["signed_on"],
                        expires_on=data["expires_on"],
                        signed_document=data["signed_document"].read(services.MAX_MANDATE_PDF_BYTES + 1),
                    ),
                    reason=data["reason"],
                )
                return self._done(request, contract, f"{contract.reference} : nouveau mandat {data['reference']}.")
            except (DomainError, ValidationError) as exc:
                _fail(form, exc)
        return self._page(request, contract, "Renouveler le mandat de prélèvement", form)

    def subscriber_view(self, request, contract_id):
        contract = self._contract(request, contract_id)
        form = SubscriberForm(request.POST or None)
        form.fields["monthly_cap"].currency = contract.currency  # type: ignore[attr-defined]
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                services.register_subscriber(
                    contract_id=contract.pk,
                    external_ref=data["external_ref"],
                    display_name=data["display_name"],
                    monthly_cap=data["monthly_cap"],
                )
                return self._done(request, contract, f"{contract.reference} : abonné {data['external_ref']} ajouté.")
            except (DomainError, ValidationError) as exc:
                _fail(form, exc)
        return self._page(request, contract, "Ajouter un abonné", form)

    ACTIONS = {
        "suspend": ("Suspendre le contrat", services.suspend_contract, True),
        "reactivate": ("Réactiver le contrat", services.reactivate_contract, False),
        "revoke_mandate": ("Révoquer le mandat", services.revoke_mandate, True),
        "cancel": ("Résilier le contrat (définitif)", services.cancel_contract, True),
    }

    def action_view(self, request, contract_id, action):
        contract = self._contract(request, contract_id)
        if action not in self.ACTIONS:
            raise PermissionDenied
        title, service, needs_reason = self.ACTIONS[action]
        form = forms.Form(request.POST or None)
        if needs_reason:
            form.fields["reason"] = ReasonField()
        if request.method == "POST" and form.is_valid():
            try:
                service(contract_id=contract.pk, **form.cleaned_data)
                return self._done(request, contract, f"{contract.reference} : {title.lower()} — fait.")
            except (DomainError, ValidationError) as exc:
                _fail(form, exc)
        return self._page(request, contract, title, form, submit="Confirmer")


class CustomerPages:
    """Mixed into CustomerAdmin: the customer's correction page, through the service."""

    def get_urls(self):
        wrap = self.admin_site.admin_view  # type: ignore[attr-defined]
        return [
            path("<uuid:customer_id>/correct/", wrap(self.correct_view), name="contracts_customer_correct"),
            *super().get_urls(),  # type: ignore[misc]
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        buttons = []
        if self.has_operate_permission(request):  # type: ignore[attr-defined]
            buttons = [("Corriger", reverse("admin:contracts_customer_correct", args=[object_id]))]
        return super().change_view(  # type: ignore[misc]
            request, object_id, form_url, {**(extra_context or {}), "object_buttons": buttons}
        )

    def correct_view(self, request, customer_id):
        if not self.has_operate_permission(request):  # type: ignore[attr-defined]
            raise PermissionDenied
        customer = get_object_or_404(Customer, pk=customer_id)
        form = CustomerForm(
            request.POST or None,
            initial={
                "legal_name": customer.legal_name,
                "billing_email": customer.billing_email,
                "address_lines": customer.address_lines,
                "postcode": customer.postcode,
                "city": customer.city,
            },
        )
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                services.correct_customer(
                    customer_id=customer.pk,
                    legal_name=data["legal_name"],
                    billing_email=data["billing_email"],
                    address=Address.of(data["address_lines"], data["postcode"], data["city"]),
                    reason=data["reason"],
                )
                self.message_user(request, f"{customer.legal_name} : client corrigé.", messages.SUCCESS)  # type: ignore[attr-defined]
                return redirect("admin:contracts_customer_change", customer.pk)
            except (DomainError, ValidationError) as exc:
                _fail(form, exc)
        return TemplateResponse(
            request,
            "admin/contracts/edit_form.html",
            {
                **self.admin_site.each_context(request),  # type: ignore[attr-defined]
                "title": "Corriger le client",
                "subtitle": str(customer),
                "form": form,
                "submit": "Enregistrer",
                "object": customer,
                "opts": Customer._meta,
                "back": reverse("admin:contracts_customer_change", args=[customer.pk]),
            },
        )
