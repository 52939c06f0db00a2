"""Money in minor units, shown in major units for people (admin, documents)."""

from decimal import Decimal

from babel.numbers import format_currency, get_currency_precision


def to_major(amount: int, currency: str) -> Decimal:
    """`amount` minor units as a Decimal of major units (JPY has none, EUR has two)."""
    return Decimal(amount).scaleb(-get_currency_precision(currency))


def format_money(amount: int | None, currency: str, locale: str = "fr_FR") -> str:
    """e.g. format_money(123456, "EUR") == "1 234,56 €" (French formatting by default)."""
    if amount is None:
        return "—"
    return format_currency(to_major(amount, currency), currency, locale=locale)


def to_minor(amount: Decimal, currency: str) -> int:
    """`amount` major units as minor units; ValueError when it has more decimals than the
    currency (12.345 EUR), never rounded."""
    minor = amount.scaleb(get_currency_precision(currency))
    if minor != minor.to_integral_value():
        raise ValueError(f"{amount} {currency} has more decimals than the currency")
    return int(minor)
