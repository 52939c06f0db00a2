"""The FEC (Fichier des Écritures Comptables, LPF article A47 A-1) of a period, from the
ledger: its 18 columns in their order, one line per entry line, tab-separated, a header
line, dates as AAAAMMJJ, amounts with a decimal comma, ISO 8859-15 text. Entries come in
the order they were validated (recorded), journal by journal.

The FEC is kept in euros: an entry in another currency is left out and reported (the
ledger has no exchange rate to convert it)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.conf import settings

from accounting.models import EntryLine, Journal, LedgerCustomer
from boissipay.clock import PARIS
from boissipay.money import to_major

COLUMNS = (
    "JournalCode",
    "JournalLib",
    "EcritureNum",
    "EcritureDate",
    "CompteNum",
    "CompteLib",
    "CompAuxNum",
    "CompAuxLib",
    "PieceRef",
    "PieceDate",
    "EcritureLib",
    "Debit",
    "Credit",
    "EcritureLet",
    "DateLet",
    "ValidDate",
    "Montantdevise",
    "Idevise",
)
ENCODING = "iso-8859-15"
# What ISO 8859-15 lacks and labels may hold; anything else it lacks becomes "?".
_LATIN9 = str.maketrans(
    {
        "\u2192": "->",  # arrow
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
        "\u202f": " ",
    }
)


@dataclass
class Report:
    """What an export wrote: lines, entries, totals (minor units) and what it left out."""

    lines: int = 0
    entries: int = 0
    debit: int = 0
    credit: int = 0
    left_out: list[str] = field(default_factory=list)


def file_name(period_end: dt.date) -> str:
    """`<SIREN>FEC<AAAAMMJJ>.txt`: the seller's SIREN and the closing date."""
    return f"{settings.SELLER['siren']}FEC{period_end:%Y%m%d}.txt"


def _text(value: str) -> str:
    """A field: no tab nor line break inside, nothing ISO 8859-15 cannot hold."""
    text = " ".join(str(value).split()).translate(_LATIN9)
    return text.encode(ENCODING, errors="replace").decode(ENCODING)


def _amount(minor: int) -> str:
    return f"{to_major(minor, 'EUR'):.2f}".replace(".", ",")


def _auxiliary(customer_id, customers: dict) -> tuple[str, str]:
    if customer_id is None:
        return "", ""
    customer = customers.get(customer_id)
    prefix = settings.ACCOUNTING["auxiliary_prefix"]
    if customer is None:  # the ledger has not heard of it yet: its id, until it has
        return f"{prefix}{customer_id.hex[:12].upper()}", ""
    return f"{prefix}{customer.siren}", customer.legal_name


def rows(start: dt.date, end: dt.date, report: Report) -> Iterator[list[str]]:
    """The FEC's rows (header first) for the entries dated from `start` to `end`."""
    yield list(COLUMNS)
    journal_names = dict(Journal.choices)
    lines = (
        EntryLine.objects.filter(entry__entry_date__gte=start, entry__entry_date__lte=end)
        .select_related("entry")
        .order_by("entry__recorded_at", "entry__journal", "entry__number", "id")
    )
    customers = {c.customer_id: c for c in LedgerCustomer.objects.all()}
    last_entry = None
    for line in lines.iterator(chunk_size=2_000):
        entry = line.entry
        if entry.currency != "EUR":
            if entry.pk != last_entry:
                report.left_out.append(f"{entry} ({entry.currency})")
            last_entry = entry.pk
            continue
        if entry.pk != last_entry:
            report.entries += 1
            last_entry = entry.pk
        auxiliary, auxiliary_label = _auxiliary(line.customer_id, customers)
        report.lines += 1
        report.debit += line.debit
        report.credit += line.credit
        yield [
            entry.journal,
            journal_names[entry.journal],
            f"{entry.fiscal_year}-{entry.number:06d}",
            f"{entry.entry_date:%Y%m%d}",
            line.account,
            _text(line.account_label),
            auxiliary,
            _text(auxiliary_label),
            _text(entry.piece_ref),
            f"{entry.piece_date:%Y%m%d}",
            _text(entry.label),
            _amount(line.debit),
            _amount(line.credit),
            "",
            "",
            f"{entry.recorded_at.astimezone(PARIS):%Y%m%d}",
            "",
            "",
        ]


def write(start: dt.date, end: dt.date, out, progress: Callable[[int], None] | None = None) -> Report:
    """Write the FEC of `start`..`end` to `out` (a binary file). Returns what was written."""
    report = Report()
    for count, row in enumerate(rows(start, end, report)):
        out.write(("\t".join(row) + "\r\n").encode(ENCODING))
        if progress and count and count % 1_000 == 0:
            progress(count)
    return report
