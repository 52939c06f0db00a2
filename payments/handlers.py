"""What payments does when other contexts' events arrive (inside `boissipay.bus.deliver`)."""

from billing.events import PurchaseAccepted, RefundAccepted
from boissipay.bus import handles
from boissipay.events import EventMessage
from invoicing.events import InvoiceIssued, InvoiceSent
from payments import services

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
