"""Template helpers of the back office's own pages (ADR 0034)."""

from django import forms, template
from unfold.widgets import CHECKBOX_CLASSES, INPUT_CLASSES, SELECT_CLASSES, TEXTAREA_CLASSES

register = template.Library()


def _classes(widget: forms.Widget) -> list[str]:
    if isinstance(widget, forms.CheckboxInput):
        return CHECKBOX_CLASSES
    if isinstance(widget, forms.Select):
        return SELECT_CLASSES
    if isinstance(widget, forms.Textarea):
        return TEXTAREA_CLASSES
    if isinstance(widget, forms.FileInput):
        return ["block", "text-sm"]
    return INPUT_CLASSES


@register.filter
def themed(form: forms.BaseForm) -> forms.BaseForm:
    """The form with the theme's classes on its widgets (each form instance has widgets of
    its own: nothing is shared)."""
    for field in form.fields.values():
        widget = field.widget
        if not widget.is_hidden and "class" not in widget.attrs:
            widget.attrs["class"] = " ".join(_classes(widget))
    return form
