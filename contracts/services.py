"""Commands of the contracts context: the only code that changes its tables.

Each service is one transaction, locks the contract row it changes, validates with
`full_clean()`, bumps the contract's version and records exactly one domain event
carrying the contract's new state. Illegal transitions raise `DomainError` (409)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from boissipay.actor import gives_reason
from boissipay.errors import DomainError, NotFound
from boissipay.outbox import record
from contracts import events
from contracts.errors import ContractErrorCode as Code
from contracts.models import (
    Contract,
    ContractStatus,
    Customer,
    Mandate,
    MandateStatus,
    Subscriber,
)
from contracts.validators import (
    Address,
    nested_under,
    normalise_bic,
    normalise_iban,
    normalise_siren,
    normalise_vat_number,
    normalised,
)

UNSET = object()


@dataclass(frozen=True, kw_only=True)
class MandateDetails:
    reference: str
    iban: str
    bic: str = ""
    signed_on: dt.date
    expires_on: dt.date | None = None
    signed_document: bytes | None = None  # the signed mandate, a PDF (kept with it)


MAX_MANDATE_PDF_BYTES = 5 * 1024 * 1024


# --- state carried by events --------------------------------------------------------


def customer_state(customer: Customer) -> events.CustomerState:
    return {
        "customer_id": str(customer.id),
        "legal_name": customer.legal_name,
        "siren": customer.siren,
        "vat_number": customer.vat_number,
        "billing_email": customer.billing_email,
        "billing_address": customer.billing_address,
        "address": {
            "lines": customer.address_lines.splitlines(),
            "postcode": customer.postcode,
            "city": customer.city,
        },
        "country": customer.country,
    }


def contract_state(contract: Contract) -> events.ContractState:
    mandate = contract.mandates.filter(is_current=True).first()
    subscribers = contract.subscribers.filter(removed_at__isnull=True).order_by("external_ref")
    return {
        "contract_id": str(contract.id),
        "reference": contract.reference,
        "customer": customer_state(contract.customer),
        "currency": contract.currency,
        "credit_limit": contract.credit_limit,
        "starts_on": contract.starts_on.isoformat(),
        "ends_on": contract.ends_on.isoformat() if contract.ends_on else None,
        "payment_terms_days": contract.payment_terms_days,
        "vat_scheme": contract.vat_scheme,
        "status": contract.status,
        "status_reason": contract.status_reason,
        "mandate": None
        if mandate is None
        else {
            "mandate_id": str(mandate.id),
            "reference": mandate.reference,
            "iban_masked": mandate.masked_iban,
            "bic": mandate.bic,
            "signed_on": mandate.signed_on.isoformat(),
            "expires_on": mandate.expires_on.isoformat() if mandate.expires_on else None,
            "status": mandate.status,
        },
        "subscribers": [subscriber_state(s) for s in subscribers],
        "version": contract.version,
    }


# --- helpers --------------------------------------------------------------------------


def _locked_contract(contract_id: uuid.UUID | str) -> Contract:
    """The contract row, locked for the rest of the transaction."""
    try:
        return Contract.objects.select_for_update(of=("self",)).select_related("customer").get(pk=contract_id)
    except (Contract.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such contract.", Code.CONTRACT_UNKNOWN) from None


def _refuse_if_cancelled(contract: Contract, action: str) -> None:
    if contract.status == ContractStatus.CANCELLED:
        raise DomainError(Code.CONTRACT_CANCELLED, f"Contract {contract.reference} is cancelled: cannot {action}.")


def _save_and_publish(contract: Contract, event_class: type[events.ContractEvent], **fields) -> Contract:
    contract.version += 1
    contract.full_clean()
    contract.save()
    record(event_class(contract_id=contract.id, contract=contract_state(contract), **fields))
    return contract


def _new_mandate(contract: Contract, details: MandateDetails) -> Mandate:
    reference = details.reference.strip()
    if Mandate.objects.filter(reference=reference).exists():
        raise DomainError(Code.MANDATE_REFERENCE_TAKEN, f"Mandate reference {reference} is already used.")
    mandate = Mandate(
        contract=contract,
        reference=reference,
        iban=normalised("iban", normalise_iban, details.iban),
        bic=normalised("bic", normalise_bic, details.bic),
        signed_on=details.signed_on,
        expires_on=details.expires_on,
        status=MandateStatus.ACTIVE,
        is_current=True,
    )
    mandate.full_clean(exclude=["contract", "signed_document"])
    if details.signed_document is not None:
        document = details.signed_document
        if not document.startswith(b"%PDF-") or len(document) > MAX_MANDATE_PDF_BYTES:
            raise ValidationError({"signed_document": "The signed mandate is a PDF of at most 5 MB."})
        from django.core.files.base import ContentFile

        mandate.signed_document.save(f"{reference}.pdf", ContentFile(document), save=False)
    mandate.save()
    return mandate


# --- customers ------------------------------------------------------------------------


@transaction.atomic
def register_customer(
    *,
    legal_name: str,
    siren: str,
    billing_email: str,
    billing_address: str = "",
    address: Address | None = None,
    vat_number: str = "",
    country: str = "FR",
) -> Customer:
    """Create a corporate customer, with its structured `address` (or a `billing_address`
    text whose last line is the postcode and the city). Raises ValidationError on a bad
    SIREN / VAT number / country / address, DomainError `customer_already_exists` when the
    SIREN is known."""
    siren = normalised("siren", normalise_siren, siren)
    if Customer.objects.filter(siren=siren).exists():
        raise DomainError(Code.CUSTOMER_ALREADY_EXISTS, f"A customer with SIREN {siren} already exists.")
    address = address or Address.parse(billing_address)
    address.validate(country)
    customer = Customer(
        legal_name=legal_name.strip(),
        siren=siren,
        vat_number=normalised("vat_number", normalise_vat_number, vat_number),
        billing_email=billing_email,
        country=country,
    )
    _set_address(customer, address)
    customer.full_clean()
    customer.save()
    customer.refresh_from_db(fields=["created_at"])
    record(events.CustomerRegistered(customer=customer_state(customer)))
    return customer


def _set_address(customer: Customer, address: Address) -> None:
    customer.address_lines = "\n".join(address.lines)
    customer.postcode = address.postcode
    customer.city = address.city
    customer.billing_address = address.printed


@gives_reason
@transaction.atomic
def correct_customer(
    *,
    customer_id: uuid.UUID | str,
    reason: str,
    legal_name: str | object = UNSET,
    billing_email: str | object = UNSET,
    address: Address | object = UNSET,
) -> Customer:
    """Correct a customer's legal name, billing e-mail and/or address. The SIREN never
    changes (another SIREN is another customer). Records `contracts.customer.corrected`,
    and amends each of its contracts that is not cancelled (their state carries the
    customer: billing and invoicing take the new buyer for the next invoices; an issued
    invoice keeps the buyer it was issued to). Raises NotFound, ValidationError."""
    try:
        customer = Customer.objects.select_for_update().get(pk=customer_id)
    except (Customer.DoesNotExist, ValueError, ValidationError):
        raise NotFound("No such customer.", Code.CUSTOMER_UNKNOWN) from None
    before = customer_state(customer)
    if legal_name is not UNSET:
        customer.legal_name = str(legal_name).strip()
    if billing_email is not UNSET:
        customer.billing_email = str(billing_email).strip()
    if address is not UNSET:
        assert isinstance(address, Address)
        address.validate(customer.country)
        _set_address(customer, address)
    after_fields = customer_state(customer)
    changes = {
        field: {"from": before[field], "to": after_fields[field]}
        for field in ("legal_name", "billing_email", "billing_address", "address")
        if before[field] != after_fields[field]
    }
    if not changes:
        return customer
    customer.full_clean()
    customer.save()
    state = customer_state(customer)
    record(events.CustomerCorrected(customer=state, changes=changes, reason=reason.strip()))
    contracts = Contract.objects.select_for_update().filter(customer=customer).exclude(status=ContractStatus.CANCELLED)
    for contract in contracts.order_by("pk"):
        contract.customer = customer
        _save_and_publish(contract, events.ContractAmended, changes={"customer": {"from": before, "to": state}})
    return customer


# --- contracts ------------------------------------------------------------------------


@transaction.atomic
def subscribe_contract(
    *,
    customer_id: uuid.UUID | str,
    reference: str,
    credit_limit: int,
    starts_on: dt.date,
    mandate: MandateDetails,
    ends_on: dt.date | None = None,
    currency: str = "EUR",
    payment_terms_days: int = 30,
    vat_scheme: str = "standard",
) -> Contract:
    """Sign a deferred-payment contract with its first direct-debit mandate."""
    try:
        customer = Customer.objects.get(pk=customer_id)
    except (Customer.DoesNotExist, ValueError):
        raise NotFound("No such customer.", Code.CUSTOMER_UNKNOWN) from None
    reference = reference.strip()
    if Contract.objects.filter(reference=reference).exists():
        raise DomainError(Code.CONTRACT_REFERENCE_TAKEN, f"Contract reference {reference} is already used.")
    contract = Contract(
        customer=customer,
        reference=reference,
        currency=currency,
        credit_limit=credit_limit,
        starts_on=starts_on,
        ends_on=ends_on,
        payment_terms_days=payment_terms_days,
        vat_scheme=vat_scheme,
        status=ContractStatus.ACTIVE,
        version=1,
    )
    contract.full_clean()
    contract.save()
    try:
        _new_mandate(contract, mandate)
    except ValidationError as exc:
        raise nested_under("mandate", exc) from None
    record(events.ContractSubscribed(contract_id=contract.id, contract=contract_state(contract)))
    return contract


@gives_reason
@transaction.atomic
def amend_contract(
    *,
    contract_id: uuid.UUID | str,
    credit_limit: int | object = UNSET,
    ends_on: dt.date | object | None = UNSET,
    vat_scheme: str | object = UNSET,
    reason: str = "",
) -> Contract:
    """Change the credit limit, the end date and/or the VAT scheme of its next invoices.
    Refused on a cancelled contract."""
    contract = _locked_contract(contract_id)
    _refuse_if_cancelled(contract, "amend it")
    changes: dict[str, dict] = {}
    for field, value in (("credit_limit", credit_limit), ("ends_on", ends_on), ("vat_scheme", vat_scheme)):
        if value is not UNSET and getattr(contract, field) != value:
            old = getattr(contract, field)
            changes[field] = {
                "from": old.isoformat() if isinstance(old, dt.date) else old,
                "to": value.isoformat() if isinstance(value, dt.date) else value,
            }
            setattr(contract, field, value)
    if not changes:
        return contract
    return _save_and_publish(contract, events.ContractAmended, changes=changes)


@gives_reason
@transaction.atomic
def suspend_contract(*, contract_id: uuid.UUID | str, reason: str) -> Contract:
    """Stop accepting purchases under the contract until it is reactivated."""
    contract = _locked_contract(contract_id)
    _refuse_if_cancelled(contract, "suspend it")
    if contract.status == ContractStatus.SUSPENDED:
        raise DomainError(Code.CONTRACT_ALREADY_SUSPENDED, f"Contract {contract.reference} is already suspended.")
    contract.status = ContractStatus.SUSPENDED
    contract.status_reason = reason.strip()
    return _save_and_publish(contract, events.ContractSuspended, reason=contract.status_reason)


@transaction.atomic
def reactivate_contract(*, contract_id: uuid.UUID | str) -> Contract:
    """Bring a suspended contract back to active. A cancelled contract never comes back."""
    contract = _locked_contract(contract_id)
    _refuse_if_cancelled(contract, "reactivate it")
    if contract.status != ContractStatus.SUSPENDED:
        raise DomainError(Code.CONTRACT_NOT_SUSPENDED, f"Contract {contract.reference} is not suspended.")
    contract.status = ContractStatus.ACTIVE
    contract.status_reason = ""
    return _save_and_publish(contract, events.ContractReactivated)


@gives_reason
@transaction.atomic
def cancel_contract(*, contract_id: uuid.UUID | str, reason: str) -> Contract:
    """End the contract for good."""
    contract = _locked_contract(contract_id)
    _refuse_if_cancelled(contract, "cancel it again")
    contract.status = ContractStatus.CANCELLED
    contract.status_reason = reason.strip()
    return _save_and_publish(contract, events.ContractCancelled, reason=contract.status_reason)


# --- mandates -------------------------------------------------------------------------


@gives_reason
@transaction.atomic
def renew_mandate(*, contract_id: uuid.UUID | str, mandate: MandateDetails, reason: str = "") -> Contract:
    """Replace the contract's current mandate (if any) by a new active one."""
    contract = _locked_contract(contract_id)
    _refuse_if_cancelled(contract, "renew its mandate")
    previous = contract.mandates.filter(is_current=True).first()
    if previous is not None:
        previous.is_current = False
        previous.save(update_fields=["is_current"])
    _new_mandate(contract, mandate)
    return _save_and_publish(
        contract, events.MandateRenewed, previous_mandate_reference=previous.reference if previous else None
    )


@gives_reason
@transaction.atomic
def revoke_mandate(*, contract_id: uuid.UUID | str, reason: str = "") -> Contract:
    """Revoke the current mandate: no direct debit, hence no purchase, until renewed."""
    contract = _locked_contract(contract_id)
    mandate = contract.mandates.filter(is_current=True).first()
    if mandate is None or mandate.status != MandateStatus.ACTIVE:
        raise DomainError(Code.MANDATE_NOT_ACTIVE, f"Contract {contract.reference} has no active mandate.")
    mandate.status = MandateStatus.REVOKED
    mandate.revoked_at = timezone.now()
    mandate.revocation_reason = reason.strip()
    mandate.save(update_fields=["status", "revoked_at", "revocation_reason"])
    return _save_and_publish(contract, events.MandateRevoked, mandate_reference=mandate.reference, reason=reason)


# --- subscribers ----------------------------------------------------------------------


def subscriber_state(subscriber: Subscriber) -> events.SubscriberState:
    return {
        "external_ref": subscriber.external_ref,
        "display_name": subscriber.display_name,
        "monthly_cap": subscriber.monthly_cap,
    }


@transaction.atomic
def register_subscriber(
    *, contract_id: uuid.UUID | str, external_ref: str, display_name: str, monthly_cap: int | None = None
) -> Subscriber:
    """Allow a person or entity of the customer to buy under the contract, within
    `monthly_cap` a month (Europe/Paris) when given."""
    contract = _locked_contract(contract_id)
    _refuse_if_cancelled(contract, "register a subscriber")
    external_ref = external_ref.strip()
    if contract.subscribers.filter(external_ref=external_ref, removed_at__isnull=True).exists():
        raise DomainError(Code.SUBSCRIBER_ALREADY_REGISTERED, f"Subscriber {external_ref} is already registered.")
    subscriber = Subscriber(
        contract=contract, external_ref=external_ref, display_name=display_name.strip(), monthly_cap=monthly_cap
    )
    subscriber.full_clean(exclude=["contract"])
    subscriber.save()
    _save_and_publish(contract, events.SubscriberRegistered, subscriber=subscriber_state(subscriber))
    return subscriber


@transaction.atomic
def set_subscriber_cap(*, contract_id: uuid.UUID | str, external_ref: str, monthly_cap: int | None) -> Subscriber:
    """Set, change or lift (None) a subscriber's monthly cap. Billing judges the next
    purchases against it; what the subscriber spent this month still counts."""
    contract = _locked_contract(contract_id)
    _refuse_if_cancelled(contract, "change a subscriber's cap")
    subscriber = contract.subscribers.filter(external_ref=external_ref, removed_at__isnull=True).first()
    if subscriber is None:
        raise NotFound(f"No registered subscriber {external_ref}.", Code.SUBSCRIBER_UNKNOWN)
    subscriber.monthly_cap = monthly_cap
    subscriber.full_clean(exclude=["contract"])
    subscriber.save(update_fields=["monthly_cap"])
    _save_and_publish(contract, events.SubscriberCapChanged, subscriber=subscriber_state(subscriber))
    return subscriber


@gives_reason
@transaction.atomic
def remove_subscriber(*, contract_id: uuid.UUID | str, external_ref: str, reason: str = "") -> Contract:
    """Withdraw a subscriber's right to buy under the contract."""
    contract = _locked_contract(contract_id)
    subscriber = contract.subscribers.filter(external_ref=external_ref, removed_at__isnull=True).first()
    if subscriber is None:
        raise NotFound(f"No registered subscriber {external_ref}.", Code.SUBSCRIBER_UNKNOWN)
    subscriber.removed_at = timezone.now()
    subscriber.save(update_fields=["removed_at"])
    return _save_and_publish(contract, events.SubscriberRemoved, external_ref=external_ref)
