"""The back office's index and login (issue 17): the dashboard's figures, each linked to
the list behind it, and its charts; two-factor authentication for the accounts that turn
it on, or for all with ADMIN_REQUIRE_2FA."""

import datetime as dt
import re

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from boissipay import dashboard
from boissipay.clock import PARIS
from invoicing import services as invoicing
from tests import factories
from tests.clock import freeze_module_at
from tests.factories import buy, settled

_today = freeze_module_at(dt.date(2026, 11, 20))
pytestmark = pytest.mark.django_db


def operator(name="claire.petit", password="Un mot de passe long 2026") -> Client:  # noqa: S107 - a test account
    user = User.objects.create_user(name, password=password, is_staff=True)
    user.groups.add(Group.objects.get(name="Opérateur finance"))
    client = Client()
    client.user = user
    client.password = password
    return client


def login(client: Client, token: str = ""):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": client.user.username, "password": client.password, "otp_token": token},
    )


def test_the_index_shows_the_figures_finance_watches_each_linked_to_its_list_and_the_charts():
    near = factories.contract(credit_limit=10_000)
    other = factories.contract(credit_limit=1_000_000)
    settled()
    buy(near, 9_000, dt.date(2026, 10, 5))
    buy(other, 50_000, dt.date(2026, 10, 6))
    with time_machine.travel(dt.datetime(2026, 11, 1, 2, tzinfo=PARIS), tick=False):
        invoicing.run_billing(period="2026-10")
    settled()
    staff = operator()
    staff.force_login(staff.user)

    page = staff.get("/admin/")
    assert page.status_code == 200
    text = page.content.decode()
    board = text[text.index('id="dashboard"') :]
    for label in (
        "Encours total (EUR)",
        "Contrats à plus de 80 % de leur limite",
        "Prélèvements en retard (EUR)",
        "Prélèvements en échec",
        "DSO (90 jours, EUR)",
        "Dernier cycle de facturation",
        "Prochain cycle",
        "Événements à publier",
        "Lettres mortes ouvertes",
    ):
        assert label in board, label
    assert "590,00\xa0€" in board or "590,00 €" in board.replace("\u202f", " ")  # 90 + 500 owed
    assert "10/2026" in board and "le 01/12/2026 à 02h00" in board
    assert board.count("<rect") >= 12 and "Facturé et encaissé par mois (EUR)" in board
    links = set(re.findall(r'<dd class="[a-z]*"><a href="([^"]+)"', board))
    assert len(links) >= 8
    for link in links:
        assert staff.get(link.replace("&amp;", "&")).status_code == 200, link
    near_list = staff.get("/admin/billing/contractaccount/?credit=over80").content.decode()
    assert near.reference in near_list and other.reference not in near_list


def test_a_failing_figure_is_shown_unavailable_and_the_index_still_answers(monkeypatch):
    def broken():
        raise RuntimeError("the figure's table is locked")

    monkeypatch.setattr(dashboard, "_contributors", [*dashboard._contributors, broken])
    staff = operator()
    staff.force_login(staff.user)
    page = staff.get("/admin/")
    assert page.status_code == 200 and "Indisponible pour le moment" in page.content.decode()


def test_an_account_with_two_factor_authentication_needs_its_code_to_log_in():
    staff = operator()
    assert login(staff).status_code == 302  # no app yet: the password is enough
    page = staff.get("/admin/2fa/")
    assert page.status_code == 200 and "<svg" in page.content.decode()
    device = TOTPDevice.objects.get(user=staff.user, confirmed=False)
    wrong = staff.post("/admin/2fa/", {"token": "000000" if totp(device.bin_key) != 0 else "111111"})
    assert "Code incorrect" in wrong.content.decode()
    with time_machine.travel(dt.datetime(2026, 11, 20, 10, 0, 0, tzinfo=PARIS), tick=False):
        assert staff.post("/admin/2fa/", {"token": f"{totp(device.bin_key):06d}"}).status_code == 302
        assert staff.get("/admin/").status_code == 200  # this session gave the code: still in
    device.refresh_from_db()
    assert device.confirmed

    other = Client()
    other.user, other.password = staff.user, staff.password
    refused = login(other)
    assert refused.status_code == 200 and "Saisissez le code" in refused.content.decode()
    with time_machine.travel(dt.datetime(2026, 11, 20, 10, 5, 0, tzinfo=PARIS), tick=False):
        code = totp(device.bin_key)
        assert "incorrect" in login(other, f"{(code + 1) % 1_000_000:06d}").content.decode()
        assert "Trop de tentatives" in login(other, f"{code:06d}").content.decode()  # throttled a moment
    with time_machine.travel(dt.datetime(2026, 11, 20, 10, 6, 0, tzinfo=PARIS), tick=False):
        assert login(other, f"{totp(device.bin_key):06d}").status_code == 302
        assert other.get("/admin/").status_code == 200


def test_with_two_factor_required_a_staff_account_without_it_turns_it_on_first(settings):
    settings.ADMIN_REQUIRE_2FA = True
    staff = operator()
    staff.force_login(staff.user)
    answer = staff.get("/admin/contracts/contract/")
    assert answer.status_code == 302 and answer["Location"] == "/admin/2fa/"
    assert staff.get("/admin/2fa/").status_code == 200


def test_detail_pages_show_amounts_in_their_currency_and_json_as_lists_and_tables():
    contract = factories.contract(credit_limit=1_000_000)
    settled()
    buy(contract, 106_999, dt.date(2026, 10, 5))
    with time_machine.travel(dt.datetime(2026, 11, 1, 2, tzinfo=PARIS), tick=False):
        invoicing.run_billing(period="2026-10")
    settled()
    from invoicing.models import Invoice

    invoice = Invoice.objects.get(contract_id=contract.pk)
    staff = operator()
    staff.force_login(staff.user)
    page = staff.get(f"/admin/invoicing/invoice/{invoice.pk}/change/").content.decode().replace("\u202f", " ")
    assert "1 069,99" in page and ">106999<" not in page
    assert "<dt>legal_name</dt>" in page and "<th>rate</th>" in page and "postcode: 75002" in page
    assert '{"legal_name"' not in page
    contract_page = staff.get(f"/admin/contracts/contract/{contract.pk}/change/").content.decode()
    assert "10 000,00" in contract_page.replace("\u202f", " ")


def test_the_back_office_speaks_french_by_default_english_on_request_and_the_api_english_always(client):
    staff = operator()
    staff.force_login(staff.user)
    assert '<html lang="fr"' in staff.get("/admin/").content.decode()
    assert '<html lang="en"' in staff.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    staff.post("/i18n/setlang/", {"language": "en", "next": "/admin/"})
    assert '<html lang="en"' in staff.get("/admin/").content.decode()
    problem = client.get("/api/v1/contracts", HTTP_ACCEPT_LANGUAGE="fr")
    assert problem.status_code == 401 and "An API key is required" in problem.json()["detail"]
    assert "Content-Language" not in problem
