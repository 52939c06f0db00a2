"""Every screen of the back office in a real browser (issue 17): Debian's Chromium, headless,
driven by Playwright, against the live server. Staff log in through the login page, open
the dashboard, every list and a record of each, and run an action from a contract's page.
Any server error or broken link fails the test; the key lists fit in 1,400 px. Each page
is kept as a screenshot under .local/screenshots/ (the run's artefacts)."""

import contextlib
import datetime as dt
import re
import shutil
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from django.contrib import admin
from django.contrib.auth.models import User

from tests.accounting.test_ledger_and_fec import quarter
from tests.clock import freeze_module_at
from tests.payments.conftest import bank  # noqa: F401 (the bank's files, for the collections)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parent.parent / ".local" / "screenshots"
WIDTH = 1400
# The links checked: into the pages Boissipay wrote (the contexts', the kernel's, the index).
OURS = (
    *(f"/admin/{app}/" for app in ("boissipay", "contracts", "billing", "invoicing", "payments", "accounting")),
    "/admin/2fa/",
)
PASSWORD = "Un mot de passe long 2026"
# The lists whose key columns must show without scrolling sideways.
KEY_LISTS = (
    "invoicing/invoice",
    "payments/payment",
    "billing/contractaccount",
    "contracts/contract",
    "billing/operation",
)
_today = freeze_module_at(dt.date(2026, 12, 16))
pytestmark = pytest.mark.django_db(transaction=True)


@contextlib.contextmanager
def chromium():
    """Playwright's Chromium (Debian's). Its sync API runs an event loop in this thread:
    the test makes its records before, since Django refuses the ORM inside a loop."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: `make install` installs it"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


def shot(page, name: str, full_page: bool = False) -> None:
    """The screen as staff see it at 1,400 x 900 (the whole page for the dashboard)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{re.sub(r'[^a-z0-9_-]+', '_', name.lower())}.png"), full_page=full_page)


def test_staff_open_every_screen_and_act_in_a_real_browser_without_an_error_or_a_broken_link(
    bank,  # noqa: F811
    live_server,
):
    contract, _, _, _ = quarter(bank)
    User.objects.create_superuser("direction.financiere", password=PASSWORD)
    models = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)
    with chromium() as browser:
        browse_everything(browser, live_server.url, models, contract.pk)


def browse_everything(browser, base: str, models, contract_id) -> None:
    page = browser.new_page(viewport={"width": WIDTH, "height": 900}, locale="fr-FR")
    failures: list[str] = []
    page.on("response", lambda r: failures.append(f"{r.status} {r.url}") if r.status >= 500 else None)

    page.goto(f"{base}/admin/")
    page.fill("#id_username", "direction.financiere")
    page.fill("#id_password", PASSWORD)
    page.click("#login-form [type=submit]")
    page.wait_for_selector("#dashboard")
    assert page.locator("html").get_attribute("lang") == "fr"
    shot(page, "00_dashboard", full_page=True)

    seen: set[str] = set()
    checked: set[str] = set()
    patterns: set[tuple] = set()

    def pattern(target: str) -> tuple:
        """Links that differ only by a record's id or a filter's value lead to the same
        view: one of each is checked."""
        parts = urlsplit(target)
        path = re.sub(r"/[0-9a-f-]{8,}/|/[0-9]+/", "/<id>/", parts.path)
        return path, tuple(sorted(key.split("=")[0] for key in parts.query.split("&") if key))

    def visit(url: str, name: str) -> None:
        answer = page.goto(url)
        assert answer is not None and answer.status == 200, f"{answer and answer.status} {url}"
        seen.add(urlsplit(url).path)
        shot(page, name)
        for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))"):
            target = urljoin(url, href)
            parts = urlsplit(target)
            if not parts.path.startswith(OURS) or parts.netloc != urlsplit(base).netloc:
                continue  # Django's and the libraries' own pages (users, Beat, axes) are theirs to link
            if "/logout/" in parts.path or "/delete/" in parts.path or pattern(target) in patterns:
                continue
            patterns.add(pattern(target))
            checked.add(target)
            status = page.request.get(target, max_redirects=5).status
            if status >= 400:
                failures.append(f"{status} {target} (linked from {url})")

    for model, _ in models:
        opts = model._meta
        listing = f"{base}/admin/{opts.app_label}/{opts.model_name}/"
        visit(listing, f"{opts.app_label}_{opts.model_name}_list")
        if f"{opts.app_label}/{opts.model_name}" in KEY_LISTS:
            width = page.evaluate(
                "() => { const t = document.querySelector('#result_list');"
                " return t ? t.getBoundingClientRect().right : 0; }"
            )
            assert width <= WIDTH, f"{opts.label}: the list is {width:.0f} px wide"
        first = page.locator("#result_list tbody tr th a, #result_list tbody tr td.field-__str__ a").first
        if first.count():
            visit(urljoin(listing, first.get_attribute("href")), f"{opts.app_label}_{opts.model_name}_detail")
            history = f"{page.url.rstrip('/').rsplit('/change', 1)[0]}/history/"
            if opts.label in ("contracts.Contract", "contracts.Customer", "invoicing.Invoice"):
                visit(history, f"{opts.app_label}_{opts.model_name}_history")

    # One action, as staff do it: suspend a contract from its page, with a reason.
    page.goto(f"{base}/admin/contracts/contract/{contract_id}/change/")
    page.click(".object-actions")
    page.click("text=Suspendre")
    page.fill("#id_reason", "Relance sans réponse")
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r"/change/$"))
    assert "fait" in page.inner_text("#main")
    shot(page, "zz_contract_suspended")
    page.goto(f"{base}/admin/contracts/contract/{contract_id}/history/")
    assert "Relance sans réponse" in page.inner_text("#audit-trail")
    shot(page, "zz_contract_history")

    assert not failures, "\n".join(failures)
    assert len(seen) >= 2 * 20 and len(checked) >= 60
