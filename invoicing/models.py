"""Tables of the invoicing context: its read models (the contracts to invoice and the
accepted operations to bill, both fed by events), billing runs and invoices. State
changes go through `invoicing.services` only."""

import uuid

from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Now

from boissipay.history import track


class InvoicingContract(models.Model):
    """What invoicing needs of a contract to issue its invoice, from contract events."""

    contract_id = models.UUIDField(primary_key=True)
    reference = models.CharField(max_length=50, db_index=True)
    customer_id = models.UUIDField()
    buyer = models.JSONField(help_text="legal_name, siren, vat_number, billing_email, billing_address, country")
    currency = models.CharField(max_length=3)
    payment_terms_days = models.PositiveSmallIntegerField()
    mandate_reference = models.CharField(max_length=35, blank=True, default="")
    iban_masked = models.CharField(max_length=40, blank=True, default="")
    subscribers = models.JSONField(default=dict, blank=True, help_text="{subscriber ref: display name}: travellers")
    vat_scheme = models.CharField(max_length=20, default="standard", db_default="standard")
    contract_version = models.PositiveIntegerField()

    class Meta:
        ordering = ["reference"]

    def __str__(self) -> str:
        return self.reference


class InvoiceKind(models.TextChoices):
    INVOICE = "invoice", "Invoice"
    CREDIT_NOTE = "credit_note", "Credit note"


class InvoiceStatus(models.TextChoices):
    ISSUED = "issued", "Issued"
    SENT = "sent", "Sent"
    PAID = "paid", "Paid"
    FAILED = "failed", "Failed"
    # Credited in full by a credit note on demand: its operations are invoiced again.
    CANCELLED = "cancelled", "Cancelled"


class BillingRunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    INTERRUPTED = "interrupted", "Interrupted"


@track()
class BillingRun(models.Model):
    """One execution of the monthly billing run, whoever started it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    period = models.DateField(help_text="First day of the month invoiced.")
    trigger = models.CharField(max_length=10, help_text="beat, command, admin or api")
    started_by = models.CharField(max_length=150, blank=True, default="")
    contract_reference = models.CharField(max_length=50, blank=True, default="", help_text="Only this contract.")
    dry_run = models.BooleanField(default=False)
    early = models.BooleanField(
        default=False,
        help_text="An early invoice of one contract, asked for by staff before its month ended "
        "(the month's later operations go on the next invoice).",
    )
    reason = models.CharField(max_length=500, blank=True, default="", help_text="Why staff invoiced early.")
    status = models.CharField(max_length=12, choices=BillingRunStatus.choices, default=BillingRunStatus.QUEUED)
    contracts_invoiced = models.PositiveIntegerField(default=0)
    invoices_count = models.PositiveIntegerField(default=0)
    credit_notes_count = models.PositiveIntegerField(default=0)
    operations_count = models.PositiveIntegerField(default=0)
    totals = models.JSONField(default=dict, help_text="{currency: {excl_tax, vat, incl_tax}}")
    errors = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.period:%Y-%m} ({self.status})"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


@track()
class Invoice(models.Model):
    """An invoice or a credit note. Totals are the signed sums of its lines (negative
    for a credit note); its lines are the billable operations that point to it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=20, unique=True, null=True, blank=True)
    kind = models.CharField(max_length=12, choices=InvoiceKind.choices)
    contract_id = models.UUIDField(db_index=True)
    contract_reference = models.CharField(max_length=50)
    customer_id = models.UUIDField()
    buyer = models.JSONField()
    period = models.DateField()
    issue_date = models.DateField()
    due_date = models.DateField()
    currency = models.CharField(max_length=3)
    total_excl_tax = models.BigIntegerField()
    total_vat = models.BigIntegerField()
    total_incl_tax = models.BigIntegerField()
    vat_breakdown = models.JSONField(default=list)
    operations_count = models.PositiveIntegerField()
    mandate_reference = models.CharField(max_length=35, blank=True, default="")
    iban_masked = models.CharField(max_length=40, blank=True, default="")
    status = models.CharField(max_length=10, choices=InvoiceStatus.choices, default=InvoiceStatus.ISSUED)
    billing_run = models.ForeignKey(
        BillingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="invoices"
    )
    pdf = models.FileField(upload_to="invoices/%Y/", blank=True, default="")
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    sent_at = models.DateTimeField(null=True, blank=True)
    sent_count = models.PositiveSmallIntegerField(default=0)
    # db_default: the billing run inserts invoices in SQL, naming only the columns it fills.
    sending_failures = models.PositiveSmallIntegerField(
        default=0, db_default=0, help_text="Failed attempts since the last sending."
    )
    sending_error = models.TextField(
        blank=True, default="", db_default="", help_text="Why the last attempt to send it failed."
    )
    paid_at = models.DateTimeField(null=True, blank=True)
    paid_outside = models.BigIntegerField(
        default=0,
        db_default=0,
        help_text="Paid by transfer, cheque or customer credit so far (minor units): partly paid when short.",
    )
    vat_scheme = models.CharField(
        max_length=20,
        default="standard",
        db_default="standard",
        help_text="standard (VAT itemised) or travel_agent_margin (the travel agents' margin scheme: VAT not shown)",
    )
    rounding_adjustment = models.BigIntegerField(
        default=0,
        db_default=0,
        help_text="Total incl. tax less the sum of its operations' amounts: the VAT per rate is computed on the "
        "invoice's bases (EN 16931), a few minor units at most from the operations' (ADR 0027).",
    )
    # E-invoicing (issue 16): a domestic B2B invoice is deposited on an approved platform,
    # which answers with lifecycle statuses (InvoiceLifecycleStatus); others are e-mailed.
    channel = models.CharField(
        max_length=8, blank=True, default="", db_default="", help_text="How it was sent: platform or email."
    )
    platform_message_id = models.CharField(
        max_length=100, null=True, blank=True, unique=True, help_text="The platform's id of the deposit."
    )
    platform_status = models.CharField(
        max_length=20, blank=True, default="", db_default="", help_text="The platform's last lifecycle status."
    )
    # Credit notes on demand (issue 15, section 4): a credit note refers to the invoice it
    # corrects (EN 16931 BT-25); the invoice keeps the total credited so far.
    corrects = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="credit_notes",
        help_text="The invoice this credit note corrects (BT-25).",
    )
    credited = models.BigIntegerField(
        default=0, db_default=0, help_text="Credited by credit notes so far (minor units, incl. tax)."
    )
    reason = models.CharField(
        max_length=500, blank=True, default="", db_default="", help_text="Why staff issued this credit note."
    )
    issued_by = models.CharField(
        max_length=150, blank=True, default="", db_default="", help_text="Who issued this credit note."
    )

    class Meta:
        ordering = ["-issue_date", "-number"]
        indexes = [models.Index(fields=["period", "status"], name="invoice_period_status")]

    def __str__(self) -> str:
        return self.number or f"(unnumbered {self.id})"


class LifecycleStatus(models.TextChoices):
    DEPOSITED = "deposited", "Deposited"
    RECEIVED = "received", "Received by the buyer's platform"
    REJECTED = "rejected", "Rejected (format error)"
    REFUSED = "refused", "Refused by the buyer"
    APPROVED = "approved", "Approved by the buyer"
    PAID = "paid", "Paid (reported by us)"
    PAYMENT_CANCELLED = "payment_cancelled", "Payment cancelled (reported by us)"


class InvoiceLifecycleStatus(models.Model):
    """One step of an invoice's life on the e-invoicing platform: a status the platform
    called back with (its event id, once), or one we reported (paid, and its correction)."""

    id = models.BigAutoField(primary_key=True)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lifecycle")
    status = models.CharField(max_length=20, choices=LifecycleStatus.choices)
    reason = models.CharField(max_length=500, blank=True, default="")
    source = models.CharField(max_length=10, help_text="platform or boissipay")
    event_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["occurred_at", "id"]

    def __str__(self) -> str:
        return f"{self.invoice}: {self.status}"


class CreditNoteLine(models.Model):
    """A line of a credit note issued on demand: an operation of the corrected invoice
    credited whole, or an amount at one VAT rate. Amounts are signed like the credit
    note's totals (negative)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    credit_note = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_lines")
    position = models.PositiveSmallIntegerField()
    date = models.DateField(help_text="The operation's day, or the credit note's.")
    description = models.CharField(max_length=500)
    operation_id = models.UUIDField(null=True, blank=True, help_text="The operation credited, when one is.")
    external_ref = models.CharField(max_length=100, blank=True, default="")
    purchase_order = models.CharField(max_length=100, blank=True, default="")
    cost_centre = models.CharField(max_length=100, blank=True, default="")
    amount_excl_tax = models.BigIntegerField()
    vat_amount = models.BigIntegerField()
    amount = models.BigIntegerField()
    vat_breakdown = models.JSONField(default=list, help_text="[{rate, base, vat}], signed")

    class Meta:
        ordering = ["credit_note", "position"]
        constraints = [
            models.UniqueConstraint(fields=["credit_note", "position"], name="one_credit_line_per_position"),
        ]

    def __str__(self) -> str:
        return f"{self.credit_note} #{self.position}"

    @property
    def type(self) -> str:
        return "credit"


class InvoiceSequence(models.Model):
    """The last invoice number used in a year: numbers are taken under this row's lock
    in the transaction that issues the invoices, so they are sequential and gapless."""

    year = models.PositiveSmallIntegerField(primary_key=True)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.last_number}"


class BillingBatch(models.Model):
    """The accepted operations of one contract and month waiting for their invoice, with
    their running totals.

    Taking an operation in locks the open batch of its contract and month, inserts the
    operation and adds it to the batch's totals and VAT lines, in one transaction; the
    billing run locks the batch FOR UPDATE, invoices its totals, then seals it by attaching
    it to the invoice. So the run waits for operations being taken in, an operation
    arriving after the seal opens a new batch, billed by the next run, and the run reads
    and writes per contract, not per operation."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    contract_id = models.UUIDField()
    period = models.DateField(help_text="First day of the Paris month of its operations.")
    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="batches")
    operations_count = models.PositiveIntegerField(default=0, db_default=0)
    total_excl_tax = models.BigIntegerField(default=0, db_default=0, help_text="Signed sum of its operations.")
    total_vat = models.BigIntegerField(default=0, db_default=0)
    total_incl_tax = models.BigIntegerField(default=0, db_default=0)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["contract_id", "period"], condition=Q(invoice__isnull=True), name="one_open_batch_per_month"
            )
        ]
        indexes = [
            models.Index(fields=["period"], name="billingbatch_open", condition=Q(invoice__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.contract_id} {self.period:%Y-%m} ({'invoiced' if self.invoice_id else 'open'})"


class BillingBatchVat(models.Model):
    """A batch's VAT at one rate: the signed sums of its operations' VAT lines."""

    batch = models.ForeignKey(BillingBatch, on_delete=models.CASCADE, related_name="vat_lines")
    rate = models.CharField(max_length=6)
    base = models.BigIntegerField()
    vat = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["batch", "rate"], name="one_vat_line_per_rate")]

    def __str__(self) -> str:
        return f"{self.rate}%: {self.base} / {self.vat}"


class BillableOperation(models.Model):
    """An accepted purchase or refund, from billing's events, in the batch of its contract
    and month. Amounts are signed: a refund is negative. Never updated once taken in."""

    operation_id = models.UUIDField(primary_key=True)
    contract_id = models.UUIDField(db_index=True)
    batch = models.ForeignKey(BillingBatch, on_delete=models.PROTECT, related_name="operations")
    type = models.CharField(max_length=8)
    external_ref = models.CharField(max_length=100)
    purchase_order = models.CharField(max_length=100, blank=True, default="")
    cost_centre = models.CharField(max_length=100, blank=True, default="")
    subscriber_ref = models.CharField(max_length=100, blank=True, default="", db_default="")
    travel_date = models.DateField(null=True, blank=True)
    items = models.JSONField(
        default=list,
        db_default=Value([], models.JSONField()),
        help_text="[{order, label, quantity, unit_amount, vat_rate, amount_excl_tax, vat_amount}]: the invoice's "
        "lines, one per item",
    )
    description = models.CharField(max_length=500)
    currency = models.CharField(max_length=3)
    amount_excl_tax = models.BigIntegerField()
    vat_amount = models.BigIntegerField()
    amount = models.BigIntegerField()
    vat_breakdown = models.JSONField(default=list, help_text="[{rate, base, vat}], signed")
    decided_at = models.DateTimeField()
    period = models.DateField(help_text="First day of the Paris month the operation was decided in.")
    received_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["decided_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.external_ref}"

    @property
    def invoice(self) -> Invoice | None:
        return self.batch.invoice
