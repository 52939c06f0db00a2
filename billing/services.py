"""Commands of the billing context: deciding purchases and refunds under the acceptance
rules, and keeping the contract read model up to date from contract events.

Every decision locks the contract's account row first, so two purchases decided at the
same time are serialised and can never together exceed the credit limit."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import sql
from billing.errors import BillingErrorCode, ReasonCode
from billing.events import BalanceState, OperationRejected, OperationState, PurchaseAccepted, RefundAccepted
from billing.models import (
    ContractAccount,
    InvoicePaidOutside,
    Operation,
    OperationStatus,
    OperationType,
    OutOfScopeAttempt,
    Settlement,
)
from boissipay import outbox
from boissipay.clock import business_today
from boissipay.errors import DomainError
from boissipay.readmodel import keep_newest

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Item:
    label: str
    quantity: int
    unit_amount: int  # minor units, excluding tax
    vat_rate: Decimal  # percent, e.g. Decimal("20"), Decimal("5.5")


@dataclass(frozen=True)
class Order:
    reference: str
    items: tuple[Item, ...]


@dataclass(frozen=True)
class Pricing:
    """An operation's amounts, computed from its items: never taken from the client."""

    amount_excl_tax: int
    vat_amount: int
    amount: int
    vat_breakdown: list[dict]
    orders: list[dict]


@dataclass(frozen=True)
class OperationRequest:
    contract_id: uuid.UUID
    type: str
    external_ref: str
    currency: str
    orders: tuple[Order, ...]
    subscriber_ref: str = ""
    refund_of: uuid.UUID | None = None
    purchase_order: str = ""
    cost_centre: str = ""
    travel_date: dt.date | None = None


def vat_at(base: int, rate: str | Decimal) -> int:
    """The VAT on `base` (minor units) at `rate` percent, rounded half away from zero to
    the minor unit: EN 16931's rule BR-CO-17 for a VAT breakdown line."""
    return int((Decimal(base) * Decimal(rate) / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def price(orders: tuple[Order, ...]) -> Pricing:
    """Amounts of `orders`. The VAT of each rate is computed on the operation's base at
    that rate, as EN 16931 computes an invoice's (ADR 0027), never summed from rounded
    items; it is then shared among the items in proportion to their bases (largest
    remainders), so the items, the per-rate breakdown and the totals always agree."""
    bases: dict[str, int] = defaultdict(int)
    documents = []
    for order in orders:
        items = []
        for item in order.items:
            base = item.quantity * item.unit_amount
            rate = str(item.vat_rate.quantize(CENT))
            bases[rate] += base
            items.append(
                {
                    "label": item.label,
                    "quantity": item.quantity,
                    "unit_amount": item.unit_amount,
                    "vat_rate": rate,
                    "amount_excl_tax": base,
                    "vat_amount": 0,
                }
            )
        documents.append({"reference": order.reference, "items": items})
    per_rate = {rate: (base, vat_at(base, rate)) for rate, base in bases.items()}
    _share_vat(documents, per_rate)
    breakdown: list[dict[str, Any]] = [
        {"rate": rate, "base": base, "vat": vat} for rate, (base, vat) in sorted(per_rate.items())
    ]
    excl = sum(line["base"] for line in breakdown)
    vat = sum(line["vat"] for line in breakdown)
    return Pricing(amount_excl_tax=excl, vat_amount=vat, amount=excl + vat, vat_breakdown=breakdown, orders=documents)


def _share_vat(documents: list[dict], per_rate: dict[str, tuple[int, int]]) -> None:
    """Give each item its share of its rate's VAT: floor of base x VAT / total base, the
    minor units left going to the largest remainders (then the first items)."""
    for rate, (total_base, total_vat) in per_rate.items():
        items = [item for order in documents for item in order["items"] if item["vat_rate"] == rate]
        if not total_base or not total_vat:
            continue
        shares = []
        for index, item in enumerate(items):
            quotient, remainder = divmod(item["amount_excl_tax"] * total_vat, total_base)
            item["vat_amount"] = quotient
            shares.append((-remainder, index))
        left = total_vat - sum(item["vat_amount"] for item in items)
        for _, index in sorted(shares)[:left]:
            items[index]["vat_amount"] += 1


# --- the acceptance rules -------------------------------------------------------------------


def purchase_refusal(
    account: ContractAccount | sql.LockedAccount | None, request: OperationRequest, amount: int, today: dt.date
) -> tuple[ReasonCode, str] | None:
    """Why this purchase must be rejected, or None when it is accepted (SPEC "billing")."""
    if account is None:
        return ReasonCode.CONTRACT_UNKNOWN, "No contract with this id is known to billing."
    if account.status != "active":
        return ReasonCode.CONTRACT_NOT_ACTIVE, f"The contract is {account.status}."
    if today < account.starts_on:
        return ReasonCode.CONTRACT_NOT_ACTIVE, f"The contract starts on {account.starts_on.isoformat()}."
    if account.ends_on is not None and today > account.ends_on:
        return ReasonCode.CONTRACT_EXPIRED, f"The contract ended on {account.ends_on.isoformat()}."
    if account.mandate_status != "active":
        return ReasonCode.MANDATE_INVALID, "The contract has no active direct-debit mandate."
    if account.mandate_expires_on is not None and today > account.mandate_expires_on:
        return ReasonCode.MANDATE_INVALID, f"The direct-debit mandate expired on {account.mandate_expires_on}."
    if request.currency != account.currency:
        return ReasonCode.CURRENCY_MISMATCH, f"The contract is in {account.currency}, not {request.currency}."
    if account.subscriber_refs and request.subscriber_ref not in account.subscriber_refs:
        return ReasonCode.SUBSCRIBER_UNKNOWN, "The purchase must name a subscriber registered on the contract."
    if account.outstanding + amount > account.credit_limit:
        return (
            ReasonCode.CREDIT_LIMIT_EXCEEDED,
            f"Outstanding {account.outstanding} + {amount} would exceed the credit limit of {account.credit_limit} "
            f"(available {account.available}).",
        )
    cap = (account.subscriber_caps or {}).get(request.subscriber_ref)
    if cap is not None:
        # Read under the account's row lock, which every purchase of the contract takes:
        # two purchases of one subscriber are judged one after the other.
        spent = sql.subscriber_spent(account.contract_id, request.subscriber_ref, today)
        if spent + amount > cap:
            return (
                ReasonCode.SUBSCRIBER_LIMIT_EXCEEDED,
                f"Subscriber {request.subscriber_ref} spent {spent} this month; + {amount} would exceed their "
                f"monthly cap of {cap} (available {max(0, cap - spent)}).",
            )
    return None


def refund_refusal(
    account: ContractAccount | sql.LockedAccount | None,
    purchase: Operation | None,
    request: OperationRequest,
    amount: int,
) -> tuple[ReasonCode, str] | None:
    """Why this refund must be rejected, or None. A refund needs neither an active
    contract nor a valid mandate: money owed back is owed whatever the contract's state."""
    if account is None:
        return ReasonCode.CONTRACT_UNKNOWN, "No contract with this id is known to billing."
    if purchase is None:
        return ReasonCode.PURCHASE_UNKNOWN, "refund_of names no accepted purchase of this contract."
    if request.currency != account.currency:
        return ReasonCode.CURRENCY_MISMATCH, f"The contract is in {account.currency}, not {request.currency}."
    if amount > purchase.refundable:
        return (
            ReasonCode.REFUND_EXCEEDS_PURCHASE,
            f"The refund of {amount} exceeds the {purchase.refundable} still refundable on the purchase.",
        )
    return None


# --- deciding an operation --------------------------------------------------------------------


def submit_operation(*, request: OperationRequest, customer_scope: uuid.UUID | str | None = None) -> Operation:
    """Decide a purchase or a refund and store it, accepted or rejected, with its event.

    `customer_scope` restricts the decision to that customer's contracts: another
    customer's contract is treated as unknown, and the attempt is kept out of every
    contract's history (see `_refuse_out_of_scope`). Raises DomainError 409
    `duplicate_external_ref` when the same booking was already accepted on the contract.

    One transaction (no savepoint of its own when the caller has opened one, as the API
    does for the Idempotency-Key: an error rolls the caller's back as well). Its
    statements are plain SQL (billing.sql): this is the path client systems wait on."""
    if request.type == OperationType.PURCHASE and request.refund_of is not None:
        raise DomainError("validation_error", "Only a refund names a purchase (refund_of).", status_code=400)
    if not request.orders or not all(order.items for order in request.orders):
        raise DomainError("validation_error", "An operation has at least one order with items.", status_code=400)
    pricing = price(request.orders)
    with transaction.atomic(savepoint=False):
        account = sql.lock_account(request.contract_id)
        if account is not None and customer_scope is not None and str(account.customer_id) != str(customer_scope):
            account = None
        if account is None and customer_scope is not None:
            return _refuse_out_of_scope(request, pricing, customer_scope)
        purchase = None
        if request.type == OperationType.PURCHASE:
            refusal = purchase_refusal(account, request, pricing.amount, business_today())
        else:
            if account is not None and request.refund_of is not None:
                purchase = (
                    Operation.objects.select_for_update()
                    .filter(
                        pk=request.refund_of,
                        contract_id=account.contract_id,
                        type=OperationType.PURCHASE,
                        status=OperationStatus.ACCEPTED,
                    )
                    .first()
                )
            refusal = refund_refusal(account, purchase, request, pricing.amount)
        if refusal is not None and account is not None:
            _refuse_a_booking_already_accepted(request, account)
        operation = _new_operation(request, pricing, account, customer_scope)
        if refusal is not None:
            operation.status = OperationStatus.REJECTED
            operation.reason_code, operation.reason_detail = refusal[0], refusal[1][:500]
            sql.insert_operation(operation)
            outbox.record(OperationRejected(contract_id=request.contract_id, operation=operation_state(operation)))
            return operation
        assert account is not None  # an unknown contract is always refused
        return _accept(operation, account, purchase)


def _refuse_out_of_scope(request: OperationRequest, pricing: Pricing, customer_scope) -> Operation:
    """A customer-restricted key named a contract it cannot see. It is answered as an
    unknown contract, but nothing is written into that contract's history nor published:
    the attempt is kept for staff only (OutOfScopeAttempt). Returns the rejected
    operation, unsaved, whose id is the attempt's."""
    attempt = OutOfScopeAttempt.objects.create(
        contract_id=request.contract_id,
        customer_id=customer_scope,
        type=request.type,
        external_ref=request.external_ref,
        currency=request.currency,
        amount=pricing.amount,
        orders=pricing.orders,
    )
    operation = _new_operation(request, pricing, None, customer_scope)
    operation.id = attempt.id
    operation.status = OperationStatus.REJECTED
    refusal = purchase_refusal(None, request, pricing.amount, business_today())
    assert refusal is not None  # no account: always refused
    operation.reason_code, operation.reason_detail = refusal
    return operation


def _refuse_a_booking_already_accepted(request: OperationRequest, account: sql.LockedAccount) -> None:
    """A booking already accepted on the contract is a duplicate (409), whatever a rule
    would say of it now: resending it must not store a rejection (at its limit, say).
    Checked only on the way to a rejection: on the way to acceptance the unique index
    says it, at no cost."""
    if sql.already_accepted(account.contract_id, request.type, request.external_ref):
        raise _duplicate(request.type, request.external_ref)


def _duplicate(type_: str, external_ref: str) -> DomainError:
    return DomainError(
        BillingErrorCode.DUPLICATE_EXTERNAL_REF,
        f"A {type_} with external_ref {external_ref!r} was already accepted on this contract.",
    )


def _new_operation(request, pricing, account, customer_scope) -> Operation:
    return Operation(
        contract_id=request.contract_id,
        customer_id=account.customer_id if account is not None else customer_scope,
        contract_reference=account.reference if account is not None else "",
        type=request.type,
        external_ref=request.external_ref,
        subscriber_ref=request.subscriber_ref,
        refund_of=request.refund_of,
        purchase_order=request.purchase_order,
        cost_centre=request.cost_centre,
        travel_date=request.travel_date,
        currency=request.currency,
        amount_excl_tax=pricing.amount_excl_tax,
        vat_amount=pricing.vat_amount,
        amount=pricing.amount,
        vat_breakdown=pricing.vat_breakdown,
        orders=pricing.orders,
        decided_at=timezone.now(),
    )


def _accept(operation: Operation, account: sql.LockedAccount, purchase: Operation | None) -> Operation:
    operation.status = OperationStatus.ACCEPTED
    operation.settlement = Settlement.UNBILLED
    account.unbilled += operation.signed_amount
    operation.balance_after = account.outstanding
    # A booking is counted once: the partial unique index refuses a second accepted
    # operation with the same external_ref (no query beforehand, no savepoint: the
    # DomainError leaves submit_operation's transaction, which rolls the decision back).
    try:
        sql.insert_operation(operation)
    except IntegrityError as exc:
        raise _duplicate(operation.type, operation.external_ref) from exc
    sql.add_to_unbilled(account.contract_id, operation.signed_amount)
    if purchase is not None:
        purchase.refunded_amount += operation.amount
        purchase.save(update_fields=["refunded_amount"])
    event_class = PurchaseAccepted if operation.type == OperationType.PURCHASE else RefundAccepted
    outbox.record(
        event_class(
            contract_id=account.contract_id, operation=operation_state(operation), balance=balance_state(account)
        )
    )
    return operation


def operation_state(operation: Operation) -> OperationState:
    return {
        "operation_id": str(operation.id),
        "contract_id": str(operation.contract_id),
        "contract_reference": operation.contract_reference,
        "customer_id": str(operation.customer_id) if operation.customer_id else None,
        "type": operation.type,
        "status": operation.status,
        "reason_code": operation.reason_code,
        "external_ref": operation.external_ref,
        "subscriber_ref": operation.subscriber_ref,
        "refund_of": str(operation.refund_of) if operation.refund_of else None,
        "purchase_order": operation.purchase_order,
        "cost_centre": operation.cost_centre,
        "travel_date": operation.travel_date.isoformat() if operation.travel_date else None,
        "currency": operation.currency,
        "amount_excl_tax": operation.amount_excl_tax,
        "vat_amount": operation.vat_amount,
        "amount": operation.amount,
        "vat_breakdown": operation.vat_breakdown,
        "orders": operation.orders,
        "decided_at": operation.decided_at.isoformat(),
    }


def balance_state(account: ContractAccount | sql.LockedAccount) -> BalanceState:
    return {
        "credit_limit": account.credit_limit,
        "outstanding": account.outstanding,
        "unbilled": account.unbilled,
        "invoiced_unpaid": account.invoiced_unpaid,
    }


# --- the contract read model ------------------------------------------------------------------


def apply_contract_state(*, state: dict) -> bool:
    """Bring the read model of one contract up to `state` (a contract event's `contract`).

    An event older than what is held is ignored (events may arrive twice or late);
    returns whether anything changed. The balance counters are billing's own and never
    come from the event."""
    fields = {
        "reference": state["reference"],
        "customer_id": state["customer"]["customer_id"],
        "customer_name": state["customer"]["legal_name"],
        "currency": state["currency"],
        "credit_limit": state["credit_limit"],
        "starts_on": dt.date.fromisoformat(state["starts_on"]),
        "ends_on": dt.date.fromisoformat(state["ends_on"]) if state["ends_on"] else None,
        "payment_terms_days": state["payment_terms_days"],
        "status": state["status"],
        "mandate_reference": (state["mandate"] or {}).get("reference", ""),
        "mandate_status": (state["mandate"] or {}).get("status", ""),
        "mandate_expires_on": _date_or_none((state["mandate"] or {}).get("expires_on")),
        "subscriber_refs": sorted(s["external_ref"] for s in state["subscribers"]),
        "subscriber_caps": {
            s["external_ref"]: s["monthly_cap"] for s in state["subscribers"] if s.get("monthly_cap") is not None
        },
        "contract_version": state["version"],
    }
    return keep_newest(ContractAccount, pk=state["contract_id"], version_field="contract_version", fields=fields)


def _date_or_none(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


# --- settlement: invoiced, then paid --------------------------------------------------------


def mark_operations_invoiced(*, contract_id, invoice_id, operation_ids: list, invoice_total: int | None = None) -> int:
    """The invoice carrying these operations was sent: they move from unbilled to
    invoiced-unpaid. Operations already marked are left alone, so a repeated event
    counts nothing twice. Returns how many operations moved.

    The invoice's VAT is computed per rate on its bases (EN 16931), so its total
    (`invoice_total`) may differ by a few minor units from the sum of its operations:
    that rounding adjustment is added to the outstanding balance with them, and kept, so
    that the balance is what the invoices ask to the cent (ADR 0027)."""
    with transaction.atomic():
        moved = _settle(
            contract_id,
            Operation.objects.filter(pk__in=operation_ids, settlement=Settlement.UNBILLED),
            to=Settlement.INVOICED,
            invoice_id=invoice_id,
        )
        if moved and invoice_total is not None:
            account = ContractAccount.objects.select_for_update().filter(pk=contract_id).first()
            operations = Operation.objects.filter(invoice_id=invoice_id, contract_id=contract_id).only("type", "amount")
            adjustment = invoice_total - sum(op.signed_amount for op in operations)
            if adjustment:
                held, _ = InvoicePaidOutside.objects.select_for_update().get_or_create(
                    invoice_id=invoice_id, defaults={"contract_id": contract_id, "amount": 0}
                )
                held.adjustment = adjustment
                held.save(update_fields=["adjustment", "updated_at"])
                if account is not None:
                    account.invoiced_unpaid += adjustment
                    account.save(update_fields=["invoiced_unpaid", "updated_at"])
        return moved


def mark_invoice_paid(*, contract_id, invoice_id) -> int:
    """The invoice's collection succeeded: its operations are paid and no longer count in
    the outstanding balance, which frees that much credit (less what was paid outside the
    debit, freed already). A repeated event changes nothing. Returns how many operations
    were settled."""
    return _settle(
        contract_id,
        Operation.objects.filter(invoice_id=invoice_id, settlement=Settlement.INVOICED),
        to=Settlement.PAID,
        paid_outside=_paid_outside(invoice_id),
    )


def record_paid_outside(*, contract_id, invoice_id, total: int) -> int:
    """Payments says `total` of the invoice was paid outside its debit so far: the
    outstanding balance drops by what is new in it. Returns that change; a repeated or
    late event (a total not above the one held) changes nothing."""
    with transaction.atomic():
        account = ContractAccount.objects.select_for_update().filter(pk=contract_id).first()
        held, _ = InvoicePaidOutside.objects.select_for_update().get_or_create(
            invoice_id=invoice_id, defaults={"contract_id": contract_id, "amount": 0}
        )
        change = total - held.amount
        if change <= 0:
            return 0
        held.amount = total
        held.save(update_fields=["amount", "updated_at"])
        if account is not None:
            account.invoiced_unpaid -= change
            account.save(update_fields=["invoiced_unpaid", "updated_at"])
        return change


def _paid_outside(invoice_id) -> int:
    """What of the invoice's operations is not in the outstanding balance: paid outside
    the debit, or credited, less the rounding adjustment counted in it with them."""
    held = InvoicePaidOutside.objects.filter(pk=invoice_id).values_list("amount", "credited", "adjustment").first()
    return held[0] + held[1] - held[2] if held else 0


def record_credit(*, contract_id, invoice_id, credited: int) -> int:
    """A credit note lowered the invoice to `credited` in all (its total so far): what is
    new in it leaves the outstanding balance, unless the invoice is paid already (its
    amount left then; payments owes the customer a refund). Returns the change; a
    repeated or late event changes nothing."""
    with transaction.atomic():
        account = ContractAccount.objects.select_for_update().filter(pk=contract_id).first()
        held, _ = InvoicePaidOutside.objects.select_for_update().get_or_create(
            invoice_id=invoice_id, defaults={"contract_id": contract_id, "amount": 0}
        )
        change = credited - held.credited
        if change <= 0 or held.cancelled:
            return 0
        held.credited = credited
        held.save(update_fields=["credited", "updated_at"])
        paid = Operation.objects.filter(invoice_id=invoice_id, settlement=Settlement.PAID).exists()
        if account is not None and not paid:
            account.invoiced_unpaid -= change
            account.save(update_fields=["invoiced_unpaid", "updated_at"])
        return change


def cancel_invoice(*, contract_id, invoice_id, operation_ids: list[str]) -> int:
    """A credit note cancelled the invoice: its operations are unbilled again, to be
    invoiced anew, and the outstanding balance counts them as such. What was paid outside
    the debit or credited no longer lowers it (payments holds that money as the customer's
    credit or refund). Returns how many operations went back; a repeated event changes
    nothing."""
    with transaction.atomic():
        account = ContractAccount.objects.select_for_update().filter(pk=contract_id).first()
        held, _ = InvoicePaidOutside.objects.select_for_update().get_or_create(
            invoice_id=invoice_id, defaults={"contract_id": contract_id, "amount": 0}
        )
        if held.cancelled:
            return 0
        moving = list(
            Operation.objects.filter(pk__in=operation_ids, contract_id=contract_id)
            .select_for_update()
            .only("id", "type", "amount", "settlement", "invoice_id")
        )
        invoiced = sum(op.signed_amount for op in moving if op.settlement == Settlement.INVOICED)
        paid = sum(op.signed_amount for op in moving if op.settlement == Settlement.PAID)
        was_paid = any(op.settlement == Settlement.PAID for op in moving)
        if account is not None:
            account.unbilled += invoiced + paid
            account.invoiced_unpaid -= invoiced
            if not was_paid:
                account.invoiced_unpaid += held.amount + held.credited - held.adjustment
            account.save(update_fields=["unbilled", "invoiced_unpaid", "updated_at"])
        Operation.objects.filter(pk__in=[op.pk for op in moving]).update(
            settlement=Settlement.UNBILLED, invoice_id=None
        )
        held.cancelled = True
        held.save(update_fields=["cancelled", "updated_at"])
        return len(moving)


def reopen_invoice(*, contract_id, invoice_id) -> int:
    """The invoice's collection came back after it succeeded (returned or refunded): its
    operations are invoiced and unpaid again, and their amount is back in the outstanding
    balance, taking that much credit again. The reverse of `mark_invoice_paid`; a
    repeated event changes nothing. Returns how many operations were reopened."""
    return _settle(
        contract_id,
        Operation.objects.filter(invoice_id=invoice_id, settlement=Settlement.PAID),
        to=Settlement.INVOICED,
        reopening=True,
        paid_outside=_paid_outside(invoice_id),
    )


def _settle(contract_id, operations, *, to: str, invoice_id=None, reopening: bool = False, paid_outside=0) -> int:
    """Move the contract's `operations` one step on their way to being paid, and their
    amount out of the balance bucket they leave (into the next one, if any)."""
    with transaction.atomic():
        account = ContractAccount.objects.select_for_update().filter(pk=contract_id).first()
        moving = list(operations.filter(contract_id=contract_id).select_for_update().only("id", "type", "amount"))
        if not moving:
            return 0
        changes = {"settlement": to} | ({"invoice_id": invoice_id} if invoice_id else {})
        Operation.objects.filter(pk__in=[op.pk for op in moving]).update(**changes)
        if account is not None:
            amount = sum(op.signed_amount for op in moving) - paid_outside
            if reopening:
                account.invoiced_unpaid += amount
            elif to == Settlement.INVOICED:
                account.unbilled -= amount
                account.invoiced_unpaid += amount
            else:
                account.invoiced_unpaid -= amount
            account.save(update_fields=["unbilled", "invoiced_unpaid", "updated_at"])
        return len(moving)
