"""Factories for the tests: they build through the services, as the product does."""

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


def mandate_details(**overrides) -> services.MandateDetails:
    fields = {"reference": f"UMR-{next(_counter):06d}", "iban": IBAN, "bic": BIC, "signed_on": dt.date(2026, 1, 2)}
    fields.update(overrides)
    return services.MandateDetails(**fields)


def contract(*, customer_obj=None, mandate=None, **overrides):
    fields = {
        "reference": f"CTR-{next(_counter):06d}",
        "credit_limit": 1_000_000,
        "starts_on": dt.date(2026, 1, 1),
        "ends_on": dt.date(2027, 12, 31),
        "currency": "EUR",
        "payment_terms_days": 30,
    }
    fields.update(overrides)
    owner = customer_obj or customer()
    return services.subscribe_contract(customer_id=owner.pk, mandate=mandate or mandate_details(), **fields)


def api_key(*scopes: str, customer_id=None, name="test client"):
    return platform.issue_api_key(name=name, scopes=list(scopes), customer_id=customer_id)
