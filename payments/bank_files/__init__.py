"""The bank's ISO 20022 files about our direct debits, read as they are sent.

- **pain.002** (customer payment status report, `pain.002.001.11`): debits the bank
  rejected before settlement, each with its reason code (AM04, MD01...).
- **camt.054** (bank-to-customer debit/credit notification, `camt.054.001.08`): what was
  booked on the creditor account. A credit is a debit collected. A debit with return
  information is a debit that came back after settlement: returned by the debtor's bank
  (AC04, MD01...), or refunded at the debtor's request (MD06).
- **camt.053** (bank-to-customer statement, `camt.053.001.08`): the day's statement of
  the creditor account, whose entries are read as a camt.054's (the same entry type).

Each file is checked against its ISO 20022 schema (the official XSDs, in `xsd/`) before a
single entry is read, by lxml with entities, DTDs and network access off. Amounts become
integer minor units, exactly."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

from lxml import etree

XSD_DIR = Path(__file__).resolve().parent / "xsd"
NAMESPACES = {
    "urn:iso:std:iso:20022:tech:xsd:pain.002.001.11": ("pain.002", "pain.002.001.11.xsd"),
    "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08": ("camt.054", "camt.054.001.08.xsd"),
    "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08": ("camt.053", "camt.053.001.08.xsd"),
}
MAX_FILE_BYTES = 20 * 1024 * 1024
REFUND_CODE = "MD06"  # refund at the debtor's request (8 weeks), not a return by the bank


class InvalidBankFile(ValueError):
    """Not a bank file we read, or one its schema refuses: nothing is applied."""


@dataclass(frozen=True)
class BankEntry:
    end_to_end_id: str
    kind: str  # rejected (pain.002), settled, returned or refunded (camt.054)
    reason_code: str
    amount: int | None  # minor units
    currency: str
    bank_reference: str  # unique in the bank's world: the entry's or transaction's reference
    booked_on: dt.date | None = None


@dataclass(frozen=True)
class ParsedBankFile:
    kind: str
    message_id: str
    created_at: str
    entries: list[BankEntry]


def parse(content: bytes) -> ParsedBankFile:
    """Check `content` against its schema and read its entries. Raises InvalidBankFile."""
    if len(content) > MAX_FILE_BYTES:
        raise InvalidBankFile(f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB.")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(content, parser)
    except etree.XMLSyntaxError as exc:
        raise InvalidBankFile(f"Not well-formed XML: {exc}") from exc
    if root.getroottree().docinfo.doctype:
        raise InvalidBankFile("A bank file has no DOCTYPE (entities and DTDs are refused).")
    namespace = etree.QName(root).namespace or ""
    if namespace not in NAMESPACES:
        known = ", ".join(kind for kind, _ in NAMESPACES.values())
        raise InvalidBankFile(f"Not a bank file we read (namespace {namespace or 'none'}; we read {known}).")
    kind, xsd = NAMESPACES[namespace]
    schema = _schema(xsd)
    try:
        valid = schema.validate(root)
    except etree.XMLSchemaValidateError as exc:
        raise InvalidBankFile(f"The {kind} file cannot be checked against its ISO 20022 schema: {exc}") from exc
    if not valid:
        errors = "; ".join(f"line {e.line}: {e.message}" for e in list(schema.error_log)[:5])
        raise InvalidBankFile(f"The {kind} file does not follow its ISO 20022 schema: {errors}")
    ns = {"d": namespace}
    if kind == "pain.002":
        return _status_report(root, ns)
    if kind == "camt.053":
        return _entries(kind, root.find("d:BkToCstmrStmt", ns), "d:Stmt", ns)
    return _entries(kind, root.find("d:BkToCstmrDbtCdtNtfctn", ns), "d:Ntfctn", ns)


@cache
def _schema(name: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD_DIR / name)))


def _text(node, path: str, ns: dict) -> str:
    found = node.find(path, ns)
    return (found.text or "").strip() if found is not None else ""


def _amount(node, path: str, ns: dict) -> tuple[int | None, str]:
    found = node.find(path, ns)
    if found is None:
        return None, ""
    try:
        minor = Decimal(found.text.strip()) * 100
    except (InvalidOperation, AttributeError) as exc:
        raise InvalidBankFile(f"Unreadable amount {found.text!r}.") from exc
    if minor != minor.to_integral_value():
        raise InvalidBankFile(f"The amount {found.text} has more than two decimals.")
    return int(minor), found.get("Ccy", "")


def _status_report(root, ns: dict) -> ParsedBankFile:
    report = root.find("d:CstmrPmtStsRpt", ns)
    message_id = _text(report, "d:GrpHdr/d:MsgId", ns)
    entries = []
    for payment_info in report.findall("d:OrgnlPmtInfAndSts", ns):
        for number, tx in enumerate(payment_info.findall("d:TxInfAndSts", ns)):
            if _text(tx, "d:TxSts", ns) != "RJCT":
                continue  # accepted: the settlement comes in the camt.054
            amount, currency = _amount(tx, "d:OrgnlTxRef/d:Amt/d:InstdAmt", ns)
            end_to_end_id = _text(tx, "d:OrgnlEndToEndId", ns)
            entries.append(
                BankEntry(
                    end_to_end_id=end_to_end_id,
                    kind="rejected",
                    reason_code=_text(tx, "d:StsRsnInf/d:Rsn/d:Cd", ns),
                    amount=amount,
                    currency=currency,
                    bank_reference=_text(tx, "d:StsId", ns) or f"{message_id}/{end_to_end_id}/{number}",
                )
            )
    return ParsedBankFile("pain.002", message_id, _text(report, "d:GrpHdr/d:CreDtTm", ns), entries)


def _entries(kind: str, report, account_reports: str, ns: dict) -> ParsedBankFile:
    """The booked entries of a camt.054 notification or a camt.053 statement."""
    message_id = _text(report, "d:GrpHdr/d:MsgId", ns)
    entries = []
    for notification in report.findall(account_reports, ns):
        for entry in notification.findall("d:Ntry", ns):
            if _text(entry, "d:Sts/d:Cd", ns) not in ("BOOK", ""):
                continue  # pending or informational: only booked entries move money
            credit = _text(entry, "d:CdtDbtInd", ns) == "CRDT"
            booked = _text(entry, "d:BookgDt/d:Dt", ns)
            entry_reference = _text(entry, "d:AcctSvcrRef", ns) or _text(entry, "d:NtryRef", ns)
            for number, tx in enumerate(entry.findall("d:NtryDtls/d:TxDtls", ns)):
                end_to_end_id = _text(tx, "d:Refs/d:EndToEndId", ns)
                reason = _text(tx, "d:RtrInf/d:Rsn/d:Cd", ns)
                if credit and not reason:
                    entry_kind = "settled"
                elif not credit:
                    entry_kind = "refunded" if reason == REFUND_CODE else "returned"
                else:
                    continue  # a credit carrying return information: not about our debits
                amount, currency = _amount(tx, "d:Amt", ns)
                if amount is None:
                    amount, currency = _amount(entry, "d:Amt", ns)
                reference = _text(tx, "d:Refs/d:AcctSvcrRef", ns) or f"{entry_reference or message_id}/{number}"
                entries.append(
                    BankEntry(
                        end_to_end_id=end_to_end_id,
                        kind=entry_kind,
                        reason_code=reason,
                        amount=amount,
                        currency=currency,
                        bank_reference=reference,
                        booked_on=dt.date.fromisoformat(booked) if booked else None,
                    )
                )
    return ParsedBankFile(kind, message_id, _text(report, "d:GrpHdr/d:CreDtTm", ns), entries)
