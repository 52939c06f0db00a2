"""`manage.py import_payment_statuses FILE [--dry-run]`: apply the bank's answers to the
debits of a SEPA file, from a status report in the format of docs/payment-status-file.md
(CSV: end_to_end_id,status,reason_code,reason). Importing the same file twice applies
nothing twice; a bad line is reported and the others still applied."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from boissipay.errors import NotFound
from payments import services
from payments.models import Payment, PaymentLog, PaymentStatus

HEADER = ["end_to_end_id", "status", "reason_code", "reason"]
STATUSES = {"accepted", "rejected"}


class Command(BaseCommand):
    help = "Apply a bank status report (CSV end_to_end_id,status,reason_code,reason) to the submitted SEPA debits."

    def add_arguments(self, parser):
        parser.add_argument("file", help="The status report, a CSV file (see docs/payment-status-file.md).")
        parser.add_argument("--dry-run", action="store_true", help="Check the file and say what it would do.")

    def handle(self, *args, file, dry_run, **options):
        console = Console(file=self.stdout, highlight=False, soft_wrap=True)
        path = Path(file)
        try:
            data = path.read_bytes()
            text = data.decode("utf-8-sig")
            rows = list(csv.reader(io.StringIO(text, newline="")))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise CommandError(f"Cannot read the status file {path}: {exc}") from exc
        if not rows or [column.strip().lower() for column in rows[0]] != HEADER:
            found = ",".join(rows[0]) if rows else "an empty file"
            raise CommandError(f"{path} is not a status file: the header must be {','.join(HEADER)}, not {found}.")
        file_id = hashlib.sha256(data).hexdigest()[:16]
        lines = [(number, row) for number, row in enumerate(rows[1:], start=2) if any(cell.strip() for cell in row)]

        counts = {"applied": 0, "already applied": 0, "ignored": 0, "unknown end-to-end id": 0, "errors": 0}
        problems: list[str] = []
        seen: set[str] = set()
        with Progress(
            TextColumn("[bold]importing statuses"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("lines"),
            console=console,
            disable=options["verbosity"] == 0,
        ) as bar:
            task = bar.add_task("import", total=len(lines))
            for number, row in lines:
                outcome, problem = self._line(row, seen, file_id, dry_run)
                counts[outcome] += 1
                if problem:
                    problems.append(f"line {number}: {problem}")
                bar.advance(task)

        if options["verbosity"] == 0:
            return
        heading = "DRY RUN — nothing was applied. " if dry_run else ""
        console.print(f"{heading}Status file {path.name} (sha256 {file_id}…): {len(lines)} lines")
        verb = "would be applied" if dry_run else "applied"
        console.print(f"  {verb:<22}: {counts['applied']}")
        console.print(f"  {'already applied':<22}: {counts['already applied']}")
        console.print(f"  {'ignored (not awaiting)':<22}: {counts['ignored']}")
        console.print(f"  {'unknown end-to-end id':<22}: {counts['unknown end-to-end id']}")
        console.print(f"  {'errors':<22}: {counts['errors']}")
        for problem in problems:
            console.print(f"  {problem}")

    def _line(self, row: list[str], seen: set[str], file_id: str, dry_run: bool) -> tuple[str, str]:
        """Apply one line; returns (which count, what to report)."""
        if len(row) != len(HEADER):
            return "errors", f"{len(row)} fields instead of {len(HEADER)}"
        record = dict(zip(HEADER, (cell.strip() for cell in row), strict=True))
        end_to_end_id, status = record["end_to_end_id"], record["status"].lower()
        if not end_to_end_id or len(end_to_end_id) > 35:
            return "errors", f"the end-to-end id {end_to_end_id!r} must have 1 to 35 characters"
        if status not in STATUSES:
            return "errors", f"{end_to_end_id}: unknown status {record['status']!r} (accepted or rejected)"
        if end_to_end_id in seen:
            return "errors", f"{end_to_end_id}: named again (only its first line counts)"
        seen.add(end_to_end_id)
        event_id = f"sepa:{file_id}:{end_to_end_id}"
        payment = Payment.objects.filter(provider_reference=end_to_end_id).only("status").first()
        if payment is None:
            return "unknown end-to-end id", f"{end_to_end_id}: no payment has this end-to-end id"
        if PaymentLog.objects.filter(provider_event_id=event_id).exists():
            return "already applied", ""
        if dry_run:
            if payment.status != PaymentStatus.SUBMITTED:
                return "ignored", f"{end_to_end_id}: the payment is {payment.status}, not awaiting an answer"
            return "applied", ""
        try:
            applied = services.record_outcome(
                succeeded=status == "accepted",
                reason=f"{record['reason_code']} {record['reason']}".strip(),
                provider_reference=end_to_end_id,
                end_to_end_id=end_to_end_id,
                provider_event_id=event_id,
                source="status_import",
                payload=record,
            )
        except NotFound:
            return "unknown end-to-end id", f"{end_to_end_id}: no payment has this end-to-end id"
        except Exception as exc:
            return "errors", f"{end_to_end_id}: {exc.__class__.__name__}: {exc}"
        if applied is None:  # the payment was not awaiting this answer (or another import applied it meanwhile)
            return "ignored", f"{end_to_end_id}: the payment ({payment.status}) was not awaiting this answer (logged)"
        return "applied", ""
