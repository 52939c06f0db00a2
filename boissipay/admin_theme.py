"""The back office's theme (django-unfold, ADR 0034): the base classes every context's admin
uses, so that lists, forms, inlines and the export page share its look and widgets.

A context's admin imports `ModelAdmin`, `TabularInline` and `ExportMixin` from here rather
than from django.contrib.admin, unfold or import_export."""

from import_export.admin import ExportMixin as _ExportMixin
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.import_export.forms import SelectableFieldsExportForm

__all__ = ["ExportMixin", "ModelAdmin", "TabularInline"]


class ExportMixin(_ExportMixin):
    """CSV and XLSX export of an admin list, as filtered (boissipay.exports), in the theme."""

    export_form_class = SelectableFieldsExportForm
