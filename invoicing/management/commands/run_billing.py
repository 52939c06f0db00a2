"""`manage.py run_billing --period 2026-10 [--contract REF] [--dry-run]`: the monthly
billing run by hand, with a progress bar and a closing summary."""

import time

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from boissipay.errors import DomainError
from boissipay.money import format_money
from invoicing import services
from invoicing.models import BillingRunStatus


class Command(BaseCommand):
    help = "Invoice a month: one invoice (or credit note) per contract with unbilled accepted operations."

    def add_arguments(self, parser):
        parser.add_argument("--period", required=True, help="The month to invoice, YYYY-MM (Europe/Paris).")
        parser.add_argument("--contract", default="", help="Only this contract (its reference).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Count and total what would be invoiced; change nothing."
        )

    def handle(self, *args, period, contract, dry_run, **options):
        console = Console(file=self.stdout, highlight=False)
        started = time.monotonic()
        with Progress(
            TextColumn("[bold]billing {task.fields[period]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("contracts"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            disable=options["verbosity"] == 0,
        ) as bar:
            task = bar.add_task("run", total=None, period=period)
            try:
                run = services.run_billing(
                    period=period,
                    trigger="command",
                    started_by="manage.py run_billing",
                    contract_reference=contract,
                    dry_run=dry_run,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
            except DomainError as exc:
                raise CommandError(exc.detail) from exc
        elapsed = time.monotonic() - started
        if options["verbosity"] == 0 and run.status == BillingRunStatus.COMPLETED:
            return
        heading = "DRY RUN — nothing was written. " if dry_run else ""
        console.print(f"{heading}Billing run {run.pk} for {run.period:%Y-%m}: [bold]{run.status}[/bold]")
        console.print(f"  contracts invoiced : {run.contracts_invoiced}")
        console.print(f"  invoices           : {run.invoices_count}")
        console.print(f"  credit notes       : {run.credit_notes_count}")
        console.print(f"  operations billed  : {run.operations_count}")
        for currency, totals in sorted(run.totals.items()):
            console.print(
                f"  totals {currency}         : {format_money(totals['excl_tax'], currency)} excl. tax, "
                f"{format_money(totals['vat'], currency)} VAT, {format_money(totals['incl_tax'], currency)} incl. tax"
            )
        console.print(f"  duration           : {elapsed:.1f} s")
        if run.errors:
            console.print(f"  errors             : {run.errors}")
        if run.status != BillingRunStatus.COMPLETED:
            raise CommandError(f"The billing run {run.status}.")
