"""Our own labels in the staff's language (issue 17, ADR 0034): the models', fields',
choices' and admin's labels and our pages' texts are in the French catalogue, every one
translated and compiled; pages show them in French by default and in English on request;
the API's document and the migrations stay English."""

import gettext
import io
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.conf import settings
from django.core.management import call_command
from django.utils import translation

from boissipay.labels import labels
from devtools.management.commands.collect_labels import catalogue_source
from tests import factories
from tests.kernel.test_back_office import operator

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "fr" / "LC_MESSAGES"


def french():
    return read_po((CATALOGUE / "django.po").open("rb"), locale="fr")


def test_every_label_is_in_the_catalogue_and_the_generated_list_is_up_to_date():
    listed = (Path(settings.BASE_DIR) / "boissipay" / "label_catalogue.py").read_text(encoding="utf-8")
    assert listed == catalogue_source(), "run `manage.py collect_labels`, then makemessages (docs/translations.md)"
    in_catalogue = {message.id for message in french() if message.id and not message.context}
    missing = [label for label in labels() if label not in in_catalogue]
    assert not missing, f"not in locale/fr/LC_MESSAGES/django.po: {missing[:10]}"
    assert {"credit limit", "Suspended", "Retry now (collect with the next run, today)"} <= set(labels())


def test_every_entry_is_translated_not_fuzzy_and_compiled():
    catalogue = french()
    entries = [message for message in catalogue if message.id]
    assert len(entries) > 400
    untranslated = [message.id for message in entries if not message.string or message.fuzzy]
    assert not untranslated, f"translate these in django.po: {untranslated[:10]}"
    compiled = gettext.GNUTranslations((CATALOGUE / "django.mo").open("rb"))
    stale = [
        message.id
        for message in entries
        if (compiled.pgettext(message.context, message.id) if message.context else compiled.gettext(message.id))
        != message.string
    ]
    assert not stale, f"django.mo is older than django.po: `manage.py compilemessages` ({stale[:5]})"


@pytest.mark.django_db(transaction=False)
def test_the_pages_show_our_labels_in_french_by_default_and_in_english_on_request():
    contract = factories.contract()
    staff = operator()
    staff.force_login(staff.user)

    listing = staff.get("/admin/contracts/contract/").content.decode()
    detail = staff.get(f"/admin/contracts/contract/{contract.pk}/change/").content.decode()
    for text in ("Limite de crédit", "Contrats", "Actif", "Suspendre les contrats sélectionnés"):
        assert text in listing, text
    assert "Limite de crédit" in detail and "Date d&#x27;échéance" not in detail
    assert "Credit limit" not in listing

    english = staff.get("/admin/contracts/contract/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Credit limit" in english and "Suspend selected contracts" in english


@pytest.mark.django_db
def test_the_api_document_and_the_migrations_stay_english():
    with translation.override("fr"):
        from boissipay.api.schema import EnglishSchemaGenerator

        schema = EnglishSchemaGenerator().get_schema(request=None, public=True)
    contract = schema["components"]["schemas"]["Contract"]["properties"]
    assert "Suspendu" not in str(schema) and contract  # the statuses' labels, as the API documents them

    with translation.override("fr"):
        out = io.StringIO()
        call_command("makemigrations", "--check", "--dry-run", stdout=out)  # no change: labels are not migrated
    assert "No changes detected" in out.getvalue()
