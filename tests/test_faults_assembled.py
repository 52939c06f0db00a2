"""The assembled local run (`make run`'s supervisor, web, relay, a Kafka consumer, the
worker) while the broker is paused, killed and restarted, with purchases flowing: the API
answers every purchase, no process gives up, and every event reaches the broker once it
is back (none lost, none dead-lettered)."""

import os
import signal
import threading
import time
import uuid

import psutil
import pytest

from billing.models import Operation
from boissipay.models import OutboxEvent
from devtools.embedded.kafka import LocalBroker
from invoicing.models import BillableOperation
from tests import eventkit, factories
from tests.test_run_local import _child, _healthy, _stop, local_run_env, purchase, start_local_run

pytestmark = pytest.mark.slow


class PurchasesFlowing:
    """One client system buying steadily in the background, counting what the API answers."""

    def __init__(self, base_url: str, key: str, contract_id):
        self.base_url, self.key, self.contract_id = base_url, key, contract_id
        self.outcomes: list[str] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._buy, daemon=True)

    def _buy(self):
        n = 0
        while not self.stopping.is_set():
            started = time.monotonic()
            booking = f"F{n}-{uuid.uuid4().hex[:6]}"
            self.outcomes.append(str(purchase(self.base_url, self.key, self.contract_id, booking)))
            n += 1
            self.stopping.wait(max(0.0, 0.1 - (time.monotonic() - started)))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(60)


def test_the_api_answers_and_no_event_is_lost_while_the_broker_is_paused_killed_and_restarted(
    transactional_db, tmp_path
):
    broker = LocalBroker().start()
    contract = factories.billed_contract(credit_limit=1_000_000_000)
    _, key = factories.api_key("operations:write")
    env = local_run_env(tmp_path)
    env.update(KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers, EVENT_FEED_PAYMENTS="kafka")
    base_url = env["BOISSIPAY_BASE_URL"]
    try:
        run = start_local_run(env, tmp_path)
    except BaseException:
        broker.stop()
        raise
    try:
        relay, consumer = _child(run, "relay_outbox"), _child(run, "consume_events")
        dispatcher = _child(run, "dispatch_events")
        assert relay is not None and consumer is not None and dispatcher is not None

        with PurchasesFlowing(base_url, key, contract.pk) as buying:
            time.sleep(3)
            os.kill(broker.process.pid, signal.SIGSTOP)  # the broker stalls: connections hang
            time.sleep(40)  # as long as the pause that used to take the relay, and the API, down
            os.kill(broker.process.pid, signal.SIGCONT)
            time.sleep(3)
            broker.process.kill()  # the broker dies ...
            broker.process.wait()
            time.sleep(8)
            broker.start()  # ... and comes back on the same address, empty
            time.sleep(3)

        eventkit.wait_until(
            lambda: not OutboxEvent.objects.filter(published_at__isnull=True).exists(),
            timeout=120,
            interval=0.5,
            message="the relay to publish the backlog once the broker is back",
        )
        accepted = Operation.objects.filter(contract_id=contract.pk, status="accepted").count()
        failed = [outcome for outcome in buying.outcomes if outcome != "201"]
        unpublished = OutboxEvent.objects.filter(published_at__isnull=True).count()
        print(
            f"\nbroker paused 40 s, killed, restarted: {len(buying.outcomes)} purchases sent, {len(failed)} failed, "
            f"{accepted} accepted, {unpublished} events unpublished"
        )
        assert len(buying.outcomes) >= 100
        assert failed == []  # the API answered throughout
        assert accepted == len(buying.outcomes)
        assert OutboxEvent.objects.filter(event_type="billing.operation.accepted").count() == accepted
        assert not OutboxEvent.objects.filter(dead_lettered_at__isnull=False).exists()  # nothing set aside
        # No process gave up: the relay and the consumer are the ones started first.
        assert _child(run, "relay_outbox").pid == relay.pid
        assert _child(run, "consume_events").pid == consumer.pid
        assert _child(run, "dispatch_events").pid == dispatcher.pid
        # Invoicing (fed by the dispatcher, not by Kafka) took every accepted purchase in.
        eventkit.wait_until(
            lambda: BillableOperation.objects.filter(contract_id=contract.pk).count() == accepted,
            timeout=30,
            message="the dispatcher to feed invoicing",
        )
        assert _healthy(base_url)
    finally:
        _stop(run)
        broker.stop()
    output = (tmp_path / "run.log").read_text()
    assert "exited with" not in output, _last_words(output)
    assert "relay: publishing failed" in output  # the relay did meet the outage, and went on
    assert not [p for p in psutil.Process().children(recursive=True) if "manage.py" in " ".join(p.cmdline())]


def _last_words(output: str) -> str:
    """What each child that exited printed last (its own prefixed lines), to say why."""
    lines = output.splitlines()
    said = []
    for index, line in enumerate(lines):
        if " exited with " in line:
            name = line.split(" exited with ")[0].split()[-1]
            own = [earlier for earlier in lines[:index] if earlier.lstrip().startswith(f"{name} |")]
            said.append(line + "\n" + "\n".join(own[-40:]))
    return "\n\n".join(said)
