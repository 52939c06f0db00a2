"""`manage.py import_bank_file FILE [--by NAME]`: apply a bank's ISO 20022 file about our
direct debits (pain.002 status report, camt.054 notification, camt.053 statement), whichever it is
(payments.bank_files). The same file twice applies nothing; every entry is reported,
an unknown end-to-end id included."""

from __future__ import annotations

import getpass
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from payments import services
from payments.bank_files import InvalidBankFile
from payments.models import BankEntryOutcome


class Command(BaseCommand):
    help = "Apply a bank's pain.002 or camt.054 file (rejects, settlements, returns, refunds) to the direct debits."

    def add_arguments(self, parser):
        parser.add_argument("file", help="The bank's XML file (pain.002.001.11, camt.054.001.08 or camt.053.001.08).")
        parser.add_argument("--by", default=None, help="Who imports it (default: this system user).")

    def handle(self, *args, file, by, **options):
        console = Console(file=self.stdout, highlight=False, soft_wrap=True)
        path = Path(file)
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        with Progress(
            TextColumn("[bold]applying entries"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            disable=options["verbosity"] == 0,
        ) as bar:
            task = bar.add_task("import", total=None)
            try:
                report = services.import_bank_file(
                    content=content,
                    file_name=path.name,
                    imported_by=by or f"command ({getpass.getuser()})",
                    progress=lambda: bar.advance(task),
                )
            except InvalidBankFile as exc:
                raise CommandError(f"{path.name}: {exc} Nothing was applied.") from exc
        bank_file = report.bank_file
        if options["verbosity"] == 0:
            return
        if report.already_imported:
            console.print(f"{path.name}: this file was already imported ({report.problems[0]}); nothing applied.")
            return
        console.print(f"{bank_file.kind} {bank_file.message_id} ({path.name}): {bank_file.entries_count} entries")
        for outcome in BankEntryOutcome:
            console.print(f"  {outcome.label:<45}: {report.counts[outcome.value]}")
        for problem in report.problems:
            console.print(f"  ! {problem}")
