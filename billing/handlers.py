"""What billing does when other contexts' events arrive. Each handler runs inside
`boissipay.bus.deliver` (its own transaction, guarded by the inbox)."""

from billing import services
from boissipay.bus import handles
from boissipay.events import EventMessage
from contracts.events import CONTRACT_STATE_EVENTS
from invoicing.events import CreditNoteIssued, InvoiceSent
from payments.events import PaymentAllocated, PaymentRefunded, PaymentReturned, PaymentSucceeded

CONTEXT = "billing"


@handles(*(event.event_type for event in CONTRACT_STATE_EVENTS), context=CONTEXT)
def apply_contract_event(message: EventMessage) -> None:
    """Every contract event carries the contract's whole state: keep the newest."""
    services.apply_contract_state(state=message.data["contract"])


@handles(InvoiceSent.event_type, context=CONTEXT)
def mark_invoiced(message: EventMessage) -> None:
    """Once its invoice is sent, an operation is invoiced and awaits collection."""
    services.mark_operations_invoiced(
        contract_id=message.data["contract_id"],
        invoice_id=message.data["invoice"]["invoice_id"],
        operation_ids=message.data["operation_ids"],
        invoice_total=message.data["invoice"]["total_incl_tax"],
    )


@handles(PaymentSucceeded.event_type, context=CONTEXT)
def release_paid_invoice(message: EventMessage) -> None:
    """A collected invoice is paid: its amount leaves the outstanding balance."""
    payment = message.data["payment"]
    services.mark_invoice_paid(contract_id=payment["contract_id"], invoice_id=payment["invoice_id"])


@handles(PaymentReturned.event_type, PaymentRefunded.event_type, context=CONTEXT)
def reopen_returned_invoice(message: EventMessage) -> None:
    """A collected debit came back: its amount is outstanding again (the credit it freed
    is taken back), whatever follows (a new attempt, or suspension)."""
    payment = message.data["payment"]
    services.reopen_invoice(contract_id=payment["contract_id"], invoice_id=payment["invoice_id"])


@handles(PaymentAllocated.event_type, context=CONTEXT)
def lower_for_money_received_otherwise(message: EventMessage) -> None:
    """A transfer or a cheque paid (part of) an invoice: that much is no longer outstanding."""
    payment = message.data["payment"]
    services.record_paid_outside(
        contract_id=payment["contract_id"], invoice_id=payment["invoice_id"], total=payment["allocated"]
    )


@handles(CreditNoteIssued.event_type, context=CONTEXT)
def lower_for_credit_note(message: EventMessage) -> None:
    """A credit note lowers what the invoice asks (that much is no longer outstanding);
    one in full cancels it, and its operations wait to be invoiced again."""
    data = message.data
    invoice = data["invoice"]
    if data["full"]:
        services.cancel_invoice(
            contract_id=data["contract_id"],
            invoice_id=invoice["invoice_id"],
            operation_ids=data["released_operation_ids"],
        )
    else:
        services.record_credit(
            contract_id=data["contract_id"], invoice_id=invoice["invoice_id"], credited=data["credited"]
        )
