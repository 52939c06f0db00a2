"""The SEPA bank-file gateway (pain.008.001.02) and the import of the bank's status file."""

import datetime as dt
import hashlib
import io
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import pytest
import sepaxml
from django.core.management import CommandError, call_command
from lxml import etree

from boissipay.clock import business_today
from payments.gateways import Debit, gateway_named
from payments.gateways.sepa_file import SepaFileGateway
from payments.models import Payment, PaymentLog
from tests.clock import freeze_module_at

# Every test here is on Friday 20 November 2026 (Paris), whatever the real date: the
# collection dates below are then far enough ahead for a SEPA Core file.
_today = freeze_module_at(dt.date(2026, 11, 20))

XSD = Path(sepaxml.__file__).parent / "schemas" / "pain.008.001.02.xsd"
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.008.001.02"}
CREDITOR = {"name": "Boissipay Voyages SAS", "iban": "FR7630006000011234567890189", "bic": "AGRIFRPP"}


def debit(**overrides) -> Debit:
    values = {
        "payment_id": str(uuid4()),
        "end_to_end_id": f"{uuid4().hex}-1",
        "amount": 12000,
        "currency": "EUR",
        "collection_date": dt.date(2026, 12, 1),
        "debtor_name": "CSE Société Générale d'Études",
        "iban": "FR1420041010050500013M02606",
        "bic": "PSSTFRPPPAR",
        "mandate_reference": "RUM-CTR-1",
        "mandate_signed_on": dt.date(2026, 1, 15),
        "sequence_type": "FRST",
        "remittance_information": "Facture BP-2026-000001",
    }
    return Debit(**(values | overrides))


@pytest.fixture
def sepa_settings(settings, tmp_path):
    settings.PAYMENTS_SEPA_OUTPUT_DIR = tmp_path / "sepa"
    settings.PAYMENTS_CREDITOR = CREDITOR
    settings.SELLER = {**settings.SELLER, "creditor_identifier": "FR72ZZZ123456"}
    return settings


def written_files(settings) -> list[Path]:
    return sorted(Path(settings.PAYMENTS_SEPA_OUTPUT_DIR).glob("*.xml"))


def test_the_gateway_writes_one_pain008_file_valid_against_the_schema(sepa_settings):
    first = debit(amount=12000, sequence_type="FRST")
    recurring = debit(
        amount=4599,
        sequence_type="RCUR",
        iban="DE89370400440532013000",
        bic="",  # unknown BIC: the debtor agent is NOTPROVIDED
        debtor_name="Hans Müller GmbH",
        mandate_reference="RUM-CTR-2",
        mandate_signed_on=dt.date(2025, 6, 30),
        collection_date=dt.date(2026, 12, 3),
        remittance_information="Facture BP-2026-000002",
    )

    gateway = gateway_named("sepa_file")
    assert isinstance(gateway, SepaFileGateway)
    submissions = gateway.submit([first, recurring])

    assert [(s.payment_id, s.accepted, s.provider_reference, s.error) for s in submissions] == [
        (first.payment_id, True, first.end_to_end_id, ""),
        (recurring.payment_id, True, recurring.end_to_end_id, ""),
    ]
    [path] = written_files(sepa_settings)
    assert path.name.startswith("pain008-") and path.suffix == ".xml"
    assert not list(path.parent.glob(".pain008-*"))  # no temporary file left behind

    schema = etree.XMLSchema(etree.parse(str(XSD)))
    document = etree.parse(str(path))
    assert schema.validate(document), schema.error_log

    def text(node, xpath):
        return node.findtext(xpath, namespaces=NS)

    header = document.find("p:CstmrDrctDbtInitn/p:GrpHdr", NS)
    assert text(header, "p:NbOfTxs") == "2"
    assert Decimal(text(header, "p:CtrlSum")) == Decimal("165.99")
    msg_id = text(header, "p:MsgId")
    assert path.name.endswith(f"-{msg_id}.xml")

    blocks = {text(block, "p:PmtTpInf/p:SeqTp"): block for block in document.iterfind(".//p:PmtInf", NS)}
    assert set(blocks) == {"FRST", "RCUR"}
    for block in blocks.values():
        assert text(block, "p:PmtTpInf/p:LclInstrm/p:Cd") == "CORE"
        assert text(block, "p:Cdtr/p:Nm") == "Boissipay Voyages SAS"
        assert text(block, "p:CdtrAcct/p:Id/p:IBAN") == CREDITOR["iban"]
        assert text(block, "p:CdtrAgt/p:FinInstnId/p:BIC") == CREDITOR["bic"]
        assert text(block, "p:CdtrSchmeId/p:Id/p:PrvtId/p:Othr/p:Id") == "FR72ZZZ123456"
        assert text(block, "p:NbOfTxs") == "1"

    frst = blocks["FRST"]
    assert text(frst, "p:ReqdColltnDt") == "2026-12-01"
    assert text(frst, "p:CtrlSum") == "120.00"
    tx = frst.find("p:DrctDbtTxInf", NS)
    assert text(tx, "p:PmtId/p:EndToEndId") == first.end_to_end_id
    assert text(tx, "p:InstdAmt") == "120.00"
    assert tx.find("p:InstdAmt", NS).get("Ccy") == "EUR"
    assert text(tx, "p:DrctDbtTx/p:MndtRltdInf/p:MndtId") == "RUM-CTR-1"
    assert text(tx, "p:DrctDbtTx/p:MndtRltdInf/p:DtOfSgntr") == "2026-01-15"
    assert text(tx, "p:DbtrAgt/p:FinInstnId/p:BIC") == "PSSTFRPPPAR"
    assert text(tx, "p:Dbtr/p:Nm") == "CSE Societe Generale d'Etudes"  # transliterated for SEPA
    assert text(tx, "p:DbtrAcct/p:Id/p:IBAN") == "FR1420041010050500013M02606"
    assert text(tx, "p:RmtInf/p:Ustrd") == "Facture BP-2026-000001"

    rcur = blocks["RCUR"]
    assert text(rcur, "p:ReqdColltnDt") == "2026-12-03"
    tx = rcur.find("p:DrctDbtTxInf", NS)
    assert text(tx, "p:PmtId/p:EndToEndId") == recurring.end_to_end_id
    assert text(tx, "p:InstdAmt") == "45.99"
    assert text(tx, "p:DrctDbtTx/p:MndtRltdInf/p:MndtId") == "RUM-CTR-2"
    assert text(tx, "p:DrctDbtTx/p:MndtRltdInf/p:DtOfSgntr") == "2025-06-30"
    assert text(tx, "p:DbtrAgt/p:FinInstnId/p:Othr/p:Id") == "NOTPROVIDED"
    assert text(tx, "p:DbtrAcct/p:Id/p:IBAN") == "DE89370400440532013000"


def test_a_file_the_schema_refuses_is_not_written_and_no_debit_is_taken(sepa_settings):
    good, bad = debit(), debit(iban="NOT AN IBAN!", sequence_type="RCUR")

    submissions = SepaFileGateway().submit([good, bad])

    assert [s.accepted for s in submissions] == [False, False]
    assert all("schema refuses" in s.error and s.provider_reference == "" for s in submissions)
    assert written_files(sepa_settings) == []


def test_a_debit_that_cannot_be_a_sepa_debit_is_refused_alone(sepa_settings):
    good, dollars = debit(), debit(currency="USD")

    submissions = SepaFileGateway().submit([good, dollars])

    assert [s.accepted for s in submissions] == [True, False]
    assert "EUR only" in submissions[1].error
    [path] = written_files(sepa_settings)
    assert good.end_to_end_id in path.read_text() and dollars.end_to_end_id not in path.read_text()


# --- the bank's status file -----------------------------------------------------------------------


def submitted_payment(number: str = "BP-2026-000001") -> Payment:
    """A payment whose first attempt is in a SEPA file, named by its end-to-end id."""
    payment_id = uuid4()
    return Payment.objects.create(
        id=payment_id,
        invoice_id=uuid4(),
        invoice_number=number,
        contract_id=uuid4(),
        contract_reference="CTR-1",
        amount=12000,
        currency="EUR",
        original_due_date=dt.date(2026, 12, 1),
        due_date=dt.date(2026, 12, 1),
        status="submitted",
        attempts=1,
        provider_reference=f"{payment_id.hex}-1",
    )


def status_file(tmp_path, *lines: str, header: str = "end_to_end_id,status,reason_code,reason") -> Path:
    path = tmp_path / f"statuses-{uuid4().hex[:6]}.csv"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def import_statuses(path: Path, *args: str) -> str:
    out = io.StringIO()
    call_command("import_payment_statuses", str(path), *args, stdout=out)
    return out.getvalue()


def summary_count(output: str, label: str) -> int:
    [line] = [line for line in output.splitlines() if line.strip().startswith(label)]
    return int(line.rsplit(":", 1)[1])


def test_importing_statuses_settles_and_fails_payments_once(db, settings, tmp_path):
    settings.PAYMENTS_RETRY_DAYS = [3, 7]
    paid = submitted_payment("BP-2026-000001")
    refused = submitted_payment("BP-2026-000002")
    path = status_file(
        tmp_path,
        f"{paid.provider_reference},accepted,,",
        f"{refused.provider_reference},rejected,AM04,Insufficient funds",
    )
    sha = hashlib.sha256(path.read_bytes()).hexdigest()[:16]

    output = import_statuses(path)

    assert summary_count(output, "applied") == 2
    assert summary_count(output, "errors") == 0
    paid.refresh_from_db()
    assert paid.status == "succeeded" and paid.settled_at is not None
    refused.refresh_from_db()
    # A failed first attempt goes back to pending for the first retry, 3 days after the due date.
    assert refused.status == "pending"
    assert refused.failure_reason == "AM04 Insufficient funds"
    assert refused.due_date == max(dt.date(2026, 12, 4), business_today())
    assert refused.attempts == 1

    [log] = PaymentLog.objects.filter(payment=refused, kind="status_import")
    assert log.provider_event_id == f"sepa:{sha}:{refused.provider_reference}"
    assert log.summary == "failed: AM04 Insufficient funds"
    assert log.payload == {
        "end_to_end_id": refused.provider_reference,
        "status": "rejected",
        "reason_code": "AM04",
        "reason": "Insufficient funds",
    }
    [log] = PaymentLog.objects.filter(payment=paid, kind="status_import")
    assert log.provider_event_id == f"sepa:{sha}:{paid.provider_reference}"
    assert log.summary == "succeeded"

    # The same file again: nothing applied twice.
    logs = PaymentLog.objects.count()
    output = import_statuses(path)
    assert summary_count(output, "applied") == 0
    assert summary_count(output, "already applied") == 2
    assert PaymentLog.objects.count() == logs
    paid.refresh_from_db()
    refused.refresh_from_db()
    assert (paid.status, refused.status, refused.attempts) == ("succeeded", "pending", 1)


def test_a_dry_run_changes_nothing(db, tmp_path):
    payment = submitted_payment()
    path = status_file(tmp_path, f"{payment.provider_reference},accepted,,", "unknown-1,rejected,MD01,")

    output = import_statuses(path, "--dry-run")

    assert "DRY RUN" in output
    assert summary_count(output, "would be applied") == 1
    assert summary_count(output, "unknown end-to-end id") == 1
    payment.refresh_from_db()
    assert payment.status == "submitted"
    assert not PaymentLog.objects.exists()


def test_unknown_ids_and_bad_lines_are_reported_and_do_not_stop_the_others(db, tmp_path):
    before = submitted_payment("BP-2026-000001")
    after = submitted_payment("BP-2026-000002")
    path = status_file(
        tmp_path,
        f"{before.provider_reference},accepted,,",
        "ffffffffffffffffffffffffffffffff-1,rejected,MD01,No mandate",
        f"{after.provider_reference},paid,,",
        "only-two-fields,accepted",
        "",
        f"{after.provider_reference},rejected,AC04,Closed account",
    )

    output = import_statuses(path)

    assert summary_count(output, "applied") == 2
    assert summary_count(output, "unknown end-to-end id") == 1
    assert summary_count(output, "errors") == 2
    assert "line 3: ffffffffffffffffffffffffffffffff-1: no payment has this end-to-end id" in output
    assert "line 4:" in output and "unknown status 'paid'" in output
    assert "line 5: 2 fields instead of 4" in output
    before.refresh_from_db()
    after.refresh_from_db()
    assert before.status == "succeeded"
    assert after.failure_reason == "AC04 Closed account"


def test_a_bad_header_or_an_unreadable_file_is_an_error(db, tmp_path):
    payment = submitted_payment()
    wrong = status_file(tmp_path, f"{payment.provider_reference},accepted,,", header="id,status,code,reason")

    with pytest.raises(CommandError, match="header must be end_to_end_id,status,reason_code,reason"):
        import_statuses(wrong)
    with pytest.raises(CommandError, match="Cannot read"):
        import_statuses(tmp_path / "missing.csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CommandError, match="Cannot read"):
        import_statuses(binary)

    payment.refresh_from_db()
    assert payment.status == "submitted"
    assert not PaymentLog.objects.exists()


def test_an_answer_for_a_payment_not_awaiting_one_is_only_logged(db, tmp_path):
    payment = submitted_payment()
    Payment.objects.filter(pk=payment.pk).update(status="succeeded")
    path = status_file(tmp_path, f"{payment.provider_reference},rejected,MD06,Refund requested")

    output = import_statuses(path)

    assert summary_count(output, "ignored") == 1
    assert "not awaiting this answer" in output
    payment.refresh_from_db()
    assert payment.status == "succeeded" and payment.failure_reason == ""
    assert PaymentLog.objects.filter(payment=payment, kind="status_import").count() == 2  # the answer, then "ignored"


def test_round_trip_collection_to_a_sepa_file_then_the_banks_answer(db, sepa_settings, tmp_path):
    from payments import services
    from tests import factories

    sepa_settings.PAYMENTS_RETRY_DAYS = [3, 7]
    contract = factories.contract()
    payment = Payment.objects.create(
        invoice_id=uuid4(),
        invoice_number="BP-2026-000009",
        contract_id=contract.pk,
        contract_reference=contract.reference,
        amount=34567,
        currency="EUR",
        original_due_date=dt.date(2026, 12, 1),
        due_date=dt.date(2026, 12, 1),
    )

    counts = services.submit_due_payments(today=dt.date(2026, 12, 1), gateway_name="sepa_file")

    assert counts["submitted"] == 1
    payment.refresh_from_db()
    assert payment.status == "submitted" and payment.gateway == "sepa_file"
    assert payment.provider_reference == f"{payment.pk.hex}-1"
    [path] = written_files(sepa_settings)
    xml = path.read_text()
    assert payment.provider_reference in xml and "345.67" in xml and "<SeqTp>FRST</SeqTp>" in xml

    answers = status_file(tmp_path, f"{payment.provider_reference},rejected,AM04,Insufficient funds")
    assert summary_count(import_statuses(answers), "applied") == 1
    payment.refresh_from_db()
    assert payment.status == "pending" and payment.failure_reason == "AM04 Insufficient funds"


@pytest.mark.parametrize(
    ("wanted", "today", "expected"),
    [
        (dt.date(2026, 12, 1), dt.date(2026, 11, 21), dt.date(2026, 12, 1)),  # far enough ahead
        (dt.date(2026, 11, 23), dt.date(2026, 11, 23), dt.date(2026, 11, 24)),  # due today: tomorrow at best
        (dt.date(2026, 11, 20), dt.date(2026, 11, 20), dt.date(2026, 11, 23)),  # a Friday: after the weekend
        (dt.date(2026, 12, 24), dt.date(2026, 12, 24), dt.date(2026, 12, 28)),  # Christmas and St Stephen's Day
        (dt.date(2027, 3, 26), dt.date(2027, 3, 20), dt.date(2027, 3, 30)),  # Good Friday, Easter Monday
    ],
)
def test_a_debit_is_never_collected_before_the_next_target_business_day(wanted, today, expected):
    from payments.gateways.sepa_file import earliest_collection_date

    assert earliest_collection_date(wanted, today) == expected
