"""`manage.py export_refunds [--by NAME] [--out FILE]`: every refund owed to customers
(credit notes on collected invoices) in one SEPA credit-transfer file (pain.001) for the
bank, kept in the database; the refunds are then `exported` (payments.credit_notes)."""

from __future__ import annotations

import getpass
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from boissipay.errors import DomainError
from boissipay.money import format_money
from payments.credit_notes import export_refunds
from payments.models import Refund, RefundStatus


class Command(BaseCommand):
    help = "Write the refunds owed to customers as a SEPA credit-transfer file (pain.001)."

    def add_arguments(self, parser):
        parser.add_argument("--by", default=None, help="Who exports (default: this system user).")
        parser.add_argument("--out", default=None, help="Also write the file here.")

    def handle(self, *args, by, out, **options):
        try:
            export = export_refunds(exported_by=by or getpass.getuser())
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        if export is None:
            left = Refund.objects.filter(status=RefundStatus.OWED).count()
            self.stdout.write("No refund to export." if not left else f"{left} owed refund(s) have no account.")
            return
        if out:
            Path(out).write_text(export.xml)
        self.stdout.write(
            f"{export.message_id}: {export.count} refund(s), {format_money(export.total, export.currency)}"
            + (f", written to {out}" if out else "")
        )
