"""What the ledger records when other contexts' events arrive (inside `boissipay.bus.deliver`:
once per event, in the event's transaction with the inbox row)."""

from accounting import services
from boissipay.bus import handles
from boissipay.events import EventMessage
from contracts.events import CONTRACT_STATE_EVENTS, CustomerCorrected, CustomerRegistered
from invoicing.events import CreditNoteIssued, InvoiceIssued
from payments.events import (
    ManualPaymentRecorded,
    PaymentRefunded,
    PaymentReturned,
    PaymentSucceeded,
    RefundChanged,
)

CONTEXT = "accounting"


@handles(CustomerRegistered.event_type, CustomerCorrected.event_type, context=CONTEXT)
def name_customer(message: EventMessage) -> None:
    services.apply_customer(customer=message.data["customer"])


@handles(*(event.event_type for event in CONTRACT_STATE_EVENTS), context=CONTEXT)
def know_contract(message: EventMessage) -> None:
    services.apply_contract(contract=message.data["contract"])


@handles(InvoiceIssued.event_type, context=CONTEXT)
def sales_entry(message: EventMessage) -> None:
    services.record_invoice(event_id=message.id, event_type=message.type, invoice=message.data["invoice"])


@handles(CreditNoteIssued.event_type, context=CONTEXT)
def credit_note_entry(message: EventMessage) -> None:
    services.record_invoice(event_id=message.id, event_type=message.type, invoice=message.data["credit_note"])


@handles(PaymentSucceeded.event_type, context=CONTEXT)
def collection_entry(message: EventMessage) -> None:
    services.record_collection(
        event_id=message.id, event_type=message.type, payment=message.data["payment"], occurred_at=message.occurred_at
    )


@handles(PaymentReturned.event_type, PaymentRefunded.event_type, context=CONTEXT)
def return_entry(message: EventMessage) -> None:
    services.record_return(
        event_id=message.id,
        event_type=message.type,
        payment=message.data["payment"],
        occurred_at=message.occurred_at,
        returned_on=message.data.get("returned_on"),
    )


@handles(ManualPaymentRecorded.event_type, context=CONTEXT)
def manual_payment_entry(message: EventMessage) -> None:
    services.record_manual_payment(
        event_id=message.id, event_type=message.type, manual_payment=message.data["manual_payment"]
    )


@handles(RefundChanged.event_type, context=CONTEXT)
def refund_entry(message: EventMessage) -> None:
    services.record_refund(
        event_id=message.id,
        event_type=message.type,
        payment=message.data["payment"],
        refund=message.data["refund"],
        occurred_at=message.occurred_at,
    )
