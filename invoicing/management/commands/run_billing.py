"""`manage.py run_billing --period 2026-10 [--contract REF] [--dry-run]`: the monthly
billing run by hand, with a progress bar and a closing summary. A month is invoiced once
it has ended; `--early --contract REF --reason "..."` invoices one contract now, before
its month ends (recorded as an early invoice, with who asked and why)."""

import getpass
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
        parser.add_argument("--period", help="The month to invoice, YYYY-MM (Europe/Paris); it must have ended.")
        parser.add_argument("--contract", default="", help="Only this contract (its reference).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Count and total what would be invoiced; change nothing."
        )
        parser.add_argument(
            "--early",
            action="store_true",
            help="Invoice --contract now, before its month ends, with everything not yet invoiced (needs --reason).",
        )
        parser.add_argument("--reason", default="", help="With --early: why the contract is invoiced early.")

    def handle(self, *args, period, contract, dry_run, early, reason, **options):
        console = Console(file=self.stdout, highlight=False)
        if early:
            if period or dry_run:
                raise CommandError("--early invoices the contract now: give neither --period nor --dry-run.")
            if not contract or not reason.strip():
                raise CommandError("--early needs --contract REF and --reason.")
        elif not period:
            raise CommandError("Give --period YYYY-MM (a month that has ended), or --early --contract REF --reason.")
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
            task = bar.add_task("run", total=None, period=period or f"{contract} early")
            try:
                if early:
                    run = services.invoice_early(
                        contract_reference=contract,
                        reason=reason,
                        trigger="command",
                        started_by=f"manage.py run_billing --early ({getpass.getuser()})",
                    )
                else:
                    run = services.run_billing(
                        period=period,
                        trigger="command",
                        started_by=f"manage.py run_billing ({getpass.getuser()})",
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
        kind = (
            f"Early invoice of {contract} ({reason.strip()})"
            if early
            else f"Billing run {run.pk} for {run.period:%Y-%m}"
        )
        console.print(f"{heading}{kind}: [bold]{run.status}[/bold]")
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
