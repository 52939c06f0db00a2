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
    allocated: int  # paid outside the debit
    credited: int  # lowered by credit notes before collection; the debit takes amount - allocated - credited
    currency: str
    original_due_date: str
    due_date: str
    status: str  # pending | submitted | succeeded | failed | returned | refunded | cancelled
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


@dataclass(frozen=True, kw_only=True)
class PaymentReturned(PaymentEvent):
    """A debit that had succeeded came back (the debtor's bank returned it): the invoice is
    unpaid again and its amount back in the outstanding balance. `retry_on`: presented
    again then; else (`suspend`) the contract is suspended."""

    event_type: ClassVar[str] = "payments.payment.returned"
    reason_code: str
    reason: str
    suspend: bool
    new_mandate: bool
    credit_control: bool
    retry_on: str | None
    returned_on: str | None = None  # the day (Europe/Paris) payments applied the return


@dataclass(frozen=True, kw_only=True)
class PaymentRefunded(PaymentReturned):
    """Like a return, at the debtor's own request to their bank (MD06, up to 8 weeks)."""

    event_type: ClassVar[str] = "payments.payment.refunded"


class AllocationState(TypedDict):
    manual_payment_id: str
    method: str  # transfer | cheque
    bank_reference: str
    amount: int


@dataclass(frozen=True, kw_only=True)
class PaymentAllocated(PaymentEvent):
    """Money received outside the debit paid (part of) the invoice: `payment.allocated` is
    the total so paid, and the debit takes only the rest. A whole invoice so paid is
    followed by `payments.payment.succeeded` (its debit is never submitted)."""

    event_type: ClassVar[str] = "payments.payment.allocated"
    allocation: AllocationState


class ManualPaymentState(TypedDict):
    manual_payment_id: str
    customer_id: str
    method: str
    amount: int
    currency: str
    received_on: str
    bank_reference: str
    unallocated: int
    recorded_by: str


@dataclass(frozen=True, kw_only=True)
class ManualPaymentRecorded(DomainEvent):
    """Staff recorded money the customer sent outside the debit, and where it went."""

    context: ClassVar[str] = "payments"
    event_type: ClassVar[str] = "payments.manual_payment.recorded"
    aggregate_type: ClassVar[str] = "customer"
    customer_id: uuid.UUID
    manual_payment: ManualPaymentState
    allocations: list[dict]  # [{invoice_id, invoice_number, amount}]

    @property
    def aggregate_id(self) -> str:
        return str(self.customer_id)


@dataclass(frozen=True, kw_only=True)
class CustomerCreditChanged(DomainEvent):
    """The customer's credit (received, not allocated to any invoice yet) in a currency."""

    context: ClassVar[str] = "payments"
    event_type: ClassVar[str] = "payments.customer_credit.changed"
    aggregate_type: ClassVar[str] = "customer"
    customer_id: uuid.UUID
    currency: str
    credit: int

    @property
    def aggregate_id(self) -> str:
        return str(self.customer_id)


class RefundState(TypedDict):
    refund_id: str
    credit_note_id: str
    credit_note_number: str
    amount: int
    currency: str
    status: str  # held | owed | exported | void
    status_on: str  # the day (Europe/Paris) it took this status


@dataclass(frozen=True, kw_only=True)
class PaymentCredited(PaymentEvent):
    """A credit note on the invoice: `lowered` came off the debit (`payment.credited`, or
    the payment is `cancelled` when its invoice was credited in full), `refund` is owed
    back when the debit was collected (held while it is at the bank), and `to_credit`
    went to the customer's credit (money received otherwise that the invoice no longer
    needs)."""

    event_type: ClassVar[str] = "payments.payment.credited"
    credit_note_id: str
    credit_note_number: str
    lowered: int
    refund: RefundState | None
    to_credit: int


@dataclass(frozen=True, kw_only=True)
class RefundChanged(PaymentEvent):
    """A refund owed to the customer changed: owed once its debit settled, void when the
    debit failed (it was lowered instead), exported in a pain.001 credit transfer."""

    event_type: ClassVar[str] = "payments.refund.changed"
    refund: RefundState


ALL_EVENTS = (
    PaymentScheduled,
    PaymentSubmitted,
    PaymentSucceeded,
    PaymentFailed,
    PaymentReturned,
    PaymentRefunded,
    PaymentAllocated,
    ManualPaymentRecorded,
    CustomerCreditChanged,
    PaymentCredited,
    RefundChanged,
)
