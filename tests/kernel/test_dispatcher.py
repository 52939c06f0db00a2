"""The event dispatcher feeds the in-process contexts after commit, outside the client's
request, in batches: many events per transaction, a whole run of events per handler
call, each applied once per handler, one bad event never holding back the others."""

import uuid

import psycopg
import pytest
from django.db import connection

from billing.models import Operation
from boissipay import bus, dispatcher
from boissipay.dispatcher import EventDispatcher, _runs
from boissipay.models import DeadLetter, InboxEntry, OutboxEvent
from contracts import services as contracts
from invoicing.models import BillableOperation, BillingBatch
from payments.models import PaymentItem
from tests import eventkit, factories
from tests.conftest import post_json
from tests.eventkit import TEST_CONTEXT
from tests.factories import settled


def purchase_body(contract, n: int) -> dict:
    return {
        "contract_id": str(contract.pk),
        "type": "purchase",
        "external_ref": f"BKG-{n}",
        "currency": "EUR",
        "orders": [
            {
                "reference": f"ORD-{n}",
                "items": [{"label": "Paris → Lyon", "quantity": 1, "unit_amount": 1_000, "vat_rate": "10"}],
            }
        ],
    }


def test_a_purchase_request_does_no_other_contexts_work(make_client):
    contract = factories.billed_contract()
    client = make_client("operations:write")
    response = post_json(client, "/api/v1/operations", purchase_body(contract, 1), HTTP_IDEMPOTENCY_KEY="k1")
    assert response.status_code == 201
    # Answered: the operation and its event are stored, nothing else has happened yet.
    event = OutboxEvent.objects.get(event_type="billing.operation.accepted")
    assert event.dispatched_at is None
    assert not BillableOperation.objects.exists() and not PaymentItem.objects.exists()

    settled()  # the dispatcher's turn
    operation = Operation.objects.get()
    assert BillableOperation.objects.get().operation_id == operation.pk
    assert PaymentItem.objects.get().operation_id == operation.pk
    event.refresh_from_db()
    assert event.dispatched_at is not None


def test_many_events_are_fed_in_a_few_transactions_each_handler_called_once_per_run(db, monkeypatch):
    from invoicing import services as invoicing
    from payments import services as payments

    contract = factories.billed_contract(credit_limit=10**12)
    for n in range(620):
        factories.purchase_without_dispatch(contract.pk, 1_000, external_ref=f"BKG-{n}")
    calls: dict[str, list[int]] = {"invoicing": [], "payments": []}
    take_in, record_items = invoicing.record_billable_operations, payments.record_payment_items
    monkeypatch.setattr(
        invoicing,
        "record_billable_operations",
        lambda *, operations: calls["invoicing"].append(len(operations)) or take_in(operations=operations),
    )
    monkeypatch.setattr(
        payments,
        "record_payment_items",
        lambda *, operations: calls["payments"].append(len(operations)) or record_items(operations=operations),
    )

    stats = EventDispatcher(batch_size=500).drain()

    assert (stats.batches, stats.dispatched) == (2, 620)  # 500, then 120
    assert calls == {"invoicing": [500, 120], "payments": [500, 120]}
    assert BillableOperation.objects.count() == PaymentItem.objects.count() == 620
    batch = BillingBatch.objects.get(contract_id=contract.pk)
    assert (batch.operations_count, batch.total_incl_tax) == (620, 620 * 1_000)
    assert InboxEntry.objects.filter(handler="invoicing.handlers.take_in_accepted_operations").count() == 620


def test_an_event_delivered_again_is_applied_once(db):
    contract = factories.billed_contract()
    factories.purchase_without_dispatch(contract.pk, 1_000)
    settled()
    OutboxEvent.objects.update(dispatched_at=None)  # as if the dispatcher died before its mark
    settled()
    assert BillableOperation.objects.count() == PaymentItem.objects.count() == 1
    assert BillingBatch.objects.get().operations_count == 1


def test_runs_keep_the_order_of_events_that_go_to_different_handlers():
    def row(event_type: str, n: int):
        message = bus.EventMessage(
            id=uuid.uuid4(), type=event_type, version=1, source="t", aggregate_id="a", occurred_at=None, data={}
        )
        return dispatcher._Row(n, 0, message)

    rows = [
        row("billing.operation.accepted", 1),
        row("billing.operation.accepted", 2),
        row("contracts.contract.suspended", 3),
        row("billing.operation.accepted", 4),
    ]
    assert [[r.position for r in run] for _, run in _runs(rows)] == [[1, 2], [3], [4]]


@pytest.fixture
def effects(transactional_db, settings):
    settings.EVENT_FEED = {**settings.EVENT_FEED, TEST_CONTEXT: "inprocess"}
    eventkit.ensure_effects_table()
    eventkit.clear_effects()
    eventkit.POISON["value"] = None
    yield
    eventkit.POISON["value"] = None


def test_one_bad_event_in_a_batch_holds_back_no_other_and_is_dead_lettered_after_its_attempts(effects, settings):
    settings.EVENT_HANDLER_MAX_ATTEMPTS = 3
    rows = eventkit.record_things(10, topic="unused")
    bad = rows[4]
    eventkit.POISON["value"] = {str(bad.id)}

    EventDispatcher().drain()
    assert len(eventkit.effects("poison_sensitive")) == 9  # the nine others, in that same batch
    assert len(eventkit.effects("record_effect")) == 10
    for _attempt in (2, 3):
        OutboxEvent.objects.filter(pk=bad.pk).update(dispatch_after=None)  # its back-off is over
        EventDispatcher().drain()
    bad.refresh_from_db()
    assert bad.dispatch_attempts == 3 and bad.dispatched_at is not None
    letter = DeadLetter.objects.get()
    assert (letter.handler, letter.event_id, letter.source) == ("tests.eventkit.poison_sensitive", bad.id, "inprocess")
    assert len(eventkit.effects("record_effect")) == 10  # never applied twice


def test_a_second_dispatcher_stands_by_while_one_holds_the_lock(effects):
    eventkit.record_things(3, topic="unused")
    db = connection.settings_dict
    holder = psycopg.connect(
        host=db["HOST"], port=db["PORT"], dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"] or None
    )
    try:
        holder.execute("SELECT pg_advisory_lock(%s)", [dispatcher.DISPATCH_LOCK_ID])
        assert EventDispatcher().dispatch_batch() is None
        assert eventkit.effects() == []
    finally:
        holder.close()
    assert EventDispatcher().dispatch_batch() == 3
    assert len(eventkit.effects()) == 3


def test_a_suspension_reaches_billings_decisions_through_the_running_dispatcher(event_dispatcher):
    contract = factories.billed_contract()
    assert factories.purchase(contract.pk, 1_000).status == "accepted"
    contracts.suspend_contract(contract_id=contract.pk, reason="Unpaid invoice")
    rejected = eventkit.wait_until(
        lambda: factories.purchase(contract.pk, 1_000).reason_code == "contract_not_active",
        timeout=10,
        interval=0.02,
        message="billing to reject the suspended contract's purchases",
    )
    assert rejected


def test_the_dispatcher_process_feeds_what_commits_while_it_runs(event_dispatcher):
    contract = factories.billed_contract()
    for n in range(30):
        factories.purchase_without_dispatch(contract.pk, 1_000, external_ref=f"LIVE-{n}")
    eventkit.wait_until(lambda: PaymentItem.objects.count() == 30, timeout=10, message="30 payment items")
    eventkit.wait_until(lambda: BillableOperation.objects.count() == 30, timeout=10, message="30 billable operations")


def test_a_dead_letter_is_replayed_or_closed_with_a_reason_never_deleted(effects, settings, admin_client):
    settings.EVENT_HANDLER_MAX_ATTEMPTS = 1
    rows = eventkit.record_things(2, topic="unused")
    eventkit.POISON["value"] = {str(row.id) for row in rows}
    EventDispatcher().drain()
    first, second = DeadLetter.objects.order_by("event_id")
    listing = "/admin/boissipay/deadletter/"

    # Never deleted: no delete page, no bulk delete.
    assert admin_client.get(f"{listing}{first.pk}/delete/").status_code in (302, 403)
    assert "delete_selected" not in admin_client.get(listing).content.decode()
    assert DeadLetter.objects.count() == 2

    # Closed with a reason (asked for first), kept with who closed it.
    asked = admin_client.post(listing, {"action": "resolve", "_selected_action": [first.pk]})
    assert asked.status_code == 200 and "reason" in asked.content.decode()
    closed = admin_client.post(
        listing, {"action": "resolve", "_selected_action": [first.pk], "apply": "1", "reason": "Obsolete event"}
    )
    assert closed.status_code == 302
    first.refresh_from_db()
    assert (first.resolution, first.resolved_by, first.replayed_at) == ("Obsolete event", "admin", None)
    assert first.resolved_at is not None

    # The other, once its cause is fixed, replayed, by whom.
    eventkit.POISON["value"] = set()
    admin_client.post(listing, {"action": "replay", "_selected_action": [second.pk]})
    second.refresh_from_db()
    assert second.replayed_at is not None and second.replayed_by == "admin"
    assert not DeadLetter.objects.filter(replayed_at__isnull=True, resolved_at__isnull=True).exists()
    assert admin_client.get(f"{listing}?state=open").context["cl"].result_count == 0

    # A closed letter does not swallow a new failure of its event: a new one opens.
    bus.dead_letter(first.handler, first.as_message(), error="failed again", attempts=1)
    assert DeadLetter.objects.filter(event_id=first.event_id).count() == 2
