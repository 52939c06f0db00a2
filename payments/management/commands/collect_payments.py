"""`manage.py collect_payments [--date YYYY-MM-DD] [--gateway emulator|sepa_file]`: hand
the payments due by that date to the gateway, as Beat's daily job does."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from payments import services


class Command(BaseCommand):
    help = "Submit the direct debits due by a date (today in Paris by default) to the payments gateway."

    def add_arguments(self, parser):
        parser.add_argument("--date", type=dt.date.fromisoformat, default=None, help="YYYY-MM-DD (default: today)")
        parser.add_argument("--gateway", choices=["emulator", "sepa_file"], default=None)

    def handle(self, *args, date, gateway, **options):
        console = Console(file=self.stdout, highlight=False)
        with Progress(
            TextColumn("[bold]collecting"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            disable=options["verbosity"] == 0,
        ) as bar:
            task = bar.add_task("collect", total=None)
            try:
                counts = services.submit_due_payments(
                    today=date,
                    gateway_name=gateway,
                    progress=lambda done, of: bar.update(task, completed=done, total=of),
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        if options["verbosity"]:
            console.print(
                f"due: {counts['due']}  submitted: {counts['submitted']}  not taken by the gateway (retried next "
                f"time): {counts['refused']}  failed (no mandate): {counts['failed']}"
            )
