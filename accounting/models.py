"""Tables of the accounting context: the general ledger kept from the other contexts'
events (sales journal from invoices and credit notes, bank journal from collections,
returns, payments received and refunds), and what it needs to name a customer's
auxiliary account. Written by accounting.services only; nothing here is edited by hand."""

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now


class Journal(models.TextChoices):
    SALES = "VE", "Ventes"
    BANK = "BQ", "Banque"


class LedgerCustomer(models.Model):
    """A customer as the ledger names it (from contracts events)."""

    customer_id = models.UUIDField(primary_key=True)
    siren = models.CharField(max_length=9)
    legal_name = models.CharField(max_length=200)

    def __str__(self) -> str:
        return f"{self.legal_name} ({self.siren})"


class LedgerContract(models.Model):
    """Whose contract it is (from contracts events): a payment names only its contract."""

    contract_id = models.UUIDField(primary_key=True)
    customer_id = models.UUIDField()
    reference = models.CharField(max_length=50)

    def __str__(self) -> str:
        return self.reference


class JournalEntry(models.Model):
    """One balanced entry (écriture): its lines' debits equal their credits. Numbered
    without gaps per journal and year, in the order they were recorded."""

    id = models.BigAutoField(primary_key=True)
    journal = models.CharField(max_length=2, choices=Journal.choices)
    fiscal_year = models.PositiveSmallIntegerField(help_text="The calendar year of the entry date.")
    number = models.PositiveIntegerField(help_text="EcritureNum: without gaps per journal and year.")
    entry_date = models.DateField(help_text="EcritureDate (Europe/Paris).")
    piece_ref = models.CharField(max_length=50, help_text="PieceRef: the invoice, credit note or bank reference.")
    piece_date = models.DateField()
    label = models.CharField(max_length=200)
    customer_id = models.UUIDField(null=True, blank=True)
    currency = models.CharField(max_length=3)
    kind = models.CharField(
        max_length=20, help_text="invoice, credit_note, collection, return, manual_payment or refund"
    )
    source_ref = models.CharField(max_length=100, help_text="What it records, once: invoice id, payment id:attempt...")
    source_event_id = models.UUIDField(unique=True, help_text="The event it was recorded from (once).")
    source_event_type = models.CharField(max_length=100)
    recorded_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["journal", "entry_date", "number"]
        verbose_name = "écriture"
        verbose_name_plural = "écritures"
        constraints = [
            models.UniqueConstraint(fields=["journal", "fiscal_year", "number"], name="one_number_per_entry"),
            models.UniqueConstraint(fields=["kind", "source_ref"], name="each_thing_recorded_once"),
        ]
        indexes = [models.Index(fields=["entry_date", "journal"])]

    def __str__(self) -> str:
        return f"{self.journal} {self.entry_date:%Y} n°{self.number} — {self.label}"


class EntryLine(models.Model):
    id = models.BigAutoField(primary_key=True)
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="lines")
    account = models.CharField(max_length=20, help_text="CompteNum")
    account_label = models.CharField(max_length=100)
    customer_id = models.UUIDField(
        null=True, blank=True, help_text="The customer's auxiliary account (CompAuxNum), named when exported."
    )
    debit = models.BigIntegerField(default=0, help_text="Minor units.")
    credit = models.BigIntegerField(default=0, help_text="Minor units.")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(debit__gt=0, credit=0) | Q(debit=0, credit__gt=0)), name="one_side_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.debit or -self.credit}"


class JournalSequence(models.Model):
    journal = models.CharField(max_length=2)
    year = models.PositiveSmallIntegerField()
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["journal", "year"], name="one_sequence_per_journal_year")]

    def __str__(self) -> str:
        return f"{self.journal} {self.year}: {self.last_number}"
