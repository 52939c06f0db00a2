"""What the contracts context does when other contexts' events arrive (inside
`boissipay.bus.deliver`)."""

import contextlib

from boissipay.bus import handles
from boissipay.errors import DomainError
from boissipay.events import EventMessage
from contracts import services
from contracts.models import Contract, ContractStatus
from payments.events import PaymentFailed, PaymentRefunded, PaymentReturned

CONTEXT = "contracts"


@handles(PaymentFailed.event_type, context=CONTEXT)
def suspend_after_final_payment_failure(message: EventMessage) -> None:
    """An invoice that cannot be collected suspends the contract: no new purchase is
    accepted until staff reactivate it. A retried failure changes nothing."""
    if not message.data["final"]:
        return
    payment = message.data["payment"]
    status = Contract.objects.filter(pk=payment["contract_id"]).values_list("status", flat=True).first()
    if status != ContractStatus.ACTIVE:
        return  # already suspended or cancelled: nothing more to do
    reason = f"Direct debit of invoice {payment['invoice_number']} failed for good: {payment['failure_reason']}"
    with contextlib.suppress(DomainError):  # suspended or cancelled meanwhile
        services.suspend_contract(contract_id=payment["contract_id"], reason=reason[:500])


@handles(PaymentReturned.event_type, PaymentRefunded.event_type, context=CONTEXT)
def suspend_after_a_return(message: EventMessage) -> None:
    """A collected debit came back for a reason that forbids going on (closed account, no
    mandate, refund requested...): the contract is suspended at once. A return that will be
    presented again (insufficient funds) changes nothing here."""
    if not message.data["suspend"]:
        return
    payment = message.data["payment"]
    status = Contract.objects.filter(pk=payment["contract_id"]).values_list("status", flat=True).first()
    if status != ContractStatus.ACTIVE:
        return
    what = "refunded to the debtor" if message.type == PaymentRefunded.event_type else "returned by the bank"
    reason = f"Direct debit of invoice {payment['invoice_number']} {what}: {message.data['reason']}"
    if message.data["new_mandate"]:
        reason += " A new direct-debit mandate is needed."
    with contextlib.suppress(DomainError):
        services.suspend_contract(contract_id=payment["contract_id"], reason=reason[:500])
