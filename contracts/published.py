"""What the contracts context lends other contexts synchronously: plain functions and
dataclasses only (ARCHITECTURE "Boundaries between contexts"). Everything else they
learn from contract events.

The unmasked IBAN never travels in events; the payments context asks for it here, at
the moment it hands a direct debit to a gateway."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from contracts.models import Mandate, MandateStatus


@dataclass(frozen=True)
class DebtorAccount:
    """The debtor side of a SEPA direct debit."""

    contract_id: uuid.UUID
    debtor_name: str
    mandate_reference: str
    mandate_signed_on: dt.date
    iban: str
    bic: str


def current_debtor_account(contract_id: uuid.UUID | str) -> DebtorAccount | None:
    """The contract's current, active mandate with its IBAN; None when it has none."""
    mandate = (
        Mandate.objects.select_related("contract__customer")
        .filter(contract_id=contract_id, is_current=True, status=MandateStatus.ACTIVE)
        .first()
    )
    if mandate is None:
        return None
    return DebtorAccount(
        contract_id=mandate.contract_id,
        debtor_name=mandate.contract.customer.legal_name,
        mandate_reference=mandate.reference,
        mandate_signed_on=mandate.signed_on,
        iban=mandate.iban,
        bic=mandate.bic,
    )


def customer_exists(customer_id: uuid.UUID | str) -> bool:
    """Whether a customer with this id is known (a key restricted to it may be issued)."""
    from contracts.models import Customer

    try:
        return Customer.objects.filter(pk=customer_id).exists()
    except (ValueError, TypeError, ValidationError):  # not a UUID
        return False


@dataclass(frozen=True)
class BillingContact:
    """Whom the agency writes to about a contract's invoices and debits."""

    customer_name: str
    email: str


def billing_contact(contract_id: uuid.UUID | str) -> BillingContact | None:
    """The contract's customer and billing e-mail address; None for an unknown contract."""
    from contracts.models import Contract

    contract = Contract.objects.select_related("customer").filter(pk=contract_id).first()
    if contract is None:
        return None
    return BillingContact(customer_name=contract.customer.legal_name, email=contract.customer.billing_email)
