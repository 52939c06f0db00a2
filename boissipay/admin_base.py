"""What every context's back office builds on (ADR 0030, 0031, 0034): the theme's base
classes (django-unfold), the permission to operate, a record's actions as a menu on its
page, links between records, the audit trail's page, and money and JSON shown as people
read them. The platform's own pages are in boissipay.admin."""

import functools

from django.contrib import admin
from django.contrib.auth import get_permission_codename
from import_export.admin import ExportMixin as _ExportMixin
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.import_export.forms import SelectableFieldsExportForm

__all__ = [
    "AuditTrailMixin",
    "DetailActionsMixin",
    "ExportMixin",
    "ModelAdmin",
    "OperateMixin",
    "PresentedFieldsMixin",
    "ReadOnlyModelAdmin",
    "TabularInline",
    "admin_link",
    "related_records",
]


class ExportMixin(_ExportMixin):
    """CSV and XLSX export of an admin list, as filtered (boissipay.exports), in the theme."""

    export_form_class = SelectableFieldsExportForm


class OperateMixin:
    """Admin actions that change something (they call a service) ask `permissions=["operate"]`:
    the model's change permission, which the "Opérateur finance" and "Administrateur"
    groups hold and read-only credit control does not (boissipay migration 0010)."""

    def has_operate_permission(self, request):
        opts = self.opts  # type: ignore[attr-defined]
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('change', opts)}")


class DetailActionsMixin:
    """The list's actions that change something (`permissions=["operate"]`) are also in the
    "Actions" menu of each record's page, for that one record: `<id>/act/<action>/` asks
    for confirmation (or shows the action's own form, for `actions_with_a_form`: a reason),
    then runs the action exactly as the list would and comes back to the record. A GET
    changes nothing; staff without the permission see no menu and are refused."""

    actions_with_a_form: tuple[str, ...] = ()

    def get_urls(self):
        from django.urls import path

        opts = self.opts  # type: ignore[attr-defined]
        act = path(
            "<path:object_id>/act/<str:action>/",
            self.admin_site.admin_view(self.act_view),  # type: ignore[attr-defined]
            name=f"{opts.app_label}_{opts.model_name}_act",
        )
        return [act, *super().get_urls()]  # type: ignore[misc]

    def operating_actions(self, request) -> dict[str, str]:
        """name: label of the operating actions this user may run."""
        actions = self.get_actions(request)  # type: ignore[attr-defined]
        return {
            name: str(description).split(" (")[0].rstrip("…").strip()
            for name, (func, _, description) in actions.items()
            if "operate" in getattr(func, "allowed_permissions", ())
        }

    def change_view(self, request, object_id, form_url="", extra_context=None):
        from django.urls import reverse

        opts = self.opts  # type: ignore[attr-defined]
        buttons = [
            (label, reverse(f"admin:{opts.app_label}_{opts.model_name}_act", args=[object_id, name]))
            for name, label in self.operating_actions(request).items()
        ]
        return super().change_view(request, object_id, form_url, {"object_buttons": buttons, **(extra_context or {})})  # type: ignore[misc]

    def act_view(self, request, object_id, action):
        from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
        from django.contrib.admin.utils import unquote
        from django.core.exceptions import PermissionDenied
        from django.http import Http404, HttpResponseRedirect
        from django.template.response import TemplateResponse
        from django.urls import reverse

        opts = self.opts  # type: ignore[attr-defined]
        obj = self.get_object(request, unquote(object_id))  # type: ignore[attr-defined]
        if obj is None:
            raise Http404
        label = self.operating_actions(request).get(action)
        if label is None:
            raise PermissionDenied
        back = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        one = self.get_queryset(request).filter(pk=obj.pk)  # type: ignore[attr-defined]
        if request.method != "POST":
            if action in self.actions_with_a_form:  # its own form: nothing is done before it is posted
                func = self.get_actions(request)[action][0]  # type: ignore[attr-defined]
                return func(self, request, one)
            context = {
                **self.admin_site.each_context(request),  # type: ignore[attr-defined]
                "title": label,
                "object": obj,
                "opts": opts,
                "back": back,
            }
            return TemplateResponse(request, "admin/detail_action_confirm.html", context)
        data = request.POST.copy()  # this action, for this record only, whatever was posted
        data["action"], data["index"] = action, "0"
        data.setlist(ACTION_CHECKBOX_NAME, [str(obj.pk)])
        data.pop("select_across", None)
        request.POST = data
        response = self.response_action(request, one)  # type: ignore[attr-defined]
        if response is None or response.status_code in (301, 302):
            return HttpResponseRedirect(back)
        return response  # the action's form again (a reason missing), posted back here


def admin_link(url_name: str, label: str, *args, query: str = "") -> str:
    """An admin link to a related record or list, by URL name: contexts link their pages
    to one another without importing each other's models."""
    from django.urls import reverse
    from django.utils.html import format_html

    return format_html('<a href="{}{}">{}</a>', reverse(f"admin:{url_name}", args=args), query, label)


def related_records(*links: str) -> str:
    """A record's related records, each a link (admin_link), on one line of its page."""
    from django.utils.html import format_html, format_html_join

    return format_html(
        '<span class="related-records">{}</span>', format_html_join(" · ", "{}", ((link,) for link in links))
    )


class AuditTrailMixin:
    """The "History" button of a tracked record's page shows its audit trail (boissipay.
    history): each change, when, by whom (staff user, API key or system), why, and what
    changed from what to what. The page's last change is also shown on the record."""

    def history_view(self, request, object_id, extra_context=None):
        from django.core.exceptions import PermissionDenied
        from django.template.response import TemplateResponse

        from boissipay.history import history_of

        model_admin = self  # type: admin.ModelAdmin  # type: ignore[assignment]
        obj = model_admin.get_object(request, admin.utils.unquote(object_id))
        if obj is None:
            return model_admin._get_obj_does_not_exist_redirect(request, model_admin.opts, object_id)  # type: ignore[attr-defined]
        if not model_admin.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        context = {
            **model_admin.admin_site.each_context(request),
            "title": f"Historique : {obj}",
            "subtitle": None,
            "object": obj,
            "opts": model_admin.opts,
            "changes": history_of(obj),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/audit_trail.html", context)

    @admin.display(description="Dernière modification")
    def last_change(self, obj) -> str:
        from django.utils.formats import date_format
        from django.utils.timezone import localtime

        from boissipay.history import history_of

        changes = history_of(obj, limit=1) if obj is not None and obj.pk else []
        if not changes:
            return "—"
        change = changes[0]
        reason = f" — {change.reason}" if change.reason else ""
        return f"{date_format(localtime(change.at), 'SHORT_DATETIME_FORMAT')}, {change.actor_label}{reason}"


MONEY_FIELDS = {
    "amount",
    "allocated",
    "credited",
    "credit_limit",
    "invoiced_unpaid",
    "monthly_cap",
    "paid_outside",
    "rounding_adjustment",
    "total_excl_tax",
    "total_incl_tax",
    "total_vat",
    "unallocated",
    "unbilled",
    "vat_amount",
}


# Keys of JSON values (VAT breakdowns, totals) that hold minor units.
JSON_MONEY_KEYS = {"base", "vat", "amount", "excl_tax", "incl_tax", "total"}


def _present_json(value, currency: str = "EUR"):
    """A JSON value as staff read it: an object as a list of "name: value", a list of
    objects as a table; amounts in their currency."""
    from django.utils.html import format_html, format_html_join

    def cell(key, item):
        if key in JSON_MONEY_KEYS and isinstance(item, int) and not isinstance(item, bool):
            from boissipay.money import format_money

            return format_money(item, currency)
        return _plain(item)

    if isinstance(value, dict):
        if not value:
            return "—"
        return format_html(
            "<dl style='margin:0'>{}</dl>",
            format_html_join(
                "", "<dt>{}</dt><dd style='margin-left:1em'>{}</dd>", ((k, _plain(v)) for k, v in value.items())
            ),
        )
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        columns = list(dict.fromkeys(key for item in value for key in item))
        head = format_html_join("", "<th>{}</th>", ((c,) for c in columns))
        body = format_html_join(
            "",
            "<tr>{}</tr>",
            ((format_html_join("", "<td>{}</td>", ((cell(c, item.get(c, "")),) for c in columns)),) for item in value),
        )
        return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)
    return _plain(value) if value not in (None, "", []) else "—"


def _plain(value) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_plain(item)}" for key, item in value.items())
    if isinstance(value, list):
        return ", ".join(_plain(item) for item in value)
    return str(value)


@functools.cache
def _shown_fields_of(model) -> dict[str, str]:
    from django.db import models as django_models

    shown = {}
    for field in model._meta.fields:
        if isinstance(field, django_models.JSONField):
            shown[field.name] = "json"
        elif field.name in MONEY_FIELDS and isinstance(field, django_models.IntegerField):
            shown[field.name] = "money"
    return shown


class PresentedFieldsMixin:
    """Detail pages show amounts in their currency ("1 069,99 €", not 106999) and JSON as
    lists and tables, not raw: each such model field is shown through a display of its
    own (`<field>_shown`) in place of the raw value."""

    def _shown_fields(self) -> dict[str, str]:
        """{field name: "money" or "json"}, worked out once per model."""
        return _shown_fields_of(self.model)

    def _swap(self, names):
        shown = self._shown_fields()
        return [f"{name}_shown" if name in shown else name for name in names]

    def get_fields(self, request, obj=None):
        return self._swap(super().get_fields(request, obj))  # type: ignore[misc]

    def get_readonly_fields(self, request, obj=None):
        return self._swap(super().get_readonly_fields(request, obj))  # type: ignore[misc]

    def __getattr__(self, name: str):
        if name.endswith("_shown"):
            field_name = name.removesuffix("_shown")
            kind = self._shown_fields().get(field_name)
            if kind is not None:
                field = self.model._meta.get_field(field_name)

                def shown(obj):
                    from boissipay.money import format_money

                    value = getattr(obj, field_name)
                    contract = getattr(obj, "contract", None)
                    currency = str(getattr(obj, "currency", None) or getattr(contract, "currency", "EUR"))
                    if kind == "money":
                        return format_money(value, currency) if value is not None else "—"
                    return _present_json(value, currency)

                shown.short_description = field.verbose_name  # type: ignore[attr-defined]
                return shown
        raise AttributeError(name)


class ReadOnlyModelAdmin(PresentedFieldsMixin, OperateMixin, ModelAdmin):
    """Pages of records nobody edits by hand (decisions, events, documents): staff read
    them and act through the admin actions, which call the services."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
