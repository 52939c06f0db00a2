"""Payment gateways behind one interface, chosen by `settings.PAYMENTS_GATEWAY`.

A gateway takes the day's debits and says, for each, whether it took it (with its own
reference); the outcome comes later (a signed webhook, or an imported status file)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings


@dataclass(frozen=True)
class Debit:
    payment_id: str
    end_to_end_id: str  # unique per attempt (payment id + attempt number), at most 35 characters
    amount: int  # minor units
    currency: str
    collection_date: dt.date
    debtor_name: str
    iban: str
    bic: str
    mandate_reference: str
    mandate_signed_on: dt.date
    sequence_type: str  # FRST | RCUR
    remittance_information: str  # e.g. the invoice number


@dataclass(frozen=True)
class Submission:
    payment_id: str
    accepted: bool
    provider_reference: str = ""
    error: str = ""


class Gateway(Protocol):
    name: str
    # TARGET business days the gateway needs a debit ahead of its collection date.
    lead_business_days: int

    def submit(self, debits: list[Debit]) -> list[Submission]:
        """Hand the debits over. Never raises for one debit: refusals come back as
        Submission(accepted=False, error=...)."""


def gateway_named(name: str | None = None) -> Gateway:
    name = name or settings.PAYMENTS_GATEWAY
    if name == "emulator":
        from payments.gateways.emulator import EmulatorGateway

        return EmulatorGateway()
    if name == "sepa_file":
        from payments.gateways.sepa_file import SepaFileGateway

        return SepaFileGateway()
    raise ValueError(f"Unknown payments gateway {name!r} (emulator or sepa_file).")
