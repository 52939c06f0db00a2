"""What payments does when other contexts' events arrive (inside `boissipay.bus.deliver`)."""

from billing.events import PurchaseAccepted, RefundAccepted
from boissipay.bus import handles
from boissipay.events import EventMessage
from invoicing.events import CreditNoteIssued, InvoiceIssued, InvoiceLifecycleChanged, InvoiceSent
from payments import credit_notes, services

CONTEXT = "payments"


@handles(PurchaseAccepted.event_type, RefundAccepted.event_type, context=CONTEXT, batch=True)
def record_pending_items(messages: list[EventMessage]) -> None:
    """Each accepted operation becomes a pending payment item, settled by the collection
    of the invoice that bills it (recorded together)."""
    services.record_payment_items(operations=[message.data["operation"] for message in messages])


@handles(InvoiceIssued.event_type, context=CONTEXT)
def schedule_collection(message: EventMessage) -> None:
    """Each issued invoice is collected by direct debit on its due date."""
    services.schedule_collection(invoice=message.data["invoice"])


@handles(InvoiceSent.event_type, context=CONTEXT)
def attach_items(message: EventMessage) -> None:
    """The invoice's collection will settle the payment items of its operations."""
    services.attach_items_to_invoice(
        invoice_id=message.data["invoice"]["invoice_id"], operation_ids=message.data["operation_ids"]
    )


@handles(CreditNoteIssued.event_type, context=CONTEXT)
def apply_credit_note(message: EventMessage) -> None:
    """A credit note lowers the invoice's debit, or makes a refund owed when it was collected."""
    data = message.data
    credit_notes.apply_credit_note(
        credit_note=data["credit_note"], invoice=data["invoice"], full=data["full"], issued_by=data["issued_by"]
    )


@handles(InvoiceLifecycleChanged.event_type, context=CONTEXT)
def hold_for_einvoicing(message: EventMessage) -> None:
    """An invoice the platform rejected, or its buyer refused, is not debited until staff decide."""
    data = message.data
    services.hold_for_einvoicing(
        invoice_id=data["invoice"]["invoice_id"],
        status=data["status"],
        reason=data["reason"],
        blocks=data["blocks_collection"],
    )
