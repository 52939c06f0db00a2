"""CSV and XLSX exports of the back office's lists, as filtered (issue 17), with
django-import-export: each context declares its resources (`<context>/exports.py`) and
its admin lists mix `ExportMixin` in. Amounts are exported in major units beside their
currency (the spreadsheet's arithmetic stays exact: decimals, never floats)."""

from __future__ import annotations

from import_export import fields, resources

from boissipay.money import to_major


def money(attribute: str, column: str) -> fields.Field:
    """A column of `attribute` (minor units) in major units of the row's currency."""

    class Money(fields.Field):
        def get_value(self, instance):
            value = getattr(instance, attribute)
            return None if value is None else to_major(value, instance.currency)

    return Money(attribute=attribute, column_name=column)


class ExportResource(resources.ModelResource):
    """A read-only export: nothing is ever imported through the back office."""
