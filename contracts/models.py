"""Tables of the contracts context: customers, contracts, direct-debit mandates and
subscribers. State changes go through `contracts.services` only."""

import datetime as dt
import uuid

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from boissipay.history import track
from contracts import validators


@track()
class Customer(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    legal_name = models.CharField(max_length=200)
    siren = models.CharField("SIREN", max_length=9, unique=True, validators=[validators.validate_siren])
    vat_number = models.CharField(
        "intra-EU VAT number", max_length=20, blank=True, default="", validators=[validators.validate_vat_number]
    )
    billing_email = models.EmailField()
    # The billing address, structured (Factur-X BT-50 to BT-55), and as printed.
    address_lines = models.TextField(
        "street lines", blank=True, default="", help_text="Up to three lines: number and street, building..."
    )
    postcode = models.CharField(max_length=16, blank=True, default="")
    city = models.CharField(max_length=100, blank=True, default="")
    billing_address = models.TextField(help_text="The address as printed: its lines, then the postcode and city.")
    country = models.CharField(
        max_length=2, default="FR", help_text="ISO 3166-1 alpha-2", validators=[validators.validate_country]
    )
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["legal_name"]

    def __str__(self) -> str:
        return f"{self.legal_name} ({self.siren})"


class ContractStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    CANCELLED = "cancelled", "Cancelled"


@track()
class Contract(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="contracts")
    reference = models.CharField(max_length=50, unique=True)
    currency = models.CharField(max_length=3, default="EUR", validators=[validators.validate_currency])
    credit_limit = models.BigIntegerField(help_text="In minor units of the currency.")
    starts_on = models.DateField()
    ends_on = models.DateField(null=True, blank=True, help_text="Empty for an open-ended contract.")
    payment_terms_days = models.PositiveSmallIntegerField(default=30)
    vat_scheme = models.CharField(
        max_length=20,
        choices=[
            ("standard", "VAT itemised"),
            ("travel_agent_margin", "Travel agents' margin scheme (CGI art. 266-1-e and 306)"),
        ],
        default="standard",
        help_text="How its invoices show VAT: itemised, or under the travel agents' margin scheme (not shown).",
    )
    status = models.CharField(max_length=10, choices=ContractStatus.choices, default=ContractStatus.ACTIVE)
    status_reason = models.CharField(max_length=500, blank=True, default="")
    version = models.PositiveIntegerField(default=1, help_text="Bumped by every change; read models keep the newest.")
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "reference"]
        constraints = [
            models.CheckConstraint(condition=Q(credit_limit__gte=0), name="contract_credit_limit_not_negative"),
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gt=models.F("starts_on")),
                name="contract_ends_after_it_starts",
            ),
            models.CheckConstraint(condition=Q(status__in=ContractStatus.values), name="contract_status_valid"),
        ]
        indexes = [models.Index(fields=["status", "ends_on"], name="contract_status_ends_on")]

    def __str__(self) -> str:
        return self.reference

    def is_expired(self, on: dt.date) -> bool:
        return self.ends_on is not None and on > self.ends_on

    def lifecycle_status(self, on: dt.date) -> str:
        """The status as shown to users: `expired` is derived from `ends_on`."""
        if self.status == ContractStatus.ACTIVE and self.is_expired(on):
            return "expired"
        return self.status


class MandateStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    REVOKED = "revoked", "Revoked"


@track()
class Mandate(models.Model):
    """A SEPA direct-debit mandate. A contract has at most one current mandate; a new one
    replaces the previous (which stays, no longer current, for the record)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="mandates")
    reference = models.CharField(max_length=35, unique=True, help_text="SEPA unique mandate reference (UMR).")
    iban = models.CharField("IBAN", max_length=34, validators=[validators.validate_iban])
    bic = models.CharField("BIC", max_length=11, blank=True, default="", validators=[validators.validate_bic])
    signed_on = models.DateField()
    expires_on = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=MandateStatus.choices, default=MandateStatus.ACTIVE)
    is_current = models.BooleanField(default=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revocation_reason = models.CharField(max_length=500, blank=True, default="")
    signed_document = models.FileField(
        "signed mandate (PDF)", upload_to="mandates/%Y/", blank=True, default="", db_default=""
    )
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["contract"], condition=Q(is_current=True), name="one_current_mandate_per_contract"
            ),
            models.CheckConstraint(condition=Q(status__in=MandateStatus.values), name="mandate_status_valid"),
            models.CheckConstraint(
                condition=Q(expires_on__isnull=True) | Q(expires_on__gte=models.F("signed_on")),
                name="mandate_expires_after_signature",
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def masked_iban(self) -> str:
        return mask_iban(self.iban)

    def is_valid_on(self, on: dt.date) -> bool:
        return self.status == MandateStatus.ACTIVE and (self.expires_on is None or on <= self.expires_on)


def mask_iban(iban: str) -> str:
    """`FR76 **** **** **** **** ***0 189`-style: country, check digits and last 4 only."""
    if len(iban) <= 8:
        return "*" * len(iban)
    return iban[:4] + "*" * (len(iban) - 8) + iban[-4:]


@track()
class Subscriber(models.Model):
    """A person or entity of the customer allowed to buy under the contract."""

    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="subscribers")
    external_ref = models.CharField(max_length=100)
    display_name = models.CharField(max_length=200)
    monthly_cap = models.BigIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="At most this much spent by this subscriber per month (Europe/Paris), in minor units of the "
        "contract's currency; empty: only the contract's limit applies.",
    )
    registered_at = models.DateTimeField(db_default=Now(), editable=False)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["external_ref"]
        constraints = [
            models.UniqueConstraint(
                fields=["contract", "external_ref"],
                condition=Q(removed_at__isnull=True),
                name="one_registered_subscriber_per_ref",
            )
        ]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.external_ref})"
