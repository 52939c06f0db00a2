"""Validation and normalisation of identifiers, by well-kept libraries: schwifty (IBAN,
BIC), python-stdnum (SIREN, EU VAT numbers), pycountry (ISO 4217, ISO 3166)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pycountry
from django.core.exceptions import ValidationError
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from stdnum import exceptions as stdnum_exceptions
from stdnum.eu import vat
from stdnum.fr import siren


def normalise_iban(value: str) -> str:
    try:
        return IBAN(value).compact
    except (SchwiftyException, ValueError, TypeError) as exc:
        raise ValidationError(f"Not a valid IBAN: {exc}", code="invalid_iban") from None


def normalise_bic(value: str) -> str:
    if not value:
        return ""
    try:
        return BIC(value).compact
    except (SchwiftyException, ValueError, TypeError) as exc:
        raise ValidationError(f"Not a valid BIC: {exc}", code="invalid_bic") from None


def normalise_siren(value: str) -> str:
    try:
        return siren.validate(value)
    except stdnum_exceptions.ValidationError as exc:
        raise ValidationError(f"Not a valid SIREN: {exc}", code="invalid_siren") from None


def normalise_vat_number(value: str) -> str:
    if not value:
        return ""
    try:
        return vat.validate(value)
    except stdnum_exceptions.ValidationError as exc:
        raise ValidationError(f"Not a valid intra-EU VAT number: {exc}", code="invalid_vat_number") from None


# ISO 4217 codes that are not money a contract can be in: precious metals, fund and
# accounting units, the testing and "no currency" codes.
NOT_CURRENCIES = frozenset(
    {
        "XAU",
        "XAG",
        "XPT",
        "XPD",
        "XBA",
        "XBB",
        "XBC",
        "XBD",
        "XDR",
        "XSU",
        "XUA",
        "XTS",
        "XXX",
        "BOV",
        "CHE",
        "CHW",
        "CLF",
        "COU",
        "MXV",
        "USN",
        "UYI",
        "UYW",
    }
)


def validate_currency(value: str) -> None:
    """An upper-case ISO 4217 code of a real currency (`EUR`; not `eur`, `XAU`, `XTS`)."""
    if (
        not isinstance(value, str)
        or len(value) != 3
        or not value.isascii()
        or not value.isupper()
        or value in NOT_CURRENCIES
        or pycountry.currencies.get(alpha_3=value) is None
    ):
        raise ValidationError(
            f"{value!r} is not the upper-case ISO 4217 code of a currency (EUR, CHF, ...).", code="invalid_currency"
        )


def validate_country(value: str) -> None:
    if not isinstance(value, str) or len(value) != 2 or pycountry.countries.get(alpha_2=value) is None:
        raise ValidationError(f"{value!r} is not an ISO 3166-1 alpha-2 country code.", code="invalid_country")


def validate_iban(value: str) -> None:
    normalise_iban(value)


def validate_bic(value: str) -> None:
    normalise_bic(value)


def validate_siren(value: str) -> None:
    normalise_siren(value)


def validate_vat_number(value: str) -> None:
    normalise_vat_number(value)


def normalised(field: str, normalise, value: str) -> str:
    """`normalise(value)`, its ValidationError attached to `field`."""
    try:
        return normalise(value)
    except ValidationError as exc:
        raise ValidationError({field: exc.error_list}) from None


def nested_under(prefix: str, error: ValidationError) -> ValidationError:
    """`error` with its fields named by their full path (`mandate.iban`), as the API's
    nested input errors are."""
    if not hasattr(error, "error_dict"):
        return ValidationError({prefix: error.error_list})
    return ValidationError(
        {f"{prefix}.{field}" if field != "__all__" else prefix: errors for field, errors in error.error_dict.items()}
    )


# --- postal addresses ------------------------------------------------------------------

_POSTCODE_CITY = re.compile(r"^(?P<postcode>[0-9A-Z][0-9A-Z -]{1,9}[0-9A-Z])\s+(?P<city>\S.*)$")
_FRENCH_POSTCODE = re.compile(r"^[0-9]{5}$")


@dataclass(frozen=True)
class Address:
    """A billing address: street lines (1 to 3), postcode and city; the country is the
    customer's."""

    lines: tuple[str, ...]
    postcode: str
    city: str

    @classmethod
    def of(cls, lines, postcode: str, city: str) -> Address:
        if isinstance(lines, str):
            lines = lines.splitlines()
        return cls(tuple(line.strip() for line in lines if line.strip()), postcode.strip().upper(), city.strip())

    def validate(self, country: str) -> None:
        """Raises ValidationError naming `address.<field>`."""
        errors = {}
        if not 1 <= len(self.lines) <= 3 or any(len(line) > 100 for line in self.lines):
            errors["address.lines"] = "One to three street lines of at most 100 characters."
        if not self.postcode:
            errors["address.postcode"] = "The postcode is required."
        elif country == "FR" and not _FRENCH_POSTCODE.match(self.postcode):
            errors["address.postcode"] = "A French postcode is five digits."
        elif len(self.postcode) > 16:
            errors["address.postcode"] = "At most 16 characters."
        if not self.city or len(self.city) > 100:
            errors["address.city"] = "The city is required (at most 100 characters)."
        if errors:
            raise ValidationError(errors)

    @property
    def printed(self) -> str:
        return "\n".join([*self.lines, f"{self.postcode} {self.city}"])

    @classmethod
    def parse(cls, text: str) -> Address:
        """The address a client gave as one text (the API's `billing_address`): its last
        line must be the postcode then the city ("75008 Paris"). Raises ValidationError."""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        match = _POSTCODE_CITY.match(lines[-1]) if len(lines) >= 2 else None
        if match is None:
            raise ValidationError(
                {"billing_address": "Give the street lines, then the postcode and the city on the last line."}
            )
        return cls.of(lines[:-1], match["postcode"], match["city"])
