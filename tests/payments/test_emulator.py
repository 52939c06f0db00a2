"""The payment provider emulator: a real GatewayEmulator on a free port, calling back a
tiny stdlib receiver that stands in for our webhook. No database."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from devtools.payments_emulator import GatewayEmulator, Outcomes
from payments.gateways import Debit
from payments.gateways.emulator import EmulatorGateway
from payments.signatures import HEADER, verify
from tests.factories import IBAN, OTHER_IBAN

SECRET = "whsec_test_emulator"
DELAY = 0.05


class Receiver:
    """Our webhook's stand-in: records each call; answers the statuses queued in
    `answers` first, then 200."""

    def __init__(self):
        self.calls: list[tuple[dict, bytes]] = []
        self.answers: list[int] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.arrived:
                    status = receiver.answers.pop(0) if receiver.answers else 200
                    receiver.calls.append(({name.lower(): value for name, value in self.headers.items()}, body))
                    receiver.arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1/payments/webhook"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 3.0) -> list[dict]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.calls) >= count, timeout)
            return [json.loads(body) for _, body in self.calls]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def start_emulator():
    started = []

    def start(outcomes=None, delay=DELAY, **options) -> GatewayEmulator:
        options.setdefault("retry_delays", (0.05, 0.05, 0.05))
        emulator = GatewayEmulator("127.0.0.1", 0, SECRET, outcomes, delay, **options).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


def charge_body(callback_url: str, /, **overrides) -> dict:
    return {
        "payment_id": "7b0c1f0e-3a43-4c53-9b7e-0d1c2f3a4b5c",
        "end_to_end_id": "7b0c1f0e3a434c539b7e0d1c2f3a4b5c-1",
        "amount": 12000,
        "currency": "EUR",
        "iban": IBAN,
        "mandate_reference": "UMR-000001",
        "sequence_type": "FRST",
        "description": "INV-2026-000001",
        "callback_url": callback_url,
        **overrides,
    }


def post(url: str, body, key: str | None = None) -> tuple[int, dict, requests.structures.CaseInsensitiveDict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **({"Idempotency-Key": key} if key else {})}
    response = requests.post(f"{url}/charges", data=data, headers=headers, timeout=5)
    return response.status_code, response.json(), response.headers


def get(url: str) -> tuple[int, dict]:
    response = requests.get(url, timeout=5)
    return response.status_code, response.json()


def callback_once(emulator: GatewayEmulator, charge_id: str, *states: str, timeout: float = 3.0) -> dict:
    """The charge's callback record once it reaches one of `states` (the receiver sees a call
    a moment before the emulator has its answer)."""
    deadline = time.monotonic() + timeout
    while True:
        callback = get(f"{emulator.url}/charges/{charge_id}")[1]["callback"]
        if callback["state"] in states or time.monotonic() > deadline:
            return callback
        time.sleep(0.01)


def test_a_charge_is_pending_then_answered_by_a_signed_callback(start_emulator, receiver):
    emulator = start_emulator()
    assert get(f"{emulator.url}/health") == (200, {"status": "ok"})

    status, answer, _ = post(emulator.url, charge_body(receiver.url), key="e2e-1")

    assert status == 201
    assert answer["status"] == "pending"
    assert answer["charge_id"].startswith("ch_")
    assert receiver.calls == []  # not at once: later
    [event] = receiver.wait_for(1)
    headers, raw = receiver.calls[0]
    verify(headers[HEADER.lower()], raw, SECRET, tolerance_seconds=300)
    assert event["type"] == "charge.succeeded"
    assert event["event_id"].startswith("evt_")
    assert event["failure_code"] is None
    assert {key: event[key] for key in ("charge_id", "payment_id", "end_to_end_id", "amount", "currency")} == {
        "charge_id": answer["charge_id"],
        "payment_id": "7b0c1f0e-3a43-4c53-9b7e-0d1c2f3a4b5c",
        "end_to_end_id": "7b0c1f0e3a434c539b7e0d1c2f3a4b5c-1",
        "amount": 12000,
        "currency": "EUR",
    }
    assert abs(event["created"] - time.time()) < 5
    assert callback_once(emulator, answer["charge_id"], "delivered")["state"] == "delivered"
    status, charge = get(f"{emulator.url}/charges/{answer['charge_id']}")
    assert status == 200
    assert (charge["status"], charge["amount"], charge["outcome"]) == ("succeeded", 12000, "succeeded")
    assert get(f"{emulator.url}/charges/ch_unknown")[0] == 404


def test_a_signature_with_another_secret_is_refused(start_emulator, receiver):
    from payments.signatures import InvalidSignature

    emulator = start_emulator()
    post(emulator.url, charge_body(receiver.url))
    receiver.wait_for(1)
    headers, raw = receiver.calls[0]
    with pytest.raises(InvalidSignature):
        verify(headers[HEADER.lower()], raw, "another secret", tolerance_seconds=300)


def test_an_iban_configured_for_insufficient_funds_gets_a_failed_charge(start_emulator, receiver):
    emulator = start_emulator({"iban": {"DE89 3704 0044 0532 0130 00": "insufficient_funds"}})

    post(emulator.url, charge_body(receiver.url, iban=OTHER_IBAN, end_to_end_id="a"))
    post(emulator.url, charge_body(receiver.url, iban=IBAN, end_to_end_id="b"))

    events = {event["end_to_end_id"]: event for event in receiver.wait_for(2)}
    assert events["a"]["type"] == "charge.failed"
    assert events["a"]["failure_code"] == "insufficient_funds"
    assert events["a"]["failure_message"]
    assert events["b"]["type"] == "charge.succeeded"


def test_amount_rules_and_the_default_outcome(start_emulator, receiver):
    emulator = start_emulator({"default": "mandate_revoked", "amount": {"1313": "technical_error"}})

    post(emulator.url, charge_body(receiver.url, amount=1313, end_to_end_id="a"))
    post(emulator.url, charge_body(receiver.url, amount=5000, end_to_end_id="b"))

    events = {event["end_to_end_id"]: event for event in receiver.wait_for(2)}
    assert events["a"]["failure_code"] == "technical_error"
    assert events["b"]["failure_code"] == "mandate_revoked"


def test_an_amount_ending_in_01_fails_for_insufficient_funds_without_any_config(start_emulator, receiver):
    emulator = start_emulator()

    post(emulator.url, charge_body(receiver.url, amount=12001))

    [event] = receiver.wait_for(1)
    assert event["type"] == "charge.failed"
    assert event["failure_code"] == "insufficient_funds"


def test_the_01_convention_can_be_disabled_or_overridden():
    assert Outcomes.from_config({"cents": {}}).for_charge(iban=IBAN, amount=12001) == "succeeded"
    overridden = Outcomes.from_config({"cents": {"01": "mandate_revoked", "02": "no_answer"}})
    assert overridden.for_charge(iban=IBAN, amount=12001) == "mandate_revoked"
    assert overridden.for_charge(iban=IBAN, amount=12002) == "no_answer"
    # an IBAN or exact-amount rule wins over the convention
    assert Outcomes.from_config({"amount": {"12001": "succeeded"}}).for_charge(iban=IBAN, amount=12001) == "succeeded"
    with pytest.raises(ValueError, match="not one of"):
        Outcomes.from_config({"default": "maybe"})
    with pytest.raises(ValueError, match="Unknown outcomes key"):
        Outcomes.from_config('{"ibans": {}}')


def test_no_answer_never_calls_back(start_emulator, receiver):
    emulator = start_emulator({"default": "no_answer"})

    status, answer, _ = post(emulator.url, charge_body(receiver.url))

    assert status == 201
    time.sleep(4 * DELAY)
    assert receiver.calls == []
    assert get(f"{emulator.url}/charges/{answer['charge_id']}")[1]["status"] == "pending"


def test_the_same_idempotency_key_gives_the_same_charge_and_one_callback(start_emulator, receiver):
    emulator = start_emulator()
    body = charge_body(receiver.url)

    first = post(emulator.url, body, key="same-key")
    second = post(emulator.url, body, key="same-key")

    assert first[0] == second[0] == 201
    assert first[1]["charge_id"] == second[1]["charge_id"]
    assert second[2].get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first[2]
    receiver.wait_for(1)
    time.sleep(4 * DELAY)
    assert len(receiver.calls) == 1
    status, answer, _ = post(emulator.url, {**body, "amount": 999}, key="same-key")
    assert (status, answer["error"]) == (409, "idempotency_key_reused")


def test_a_bad_body_gets_400(start_emulator, receiver):
    emulator = start_emulator()

    status, answer, _ = post(
        emulator.url, charge_body(receiver.url, amount="12.00", iban="FR00", callback_url="ftp://x")
    )
    assert status == 400
    assert answer["error"] == "invalid_request"
    assert set(answer["fields"]) == {"amount", "iban", "callback_url"}
    assert post(emulator.url, b"{not json")[0] == 400
    assert post(emulator.url, [1, 2])[0] == 400
    missing = post(emulator.url, {"amount": 100})[1]["fields"]
    assert {"payment_id", "end_to_end_id", "currency", "iban", "mandate_reference", "sequence_type"} <= set(missing)
    time.sleep(2 * DELAY)
    assert receiver.calls == []


def test_a_callback_answered_500_is_retried_until_delivered(start_emulator, receiver):
    emulator = start_emulator()
    receiver.answers = [500, 503]

    _, answer, _ = post(emulator.url, charge_body(receiver.url))

    events = receiver.wait_for(3)
    assert len(events) == 3
    assert len({event["event_id"] for event in events}) == 1  # the same event, delivered again
    time.sleep(4 * DELAY)
    assert len(receiver.calls) == 3
    callback = callback_once(emulator, answer["charge_id"], "delivered")
    assert callback["state"] == "delivered"
    assert [attempt["status"] for attempt in callback["attempts"]] == [500, 503, 200]


def test_a_4xx_answer_ends_the_callback(start_emulator, receiver):
    emulator = start_emulator()
    receiver.answers = [400]

    _, answer, _ = post(emulator.url, charge_body(receiver.url))

    receiver.wait_for(1)
    time.sleep(4 * DELAY)
    assert len(receiver.calls) == 1
    assert callback_once(emulator, answer["charge_id"], "refused")["state"] == "refused"


def test_an_unreachable_callback_is_retried_then_given_up(start_emulator):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    emulator = start_emulator(retry_delays=(0.02, 0.02))
    body = charge_body(f"http://127.0.0.1:{closed_port}/hook")

    _, answer, _ = post(emulator.url, body)

    callback = callback_once(emulator, answer["charge_id"], "gave_up")
    assert callback["state"] == "gave_up"
    assert len(callback["attempts"]) == 3
    assert all(attempt["status"] is None and attempt["error"] for attempt in callback["attempts"])


def debit(number: int, amount: int = 12000) -> Debit:
    return Debit(
        payment_id=f"00000000-0000-0000-0000-{number:012d}",
        end_to_end_id=f"P{number:012d}-1",
        amount=amount,
        currency="EUR",
        collection_date=dt.date(2026, 2, 28),
        debtor_name="CSE Grandes Usines",
        iban=IBAN,
        bic="BNPAFRPP",
        mandate_reference="UMR-000001",
        mandate_signed_on=dt.date(2026, 1, 2),
        sequence_type="FRST",
        remittance_information=f"INV-2026-{number:06d}",
    )


def test_the_emulator_gateway_submits_debits_and_gets_the_charge_ids(start_emulator, receiver):
    emulator = start_emulator()
    gateway = EmulatorGateway(base_url=emulator.url, webhook_url=receiver.url)

    submissions = gateway.submit([debit(1), debit(2, amount=12001)])

    assert [s.accepted for s in submissions] == [True, True]
    assert [s.payment_id for s in submissions] == [debit(1).payment_id, debit(2).payment_id]
    assert all(s.provider_reference.startswith("ch_") for s in submissions)
    events = {event["charge_id"]: event for event in receiver.wait_for(2)}
    assert events[submissions[0].provider_reference]["type"] == "charge.succeeded"
    assert events[submissions[1].provider_reference]["failure_code"] == "insufficient_funds"
    # submitting again (the same end-to-end ids as idempotency keys) gives the same charges
    again = gateway.submit([debit(1)])
    assert again[0].provider_reference == submissions[0].provider_reference


def test_an_unreachable_emulator_is_a_refused_submission_not_an_exception(receiver):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    gateway = EmulatorGateway(base_url=f"http://127.0.0.1:{closed_port}", webhook_url=receiver.url, timeout=1)

    [submission] = gateway.submit([debit(1)])

    assert submission.accepted is False
    assert submission.error.startswith("emulator unreachable")


def test_the_delay_comes_from_the_argument_then_the_config_then_one_second():
    assert GatewayEmulator("127.0.0.1", 0, SECRET).delay_seconds == 1.0
    assert GatewayEmulator("127.0.0.1", 0, SECRET, {"delay_seconds": 0.2}).delay_seconds == 0.2
    assert GatewayEmulator("127.0.0.1", 0, SECRET, {"delay_seconds": 0.2}, 0.5).delay_seconds == 0.5


def test_the_local_run_starts_the_emulator_with_the_emulator_gateway(settings):
    from devtools.management.commands.run_local import local_processes

    settings.PAYMENTS_GATEWAY = "emulator"
    settings.PAYMENTS_EMULATOR_URL = "http://127.0.0.1:8123"
    assert local_processes("127.0.0.1", 8000)["gateway-emulator"][2:] == [
        "run_gateway_emulator",
        "--host",
        "127.0.0.1",
        "--port",
        "8123",
    ]
    settings.PAYMENTS_GATEWAY = "sepa_file"
    assert "gateway-emulator" not in local_processes("127.0.0.1", 8000)
