"""Factories for the tests: they build through the services, as the product does."""

import contextlib
import datetime as dt
import itertools

from boissipay import services as platform
from contracts import services

_counter = itertools.count(1)

# Valid identifiers (checked by schwifty / python-stdnum).
SIRENS = ["732829320", "552100554", "542051180", "652014051", "775670417", "443061841", "383474814", "428268023"]
IBAN = "FR1420041010050500013M02606"
OTHER_IBAN = "DE89370400440532013000"
BIC = "PSSTFRPPPAR"


def siren_number() -> str:
    """A valid SIREN, different on each call (Luhn check digit computed)."""
    n = next(_counter)
    body = f"{n:08d}"
    for check in range(10):
        candidate = body + str(check)
        total = 0
        for i, digit in enumerate(reversed(candidate)):
            d = int(digit) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


def customer(**overrides):
    fields = {
        "legal_name": f"CSE Acme {next(_counter)}",
        "siren": siren_number(),
        "billing_email": "billing@acme.example",
        "billing_address": "1 rue de la Paix\n75002 Paris",
        "country": "FR",
    }
    fields.update(overrides)
    return services.register_customer(**fields)


def today() -> dt.date:
    """The business date of now, frozen or not: every default date below derives from it."""
    from boissipay.clock import business_today

    return business_today()


def years_from(day: dt.date, years: int) -> dt.date:
    """The same day `years` later (or earlier); 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def mandate_details(**overrides) -> services.MandateDetails:
    signed_on = years_from(today(), -1)
    fields = {"reference": f"UMR-{next(_counter):06d}", "iban": IBAN, "bic": BIC, "signed_on": signed_on}
    fields.update(overrides)
    return services.MandateDetails(**fields)


def contract(*, customer_obj=None, mandate=None, **overrides):
    """A contract valid from a year before today to two years after it, with its mandate."""
    fields = {
        "reference": f"CTR-{next(_counter):06d}",
        "credit_limit": 1_000_000,
        "starts_on": years_from(today(), -1),
        "ends_on": years_from(today(), 2),
        "currency": "EUR",
        "payment_terms_days": 30,
    }
    fields.update(overrides)
    owner = customer_obj or customer()
    return services.subscribe_contract(customer_id=owner.pk, mandate=mandate or mandate_details(), **fields)


def api_key(*scopes: str, customer_id=None, name="test client"):
    return platform.issue_api_key(name=name, scopes=list(scopes), customer_id=customer_id)


# --- billing ------------------------------------------------------------------------------


@contextlib.contextmanager
def delivered():
    """Once the block is done, run what follows its commit, as in a deployment: its
    after-commit callbacks (the `db` fixture's transaction never commits), then the event
    dispatcher until no event is due, and the callbacks of what that did, and so on."""
    from django.test import TestCase

    from boissipay.dispatcher import EventDispatcher

    with TestCase.captureOnCommitCallbacks(execute=True):
        yield
    for _ in range(20):
        with TestCase.captureOnCommitCallbacks(execute=True) as callbacks:
            dispatched = EventDispatcher().drain().dispatched
        if not dispatched and not callbacks:
            return
    raise AssertionError("events kept coming after 20 rounds of dispatching")


def settled() -> None:
    """Wait until every event due so far has reached its in-process handlers: dispatch
    them here, or, while a dispatcher runs beside the test, until it has."""
    from boissipay.dispatcher import EventDispatcher

    EventDispatcher().drain()


def billed_contract(**overrides):
    """A contract whose subscription billing has applied (through the in-process bus)."""
    with delivered():
        return contract(**overrides)


def item(unit_amount: int, *, quantity: int = 1, vat_rate: str = "0", label: str = "Paris → Lyon, 2nd class"):
    from decimal import Decimal

    from billing.services import Item

    return Item(label=label, quantity=quantity, unit_amount=unit_amount, vat_rate=Decimal(vat_rate))


def operation_request(contract_id, *items, type="purchase", **overrides):
    from billing.services import OperationRequest, Order

    fields = {
        "contract_id": contract_id,
        "type": type,
        "external_ref": f"BKG-{next(_counter):08d}",
        "currency": "EUR",
        "orders": (Order(reference=f"ORD-{next(_counter):06d}", items=tuple(items) or (item(10_000),)),),
    }
    fields.update(overrides)
    return OperationRequest(**fields)


def purchase(contract_id, amount: int = 10_000, **overrides):
    """Submit a purchase of `amount` (no VAT, so the amount is exact) through the service."""
    from django.db import transaction

    from billing.services import submit_operation

    # A savepoint of the test's own: the service has none (inside the API's transaction
    # its error rolls everything back), and a test goes on after a refused purchase.
    with delivered(), transaction.atomic():
        return submit_operation(request=operation_request(contract_id, item(amount), **overrides))


def purchase_without_dispatch(contract_id, amount: int = 10_000, **overrides):
    """`purchase`, leaving its event for the dispatcher (tests of the dispatcher itself)."""
    from django.db import transaction

    from billing.services import submit_operation

    with transaction.atomic():
        return submit_operation(request=operation_request(contract_id, item(amount), **overrides))


def refund(contract_id, purchase_id, amount: int, **overrides):
    from django.db import transaction

    from billing.services import submit_operation

    request = operation_request(contract_id, item(amount), type="refund", refund_of=purchase_id, **overrides)
    with delivered(), transaction.atomic():
        return submit_operation(request=request)


def buy(contract, amount: int, day: dt.date | None = None):
    """A purchase of `amount` decided on `day` at noon Paris (today when None), with every
    context fed before it returns."""
    import time_machine

    from billing.services import submit_operation
    from boissipay.clock import PARIS

    request = operation_request(contract.pk, item(amount))
    if day is None:
        operation = submit_operation(request=request)
    else:
        with time_machine.travel(dt.datetime(day.year, day.month, day.day, 12, tzinfo=PARIS), tick=False):
            operation = submit_operation(request=request)
    settled()
    return operation
