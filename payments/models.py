"""Tables of the payments context. State changes go through `payments.services` only."""

import uuid

from django.db import models
from django.db.models.functions import Now


class PaymentItemStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SETTLED = "settled", "Settled"


class PaymentItem(models.Model):
    """What one accepted operation adds to (or, for a refund, takes off) what the
    contract owes: pending until the collection of the invoice that bills it settles it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    operation_id = models.UUIDField(unique=True)
    contract_id = models.UUIDField(db_index=True)
    operation_type = models.CharField(max_length=8)
    external_ref = models.CharField(max_length=100)
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField(help_text="Signed minor units: a refund is negative.")
    status = models.CharField(max_length=8, choices=PaymentItemStatus.choices, default=PaymentItemStatus.PENDING)
    invoice_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.operation_type} {self.external_ref}: {self.amount} {self.currency} ({self.status})"
