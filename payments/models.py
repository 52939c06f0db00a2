"""Tables of the payments context. State changes go through `payments.services` only."""

import uuid

from django.db import models
from django.db.models.functions import Now

from boissipay.history import track


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
    # After it succeeded, the debit came back: returned by the debtor's bank (closed
    # account, no mandate...), or refunded at the debtor's request (MD06, up to 8 weeks).
    RETURNED = "returned", "Returned"
    REFUNDED = "refunded", "Refunded"
    # Its invoice was credited in full before it was collected: nothing to collect.
    CANCELLED = "cancelled", "Cancelled"


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
    allocated = models.BigIntegerField(
        default=0,
        db_default=0,
        help_text="Paid outside the debit (transfers, cheques, customer credit); the debit takes the rest.",
    )
    credited = models.BigIntegerField(
        default=0,
        db_default=0,
        help_text="Lowered by credit notes before it was collected; the debit takes the rest.",
    )
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
    reason_code = models.CharField(
        max_length=4, blank=True, default="", help_text="The bank's ISO 20022 reason code of the last reject or return."
    )
    returned_at = models.DateTimeField(null=True, blank=True)
    on_hold = models.CharField(
        max_length=500,
        blank=True,
        default="",
        db_default="",
        help_text="Why its debit waits for staff (the e-invoicing platform rejected the invoice, or the buyer "
        "refused it); empty: not held.",
    )
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "due_date"], name="payment_status_due")]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(allocated__gte=0, allocated__lte=models.F("amount")),
                name="payment_allocated_within_amount",
            ),
            models.CheckConstraint(
                condition=models.Q(credited__gte=0, credited__lte=models.F("amount") - models.F("allocated")),
                name="payment_credited_within_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.invoice_number}: {self.amount} {self.currency} ({self.status})"

    @property
    def to_collect(self) -> int:
        """What the direct debit is to take: the invoice less what was paid otherwise or credited."""
        return self.amount - self.allocated - self.credited


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


class BankFileKind(models.TextChoices):
    STATUS_REPORT = "pain.002", "pain.002 status report (rejects before settlement)"
    NOTIFICATION = "camt.054", "camt.054 debit/credit notification (settlements, returns, refunds)"
    STATEMENT = "camt.053", "camt.053 account statement (settlements, returns, refunds)"


class BankFile(models.Model):
    """A file the bank sent (pain.002, camt.054), imported once: the same file again is
    recognised by its SHA-256 and applies nothing."""

    id = models.BigAutoField(primary_key=True)
    sha256 = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=8, choices=BankFileKind.choices)
    message_id = models.CharField(max_length=35, help_text="The bank's message id (GrpHdr/MsgId).")
    file_name = models.CharField(max_length=255, blank=True, default="")
    imported_by = models.CharField(max_length=150, help_text="Who imported it: a staff user, or a command.")
    imported_at = models.DateTimeField(db_default=Now(), editable=False)
    entries_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-imported_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.message_id}"


class BankEntryOutcome(models.TextChoices):
    APPLIED = "applied", "Applied"
    ALREADY_APPLIED = "already", "Already applied"
    IGNORED = "ignored", "Ignored (the payment was not awaiting it)"
    UNKNOWN = "unknown", "Unknown end-to-end id"
    REFUSED = "refused", "Refused (amount or currency differs)"


class BankFileEntry(models.Model):
    """One transaction of a bank file and what became of it. Every entry is kept, an
    unknown end-to-end id included: reported, never dropped."""

    id = models.BigAutoField(primary_key=True)
    bank_file = models.ForeignKey(BankFile, on_delete=models.PROTECT, related_name="entries")
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="bank_entries")
    end_to_end_id = models.CharField(max_length=35)
    kind = models.CharField(max_length=10, help_text="rejected, settled, returned or refunded")
    reason_code = models.CharField(max_length=4, blank=True, default="")
    amount = models.BigIntegerField(null=True, blank=True, help_text="Minor units.")
    currency = models.CharField(max_length=3, blank=True, default="")
    bank_reference = models.CharField(max_length=100)
    outcome = models.CharField(max_length=8, choices=BankEntryOutcome.choices)
    detail = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["bank_file", "id"]
        verbose_name_plural = "bank file entries"

    def __str__(self) -> str:
        return f"{self.end_to_end_id} {self.kind} {self.reason_code}: {self.outcome}"


class ManualPaymentMethod(models.TextChoices):
    TRANSFER = "transfer", "Transfer"
    CHEQUE = "cheque", "Cheque"
    # Not money received: a credit note that left more than the invoice's debit had to
    # take (payments.credit_notes). The customer's credit all the same.
    CREDIT_NOTE = "credit_note", "Credit note"


@track()
class ManualPayment(models.Model):
    """Money a customer sent outside the direct debit (a transfer, a cheque), recorded by
    staff and allocated to its invoices. What is not allocated is the customer's credit,
    which the next invoices use."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer_id = models.UUIDField(db_index=True)
    method = models.CharField(max_length=11, choices=ManualPaymentMethod.choices)
    amount = models.BigIntegerField(help_text="Minor units.")
    currency = models.CharField(max_length=3)
    received_on = models.DateField()
    bank_reference = models.CharField(max_length=100, unique=True, help_text="The bank's or the cheque's reference.")
    unallocated = models.BigIntegerField(help_text="Not allocated yet: the customer's credit (minor units).")
    recorded_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["-received_on", "-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="manual_payment_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(unallocated__gte=0, unallocated__lte=models.F("amount")),
                name="manual_payment_unallocated_within_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.bank_reference}: {self.amount} {self.currency}"


class Allocation(models.Model):
    """Part of a manual payment applied to an invoice's collection."""

    id = models.BigAutoField(primary_key=True)
    manual_payment = models.ForeignKey(ManualPayment, on_delete=models.PROTECT, related_name="allocations")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="allocations")
    amount = models.BigIntegerField(help_text="Minor units.")
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="allocation_amount_positive")]

    def __str__(self) -> str:
        return f"{self.amount} to {self.payment.invoice_number}"


class RefundStatus(models.TextChoices):
    HELD = "held", "Held until the debit is settled"
    OWED = "owed", "Owed"
    EXPORTED = "exported", "Exported (credit transfer)"
    VOID = "void", "Void (the debit was not collected)"


class Refund(models.Model):
    """Money owed back to a customer after a credit note on a collected invoice, paid by
    a SEPA credit transfer (a pain.001 export). Held while the debit is at the bank: owed
    once it is settled, void (the debit lowered instead) if it fails."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    credit_note_id = models.UUIDField(unique=True)
    credit_note_number = models.CharField(max_length=20)
    customer_id = models.UUIDField(null=True, blank=True)
    contract_id = models.UUIDField(db_index=True)
    amount = models.BigIntegerField(help_text="Minor units.")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=8, choices=RefundStatus.choices, default=RefundStatus.OWED)
    export = models.ForeignKey("RefundExport", null=True, blank=True, on_delete=models.PROTECT, related_name="refunds")
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="refund_amount_positive")]

    def __str__(self) -> str:
        return f"{self.credit_note_number}: {self.amount} {self.currency} ({self.status})"


class RefundExport(models.Model):
    """A pain.001 credit-transfer file paying owed refunds, kept as produced."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    message_id = models.CharField(max_length=35, unique=True)
    currency = models.CharField(max_length=3)
    count = models.PositiveIntegerField()
    total = models.BigIntegerField(help_text="Minor units.")
    xml = models.TextField()
    exported_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.message_id}: {self.count} refunds, {self.total} {self.currency}"
