"""Events published by the billing context (topic `boissipay.billing.v1`, key = contract id).

Each carries the whole operation as decided (`operation`) and the contract's balance
right after the decision, so invoicing and payments can act on the event alone."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import ClassVar, TypedDict

from boissipay.events import DomainEvent


class VatLine(TypedDict):
    rate: str  # percent, two decimals: "20.00", "5.50"
    base: int
    vat: int


class OperationState(TypedDict):
    operation_id: str
    contract_id: str
    contract_reference: str
    customer_id: str | None
    type: str  # purchase | refund
    status: str  # accepted | rejected
    reason_code: str
    external_ref: str
    subscriber_ref: str
    refund_of: str | None
    purchase_order: str
    cost_centre: str
    travel_date: str | None
    currency: str
    amount_excl_tax: int
    vat_amount: int
    amount: int
    vat_breakdown: list[VatLine]
    orders: list[dict]
    decided_at: str


class BalanceState(TypedDict):
    credit_limit: int
    outstanding: int
    unbilled: int
    invoiced_unpaid: int


@dataclass(frozen=True, kw_only=True)
class OperationEvent(DomainEvent):
    context: ClassVar[str] = "billing"
    aggregate_type: ClassVar[str] = "contract"
    contract_id: uuid.UUID
    operation: OperationState


@dataclass(frozen=True, kw_only=True)
class PurchaseAccepted(OperationEvent):
    event_type: ClassVar[str] = "billing.operation.accepted"
    balance: BalanceState


@dataclass(frozen=True, kw_only=True)
class RefundAccepted(OperationEvent):
    event_type: ClassVar[str] = "billing.operation.refunded"
    balance: BalanceState


@dataclass(frozen=True, kw_only=True)
class OperationRejected(OperationEvent):
    event_type: ClassVar[str] = "billing.operation.rejected"


ALL_EVENTS = (PurchaseAccepted, RefundAccepted, OperationRejected)
