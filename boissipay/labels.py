"""Our own labels in the staff's language (ADR 0034): the names of the apps, models,
fields and choices, the help texts, and the admin's column, action, filter and fieldset
titles are written in English in the code and translated by the catalogue
(locale/fr/LC_MESSAGES/django.po) when a page is shown.

Django would translate them if each were written `gettext_lazy("...")`: that is hundreds
of explicit `verbose_name=` (each a migration of no effect, pghistory's event models
included). Instead, `translate_labels()` (the kernel's ready()) makes the labels as they
are lazy, once, after the models and the admin are loaded; migrations run untranslated, so
they see the same English. `labels()` lists them all: `manage.py collect_labels` writes them
into boissipay/label_catalogue.py for `makemessages`, and the suite fails on a label the
catalogue lacks or the French translation leaves empty."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy

OUR_APPS = ("boissipay", "contracts", "billing", "invoicing", "payments", "accounting")


def _ours():
    from django.apps import apps

    for app_label in OUR_APPS:
        config = apps.get_app_config(app_label)
        models = [m for m in config.get_models() if not getattr(m, "pgh_obj_model", None) and not hasattr(m, "pgh_id")]
        yield config, models


def _model_admins():
    from django.contrib import admin

    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label in OUR_APPS:
            yield model_admin


def _field_labels(model) -> Iterator[tuple[Any, str]]:
    """(holder, attribute) of each label of a model's own fields."""
    for field in model._meta.get_fields(include_parents=False):
        if getattr(field, "model", None) is not model or not hasattr(field, "verbose_name"):
            continue
        yield field, "verbose_name"
        if field.help_text:
            yield field, "help_text"


def _admin_labels(model_admin) -> Iterator[tuple[Any, str]]:
    for klass in type(model_admin).__mro__:
        if klass.__module__.split(".")[0] not in OUR_APPS:
            continue
        for value in vars(klass).values():
            if callable(value) and isinstance(getattr(value, "short_description", None), (str, Promise)):
                yield value, "short_description"
    for entry in model_admin.list_filter:
        filter_class = entry[1] if isinstance(entry, tuple) else entry
        if isinstance(filter_class, type) and isinstance(getattr(filter_class, "title", None), (str, Promise)):
            yield filter_class, "title"


def _choices(field) -> list[str]:
    return [str(label) for _, label in (getattr(field, "flatchoices", None) or [])]


def labels() -> list[str]:
    """Every label to translate (its English, whatever the active language), in a stable order."""
    with translation.override(None):
        return _labels()


def _labels() -> list[str]:
    found: list[str] = []
    for config, models in _ours():
        found.append(str(config.verbose_name))
        for model in models:
            found += [str(model._meta.verbose_name), str(model._meta.verbose_name_plural)]
            for field, attribute in _field_labels(model):
                found.append(str(getattr(field, attribute)))
                if attribute == "verbose_name":
                    found += _choices(field)
    for model_admin in _model_admins():
        found += [str(getattr(holder, attribute)) for holder, attribute in _admin_labels(model_admin)]
        found += [str(name) for name, _ in (model_admin.fieldsets or []) if name]
    return sorted({label for label in found if label.strip()}, key=lambda label: (label.lower(), label))


def _lazy(holder, attribute: str) -> None:
    value = getattr(holder, attribute)
    if isinstance(value, str) and value.strip():
        setattr(holder, attribute, gettext_lazy(value))


def translate_labels() -> None:
    """Make every label lazy, translated when shown (once, from the kernel's ready())."""
    for config, models in _ours():
        _lazy(config, "verbose_name")
        for model in models:
            with translation.override(None):  # Django's own plural ("{}s") is lazy already, in English
                plural = str(model._meta.verbose_name_plural)
            _lazy(model._meta, "verbose_name")
            model._meta.verbose_name_plural = gettext_lazy(plural)
            for field, attribute in _field_labels(model):
                _lazy(field, attribute)
                if attribute == "verbose_name" and field.choices and not isinstance(field.choices, Promise):
                    field.choices = [(value, gettext_lazy(str(label))) for value, label in field.flatchoices]
    for model_admin in _model_admins():
        for holder, attribute in _admin_labels(model_admin):
            _lazy(holder, attribute)
        if model_admin.fieldsets:
            model_admin.fieldsets = [
                (gettext_lazy(name) if isinstance(name, str) and name else name, options)
                for name, options in model_admin.fieldsets
            ]
