"""Events published by the payments context (topic `boissipay.payments.v1`, key = contract id).

Every change of a payment's status is an event carrying the whole payment."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import ClassVar, TypedDict

from boissipay.events import DomainEvent


class PaymentState(TypedDict):
    payment_id: str
    invoice_id: str
    invoice_number: str
    contract_id: str
    contract_reference: str
    amount: int
    currency: str
    original_due_date: str
    due_date: str
    status: str  # pending | submitted | succeeded | failed
    gateway: str
    attempts: int
    mandate_reference: str
    failure_reason: str


@dataclass(frozen=True, kw_only=True)
class PaymentEvent(DomainEvent):
    context: ClassVar[str] = "payments"
    contract_id: uuid.UUID
    payment: PaymentState


@dataclass(frozen=True, kw_only=True)
class PaymentScheduled(PaymentEvent):
    """Pending: created for an issued invoice, or scheduled again after a failed attempt."""

    event_type: ClassVar[str] = "payments.payment.pending"


@dataclass(frozen=True, kw_only=True)
class PaymentSubmitted(PaymentEvent):
    event_type: ClassVar[str] = "payments.payment.submitted"


@dataclass(frozen=True, kw_only=True)
class PaymentSucceeded(PaymentEvent):
    event_type: ClassVar[str] = "payments.payment.succeeded"


@dataclass(frozen=True, kw_only=True)
class PaymentFailed(PaymentEvent):
    """An attempt failed. `final`: no retry is left (the invoice is unpaid for good);
    otherwise `retry_on` is the next attempt's date."""

    event_type: ClassVar[str] = "payments.payment.failed"
    final: bool
    retry_on: str | None


ALL_EVENTS = (PaymentScheduled, PaymentSubmitted, PaymentSucceeded, PaymentFailed)
