"""The audit trail (issue 17, ADR 0031): every change to a tracked record keeps who made
it (a staff user, an API key or the system), when, what changed and why; the events
carry the same actor; staff read the history on the record's page."""

import datetime as dt
import json

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group, User
from django.db import ProgrammingError, connection, transaction
from django.test import Client

from boissipay import actor
from boissipay.history import history_of
from boissipay.models import OutboxEvent
from contracts import services as contracts
from contracts.models import Contract
from invoicing.models import BillingRun
from tests import factories
from tests.clock import freeze_module_at

_today = freeze_module_at(dt.date(2026, 10, 14))
pytestmark = pytest.mark.django_db


def operator() -> Client:
    user = User.objects.create_user("marie.durand", password="not-used-here", is_staff=True)
    user.groups.add(Group.objects.get(name="Opérateur finance"))
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def last_event(event_type: str) -> dict:
    return OutboxEvent.objects.filter(event_type=event_type).latest("position").payload


def test_a_staff_user_who_suspends_a_contract_is_named_with_the_reason_in_its_history_and_event():
    contract = factories.contract()
    staff = operator()
    answer = staff.post(
        "/admin/contracts/contract/",
        {"action": "suspend", ACTION_CHECKBOX_NAME: [str(contract.pk)], "apply": "1", "reason": "Impayé de mars"},
    )
    assert answer.status_code == 302
    contract.refresh_from_db()
    assert contract.status == "suspended"

    change = history_of(contract)[0]
    assert change.actor == {"type": "staff", "id": str(staff.user.pk), "name": "marie.durand"}
    assert change.reason == "Impayé de mars"
    assert change.changes["status"] == ("active", "suspended")
    assert last_event("contracts.contract.suspended")["actor"] == change.actor

    page = staff.get(f"/admin/contracts/contract/{contract.pk}/history/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "marie.durand" in text and "Impayé de mars" in text and "suspended" in text


def test_an_api_key_that_amends_a_contract_is_named_in_its_history_and_event(make_client):
    contract = factories.contract(credit_limit=100_000)
    key, raw = factories.api_key("contracts:read", "contracts:write", name="TMC booking tool")
    api = Client(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    answer = api.patch(
        f"/api/v1/contracts/{contract.pk}", json.dumps({"credit_limit": 250_000}), content_type="application/json"
    )
    assert answer.status_code == 200, answer.content

    change = history_of(contract)[0]
    assert change.actor == {"type": "api_key", "id": str(key.pk), "name": "TMC booking tool"}
    assert change.changes["credit_limit"] == (100_000, 250_000)
    assert last_event("contracts.contract.amended")["actor"] == change.actor


def test_what_a_command_or_task_changes_is_done_by_the_system_and_a_reason_given_is_kept():
    contract = factories.contract()
    with actor.acting_as(actor.system("manage.py suspend_overdue")):
        contracts.suspend_contract(contract_id=contract.pk, reason="Deux prélèvements rejetés")
    change = history_of(contract)[0]
    assert change.actor == {"type": "system", "id": "", "name": "manage.py suspend_overdue"}
    assert change.reason == "Deux prélèvements rejetés"
    assert last_event("contracts.contract.suspended")["actor"]["type"] == "system"
    # The mandate and the customer keep theirs: the contract's creation is in its history.
    assert history_of(contract)[-1].label == "insert"
    assert history_of(contract.customer)[0].label == "insert"


def test_a_write_outside_the_orm_save_is_kept_too():
    """Triggers see a queryset's update() and plain SQL, which signals would miss."""
    run = BillingRun.objects.create(period=dt.date(2026, 9, 1), trigger="command", started_by="test")
    BillingRun.objects.filter(pk=run.pk).update(status="failed")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE invoicing_billingrun SET errors = 'disk full' WHERE id = %s", [run.pk])
    changes = history_of(run)
    assert [c.label for c in changes] == ["update", "update", "insert"]
    assert changes[0].changes["errors"] == ("", "disk full")
    assert changes[1].changes["status"][1] == "failed"


def test_the_trail_cannot_be_rewritten():
    contract = factories.contract()
    event_table = Contract.pgh_event_models["insert"]._meta.db_table
    for statement in (f"UPDATE {event_table} SET reference = 'forged'", f"DELETE FROM {event_table}"):
        with (
            pytest.raises(ProgrammingError, match="Cannot update or delete"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    assert history_of(contract)[-1].changes["reference"] == (None, contract.reference)


def test_an_api_key_never_leaves_its_digest_in_the_trail():
    key, _ = factories.api_key("contracts:read")
    assert history_of(key) and all("digest" not in change.changes for change in history_of(key))


def test_a_handler_that_suspends_a_contract_is_named_in_its_trail_with_the_reason():
    import uuid

    from boissipay import bus
    from boissipay.events import EventMessage

    contract = factories.contract()
    payment = {
        "contract_id": str(contract.pk),
        "invoice_number": "BP-2026-000042",
        "failure_reason": "AM04 insufficient funds",
    }
    message = EventMessage(
        id=uuid.uuid4(),
        type="payments.payment.failed",
        version=1,
        source="boissipay.payments.v1",
        aggregate_id=str(contract.pk),
        occurred_at=None,
        data={"final": True, "payment": payment},
    )
    [handler] = bus.handlers_for("payments.payment.failed", context="contracts")
    assert bus.deliver(handler, message)
    change = history_of(contract)[0]
    assert change.actor["name"] == "handler contracts.suspend_after_final_payment_failure"
    assert change.reason.startswith("Direct debit of invoice BP-2026-000042 failed for good")
    assert last_event("contracts.contract.suspended")["actor"] == change.actor
