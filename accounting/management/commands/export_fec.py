"""`manage.py export_fec --from 2026-10-01 --to 2026-10-31 [--output DIR_OR_FILE]`: the FEC
of a period from the ledger (accounting.fec), with progress and a closing summary: lines,
entries, total debit = total credit, and any entry left out."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from accounting import fec
from boissipay.money import format_money


class Command(BaseCommand):
    help = "Write the FEC (Fichier des Écritures Comptables) of a period."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", required=True, help="First day, YYYY-MM-DD.")
        parser.add_argument("--to", dest="end", required=True, help="Last day (the closing date), YYYY-MM-DD.")
        parser.add_argument(
            "--output", default=".", help="A folder (the file is named <SIREN>FEC<closing date>.txt) or a file."
        )

    def handle(self, *args, start, end, output, **options):
        first, last = parse_date(start or ""), parse_date(end or "")
        if first is None or last is None or first > last:
            raise CommandError("Give --from and --to as YYYY-MM-DD, --from not after --to.")
        target = Path(output)
        if target.is_dir():
            target = target / fec.file_name(last)
        console = Console(file=self.stdout, highlight=False)
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]FEC {task.fields[period]}: {task.completed} lines"),
            TimeElapsedColumn(),
            console=console,
            disable=options["verbosity"] == 0,
        ) as bar:
            task = bar.add_task("fec", total=None, period=f"{first:%d/%m/%Y} to {last:%d/%m/%Y}")
            with target.open("wb") as out:
                report = fec.write(first, last, out, progress=lambda lines: bar.update(task, completed=lines))
            bar.update(task, completed=report.lines)
        if options["verbosity"] == 0:
            return
        console.print(
            f"{target}: {report.entries} entries, {report.lines} lines, "
            f"debit {format_money(report.debit, 'EUR')} = credit {format_money(report.credit, 'EUR')}"
        )
        for left_out in report.left_out:
            console.print(f"[yellow]left out (not in euros): {left_out}")
