"""Commands of the payments context."""

import uuid

from django.db import transaction

from payments.models import PaymentItem


def record_payment_item(
    *, operation_id: uuid.UUID | str, contract_id, operation_type: str, external_ref: str, currency: str, amount: int
) -> PaymentItem:
    """Record the pending payment item of an accepted operation; a second call for the
    same operation returns the first item (the unique operation id makes it so)."""
    signed = -amount if operation_type == "refund" else amount
    with transaction.atomic():
        item, _ = PaymentItem.objects.get_or_create(
            operation_id=operation_id,
            defaults={
                "contract_id": contract_id,
                "operation_type": operation_type,
                "external_ref": external_ref,
                "currency": currency,
                "amount": signed,
            },
        )
    return item
