"""billing's own read model of the contracts, built only from contract events, whichever
path brings them (in-process after commit, or a Kafka consumer group)."""

import threading
import uuid

import pytest
from django.db import connection

from billing.models import ContractAccount, Operation
from billing.services import apply_contract_state, submit_operation
from boissipay import dispatcher
from boissipay.consumer import ContextConsumer
from boissipay.events import topic_for
from boissipay.models import InboxEntry, OutboxEvent
from boissipay.relay import OutboxRelay
from contracts import services as contracts
from tests import eventkit, factories
from tests.factories import delivered, operation_request, purchase

READ_MODEL_FIELDS = [
    "contract_id",
    "reference",
    "customer_id",
    "customer_name",
    "currency",
    "credit_limit",
    "starts_on",
    "ends_on",
    "payment_terms_days",
    "status",
    "mandate_reference",
    "mandate_status",
    "mandate_expires_on",
    "subscriber_refs",
    "contract_version",
]


def read_model(contract_ids) -> list[dict]:
    return list(ContractAccount.objects.filter(pk__in=contract_ids).order_by("pk").values(*READ_MODEL_FIELDS))


def latest_state(contract) -> dict:
    row = OutboxEvent.objects.filter(aggregate_id=str(contract.pk)).order_by("-position").first()
    return row.payload["contract"]


# --- in-process --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_subscribed_contract_reaches_billings_read_model_through_the_bus():
    contract = factories.billed_contract(credit_limit=250_000, payment_terms_days=45)
    account = ContractAccount.objects.get(pk=contract.pk)
    assert (account.reference, account.credit_limit, account.payment_terms_days) == (contract.reference, 250_000, 45)
    assert (account.status, account.mandate_status, account.outstanding) == ("active", "active", 0)


@pytest.mark.django_db
def test_an_older_contract_event_arriving_late_is_ignored():
    contract = factories.billed_contract()
    first_state = latest_state(contract)
    with delivered():
        contracts.suspend_contract(contract_id=contract.pk, reason="Credit control")
    assert apply_contract_state(state=first_state) is False
    assert ContractAccount.objects.get(pk=contract.pk).status == "suspended"


@pytest.mark.django_db
def test_a_suspension_applied_in_process_rejects_the_next_purchase():
    contract = factories.billed_contract()
    assert purchase(contract.pk).status == "accepted"
    with delivered():
        contracts.suspend_contract(contract_id=contract.pk, reason="Unpaid invoice")
    assert purchase(contract.pk).reason_code == "contract_not_active"


# --- through Kafka -----------------------------------------------------------------------------


def consume_until(consumer: ContextConsumer, predicate, message: str):
    try:
        eventkit.wait_until(lambda: consumer.poll_once() is not None and predicate(), timeout=60, message=message)
    finally:
        consumer.close()


def billing_consumer(servers: str) -> ContextConsumer:
    return ContextConsumer(
        "billing", servers=servers, group_id=f"billing-{uuid.uuid4().hex[:8]}", topics=[topic_for("contracts")]
    )


@pytest.mark.kafka
@pytest.mark.slow  # transport, not dates: the real-clock run only (tests/shifted_clock.py)
def test_a_suspension_that_came_through_kafka_rejects_the_next_purchase(transactional_db, kafka_broker, settings):
    settings.EVENT_FEED = {**settings.EVENT_FEED, "billing": "kafka"}
    servers = kafka_broker.bootstrap_servers
    contract = factories.contract()
    assert not ContractAccount.objects.filter(pk=contract.pk).exists()  # not fed in-process

    OutboxRelay(servers=servers).run(once=True)
    consume_until(
        billing_consumer(servers), lambda: ContractAccount.objects.filter(pk=contract.pk).exists(), "the contract"
    )
    assert submit_operation(request=operation_request(contract.pk)).status == "accepted"

    contracts.suspend_contract(contract_id=contract.pk, reason="Unpaid invoice")
    OutboxRelay(servers=servers).run(once=True)
    consume_until(
        billing_consumer(servers),
        lambda: ContractAccount.objects.filter(pk=contract.pk, status="suspended").exists(),
        "the suspension",
    )
    assert submit_operation(request=operation_request(contract.pk)).reason_code == "contract_not_active"


@pytest.mark.kafka
@pytest.mark.slow  # transport, not dates: the real-clock run only (tests/shifted_clock.py)
def test_replaying_the_contracts_topic_into_an_empty_billing_rebuilds_the_same_read_model(
    transactional_db, kafka_broker
):
    servers = kafka_broker.bootstrap_servers
    # Given contracts that went through every kind of change, applied by the dispatcher.
    first, second, third = factories.contract(), factories.contract(), factories.contract(ends_on=None)
    contracts.amend_contract(contract_id=first.pk, credit_limit=2_500_000)
    contracts.register_subscriber(contract_id=first.pk, external_ref="EMP-1", display_name="Jeanne Martin")
    contracts.register_subscriber(contract_id=first.pk, external_ref="EMP-2", display_name="Paul Durand")
    contracts.remove_subscriber(contract_id=first.pk, external_ref="EMP-1")
    contracts.suspend_contract(contract_id=second.pk, reason="Credit control")
    contracts.reactivate_contract(contract_id=second.pk)
    contracts.revoke_mandate(contract_id=second.pk, reason="Bank changed")
    contracts.renew_mandate(contract_id=second.pk, mandate=factories.mandate_details(iban=factories.OTHER_IBAN))
    contracts.cancel_contract(contract_id=third.pk, reason="Customer left")
    dispatcher.drain()
    ids = [first.pk, second.pk, third.pk]
    before = read_model(ids)
    assert len(before) == 3
    OutboxRelay(servers=servers).run(once=True)

    # When billing's tables are emptied and the whole topic is replayed from the start.
    ContractAccount.objects.all().delete()
    InboxEntry.objects.filter(handler__startswith="billing.").delete()
    final_versions = {row["contract_id"]: row["contract_version"] for row in before}
    consume_until(
        billing_consumer(servers),
        lambda: {a.pk: a.contract_version for a in ContractAccount.objects.filter(pk__in=ids)} == final_versions,
        "the replayed read model",
    )

    # Then the read model is the same.
    assert read_model(ids) == before


# --- concurrency -------------------------------------------------------------------------------


def test_fifty_purchases_at_once_never_exceed_the_credit_limit(transactional_db):
    contract = factories.contract(credit_limit=100_000)
    dispatcher.drain()  # billing knows the contract once the dispatcher has fed it
    purchases, amount = 60, 3_000  # 180,000 asked for; 33 fit
    barrier = threading.Barrier(purchases)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def buy(n: int) -> None:
        try:
            barrier.wait()
            request = operation_request(contract.pk, factories.item(amount), external_ref=f"RACE-{n}")
            outcomes.append(submit_operation(request=request).status)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=buy, args=(n,)) for n in range(purchases)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert outcomes.count("accepted") == 100_000 // amount
    assert outcomes.count("rejected") == purchases - 100_000 // amount
    accepted = Operation.objects.filter(contract_id=contract.pk, status="accepted")
    account = ContractAccount.objects.get(pk=contract.pk)
    assert account.outstanding == sum(op.amount for op in accepted) == 33 * amount
    assert set(Operation.objects.filter(status="rejected").values_list("reason_code", flat=True)) == {
        "credit_limit_exceeded"
    }
