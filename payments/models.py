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


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUBMITTED = "submitted", "Submitted"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Payment(models.Model):
    """The collection of one invoice by direct debit. A failed attempt goes back to
    pending for the next retry date; after the last retry it is failed for good."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    invoice_id = models.UUIDField(unique=True)
    invoice_number = models.CharField(max_length=20)
    contract_id = models.UUIDField(db_index=True)
    contract_reference = models.CharField(max_length=50)
    customer_id = models.UUIDField(null=True, blank=True)
    amount = models.BigIntegerField(help_text="Minor units.")
    currency = models.CharField(max_length=3)
    original_due_date = models.DateField(help_text="The invoice's due date: the first debit date.")
    due_date = models.DateField(help_text="When the current attempt is to be submitted.")
    status = models.CharField(max_length=10, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    gateway = models.CharField(max_length=12, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    mandate_reference = models.CharField(max_length=35, blank=True, default="")
    sequence_type = models.CharField(max_length=4, blank=True, default="", help_text="SEPA FRST or RCUR")
    provider_reference = models.CharField(max_length=100, blank=True, default="", db_index=True)
    failure_reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "due_date"], name="payment_status_due")]
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_amount_positive")]

    def __str__(self) -> str:
        return f"{self.invoice_number}: {self.amount} {self.currency} ({self.status})"


class PaymentLog(models.Model):
    """What happened to a payment: gateway calls, webhooks received, imported statuses,
    staff actions. A provider's event id is unique: a webhook delivered twice is
    recorded (and applied) once."""

    id = models.BigAutoField(primary_key=True)
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="log")
    kind = models.CharField(max_length=20, help_text="gateway_call, webhook, status_import, staff")
    provider_event_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    summary = models.CharField(max_length=500)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.summary}"
