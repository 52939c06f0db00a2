"""Events published by the contracts context (topic `boissipay.contracts.v1`).

Every contract event carries the contract's full state after the change (`contract`),
with `contract.version` increasing by one per change: a consumer can build its read
model from any event alone, and ignore one older than what it holds. The IBAN never
leaves this context unmasked."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import ClassVar, TypedDict

from boissipay.events import DomainEvent


class AddressState(TypedDict):
    lines: list[str]
    postcode: str
    city: str


class CustomerState(TypedDict):
    customer_id: str
    legal_name: str
    siren: str
    vat_number: str
    billing_email: str
    billing_address: str  # as printed: the lines, then "postcode city"
    address: AddressState
    country: str


class MandateState(TypedDict):
    mandate_id: str
    reference: str
    iban_masked: str
    bic: str
    signed_on: str
    expires_on: str | None
    status: str


class SubscriberState(TypedDict):
    external_ref: str
    display_name: str
    monthly_cap: int | None  # minor units per Paris month; None: only the contract's limit


class ContractState(TypedDict):
    contract_id: str
    reference: str
    customer: CustomerState
    currency: str
    credit_limit: int
    starts_on: str
    ends_on: str | None
    payment_terms_days: int
    vat_scheme: str  # standard | travel_agent_margin
    status: str
    status_reason: str
    mandate: MandateState | None
    subscribers: list[SubscriberState]
    version: int


@dataclass(frozen=True, kw_only=True)
class ContractEvent(DomainEvent):
    context: ClassVar[str] = "contracts"
    contract_id: uuid.UUID
    contract: ContractState


@dataclass(frozen=True, kw_only=True)
class CustomerRegistered(DomainEvent):
    context: ClassVar[str] = "contracts"
    event_type: ClassVar[str] = "contracts.customer.registered"
    aggregate_type: ClassVar[str] = "customer"
    customer: CustomerState

    @property
    def aggregate_id(self) -> str:
        return self.customer["customer_id"]


@dataclass(frozen=True, kw_only=True)
class CustomerCorrected(DomainEvent):
    """Staff or a client system corrected the customer's name, billing e-mail or address
    (`changes`: field -> {"from", "to"}). Each of its contracts that is not cancelled is
    amended with the new customer in the same transaction."""

    context: ClassVar[str] = "contracts"
    event_type: ClassVar[str] = "contracts.customer.corrected"
    aggregate_type: ClassVar[str] = "customer"
    customer: CustomerState
    changes: dict[str, dict]
    reason: str

    @property
    def aggregate_id(self) -> str:
        return self.customer["customer_id"]


@dataclass(frozen=True, kw_only=True)
class ContractSubscribed(ContractEvent):
    event_type: ClassVar[str] = "contracts.contract.subscribed"


@dataclass(frozen=True, kw_only=True)
class ContractAmended(ContractEvent):
    event_type: ClassVar[str] = "contracts.contract.amended"
    changes: dict[str, dict]  # field -> {"from": old, "to": new}


@dataclass(frozen=True, kw_only=True)
class ContractSuspended(ContractEvent):
    event_type: ClassVar[str] = "contracts.contract.suspended"
    reason: str


@dataclass(frozen=True, kw_only=True)
class ContractReactivated(ContractEvent):
    event_type: ClassVar[str] = "contracts.contract.reactivated"


@dataclass(frozen=True, kw_only=True)
class ContractCancelled(ContractEvent):
    event_type: ClassVar[str] = "contracts.contract.cancelled"
    reason: str


@dataclass(frozen=True, kw_only=True)
class MandateRenewed(ContractEvent):
    event_type: ClassVar[str] = "contracts.mandate.renewed"
    previous_mandate_reference: str | None


@dataclass(frozen=True, kw_only=True)
class MandateRevoked(ContractEvent):
    event_type: ClassVar[str] = "contracts.mandate.revoked"
    mandate_reference: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class SubscriberRegistered(ContractEvent):
    event_type: ClassVar[str] = "contracts.subscriber.registered"
    subscriber: SubscriberState


@dataclass(frozen=True, kw_only=True)
class SubscriberRemoved(ContractEvent):
    event_type: ClassVar[str] = "contracts.subscriber.removed"
    external_ref: str


@dataclass(frozen=True, kw_only=True)
class SubscriberCapChanged(ContractEvent):
    """A subscriber's monthly cap was set, changed or lifted (`subscriber.monthly_cap`)."""

    event_type: ClassVar[str] = "contracts.subscriber.cap_changed"
    subscriber: SubscriberState


ALL_EVENTS = (
    CustomerRegistered,
    CustomerCorrected,
    ContractSubscribed,
    ContractAmended,
    ContractSuspended,
    ContractReactivated,
    ContractCancelled,
    MandateRenewed,
    MandateRevoked,
    SubscriberRegistered,
    SubscriberRemoved,
    SubscriberCapChanged,
)

# The events that carry the contract's whole state (all but the customer's registration).
CONTRACT_STATE_EVENTS = tuple(event for event in ALL_EVENTS if issubclass(event, ContractEvent))
