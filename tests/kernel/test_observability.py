"""What an operator watches (issue 14, section 3): Prometheus metrics at /metrics and on
the relay's and consumers' own ports, logs correlated by request and event and free of
IBANs and API keys, and errors to Sentry without personal data."""

import gzip
import io
import json
import logging
import logging.config
import subprocess
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests
from rest_framework.test import APIClient

from boissipay import bus, logs, transport
from boissipay.bus import Handler
from boissipay.models import DeadLetter, OutboxEvent
from devtools.embedded.kafka import free_port
from tests import eventkit, factories
from tests.factories import IBAN
from tests.kernel.test_settings_and_docs import PRODUCTION, start_django

pytestmark = pytest.mark.django_db(transaction=True)


def sample(text: str, name: str, **labels: str) -> float:
    """The value of `name{labels}` in a Prometheus exposition text (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                total += found.value
    return total


def scrape(client=None, **headers) -> str:
    response = (client or APIClient()).get("/metrics", **headers)
    assert response.status_code == 200, response.content
    return response.content.decode()


def purchase_body(contract_id, ref: str, amount: int = 1000) -> dict:
    return {
        "contract_id": str(contract_id),
        "type": "purchase",
        "external_ref": ref,
        "currency": "EUR",
        "orders": [
            {"reference": "O", "items": [{"label": "Train", "quantity": 1, "unit_amount": amount, "vat_rate": "0"}]}
        ],
    }


# --- /metrics --------------------------------------------------------------------------


def test_metrics_are_closed_without_a_token_and_need_the_right_one(settings):
    settings.METRICS_ALLOW_UNAUTHENTICATED = False
    settings.METRICS_TOKEN = ""
    closed = APIClient().get("/metrics")
    assert closed.status_code == 403
    assert closed["Content-Type"] == "application/problem+json"

    settings.METRICS_TOKEN = "metrics-" + "t" * 40
    assert APIClient().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert APIClient().get("/metrics").status_code == 401
    assert "boissipay_outbox_backlog" in scrape(HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}")


def test_metrics_count_decisions_by_reason_and_read_the_business_state(settings, event_dispatcher):
    settings.METRICS_ALLOW_UNAUTHENTICATED = True
    contract = factories.billed_contract(credit_limit=5_000)
    _, key = factories.api_key("operations:write")
    client = APIClient(HTTP_AUTHORIZATION=f"Api-Key {key}")
    before = scrape()

    accepted = client.post(
        "/api/v1/operations", purchase_body(contract.pk, "M-1", 3_000), format="json", HTTP_IDEMPOTENCY_KEY="m-1"
    )
    rejected = client.post(
        "/api/v1/operations", purchase_body(contract.pk, "M-2", 9_000), format="json", HTTP_IDEMPOTENCY_KEY="m-2"
    )
    replayed = client.post(
        "/api/v1/operations", purchase_body(contract.pk, "M-1", 3_000), format="json", HTTP_IDEMPOTENCY_KEY="m-1"
    )
    forged = APIClient().post(
        "/api/v1/payments/webhook", "{}", content_type="application/json", HTTP_BOISSIPAY_SIGNATURE="t=1,v1=00"
    )
    assert (accepted.status_code, rejected.status_code, replayed.status_code, forged.status_code) == (
        201,
        422,
        201,
        401,
    )
    reason = rejected.json()["code"]
    after = scrape()

    def grew(name, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew("boissipay_operations_total", type="purchase", status="accepted", reason="") == 1  # not the replay
    assert grew("boissipay_operations_total", type="purchase", status="rejected", reason=reason) == 1
    assert grew("boissipay_webhook_signature_failures_total") == 1
    assert grew("django_http_requests_total_by_method_total", method="POST") == 4
    assert sample(after, "boissipay_outstanding_minor_units", currency="EUR") >= 3_000
    for family in (
        "boissipay_outbox_backlog",
        "boissipay_outbox_oldest_unsent_age_seconds",
        "boissipay_billing_run_duration_seconds_count",
        "boissipay_billing_runs",
        "boissipay_payments",
        "boissipay_dead_letters",
        "boissipay_heartbeat_age_seconds",
    ):
        assert family in after, family


def test_the_outbox_backlog_and_dead_letters_are_what_the_tables_hold(settings):
    settings.METRICS_ALLOW_UNAUTHENTICATED = True
    eventkit.record_things(3, topic="boissipay.test-metrics")
    DeadLetter.objects.create(
        handler="h", event_id="00000000-0000-0000-0000-000000000001", event_type="t", source="inprocess",
        aggregate_id="a", payload={}, error="boom",
    )  # fmt: skip
    text = scrape()

    unpublished = OutboxEvent.objects.filter(published_at__isnull=True, dead_lettered_at__isnull=True).count()
    assert sample(text, "boissipay_outbox_backlog", to="kafka") == unpublished >= 3
    assert sample(text, "boissipay_outbox_oldest_unsent_age_seconds", to="kafka") >= 0
    assert sample(text, "boissipay_dead_letters", source="inprocess") == 1


@pytest.mark.kafka
def test_the_relay_and_a_consumer_serve_their_own_metrics(kafka_broker, settings):
    settings.EVENT_FEED = {**settings.EVENT_FEED, "payments": "kafka"}  # here too: only the consumer applies them
    env = {**eventkit.subprocess_env(kafka_broker.bootstrap_servers), "EVENT_FEED_PAYMENTS": "kafka"}
    ports = {"relay": free_port(), "consumer": free_port()}
    children = [
        subprocess.Popen(
            [sys.executable, "manage.py", *command, "--metrics-port", str(ports[name])],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, command in {
            "relay": ["relay_outbox"],
            "consumer": ["consume_events", "--context", "payments"],
        }.items()
    ]
    try:
        factories.purchase(factories.billed_contract().pk)  # an accepted purchase, which payments consumes

        def metric(name, port, **labels):
            try:
                return sample(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text, name, **labels)
            except requests.RequestException:
                return 0

        eventkit.wait_until(
            lambda: metric("boissipay_relay_published_total", ports["relay"]) >= 1,
            timeout=60,
            message="the relay to count what it published",
        )
        eventkit.wait_until(
            lambda: metric("boissipay_consumer_applied_total", ports["consumer"], context="payments") >= 1,
            timeout=60,
            message="the payments consumer to count what it applied",
        )
        exposed = requests.get(f"http://127.0.0.1:{ports['consumer']}/metrics", timeout=5).text
        assert 'boissipay_consumer_lag{context="payments"' in exposed
    finally:
        for child in children:
            child.terminate()
            child.wait(30)


# --- logs --------------------------------------------------------------------------------


def configured_console(json_lines: bool = True) -> tuple[logging.Logger, io.StringIO]:
    """A logger writing through the production LOGGING configuration into a buffer."""
    stream = io.StringIO()
    config = logs.logging_config(level="INFO", json_lines=json_lines)
    config["handlers"]["console"]["stream"] = stream
    config["root"] = {"handlers": []}
    config["loggers"] = {"observed": {"handlers": ["console"], "level": "INFO", "propagate": False}}
    logging.config.dictConfig(config)
    return logging.getLogger("observed"), stream


def test_production_log_lines_are_json_with_the_request_and_event_ids():
    logger, stream = configured_console()
    with logs.handling(event="e-1", request="r-1"):
        logger.info("applied %s", "something")

    line = json.loads(stream.getvalue())
    assert line["message"] == "applied something"
    assert (line["request_id"], line["event_id"], line["level"]) == ("r-1", "e-1", "INFO")


def test_no_iban_api_key_or_email_reaches_a_log_line_even_in_an_exception():
    logger, stream = configured_console()
    spaced = " ".join(IBAN[i : i + 4] for i in range(0, len(IBAN), 4))
    key = "bp_" + "k" * 43
    try:
        raise ValueError(f"duplicate key (iban)=({IBAN}) for {key}")
    except ValueError:
        logger.exception("could not store mandate %s for %s (%s)", spaced, "compta@cse.example", key)

    written = stream.getvalue()
    assert IBAN not in written and spaced not in written and IBAN[4:-4] not in written
    assert key not in written and "compta@cse.example" not in written
    assert IBAN[:4] + "*" in written and IBAN[-4:] in written  # still recognisable
    assert "ValueError" in written


def test_an_invoice_number_or_a_reference_is_not_taken_for_an_iban():
    assert logs.redact("invoice BP202611000123 for UMR-000042") == "invoice BP202611000123 for UMR-000042"


def test_a_request_id_follows_a_purchase_into_the_outbox_onto_kafka_and_into_the_handlers():
    contract = factories.billed_contract()
    _, key = factories.api_key("operations:write")
    response = APIClient(HTTP_AUTHORIZATION=f"Api-Key {key}").post(
        "/api/v1/operations",
        purchase_body(contract.pk, "R-1"),
        format="json",
        HTTP_IDEMPOTENCY_KEY="r-1",
        HTTP_X_REQUEST_ID="req-from-the-client-1",
    )
    assert response.status_code == 201
    assert response["X-Request-ID"] == "req-from-the-client-1"
    row = OutboxEvent.objects.filter(event_type="billing.operation.accepted").latest("position")
    assert row.request_id == "req-from-the-client-1"

    key_bytes, value, headers = transport.encode_record(row)
    assert ("ce_requestid", b"req-from-the-client-1") in headers
    message = transport.decode(headers, key_bytes, value)
    seen = []
    handler = Handler(
        "test.seen", "billing", message.type, lambda m: seen.append((logs.request_id.get(), logs.event_id.get()))
    )
    with logs.handling(event="outer", request="outer"):
        handler.apply([message, bus.message_from_outbox(row)])  # from Kafka, from the dispatcher
        assert (logs.request_id.get(), logs.event_id.get()) == ("outer", "outer")  # restored after the handler
    assert seen == [("req-from-the-client-1", str(row.id))] * 2


def test_a_request_id_that_is_not_a_plain_token_is_replaced():
    response = APIClient().get("/health/live", HTTP_X_REQUEST_ID="bad id\u2028with junk")
    assert response["X-Request-ID"] != "bad id\u2028with junk"
    assert len(response["X-Request-ID"]) == 32


# --- Sentry --------------------------------------------------------------------------------


class _SentryStandIn(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding == "br":
            import brotli  # only if sentry-sdk chose it, which needs the package

            body = brotli.decompress(body)
        type(self).received.append(body)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_errors_go_to_sentry_without_iban_or_email_when_a_dsn_is_set():
    server = HTTPServer(("127.0.0.1", 0), _SentryStandIn)
    _SentryStandIn.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    dsn = f"http://publickey@127.0.0.1:{server.server_port}/42"
    code = f"""
import sentry_sdk
def store_mandate():
    iban = {IBAN!r}
    contact = "compta@cse.example"
    raise RuntimeError("mandate refused for " + iban + " (" + contact + ")")
try:
    store_mandate()
except RuntimeError:
    sentry_sdk.capture_exception()
sentry_sdk.flush(10)
"""
    try:
        started = start_django(code=code, **PRODUCTION, SENTRY_DSN=dsn)
    finally:
        server.shutdown()

    assert started.returncode == 0, started.stderr
    sent = b"".join(_SentryStandIn.received).decode()
    assert "RuntimeError" in sent and "store_mandate" in sent
    assert IBAN not in sent and "compta@cse.example" not in sent
    assert IBAN[:4] + "*" in sent


def test_fonttools_says_nothing_below_warning_when_an_invoice_pdf_is_made(caplog):
    """fontTools wrote some 65 INFO lines per PDF (subsetting the invoice's font)."""
    from django.conf import settings as django_settings

    logging.config.dictConfig(django_settings.LOGGING)
    from invoicing import documents
    from tests.invoicing.test_documents import make_document, make_line

    document = make_document([make_line(5, "Paris - Lyon", "BKG-1", [("10.00", 4_500, 450)])])
    with caplog.at_level(logging.DEBUG):
        assert documents.render_pdf(document).startswith(b"%PDF")
    assert logging.getLogger("fontTools").getEffectiveLevel() >= logging.WARNING
    assert not [record for record in caplog.records if record.name.startswith("fontTools")]
