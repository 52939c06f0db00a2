"""The SEPA bank-file gateway: the day's debits written as one pain.008.001.02 direct-debit
initiation file (SEPA Core) for the creditor's bank, validated against the schema.

Writing the file is "taking" the debits; each is named in it by its end-to-end id, which
is its provider reference, so the bank's status report (docs/payment-status-file.md,
`manage.py import_payment_statuses`) can say which were paid and which were rejected."""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from sepaxml import SepaDD

from boissipay.clock import business_today
from boissipay.sepa_calendar import earliest_collection_date
from payments.gateways import Debit, Submission

logger = logging.getLogger(__name__)

SCHEMA = "pain.008.001.02"  # what French banks take; sepaxml validates it against its bundled XSD
SEQUENCE_TYPES = {"FRST", "RCUR"}


class SepaFileGateway:
    name = "sepa_file"
    lead_business_days = 1  # SEPA Core: the file reaches the bank a TARGET business day ahead

    def __init__(
        self,
        output_dir: str | Path | None = None,
        creditor: dict | None = None,
        creditor_identifier: str | None = None,
    ):
        self.output_dir = Path(output_dir or settings.PAYMENTS_SEPA_OUTPUT_DIR)
        self.creditor = creditor or settings.PAYMENTS_CREDITOR
        self.creditor_identifier = creditor_identifier or settings.SELLER["creditor_identifier"]
        self.last_file: Path | None = None

    def submit(self, debits: list[Debit]) -> list[Submission]:
        """One file for all the debits that pass the basic SEPA checks; a debit that does
        not is refused alone. If the file cannot be built, validated or written, every
        debit is refused with the reason (never raises)."""
        refusals = {debit.payment_id: problem for debit in debits if (problem := _problem(debit))}
        to_write = [debit for debit in debits if debit.payment_id not in refusals]
        error = ""
        if to_write:
            try:
                self.last_file = self._write(to_write)
                logger.info("SEPA file %s written with %d debits", self.last_file, len(to_write))
            except Exception as exc:
                logger.exception("SEPA file not written")
                error = f"SEPA file not written: {_explain(exc)}"[:450]
        submissions = []
        for debit in debits:
            if debit.payment_id in refusals:
                submissions.append(Submission(debit.payment_id, accepted=False, error=refusals[debit.payment_id]))
            elif error:
                submissions.append(Submission(debit.payment_id, accepted=False, error=error))
            else:
                submissions.append(Submission(debit.payment_id, accepted=True, provider_reference=debit.end_to_end_id))
        return submissions

    def _write(self, debits: list[Debit]) -> Path:
        document = SepaDD(
            {
                "name": self.creditor["name"],
                "IBAN": _compact(self.creditor["iban"]),
                "BIC": _compact(self.creditor["bic"]),
                "batch": True,  # one payment information block per sequence type and collection date
                "creditor_id": self.creditor_identifier.replace(" ", ""),
                "currency": "EUR",
            },
            schema=SCHEMA,
            clean=True,  # names and remittance information transliterated to what SEPA allows
        )
        for debit in debits:
            payment = {
                "name": debit.debtor_name,
                "IBAN": _compact(debit.iban),
                "amount": int(debit.amount),
                "currency": debit.currency,
                "type": debit.sequence_type,
                "collection_date": earliest_collection_date(debit.collection_date, business_today()),
                "mandate_id": debit.mandate_reference,
                "mandate_date": debit.mandate_signed_on,
                "description": debit.remittance_information,
                "endtoend_id": debit.end_to_end_id,
            }
            if debit.bic.strip():  # without one, sepaxml writes the debtor agent as NOTPROVIDED
                payment["BIC"] = _compact(debit.bic)
            document.add_payment(payment)
        xml = document.export(validate=True, pretty_print=True)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        target = self.output_dir / f"pain008-{stamp}-{document.msg_id}.xml"
        # Written aside then renamed: whatever picks files up for the bank never sees half a file.
        handle, temporary = tempfile.mkstemp(dir=self.output_dir, prefix=".pain008-", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(xml)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return target


def _explain(exc: Exception) -> str:
    cause = exc.__cause__  # sepaxml's ValidationError wraps the schema validator's error
    if cause is not None and hasattr(cause, "reason") and hasattr(cause, "path"):
        return f"the {SCHEMA} schema refuses {getattr(cause, 'obj', '')!r} at {cause.path}: {cause.reason}"
    return f"{exc.__class__.__name__}: {exc}"


def _compact(value: str) -> str:
    return "".join(value.split()).upper()


def _problem(debit: Debit) -> str:
    """Why this debit cannot go in a SEPA Core file at all (empty when it can)."""
    if debit.currency != "EUR":
        return f"SEPA direct debits are in EUR only, not {debit.currency}."
    if debit.amount <= 0:
        return "The amount of a direct debit must be positive."
    if debit.sequence_type not in SEQUENCE_TYPES:
        return f"Unknown SEPA sequence type {debit.sequence_type!r} (FRST or RCUR)."
    if not debit.iban.strip():
        return "The debtor has no IBAN."
    if not debit.debtor_name.strip():
        return "The debtor has no name."
    if not isinstance(debit.mandate_signed_on, dt.date) or not isinstance(debit.collection_date, dt.date):
        return "The mandate signature date and the collection date are required."
    if not debit.mandate_reference or len(debit.mandate_reference) > 35:
        return "The mandate reference must have 1 to 35 characters."
    if not debit.end_to_end_id or len(debit.end_to_end_id) > 35:
        return "The end-to-end id must have 1 to 35 characters."
    return ""
