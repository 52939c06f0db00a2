"""Events published by the invoicing context (topic `boissipay.invoicing.v1`, key = contract id)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import ClassVar, TypedDict

from boissipay.events import DomainEvent


class InvoiceState(TypedDict):
    invoice_id: str
    number: str
    kind: str  # invoice | credit_note
    contract_id: str
    contract_reference: str
    customer_id: str
    period: str  # YYYY-MM
    issue_date: str
    due_date: str
    currency: str
    total_excl_tax: int  # signed: negative on a credit note
    total_vat: int
    total_incl_tax: int
    vat_breakdown: list[dict]
    operations_count: int
    mandate_reference: str
    status: str


@dataclass(frozen=True, kw_only=True)
class InvoiceEvent(DomainEvent):
    context: ClassVar[str] = "invoicing"
    contract_id: uuid.UUID
    invoice: InvoiceState


@dataclass(frozen=True, kw_only=True)
class InvoiceIssued(InvoiceEvent):
    event_type: ClassVar[str] = "invoicing.invoice.issued"


@dataclass(frozen=True, kw_only=True)
class InvoiceSent(InvoiceEvent):
    """The invoice was e-mailed: its operations (`operation_ids`) are now invoiced."""

    event_type: ClassVar[str] = "invoicing.invoice.sent"
    operation_ids: list[str]


@dataclass(frozen=True, kw_only=True)
class InvoicePaid(InvoiceEvent):
    """Its collection succeeded."""

    event_type: ClassVar[str] = "invoicing.invoice.paid"


@dataclass(frozen=True, kw_only=True)
class InvoiceFailed(InvoiceEvent):
    """Its collection failed for good."""

    event_type: ClassVar[str] = "invoicing.invoice.failed"
    reason: str


@dataclass(frozen=True, kw_only=True)
class InvoiceReopened(InvoiceEvent):
    """It was paid, and the payment came back (a debit returned or refunded): unpaid again."""

    event_type: ClassVar[str] = "invoicing.invoice.reopened"
    reason: str


@dataclass(frozen=True, kw_only=True)
class InvoiceLifecycleChanged(InvoiceEvent):
    """A step of the invoice's life on the e-invoicing platform: a status it called back
    with (deposited, received, rejected, refused, approved) or one we reported (paid,
    payment_cancelled). `blocks_collection`: rejected or refused, collection waits for staff."""

    event_type: ClassVar[str] = "invoicing.invoice.lifecycle_changed"
    platform_message_id: str
    status: str
    reason: str
    blocks_collection: bool


@dataclass(frozen=True, kw_only=True)
class CreditNoteIssued(DomainEvent):
    """Staff credited `invoice` (its state after the credit) with `credit_note` (negative
    totals). `credited` is the invoice's total credited so far (positive, incl. tax). In
    `full`, the invoice is cancelled and `released_operation_ids` are to be invoiced again."""

    context: ClassVar[str] = "invoicing"
    event_type: ClassVar[str] = "invoicing.credit_note.issued"
    contract_id: uuid.UUID
    credit_note: InvoiceState
    invoice: InvoiceState
    credited: int
    full: bool
    released_operation_ids: list[str]
    reason: str
    issued_by: str


ALL_EVENTS = (
    InvoiceIssued,
    InvoiceSent,
    InvoicePaid,
    InvoiceFailed,
    InvoiceReopened,
    CreditNoteIssued,
    InvoiceLifecycleChanged,
)
