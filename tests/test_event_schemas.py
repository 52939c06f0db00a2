"""The event catalogue (openapi/asyncapi.yaml and openapi/events/*.json) is the contract
with every consumer: each event the services record must match its published schema."""

import datetime as dt
import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from jsonschema import Draft202012Validator

from boissipay.event_schemas import EVENT_SCHEMAS_DIR, schema_path, validate_event
from boissipay.models import OutboxEvent
from contracts import services
from contracts.events import ALL_EVENTS
from tests import factories

pytestmark = pytest.mark.django_db

ASYNCAPI = EVENT_SCHEMAS_DIR.parent / "asyncapi.yaml"
CONTRACTS_EVENT_TYPES = {event.event_type for event in ALL_EVENTS}


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


def published_messages(document: dict) -> dict[str, dict]:
    """Event type -> message, for every message a channel carries."""
    messages = {}
    for channel in document["channels"].values():
        for message in (channel.get("messages") or {}).values():
            message = resolve(document, message["$ref"]) if "$ref" in message else message
            messages[message["name"]] = message
    return messages


# --- the catalogue itself -------------------------------------------------------------


def test_the_catalogue_is_an_asyncapi_3_document_with_one_topic_per_publishing_context():
    document = asyncapi()
    assert str(document["asyncapi"]).startswith("3.")
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {f"boissipay.{context}.v1" for context in ("contracts", "billing", "invoicing", "payments")}


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


def test_the_contracts_topic_carries_every_contracts_event():
    assert set(published_messages(asyncapi())) == CONTRACTS_EVENT_TYPES


@pytest.mark.parametrize("path", sorted(EVENT_SCHEMAS_DIR.glob("*.json")), ids=lambda p: p.name)
def test_every_event_schema_is_a_valid_draft_2020_12_schema(path):
    Draft202012Validator.check_schema(json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: e.event_type)
def test_every_contracts_event_has_a_published_schema(event):
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
    services.register_subscriber(contract_id=contract.pk, external_ref="EMP-002", display_name="Paul Durand")
    services.remove_subscriber(contract_id=contract.pk, external_ref="EMP-001")
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


def test_an_event_type_without_a_published_schema_is_refused():
    with pytest.raises(FileNotFoundError, match=r"contracts\.contract\.teleported"):
        validate_event("contracts.contract.teleported", 1, {})
    with pytest.raises(FileNotFoundError):
        validate_event("contracts.contract.subscribed", 99, {})
