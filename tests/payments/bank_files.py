"""Bank files as a French bank sends them for Boissipay's direct debits: a pain.002.001.11
status report (rejects before settlement) and a camt.054.001.08 notification (debits
collected, returned, refunded), on the creditor account of the settings. Each is built
for the test's own payments (their end-to-end ids), with the ISO 20022 schemas'
structure; payments.bank_files checks them against the XSDs when it reads them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from xml.sax.saxutils import escape

BANK_BIC = "BNPAFRPPXXX"
CREDITOR_IBAN = "FR7630004000031234567890143"


def money(minor: int) -> str:
    return str((Decimal(minor) / 100).quantize(Decimal("0.01")))


@dataclass(frozen=True)
class Reject:
    end_to_end_id: str
    reason_code: str
    amount: int
    currency: str = "EUR"


def status_report(
    rejects: list[Reject], *, message_id: str = "BNPA-PSR-20261205-0001", accepted: list[str] = ()
) -> bytes:
    """A pain.002.001.11 answering our pain.008: `rejects` refused (RJCT with their
    reason), `accepted` end-to-end ids accepted (ACCP, which changes nothing)."""
    transactions = []
    for number, reject in enumerate(rejects, start=1):
        transactions.append(
            f"""
      <TxInfAndSts>
        <StsId>{message_id}-R{number:04d}</StsId>
        <OrgnlEndToEndId>{escape(reject.end_to_end_id)}</OrgnlEndToEndId>
        <TxSts>RJCT</TxSts>
        <StsRsnInf>
          <Orgtr><Id><OrgId><AnyBIC>{BANK_BIC}</AnyBIC></OrgId></Id></Orgtr>
          <Rsn><Cd>{reject.reason_code}</Cd></Rsn>
        </StsRsnInf>
        <OrgnlTxRef>
          <Amt><InstdAmt Ccy="{reject.currency}">{money(reject.amount)}</InstdAmt></Amt>
          <ReqdColltnDt>2026-12-04</ReqdColltnDt>
        </OrgnlTxRef>
      </TxInfAndSts>"""
        )
    for end_to_end_id in accepted:
        transactions.append(
            f"""
      <TxInfAndSts>
        <OrgnlEndToEndId>{escape(end_to_end_id)}</OrgnlEndToEndId>
        <TxSts>ACCP</TxSts>
      </TxInfAndSts>"""
        )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.11">
  <CstmrPmtStsRpt>
    <GrpHdr>
      <MsgId>{message_id}</MsgId>
      <CreDtTm>2026-12-05T07:12:44</CreDtTm>
      <DbtrAgt><FinInstnId><BICFI>{BANK_BIC}</BICFI></FinInstnId></DbtrAgt>
    </GrpHdr>
    <OrgnlGrpInfAndSts>
      <OrgnlMsgId>BOISSIPAY-SDD-20261204</OrgnlMsgId>
      <OrgnlMsgNmId>pain.008.001.02</OrgnlMsgNmId>
      <GrpSts>{"PART" if rejects and accepted else ("RJCT" if rejects else "ACCP")}</GrpSts>
    </OrgnlGrpInfAndSts>
    <OrgnlPmtInfAndSts>
      <OrgnlPmtInfId>BOISSIPAY-SDD-20261204-RCUR</OrgnlPmtInfId>{"".join(transactions)}
    </OrgnlPmtInfAndSts>
  </CstmrPmtStsRpt>
</Document>
""".encode()


@dataclass(frozen=True)
class Booking:
    kind: str  # settled (a collection credited) | returned | refunded (debited back)
    end_to_end_id: str
    amount: int
    reason_code: str = ""
    currency: str = "EUR"
    booked_on: dt.date = dt.date(2026, 12, 10)


_FAMILY = {"settled": ("RCDT", "ESDD"), "returned": ("RDDT", "UPDD"), "refunded": ("RDDT", "UPDD")}


def notification(bookings: list[Booking], *, message_id: str = "BNPA-NTF-20261210-0001") -> bytes:
    """A camt.054.001.08 for the creditor account: one booked entry per booking."""
    entries = []
    for number, booking in enumerate(bookings, start=1):
        credit = booking.kind == "settled"
        family, sub_family = _FAMILY[booking.kind]
        return_info = (
            f"""
              <RtrInf>
                <Orgtr><Id><OrgId><AnyBIC>{BANK_BIC}</AnyBIC></OrgId></Id></Orgtr>
                <Rsn><Cd>{booking.reason_code}</Cd></Rsn>
              </RtrInf>"""
            if not credit
            else ""
        )
        entries.append(
            f"""
      <Ntry>
        <NtryRef>{number}</NtryRef>
        <Amt Ccy="{booking.currency}">{money(booking.amount)}</Amt>
        <CdtDbtInd>{"CRDT" if credit else "DBIT"}</CdtDbtInd>
        <RvslInd>{"false" if credit else "true"}</RvslInd>
        <Sts><Cd>BOOK</Cd></Sts>
        <BookgDt><Dt>{booking.booked_on.isoformat()}</Dt></BookgDt>
        <ValDt><Dt>{booking.booked_on.isoformat()}</Dt></ValDt>
        <AcctSvcrRef>{message_id}-E{number:04d}</AcctSvcrRef>
        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>{family}</Cd><SubFmlyCd>{sub_family}</SubFmlyCd></Fmly></Domn></BkTxCd>
        <NtryDtls>
          <TxDtls>
            <Refs>
              <AcctSvcrRef>{message_id}-T{number:04d}</AcctSvcrRef>
              <EndToEndId>{escape(booking.end_to_end_id)}</EndToEndId>
            </Refs>
            <Amt Ccy="{booking.currency}">{money(booking.amount)}</Amt>
            <CdtDbtInd>{"CRDT" if credit else "DBIT"}</CdtDbtInd>{return_info}
          </TxDtls>
        </NtryDtls>
      </Ntry>"""
        )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08">
  <BkToCstmrDbtCdtNtfctn>
    <GrpHdr>
      <MsgId>{message_id}</MsgId>
      <CreDtTm>2026-12-10T06:30:00</CreDtTm>
    </GrpHdr>
    <Ntfctn>
      <Id>{message_id}-N1</Id>
      <CreDtTm>2026-12-10T06:30:00</CreDtTm>
      <Acct>
        <Id><IBAN>{CREDITOR_IBAN}</IBAN></Id>
        <Ccy>EUR</Ccy>
        <Svcr><FinInstnId><BICFI>{BANK_BIC}</BICFI></FinInstnId></Svcr>
      </Acct>{"".join(entries)}
    </Ntfctn>
  </BkToCstmrDbtCdtNtfctn>
</Document>
""".encode()


def statement(bookings: list[Booking], *, message_id: str = "BNPA-STMT-20261210-0001") -> bytes:
    """The same bookings in the day's camt.053.001.08 account statement (with its opening
    and closing balances, which Boissipay does not read)."""
    entries = notification(bookings, message_id=message_id).decode()
    entries = entries[entries.index("<Ntry>") - 6 : entries.rindex("</Ntry>") + len("</Ntry>")]
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">
  <BkToCstmrStmt>
    <GrpHdr>
      <MsgId>{message_id}</MsgId>
      <CreDtTm>2026-12-10T22:00:00</CreDtTm>
    </GrpHdr>
    <Stmt>
      <Id>{message_id}-S1</Id>
      <Acct>
        <Id><IBAN>{CREDITOR_IBAN}</IBAN></Id>
        <Ccy>EUR</Ccy>
      </Acct>
      <Bal>
        <Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp>
        <Amt Ccy="EUR">1000.00</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Dt><Dt>2026-12-10</Dt></Dt>
      </Bal>
      <Bal>
        <Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp>
        <Amt Ccy="EUR">1000.00</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Dt><Dt>2026-12-10</Dt></Dt>
      </Bal>
{entries}
    </Stmt>
  </BkToCstmrStmt>
</Document>
""".encode()
