"""What invoicing does when other contexts' events arrive (inside `boissipay.bus.deliver`)."""

from billing.events import PurchaseAccepted, RefundAccepted
from boissipay.bus import handles
from boissipay.events import EventMessage
from contracts.events import CONTRACT_STATE_EVENTS
from invoicing import services
from payments.events import PaymentAllocated, PaymentFailed, PaymentRefunded, PaymentReturned, PaymentSucceeded

CONTEXT = "invoicing"


@handles(*(event.event_type for event in CONTRACT_STATE_EVENTS), context=CONTEXT)
def apply_contract_event(message: EventMessage) -> None:
    """Every contract event carries the contract's whole state: keep the newest."""
    services.apply_contract_state(state=message.data["contract"])


@handles(PurchaseAccepted.event_type, RefundAccepted.event_type, context=CONTEXT, batch=True)
def take_in_accepted_operations(messages: list[EventMessage]) -> None:
    """Accepted operations wait for the billing run of their month (taken in together)."""
    services.record_billable_operations(operations=[message.data["operation"] for message in messages])


@handles(PaymentSucceeded.event_type, context=CONTEXT)
def invoice_paid(message: EventMessage) -> None:
    services.mark_invoice_paid(invoice_id=message.data["payment"]["invoice_id"])


@handles(PaymentFailed.event_type, context=CONTEXT)
def invoice_failed(message: EventMessage) -> None:
    """Only a final failure fails the invoice; an attempt that will be retried does not."""
    if message.data["final"]:
        payment = message.data["payment"]
        services.mark_invoice_failed(invoice_id=payment["invoice_id"], reason=payment["failure_reason"])


@handles(PaymentReturned.event_type, PaymentRefunded.event_type, context=CONTEXT)
def invoice_reopened(message: EventMessage) -> None:
    """A collected debit came back: the invoice is unpaid again."""
    payment = message.data["payment"]
    services.mark_invoice_unpaid(invoice_id=payment["invoice_id"], reason=message.data["reason"])


@handles(PaymentAllocated.event_type, context=CONTEXT)
def invoice_partly_paid(message: EventMessage) -> None:
    payment = message.data["payment"]
    services.record_paid_outside(invoice_id=payment["invoice_id"], total=payment["allocated"])
