"""The event catalogue (openapi/asyncapi.yaml and openapi/events/*.json) is the contract
with every consumer: each event the services record must match its published schema."""

import datetime as dt
import json
import uuid
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import jsonschema
import pytest
import time_machine
import yaml
from jsonschema import Draft202012Validator

import billing.events
import contracts.events
import invoicing.events
import payments.events
from billing import services as billing_services
from boissipay.event_schemas import EVENT_SCHEMAS_DIR, schema_path, validate_event
from boissipay.events import topic_for
from boissipay.models import OutboxEvent
from contracts import services
from contracts.models import Contract
from contracts.validators import Address
from invoicing import services as invoicing_services
from payments import services as payments_services
from payments.gateways import Debit
from payments.models import Payment
from tests import factories
from tests.clock import freeze_module_at
from tests.factories import delivered

# Every test here starts on one frozen "today" (Paris, ticking), whatever the real date.
_today = freeze_module_at(dt.date(2026, 9, 1))

pytestmark = pytest.mark.django_db

ASYNCAPI = EVENT_SCHEMAS_DIR.parent / "asyncapi.yaml"
PARIS = ZoneInfo("Europe/Paris")
# Every context with a topic, and the events it publishes there.
EVENTS_BY_CONTEXT = {
    "contracts": contracts.events.ALL_EVENTS,
    "billing": billing.events.ALL_EVENTS,
    "invoicing": invoicing.events.ALL_EVENTS,
    "payments": payments.events.ALL_EVENTS,
}
ALL_EVENTS = tuple(event for events in EVENTS_BY_CONTEXT.values() for event in events)
CONTRACTS_EVENT_TYPES = {event.event_type for event in contracts.events.ALL_EVENTS}
BILLING_EVENT_TYPES = {event.event_type for event in billing.events.ALL_EVENTS}
INVOICING_EVENT_TYPES = {event.event_type for event in invoicing.events.ALL_EVENTS}
PAYMENTS_EVENT_TYPES = {event.event_type for event in payments.events.ALL_EVENTS}


def asyncapi() -> dict:
    return yaml.safe_load(ASYNCAPI.read_text(encoding="utf-8"))


def resolve(document: dict, ref: str):
    node = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def local_refs(node):
    """Every `#/...` reference in the document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/"):
                yield value
            else:
                yield from local_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from local_refs(item)


def channel_messages(document: dict, channel: dict) -> dict[str, dict]:
    """Event type -> message, for every message one channel carries."""
    messages = {}
    for message in (channel.get("messages") or {}).values():
        message = resolve(document, message["$ref"]) if "$ref" in message else message
        messages[message["name"]] = message
    return messages


def published_messages(document: dict) -> dict[str, dict]:
    """Event type -> message, for every message a channel carries."""
    messages = {}
    for channel in document["channels"].values():
        messages.update(channel_messages(document, channel))
    return messages


def messages_on_topic(document: dict, address: str) -> dict[str, dict]:
    (channel,) = [channel for channel in document["channels"].values() if channel["address"] == address]
    return channel_messages(document, channel)


# --- the catalogue itself -------------------------------------------------------------


def test_the_catalogue_is_an_asyncapi_3_document_with_one_topic_per_publishing_context():
    document = asyncapi()
    assert str(document["asyncapi"]).startswith("3.")
    addresses = [channel["address"] for channel in document["channels"].values()]
    assert sorted(addresses) == sorted(topic_for(context) for context in EVENTS_BY_CONTEXT)


def test_every_reference_inside_the_catalogue_leads_somewhere():
    document = asyncapi()
    for ref in set(local_refs(document)):
        assert resolve(document, ref) is not None, ref


def test_every_published_message_points_to_an_existing_json_schema_named_by_its_dataschema_header():
    document = asyncapi()
    for event_type, message in published_messages(document).items():
        schema_ref = message["payload"]["schema"]["$ref"]
        assert (ASYNCAPI.parent / schema_ref).resolve().is_file(), schema_ref
        headers = message["headers"]["allOf"][1]["properties"]
        assert headers["ce_type"]["const"] == event_type
        assert Path(schema_ref).as_posix().removeprefix("./") == headers["ce_dataschema"]["const"]


@pytest.mark.parametrize("context", EVENTS_BY_CONTEXT)
def test_each_publishing_contexts_topic_carries_exactly_its_events(context):
    events = EVENTS_BY_CONTEXT[context]
    assert all(event.context == context for event in events)
    messages = messages_on_topic(asyncapi(), topic_for(context))
    assert set(messages) == {event.event_type for event in events}
    for message in messages.values():
        headers = message["headers"]["allOf"][1]["properties"]
        assert headers["ce_source"]["const"] == topic_for(context)


def test_no_event_type_is_published_on_two_topics():
    document = asyncapi()
    names = [name for channel in document["channels"].values() for name in channel_messages(document, channel)]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("path", sorted(EVENT_SCHEMAS_DIR.glob("*.json")), ids=lambda p: p.name)
def test_every_event_schema_is_a_valid_draft_2020_12_schema(path):
    Draft202012Validator.check_schema(json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: e.event_type)
def test_every_event_has_a_published_schema(event):
    assert schema_path(event.event_type, event.version).is_file()


# --- the events the services record ---------------------------------------------------


def record_every_contracts_event() -> None:
    customer = factories.customer(vat_number="FR44732829320")
    contract = factories.contract(customer_obj=customer)
    services.amend_contract(contract_id=contract.pk, credit_limit=2_000_000, ends_on=dt.date(2028, 6, 30))
    services.amend_contract(contract_id=contract.pk, ends_on=None)
    services.suspend_contract(contract_id=contract.pk, reason="Unpaid invoice")
    services.reactivate_contract(contract_id=contract.pk)
    services.revoke_mandate(contract_id=contract.pk, reason="Customer withdrew consent")
    services.renew_mandate(
        contract_id=contract.pk,
        mandate=factories.mandate_details(iban=factories.OTHER_IBAN, bic="", expires_on=dt.date(2030, 1, 1)),
    )
    services.register_subscriber(contract_id=contract.pk, external_ref="EMP-001", display_name="Jeanne Martin")
    services.register_subscriber(
        contract_id=contract.pk, external_ref="EMP-002", display_name="Paul Durand", monthly_cap=150_000
    )
    services.set_subscriber_cap(contract_id=contract.pk, external_ref="EMP-002", monthly_cap=None)
    services.remove_subscriber(contract_id=contract.pk, external_ref="EMP-001")
    services.correct_customer(
        customer_id=customer.pk,
        billing_email="factures@acme.example",
        address=Address.of(["2 rue de la Paix"], "75002", "Paris"),
        reason="The customer's letter",
    )
    services.cancel_contract(contract_id=contract.pk, reason="Customer left")


def test_every_event_the_contracts_services_record_matches_its_published_schema():
    record_every_contracts_event()
    rows = list(OutboxEvent.objects.all())
    for row in rows:
        validate_event(row.event_type, row.schema_version, row.payload)
    assert {row.event_type for row in rows} == CONTRACTS_EVENT_TYPES


def test_an_open_ended_contract_with_no_bic_still_matches_its_schema():
    factories.contract(ends_on=None, mandate=factories.mandate_details(bic=""))
    row = OutboxEvent.objects.get(event_type="contracts.contract.subscribed")
    assert row.payload["contract"]["ends_on"] is None
    validate_event(row.event_type, row.schema_version, row.payload)


def billed_contract(**overrides):
    """A contract that billing's read model knows. The `db` fixture never commits, so the
    after-commit in-process delivery does not run: apply the latest contract state here."""
    contract = factories.contract(**overrides)
    latest = OutboxEvent.objects.filter(aggregate_id=str(contract.pk)).latest("position")
    billing_services.apply_contract_state(state=latest.payload["contract"])
    return contract


def operation_request(contract_id, *, amount: int = 10_000, **overrides) -> billing_services.OperationRequest:
    fields = {
        "contract_id": contract_id,
        "type": "purchase",
        "external_ref": f"BKG-{uuid.uuid4().hex[:8]}",
        "currency": "EUR",
        "orders": (
            billing_services.Order(
                reference="ORD-0001",
                items=(
                    billing_services.Item(label="Paris → Lyon", quantity=2, unit_amount=amount, vat_rate=Decimal("10")),
                    billing_services.Item(label="Seat", quantity=1, unit_amount=333, vat_rate=Decimal("5.5")),
                    billing_services.Item(label="Insurance", quantity=1, unit_amount=500, vat_rate=Decimal("0")),
                ),
            ),
        ),
    }
    fields.update(overrides)
    return billing_services.OperationRequest(**fields)


def record_every_billing_event() -> None:
    contract = billed_contract(credit_limit=100_000)
    purchase = billing_services.submit_operation(
        request=operation_request(contract.pk, purchase_order="PO-42", cost_centre="CC-7")
    )
    assert purchase.status == "accepted"
    refund = billing_services.submit_operation(
        request=operation_request(contract.pk, type="refund", refund_of=purchase.pk, amount=1_000)
    )
    assert refund.status == "accepted"
    over_the_limit = billing_services.submit_operation(request=operation_request(contract.pk, amount=1_000_000))
    assert over_the_limit.reason_code == "credit_limit_exceeded"
    unknown = billing_services.submit_operation(request=operation_request(uuid.uuid4()))
    assert unknown.reason_code == "contract_unknown"


def test_every_event_the_billing_services_record_matches_its_published_schema():
    record_every_billing_event()
    rows = list(OutboxEvent.objects.filter(topic=topic_for("billing")))
    for row in rows:
        validate_event(row.event_type, row.schema_version, row.payload)
    assert {row.event_type for row in rows} == BILLING_EVENT_TYPES
    assert len(rows) == 4
    assert {row.payload["operation"]["reason_code"] for row in rows} == {
        "",
        "credit_limit_exceeded",
        "contract_unknown",
    }
    unknown = next(row for row in rows if row.payload["operation"]["reason_code"] == "contract_unknown")
    assert unknown.payload["operation"]["customer_id"] is None


def at(year: int, month: int, day: int, hour: int = 12):
    return time_machine.travel(dt.datetime(year, month, day, hour, tzinfo=PARIS), tick=False)


def invoice_october(contract_id) -> None:
    """The 2026-10 billing run: issues the month's invoices, then (tasks run eagerly in
    tests) sends them."""
    with at(2026, 11, 1, 2), delivered():
        invoicing_services.run_billing(period="2026-10")


def test_every_event_the_invoicing_services_record_matches_its_published_schema():
    contract = factories.billed_contract()  # the in-process bus feeds billing and invoicing
    with at(2026, 10, 3):
        factories.purchase(contract.pk, 10_000)
        with_vat = billing_services.Order(reference="ORD-VAT", items=(factories.item(5_000, vat_rate="20"),))
        factories.purchase(contract.pk, orders=(with_vat,))
    invoice_october(contract.pk)
    rows = list(OutboxEvent.objects.filter(topic=topic_for("invoicing")).order_by("position"))
    for row in rows:
        validate_event(row.event_type, row.schema_version, row.payload)
        assert row.aggregate_id == str(contract.pk)
    assert [row.event_type for row in rows] == ["invoicing.invoice.issued", "invoicing.invoice.sent"]
    issued, sent = rows
    assert issued.payload["invoice"]["kind"] == "invoice"
    assert issued.payload["invoice"]["status"] == "issued"
    assert issued.payload["invoice"]["total_incl_tax"] == 16_000
    assert [line["rate"] for line in issued.payload["invoice"]["vat_breakdown"]] == ["0.00", "20.00"]
    assert sent.payload["invoice"]["status"] == "sent"
    assert len(sent.payload["operation_ids"]) == sent.payload["invoice"]["operations_count"] == 2


def test_a_credit_note_matches_the_issued_event_schema():
    contract = factories.billed_contract()
    with at(2026, 9, 10):
        purchase = factories.purchase(contract.pk, 10_000)
    with at(2026, 10, 1, 2), delivered():
        invoicing_services.run_billing(period="2026-09")
    with at(2026, 10, 5):
        factories.refund(contract.pk, purchase.pk, 4_000)
    invoice_october(contract.pk)
    rows = list(
        OutboxEvent.objects.filter(topic=topic_for("invoicing"), event_type="invoicing.invoice.issued").order_by(
            "position"
        )
    )
    assert [row.payload["invoice"]["kind"] for row in rows] == ["invoice", "credit_note"]
    credit_note = rows[1].payload["invoice"]
    assert credit_note["total_incl_tax"] == -4_000
    assert credit_note["vat_breakdown"] == [{"rate": "0.00", "base": -4_000, "vat": 0}]
    for row in OutboxEvent.objects.filter(topic=topic_for("invoicing")):
        validate_event(row.event_type, row.schema_version, row.payload)


def submit_and_answer(payment_id, *, event_id: str, succeeded: bool, reason: str = "") -> None:
    """One attempt: the payment is claimed and marked submitted as the collection does
    before calling the gateway (no gateway is called), then the gateway's answer applied."""
    payment = Payment.objects.get(pk=payment_id)
    with delivered():
        debit = payments_services._claim_for_submission(payment.pk, "emulator", payment.due_date)
    assert isinstance(debit, Debit)
    with delivered():
        payments_services.record_outcome(
            succeeded=succeeded, reason=reason, payment_id=str(payment.pk), provider_event_id=event_id
        )


def record_every_payments_event() -> tuple:
    """Seven contracts invoiced for 2026-10 (due 2026-12-01): the first one's payment fails
    three times (retried twice, then failed for good), the second one's succeeds, the
    third's succeeds and is returned by the bank (presented again), the fourth's succeeds
    and is refunded at the debtor's request, the fifth is paid by transfer with some left
    as the customer's credit; the sixth's debit is lowered by a credit note, the seventh's
    invoice credited in full, and the second's credited after collection (a refund owed,
    then exported)."""
    from invoicing.credit_notes import AmountLine, issue_credit_note
    from payments.credit_notes import export_refunds
    from payments.manual_payments import record_manual_payment

    unpaid, paid = factories.billed_contract(), factories.billed_contract()
    returned, refunded, by_transfer = (
        factories.billed_contract(),
        factories.billed_contract(),
        factories.billed_contract(),
    )
    lowered, cancelled = factories.billed_contract(), factories.billed_contract()
    with at(2026, 10, 3):
        factories.purchase(unpaid.pk, 10_000)
        factories.purchase(paid.pk, 20_000)
        factories.purchase(returned.pk, 5_000)
        factories.purchase(refunded.pk, 6_000)
        factories.purchase(by_transfer.pk, 3_000)
        factories.purchase(lowered.pk, 8_000)
        factories.purchase(cancelled.pk, 7_000)
    invoice_october(unpaid.pk)  # the issued invoices schedule their payments (in-process bus)
    with at(2026, 11, 10):  # credit notes: one lowers a debit, one cancels an invoice
        for contract, how in ((lowered, {"amounts": [AmountLine("0", 1_000)]}), (cancelled, {"full": True})):
            invoice_id = Payment.objects.get(contract_id=contract.pk).invoice_id
            issue_credit_note(invoice_id=invoice_id, reason="Erreur de tarif", issued_by="compta", **how)
        factories.settled()
    with at(2026, 11, 20):
        record_manual_payment(
            customer_id=Payment.objects.get(contract_id=by_transfer.pk).customer_id,
            amount=4_000,
            currency="EUR",
            received_on=dt.date(2026, 11, 20),
            method="transfer",
            bank_reference="VIR-SCHEMA-1",
            recorded_by="compta",
        )
        factories.settled()
    with at(2026, 12, 1):
        for attempt in (1, 2, 3):
            failing = Payment.objects.get(contract_id=unpaid.pk)
            submit_and_answer(failing.pk, event_id=f"evt_{attempt}", succeeded=False, reason="AM04 insufficient funds")
        submit_and_answer(Payment.objects.get(contract_id=paid.pk).pk, event_id="evt_ok", succeeded=True)
        for contract, code in ((returned, "AM04"), (refunded, "MD06")):
            payment = Payment.objects.get(contract_id=contract.pk)
            submit_and_answer(payment.pk, event_id=f"evt_ok_{code}", succeeded=True)
            payments_services.record_return(
                end_to_end_id=payments_services.end_to_end_id_of(Payment.objects.get(pk=payment.pk)),
                reason_code=code,
                bank_reference=f"camt-{code}",
                refunded=code == "MD06",
            )
            factories.settled()
    with at(2026, 12, 5):  # a credit note on a collected invoice: a refund owed, then exported
        issue_credit_note(
            invoice_id=Payment.objects.get(contract_id=paid.pk).invoice_id,
            amounts=[AmountLine("0", 2_000)],
            reason="Geste commercial",
            issued_by="compta",
        )
        factories.settled()
        export_refunds(exported_by="tresorerie")
        factories.settled()
        # The e-invoicing platform approves the collected invoice (deposited under this id).
        from invoicing import einvoicing
        from invoicing.models import Invoice

        invoice_id = Payment.objects.get(contract_id=paid.pk).invoice_id
        Invoice.objects.filter(pk=invoice_id).update(platform_message_id="msg_schema", channel="platform")
        einvoicing.apply_status(
            event_id="evt_schema",
            message_id="msg_schema",
            status="approved",
            reason="",
            occurred_at=dt.datetime(2026, 12, 5, 10, tzinfo=PARIS),
        )
        factories.settled()
    return unpaid, paid


def test_every_event_the_payments_chain_records_matches_its_published_schema(settings):
    settings.PAYMENTS_RETRY_DAYS = [3, 7]
    unpaid, paid = record_every_payments_event()
    rows = list(
        OutboxEvent.objects.filter(topic__in=[topic_for("payments"), topic_for("invoicing")]).order_by("position")
    )
    for row in rows:
        validate_event(row.event_type, row.schema_version, row.payload)
    assert {row.event_type for row in rows} == PAYMENTS_EVENT_TYPES | INVOICING_EVENT_TYPES

    def payments_of(contract) -> list[tuple]:
        return [
            (row.event_type, row.payload["payment"]["attempts"], row.payload.get("final"), row.payload.get("retry_on"))
            for row in rows
            if row.topic == topic_for("payments") and row.aggregate_id == str(contract.pk)
        ]

    assert payments_of(unpaid) == [
        ("payments.payment.pending", 0, None, None),
        ("payments.payment.submitted", 1, None, None),
        ("payments.payment.failed", 1, False, "2026-12-04"),
        ("payments.payment.pending", 1, None, None),
        ("payments.payment.submitted", 2, None, None),
        ("payments.payment.failed", 2, False, "2026-12-08"),
        ("payments.payment.pending", 2, None, None),
        ("payments.payment.submitted", 3, None, None),
        ("payments.payment.failed", 3, True, None),
    ]
    assert payments_of(paid) == [
        ("payments.payment.pending", 0, None, None),
        ("payments.payment.submitted", 1, None, None),
        ("payments.payment.succeeded", 1, None, None),
        ("payments.payment.credited", 1, None, None),
        ("payments.refund.changed", 1, None, None),
    ]
    invoices = {(row.aggregate_id, row.event_type): row.payload for row in rows if row.topic == topic_for("invoicing")}
    failed = invoices[(str(unpaid.pk), "invoicing.invoice.failed")]
    assert failed["reason"] == "AM04 insufficient funds"
    assert failed["invoice"]["status"] == "failed"
    assert (str(unpaid.pk), "invoicing.invoice.paid") not in invoices
    assert invoices[(str(paid.pk), "invoicing.invoice.paid")]["invoice"]["total_incl_tax"] == 20_000
    assert (str(paid.pk), "invoicing.invoice.failed") not in invoices
    # The final failure suspends the contract (contracts context), with a valid event too.
    assert Contract.objects.get(pk=unpaid.pk).status == "suspended"
    suspended = OutboxEvent.objects.get(event_type="contracts.contract.suspended", aggregate_id=str(unpaid.pk))
    validate_event(suspended.event_type, suspended.schema_version, suspended.payload)


# --- the check can fail ---------------------------------------------------------------


def suspended_payload() -> dict:
    contract = factories.contract()
    services.suspend_contract(contract_id=contract.pk, reason="Unpaid invoice")
    return OutboxEvent.objects.get(event_type="contracts.contract.suspended").payload


def test_an_event_missing_a_field_is_refused():
    payload = suspended_payload()
    del payload["reason"]
    with pytest.raises(jsonschema.ValidationError, match="reason"):
        validate_event("contracts.contract.suspended", 1, payload)


@pytest.mark.parametrize(
    ("path", "wrong"),
    [
        (("contract", "credit_limit"), "1000000"),
        (("contract", "credit_limit"), -1),
        (("contract", "status"), "expired"),
        (("contract", "starts_on"), "01/01/2026"),
        (("contract_id",), "not-a-uuid"),
        (("contract", "mandate", "iban"), "FR1420041010050500013M02606"),
    ],
    ids=["money as text", "negative credit limit", "unknown status", "not an ISO date", "bad uuid", "unmasked IBAN"],
)
def test_an_event_with_a_wrong_value_is_refused(path, wrong):
    payload = suspended_payload()
    *parents, key = path
    node = payload
    for parent in parents:
        node = node[parent]
    node[key] = wrong
    with pytest.raises(jsonschema.ValidationError):
        validate_event("contracts.contract.suspended", 1, payload)


def accepted_payload() -> dict:
    contract = billed_contract()
    billing_services.submit_operation(request=operation_request(contract.pk))
    return OutboxEvent.objects.get(event_type="billing.operation.accepted").payload


def rejected_payload() -> dict:
    billing_services.submit_operation(request=operation_request(uuid.uuid4()))
    return OutboxEvent.objects.get(event_type="billing.operation.rejected").payload


@pytest.mark.parametrize(
    ("path", "wrong"),
    [
        (("operation", "amount"), "12000"),
        (("operation", "amount"), 120.5),
        (("operation", "vat_amount"), -1),
        (("operation", "type"), "refund"),
        (("operation", "status"), "rejected"),
        (("operation", "reason_code"), "credit_limit_exceeded"),
        (("operation", "customer_id"), None),
        (("operation", "refund_of"), "00000000-0000-0000-0000-000000000000"),
        (("operation", "currency"), "eur"),
        (("operation", "decided_at"), "2026-01-31"),
        (("operation", "vat_breakdown", 0, "rate"), "10"),
        (("operation", "orders", 0, "items", 0, "quantity"), 0),
        (("operation", "operation_id"), "not-a-uuid"),
        (("balance", "outstanding"), "0"),
        (("balance", "credit_limit"), -1),
        (("operation", "reason_detail"), "an extra field"),
    ],
    ids=[
        "amount as text",
        "amount as a float",
        "negative VAT",
        "a refund in a purchase event",
        "rejected in an accepted event",
        "reason code when accepted",
        "no customer",
        "a purchase refunding",
        "lowercase currency",
        "not a date-time",
        "VAT rate without two decimals",
        "zero quantity",
        "bad uuid",
        "balance as text",
        "negative credit limit",
        "unknown field",
    ],
)
def test_a_billing_event_with_a_wrong_value_is_refused(path, wrong):
    payload = accepted_payload()
    validate_event("billing.operation.accepted", 1, payload)
    *parents, key = path
    node = payload
    for parent in parents:
        node = node[parent]
    node[key] = wrong
    with pytest.raises(jsonschema.ValidationError):
        validate_event("billing.operation.accepted", 1, payload)


def test_a_rejected_operation_must_say_why_and_carries_no_balance():
    payload = rejected_payload()
    validate_event("billing.operation.rejected", 1, payload)
    with pytest.raises(jsonschema.ValidationError):
        validate_event(
            "billing.operation.rejected", 1, {**payload, "operation": {**payload["operation"], "reason_code": ""}}
        )
    with pytest.raises(jsonschema.ValidationError):
        validate_event("billing.operation.rejected", 1, {**payload, "balance": {}})
    with pytest.raises(jsonschema.ValidationError, match="balance"):
        validate_event("billing.operation.accepted", 1, payload)


def test_an_event_type_without_a_published_schema_is_refused():
    with pytest.raises(FileNotFoundError, match=r"contracts\.contract\.teleported"):
        validate_event("contracts.contract.teleported", 1, {})
    with pytest.raises(FileNotFoundError):
        validate_event("contracts.contract.subscribed", 99, {})


def issued_and_sent_payloads() -> tuple[dict, dict]:
    contract = factories.billed_contract()
    with at(2026, 10, 3):
        factories.purchase(contract.pk, 10_000)
    invoice_october(contract.pk)
    rows = OutboxEvent.objects.filter(topic=topic_for("invoicing"))
    return (
        rows.get(event_type="invoicing.invoice.issued").payload,
        rows.get(event_type="invoicing.invoice.sent").payload,
    )


@pytest.mark.parametrize(
    ("path", "wrong"),
    [
        (("invoice", "total_incl_tax"), "12000"),
        (("invoice", "total_vat"), 0.5),
        (("invoice", "total_incl_tax"), -1),
        (("invoice", "kind"), "proforma"),
        (("invoice", "status"), "sent"),
        (("invoice", "number"), "2026-000001"),
        (("invoice", "period"), "2026-13"),
        (("invoice", "due_date"), "01/12/2026"),
        (("invoice", "operations_count"), 0),
        (("invoice", "vat_breakdown", 0, "rate"), "0"),
        (("invoice", "vat_breakdown", 0, "base"), "10000"),
        (("invoice", "currency"), "eur"),
        (("invoice", "customer_id"), None),
        (("invoice", "pdf"), "an extra field"),
        (("contract_id",), "not-a-uuid"),
    ],
    ids=[
        "total as text",
        "total as a float",
        "an invoice with a negative total",
        "unknown kind",
        "sent in an issued event",
        "number without its prefix",
        "no such month",
        "not an ISO date",
        "no operations",
        "VAT rate without two decimals",
        "VAT base as text",
        "lowercase currency",
        "no customer",
        "unknown field",
        "bad uuid",
    ],
)
def test_an_invoicing_event_with_a_wrong_value_is_refused(path, wrong):
    payload, _ = issued_and_sent_payloads()
    validate_event("invoicing.invoice.issued", 1, payload)
    *parents, key = path
    node = payload
    for parent in parents:
        node = node[parent]
    node[key] = wrong
    with pytest.raises(jsonschema.ValidationError):
        validate_event("invoicing.invoice.issued", 1, payload)


def test_a_sent_invoice_names_its_operations():
    issued, sent = issued_and_sent_payloads()
    validate_event("invoicing.invoice.sent", 1, sent)
    with pytest.raises(jsonschema.ValidationError, match="operation_ids"):
        validate_event("invoicing.invoice.sent", 1, {**issued, "invoice": sent["invoice"]})
    for wrong in ([], ["not-a-uuid"], sent["operation_ids"] * 2):
        with pytest.raises(jsonschema.ValidationError):
            validate_event("invoicing.invoice.sent", 1, {**sent, "operation_ids": wrong})
    with pytest.raises(jsonschema.ValidationError):
        validate_event("invoicing.invoice.issued", 1, sent)


def retried_failure_payloads() -> dict[str, dict]:
    """Event type -> payload of one payment whose first attempt failed (and is retried)."""
    contract = factories.billed_contract()
    with at(2026, 10, 3):
        factories.purchase(contract.pk, 10_000)
    invoice_october(contract.pk)
    with at(2026, 12, 1):
        submit_and_answer(Payment.objects.get().pk, event_id="evt_1", succeeded=False, reason="AM04 insufficient funds")
    rows = OutboxEvent.objects.filter(topic=topic_for("payments")).order_by("position")
    return {row.event_type: row.payload for row in rows}  # the last pending one: the retry


@pytest.mark.parametrize(
    ("path", "wrong"),
    [
        (("payment", "amount"), "10000"),
        (("payment", "amount"), 100.5),
        (("payment", "amount"), 0),
        (("final",), True),
        (("retry_on",), None),
        (("retry_on",), "04/12/2026"),
        (("payment", "status"), "pending"),
        (("payment", "failure_reason"), ""),
        (("payment", "gateway"), "stripe"),
        (("payment", "attempts"), -1),
        (("payment", "invoice_number"), "2026-000001"),
        (("payment", "due_date"), "2026-12-04T00:00:00+01:00"),
        (("payment", "currency"), "eur"),
        (("payment", "invoice_id"), "not-a-uuid"),
        (("payment", "iban"), "FR1420041010050500013M02606"),
    ],
    ids=[
        "amount as text",
        "amount as a float",
        "nothing to collect",
        "final with a retry date",
        "retried without a date",
        "retry date not ISO",
        "pending in a failed event",
        "failed without a reason",
        "unknown gateway",
        "negative attempts",
        "invoice number without its prefix",
        "not a date",
        "lowercase currency",
        "bad uuid",
        "unknown field",
    ],
)
def test_a_payments_event_with_a_wrong_value_is_refused(path, wrong):
    payload = retried_failure_payloads()["payments.payment.failed"]
    validate_event("payments.payment.failed", 1, payload)
    *parents, key = path
    node = payload
    for parent in parents:
        node = node[parent]
    node[key] = wrong
    with pytest.raises(jsonschema.ValidationError):
        validate_event("payments.payment.failed", 1, payload)


def test_a_final_failure_has_no_retry_date_and_each_status_has_its_own_event():
    payloads = retried_failure_payloads()
    failed, pending, submitted = (
        payloads["payments.payment.failed"],
        payloads["payments.payment.pending"],
        payloads["payments.payment.submitted"],
    )
    validate_event("payments.payment.failed", 1, {**failed, "final": True, "retry_on": None})
    with pytest.raises(jsonschema.ValidationError, match="final"):
        validate_event("payments.payment.failed", 1, {key: value for key, value in failed.items() if key != "final"})
    validate_event("payments.payment.pending", 1, pending)
    with pytest.raises(jsonschema.ValidationError):
        validate_event("payments.payment.pending", 1, failed)  # a failed payment, and final/retry_on
    with pytest.raises(jsonschema.ValidationError):
        validate_event("payments.payment.succeeded", 1, submitted)
    succeeded = {**submitted["payment"], "status": "succeeded", "failure_reason": ""}
    validate_event("payments.payment.succeeded", 1, {**submitted, "payment": succeeded})
    for wrong in ({"failure_reason": "AM04 insufficient funds"}, {"gateway": ""}, {"attempts": 0}):
        with pytest.raises(jsonschema.ValidationError):
            validate_event("payments.payment.succeeded", 1, {**submitted, "payment": {**succeeded, **wrong}})


def test_only_a_collected_invoice_is_paid_and_a_failed_one_says_why(settings):
    settings.PAYMENTS_RETRY_DAYS = [3, 7]
    record_every_payments_event()
    rows = OutboxEvent.objects.filter(topic=topic_for("invoicing"))
    paid_event = rows.filter(event_type="invoicing.invoice.paid").first().payload
    failed_event = rows.get(event_type="invoicing.invoice.failed").payload
    with pytest.raises(jsonschema.ValidationError):
        validate_event(
            "invoicing.invoice.paid", 1, {**paid_event, "invoice": {**paid_event["invoice"], "status": "sent"}}
        )
    with pytest.raises(jsonschema.ValidationError):  # credit notes are never collected
        credit_note = {**paid_event["invoice"], "kind": "credit_note", "total_incl_tax": -4_000}
        validate_event("invoicing.invoice.paid", 1, {**paid_event, "invoice": credit_note})
    with pytest.raises(jsonschema.ValidationError, match="reason"):
        validate_event("invoicing.invoice.failed", 1, {**paid_event, "invoice": failed_event["invoice"]})
    with pytest.raises(jsonschema.ValidationError):
        validate_event("invoicing.invoice.failed", 1, {**failed_event, "reason": ""})
    with pytest.raises(jsonschema.ValidationError):
        validate_event("invoicing.invoice.paid", 1, failed_event)
