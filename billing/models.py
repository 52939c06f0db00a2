"""Tables of the billing context: its own read model of each contract (fed only by
contract events) and the operations decided against it. State changes go through
`billing.services` only."""

import uuid

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now


class Balance:
    """The outstanding balance of an account and the credit still available under its
    limit: the one definition, for the model and for the row the decision locks
    (billing.sql.LockedAccount)."""

    credit_limit: int
    unbilled: int
    invoiced_unpaid: int

    @property
    def outstanding(self) -> int:
        return self.unbilled + self.invoiced_unpaid

    @property
    def available(self) -> int:
        return max(0, self.credit_limit - self.outstanding)


class ContractAccount(Balance, models.Model):
    """What billing knows of a contract, built from the contracts context's events, plus
    the running balance of its operations.

    `unbilled` and `invoiced_unpaid` are kept in step with the operations in the same
    transaction that decides them; the outstanding balance is their sum."""

    contract_id = models.UUIDField(primary_key=True)
    reference = models.CharField(max_length=50, db_index=True)
    customer_id = models.UUIDField(db_index=True)
    customer_name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3)
    credit_limit = models.BigIntegerField(help_text="In minor units of the currency.")
    starts_on = models.DateField()
    ends_on = models.DateField(null=True, blank=True)
    payment_terms_days = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10, help_text="active, suspended or cancelled, as the contracts context said.")
    mandate_reference = models.CharField(max_length=35, blank=True, default="")
    mandate_status = models.CharField(max_length=10, blank=True, default="")
    mandate_expires_on = models.DateField(null=True, blank=True)
    subscriber_refs = models.JSONField(default=list, blank=True)
    subscriber_caps = models.JSONField(
        default=dict, blank=True, help_text="{subscriber ref: monthly cap in minor units}, for capped subscribers."
    )
    contract_version = models.PositiveIntegerField(help_text="Version of the newest contract event applied.")
    unbilled = models.BigIntegerField(default=0, help_text="Accepted, not yet invoiced (refunds count negative).")
    invoiced_unpaid = models.BigIntegerField(default=0, help_text="Invoiced, awaiting collection.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["reference"]
        verbose_name = "contract account"

    def __str__(self) -> str:
        return self.reference


class OperationType(models.TextChoices):
    PURCHASE = "purchase", "Purchase"
    REFUND = "refund", "Refund"


class OperationStatus(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class Settlement(models.TextChoices):
    """Where an accepted operation is on its way to being paid."""

    UNBILLED = "unbilled", "Unbilled"
    INVOICED = "invoiced", "Invoiced"
    PAID = "paid", "Paid"


class Operation(models.Model):
    """A purchase or refund submitted by a client system, accepted or rejected. Amounts
    are positive minor units computed from the items; a refund lowers the balance."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Not a foreign key: a rejected operation may name a contract billing does not know.
    contract_id = models.UUIDField()
    customer_id = models.UUIDField(null=True, blank=True)
    contract_reference = models.CharField(max_length=50, blank=True, default="")
    type = models.CharField(max_length=8, choices=OperationType.choices)
    status = models.CharField(max_length=8, choices=OperationStatus.choices)
    reason_code = models.CharField(max_length=40, blank=True, default="")
    reason_detail = models.CharField(max_length=500, blank=True, default="")
    external_ref = models.CharField(max_length=100)
    subscriber_ref = models.CharField(max_length=100, blank=True, default="")
    refund_of = models.UUIDField(null=True, blank=True, help_text="Refunds: the purchase refunded, as submitted.")
    purchase_order = models.CharField(max_length=100, blank=True, default="")
    cost_centre = models.CharField(max_length=100, blank=True, default="")
    travel_date = models.DateField(null=True, blank=True, help_text="The day of travel, shown on the invoice line.")
    currency = models.CharField(max_length=3)
    amount_excl_tax = models.BigIntegerField()
    vat_amount = models.BigIntegerField()
    amount = models.BigIntegerField(help_text="Including tax, in minor units.")
    vat_breakdown = models.JSONField(default=list, help_text="[{rate, base, vat}] per VAT rate.")
    orders = models.JSONField(default=list)
    refunded_amount = models.BigIntegerField(default=0, help_text="Purchases: accepted refunds against it.")
    balance_after = models.BigIntegerField(null=True, blank=True, help_text="Outstanding balance after the decision.")
    settlement = models.CharField(max_length=8, choices=Settlement.choices, blank=True, default="")
    invoice_id = models.UUIDField(null=True, blank=True)
    decided_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["-decided_at"]
        indexes = [
            models.Index(fields=["contract_id", "decided_at"], name="operation_contract_decided"),
            models.Index(fields=["decided_at"], name="operation_decided"),
            # A subscriber's spending of the month, read when the subscriber has a cap.
            models.Index(
                fields=["contract_id", "subscriber_ref", "decided_at"],
                condition=Q(type="purchase", status="accepted"),
                name="operation_subscriber_month",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="operation_amount_not_negative"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=F("amount")),
                name="operation_refunds_within_amount",
            ),
            # One booking is counted once: a second accepted purchase (or refund) with the
            # same external reference on a contract is refused.
            models.UniqueConstraint(
                fields=["contract_id", "type", "external_ref"],
                condition=Q(status="accepted"),
                name="operation_accepted_external_ref_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.external_ref} ({self.status})"

    @property
    def signed_amount(self) -> int:
        return -self.amount if self.type == OperationType.REFUND else self.amount

    @property
    def refundable(self) -> int:
        return self.amount - self.refunded_amount


class OutOfScopeAttempt(models.Model):
    """An operation a customer-restricted API key submitted on a contract it cannot see
    (another customer's, or one billing does not know). It was answered like any unknown
    contract (422 `contract_unknown`) but written into no contract's history and
    published nowhere: only staff see it, here."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    contract_id = models.UUIDField(help_text="The contract named in the request.")
    customer_id = models.UUIDField(help_text="The customer the API key is restricted to.")
    type = models.CharField(max_length=8, choices=OperationType.choices)
    external_ref = models.CharField(max_length=100)
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField(help_text="Including tax, in minor units, as computed from the items.")
    orders = models.JSONField(default=list)
    attempted_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["-attempted_at"]
        indexes = [models.Index(fields=["attempted_at"], name="outofscope_attempted")]
        verbose_name = "out-of-scope attempt"

    def __str__(self) -> str:
        return f"{self.type} {self.external_ref} on {self.contract_id}"


class InvoicePaidOutside(models.Model):
    """How much of an invoice was paid outside its direct debit (transfers, cheques,
    customer credit), as payments said in `payments.payment.allocated`, and how much was
    credited by credit notes (`invoicing.credit_note.issued`): already out of the
    outstanding balance, so settling or reopening the invoice moves only the rest."""

    invoice_id = models.UUIDField(primary_key=True)
    contract_id = models.UUIDField(db_index=True)
    amount = models.BigIntegerField(help_text="Minor units, the total paid outside the debit so far.")
    credited = models.BigIntegerField(
        default=0, db_default=0, help_text="Minor units, the total credited by credit notes so far."
    )
    cancelled = models.BooleanField(
        default=False, db_default=False, help_text="Credited in full: its operations are unbilled again."
    )
    adjustment = models.BigIntegerField(
        default=0,
        db_default=0,
        help_text="Its total less its operations' amounts: the VAT per rate computed on the invoice's bases "
        "(EN 16931, ADR 0027), counted in the outstanding once it is sent.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "invoices paid outside the debit"

    def __str__(self) -> str:
        return f"{self.invoice_id}: {self.amount}"
