"""The back office's admin site: titled Boissipay, no public site to "view", the staff's
dashboard on its index (boissipay.dashboard), and two-factor authentication (django-otp,
TOTP) for the accounts that turn it on, or for every account with ADMIN_REQUIRE_2FA.

An account with a confirmed authenticator app gives its current code at login; a session
that has not given it (the app was added meanwhile) is asked to log in again. Staff turn
it on from "Double authentification" (a QR code to scan, then a code to confirm)."""

from __future__ import annotations

import io

from django import forms
from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.safestring import mark_safe
from unfold.forms import AuthenticationForm
from unfold.sites import UnfoldAdminSite
from unfold.widgets import BASE_INPUT_CLASSES


def _confirmed_devices(user):
    from django_otp import devices_for_user

    return list(devices_for_user(user, confirmed=True))


class StaffLoginForm(AuthenticationForm):
    """The admin's login, with the code of the authenticator app for an account that
    has one (the password alone is refused for it)."""

    otp_token = forms.CharField(
        label="Code de double authentification",
        required=False,
        max_length=8,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "class": " ".join(BASE_INPUT_CLASSES)}
        ),
        help_text="Seulement si la double authentification est activée sur ce compte.",
    )

    def clean(self):
        data = super().clean()
        user = self.get_user()
        devices = _confirmed_devices(user) if user is not None else []
        if devices:
            token = (data.get("otp_token") or "").strip().replace(" ", "")
            if not token:
                raise forms.ValidationError(
                    "Saisissez le code de votre application d'authentification.", code="token_required"
                )
            allowed = [d for d in devices if d.verify_is_allowed()[0]]
            if not allowed:  # django-otp slows down guessing after each wrong code
                raise forms.ValidationError("Trop de tentatives : réessayez dans quelques secondes.", code="throttled")
            device = next((d for d in allowed if d.verify_token(token)), None)
            if device is None:
                raise forms.ValidationError("Code de double authentification incorrect.", code="invalid_token")
            user.otp_device = device  # django-otp marks the session verified at login
        return data


class TokenForm(forms.Form):
    token = forms.CharField(
        label="Code affiché par l'application",
        max_length=8,
        widget=forms.TextInput(attrs={"class": " ".join(BASE_INPUT_CLASSES), "autocomplete": "one-time-code"}),
    )


def environment_badge(request) -> list[str] | None:
    """The badge beside the site's name (UNFOLD["ENVIRONMENT"]): staff know at a glance that
    they are not in production."""
    if settings.LOCAL_RUN:
        return ["Développement", "warning"]
    return None


class BoissipayAdminSite(UnfoldAdminSite):
    site_header = site_title = "Boissipay"
    index_title = "Tableau de bord"
    site_url = None  # no public site: no "View site" link
    login_form = StaffLoginForm
    login_template = "admin/boissipay_login.html"
    index_template = "admin/boissipay_index.html"

    def has_permission(self, request):
        if not super().has_permission(request):
            return False
        user = request.user
        # An app turned on after this session logged in: log in again, with its code.
        return not (hasattr(user, "is_verified") and not user.is_verified() and _confirmed_devices(user))

    def get_urls(self):
        return [
            path("2fa/", self.admin_view(self.two_factor_view), name="two_factor"),
            *super().get_urls(),
        ]

    def each_context(self, request):
        context = super().each_context(request)
        context["two_factor_required"] = self.must_enrol(request)
        return context

    def must_enrol(self, request) -> bool:
        user = getattr(request, "user", None)
        return bool(
            settings.ADMIN_REQUIRE_2FA and user is not None and user.is_authenticated and not _confirmed_devices(user)
        )

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        def enrol_first(request, *args, **kwargs):
            if self.must_enrol(request) and request.path != reverse("admin:two_factor") and request.user.is_staff:
                messages.warning(request, "La double authentification est obligatoire : activez-la pour continuer.")
                return redirect("admin:two_factor")
            return inner(request, *args, **kwargs)

        enrol_first.__wrapped__ = inner  # type: ignore[attr-defined]
        return enrol_first

    def index(self, request, extra_context=None):
        from boissipay.dashboard import dashboard

        return super().index(request, {**(extra_context or {}), "dashboard": dashboard()})

    def two_factor_view(self, request):
        """Turn on two-factor authentication for oneself: scan the QR code, confirm a code."""
        from django_otp import login as otp_login
        from django_otp.plugins.otp_totp.models import TOTPDevice
        from django_otp.qr import write_qrcode_image

        user = request.user
        confirmed = _confirmed_devices(user)
        device = None
        form = TokenForm(request.POST or None)
        if not confirmed:
            device = TOTPDevice.objects.filter(user=user, confirmed=False).first() or TOTPDevice.objects.create(
                user=user, name="Application d'authentification", confirmed=False
            )
            if request.method == "POST" and form.is_valid():
                if device.verify_token(form.cleaned_data["token"].strip().replace(" ", "")):
                    device.confirmed = True
                    device.save(update_fields=["confirmed"])
                    otp_login(request, device)
                    messages.success(
                        request, "Double authentification activée : elle sera demandée à chaque connexion."
                    )
                    return redirect("admin:index")
                form.add_error("token", "Code incorrect : vérifiez l'heure du téléphone et réessayez.")
        qr = io.BytesIO()
        if device is not None:
            write_qrcode_image(device.config_url, qr)
        return TemplateResponse(
            request,
            "admin/two_factor.html",
            {
                **self.each_context(request),
                "title": "Double authentification",
                "enabled": bool(confirmed),
                # The QR code's SVG, drawn by the qrcode library from the device's own URL.
                "qr_svg": mark_safe(qr.getvalue().decode()) if device is not None else "",  # noqa: S308
                "form": form,
            },
        )
