"""A local emulator of a card / direct-debit provider, for local runs, demos and tests.

It plays "the provider": a small HTTP service (standard library only, no Django models,
never touches our database) that takes charges and answers LATER by calling the charge's
`callback_url` (our webhook) with a signed event, as real providers do.

HTTP API
--------
`POST /charges` with a JSON body::

    {"payment_id": "...", "end_to_end_id": "...", "amount": 12000, "currency": "EUR",
     "iban": "FR14...", "mandate_reference": "UMR-...", "sequence_type": "FRST" | "RCUR",
     "description": "INV-...", "callback_url": "http://127.0.0.1:8000/api/v1/payments/webhook"}

answers `201 {"charge_id": "ch_<hex>", "status": "pending"}`, or `400 {"error":
"invalid_request", "message": ..., "fields": {name: problem}}`. It is idempotent on the
`Idempotency-Key` header: the same key again answers the first charge (201, header
`Idempotent-Replayed: true`) and schedules no second callback; the same key with another
body answers `409 {"error": "idempotency_key_reused"}`.

`delay_seconds` after the charge (1 s by default), a background timer POSTs to the
`callback_url`::

    {"event_id": "evt_<hex>", "type": "charge.succeeded" | "charge.failed",
     "charge_id": ..., "payment_id": ..., "end_to_end_id": ..., "amount": ..., "currency": ...,
     "failure_code": null | "insufficient_funds" | "mandate_revoked" | "technical_error",
     "failure_message": "...", "created": <unix time>}

signed with the header `Boissipay-Signature` (`payments.signatures.sign`, fresh at each
attempt; the event id stays the same). A 5xx answer or a connection error is retried with
backoff (`retry_delays`, 1, 2, 4 and 8 s by default); a 2xx or 4xx answer ends it.

`GET /charges/<charge_id>` shows a charge with its state and callback attempts,
`GET /charges` lists them all (debugging), `GET /health` answers `{"status": "ok"}`.

Outcomes
--------
Configured by a JSON-like dict (the constructor's `outcomes`; for the management command
`--outcomes '<json>'` or the environment variable PAYMENTS_EMULATOR_OUTCOMES)::

    {"default": "succeeded",
     "iban": {"DE89370400440532013000": "insufficient_funds"},
     "amount": {"1313": "technical_error"},
     "cents": {"01": "insufficient_funds"},
     "delay_seconds": 1}

Outcome values: `succeeded`, `insufficient_funds`, `mandate_revoked`, `technical_error`
and `no_answer` (the charge stays pending and nothing is ever called back). The first
rule that matches wins, in this order: the IBAN (spaces ignored, case-insensitive), the
exact amount in minor units, the amount's last two digits ("cents"), then the default.

Built-in convention so that demos need no configuration: an amount whose last two digits
are 01 (e.g. 120.01 EUR = 12001) fails with `insufficient_funds`. Override it by giving
your own `"cents"` map (e.g. `{"01": "mandate_revoked", "02": "technical_error"}`), or
disable it with `"cents": {}`.

Use `GatewayEmulator(...).start()` (a background thread; port 0 picks a free port, see
`.url`) and `.stop()`; `manage.py run_gateway_emulator` runs one in the foreground.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from payments.signatures import HEADER, sign

logger = logging.getLogger(__name__)

SUCCEEDED = "succeeded"
NO_ANSWER = "no_answer"
FAILURE_MESSAGES = {
    "insufficient_funds": "The debtor's account has insufficient funds (SEPA AM04).",
    "mandate_revoked": "The mandate was revoked or cancelled by the debtor (SEPA MD01).",
    "technical_error": "The debtor's bank could not process the debit; a technical error occurred (SEPA MS03).",
}
OUTCOMES = frozenset({SUCCEEDED, NO_ANSWER, *FAILURE_MESSAGES})
DEFAULT_CENTS = {"01": "insufficient_funds"}
DEFAULT_DELAY_SECONDS = 1.0
DEFAULT_RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0)
SEQUENCE_TYPES = frozenset({"FRST", "RCUR", "OOFF", "FNAL"})
MAX_BODY_BYTES = 64 * 1024
CALLBACK_TIMEOUT_SECONDS = 5.0

_IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_CHARGE_PATH = re.compile(r"^/charges/([A-Za-z0-9_]+)$")


def _normalise_iban(value: str) -> str:
    return re.sub(r"\s+", "", value).upper()


def _iban_problem(value: str) -> str | None:
    iban = _normalise_iban(value)
    if not _IBAN.match(iban):
        return "not an IBAN (country code, check digits, then 11 to 30 letters or digits)"
    digits = "".join(str(int(char, 36)) for char in iban[4:] + iban[:4])
    if int(digits) % 97 != 1:
        return "the IBAN's check digits are wrong"
    return None


@dataclass(frozen=True)
class Outcomes:
    """Which outcome a charge gets; see the module docstring."""

    default: str = SUCCEEDED
    by_iban: Mapping[str, str] = field(default_factory=dict)
    by_amount: Mapping[str, str] = field(default_factory=dict)
    by_cents: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CENTS))
    delay_seconds: float | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | str | None) -> Outcomes:
        """From the JSON config (a dict, a JSON string, or None for the defaults).
        Raises ValueError on an unknown key or outcome."""
        if config is None or config == "":
            return cls()
        if isinstance(config, str):
            try:
                config = json.loads(config)
            except json.JSONDecodeError as exc:
                raise ValueError(f"The outcomes are not valid JSON: {exc}") from None
        if not isinstance(config, Mapping):
            raise ValueError("The outcomes must be a JSON object.")
        unknown = set(config) - {"default", "iban", "amount", "cents", "delay_seconds"}
        if unknown:
            raise ValueError(f"Unknown outcomes key(s): {', '.join(sorted(unknown))}.")

        def outcome(value: Any, where: str) -> str:
            if value not in OUTCOMES:
                raise ValueError(f"{where}: {value!r} is not one of {', '.join(sorted(OUTCOMES))}.")
            return value

        def rules(name: str, key: Callable[[Any], str]) -> dict[str, str] | None:
            if name not in config:
                return None
            if not isinstance(config[name], Mapping):
                raise ValueError(f"outcomes.{name} must be an object.")
            return {key(k): outcome(v, f"outcomes.{name}.{k}") for k, v in config[name].items()}

        def cents_key(value: Any) -> str:
            text = str(value)
            if not re.fullmatch(r"[0-9]{2}", text):
                raise ValueError(f"outcomes.cents: {value!r} is not two digits (e.g. '01').")
            return text

        delay = config.get("delay_seconds")
        if delay is not None and (isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0):
            raise ValueError("outcomes.delay_seconds must be a number of seconds, 0 or more.")
        cents = rules("cents", cents_key)
        return cls(
            default=outcome(config.get("default", SUCCEEDED), "outcomes.default"),
            by_iban=rules("iban", lambda k: _normalise_iban(str(k))) or {},
            by_amount=rules("amount", lambda k: str(int(k))) or {},
            by_cents=dict(DEFAULT_CENTS) if cents is None else cents,
            delay_seconds=None if delay is None else float(delay),
        )

    def for_charge(self, *, iban: str, amount: int) -> str:
        for rule, key in (
            (self.by_iban, _normalise_iban(iban)),
            (self.by_amount, str(amount)),
            (self.by_cents, f"{amount % 100:02d}"),
        ):
            if key in rule:
                return rule[key]
        return self.default


def _validate_charge(body: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """(the charge's fields, problems by field name)."""
    if not isinstance(body, dict):
        return {}, {"body": "must be a JSON object"}
    problems: dict[str, str] = {}
    clean: dict[str, Any] = {}

    def text(name: str, *, required: bool = True, max_length: int = 140) -> None:
        value = body.get(name, None if required else "")
        if not isinstance(value, str) or (required and not value.strip()):
            problems[name] = "required, a non-empty string" if required else "must be a string"
        elif len(value) > max_length:
            problems[name] = f"at most {max_length} characters"
        else:
            clean[name] = value

    text("payment_id", max_length=64)
    text("end_to_end_id", max_length=35)
    text("mandate_reference", max_length=35)
    text("description", required=False)
    amount = body.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        problems["amount"] = "required, a positive integer in minor units"
    else:
        clean["amount"] = amount
    currency = body.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        problems["currency"] = "required, an ISO 4217 code such as EUR"
    else:
        clean["currency"] = currency
    iban = body.get("iban")
    if not isinstance(iban, str):
        problems["iban"] = "required, a string"
    elif problem := _iban_problem(iban):
        problems["iban"] = problem
    else:
        clean["iban"] = _normalise_iban(iban)
    sequence_type = body.get("sequence_type")
    if sequence_type not in SEQUENCE_TYPES:
        problems["sequence_type"] = f"required, one of {', '.join(sorted(SEQUENCE_TYPES))}"
    else:
        clean["sequence_type"] = sequence_type
    callback_url = body.get("callback_url")
    parsed = urllib.parse.urlsplit(callback_url) if isinstance(callback_url, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
        problems["callback_url"] = "required, an http(s) URL"
    else:
        clean["callback_url"] = callback_url
    return clean, problems


class GatewayEmulator:
    """The provider emulator. `start()` serves in a background thread and returns self;
    `stop()` shuts it down and cancels the callbacks not yet delivered."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8099,
        secret: str = "whsec_local_development_only",  # noqa: S107 - the settings' local default, not a real secret
        outcomes: Mapping[str, Any] | str | Outcomes | None = None,
        delay_seconds: float | None = None,
        *,
        retry_delays: Iterable[float] = DEFAULT_RETRY_DELAYS,
        callback_timeout: float = CALLBACK_TIMEOUT_SECONDS,
        log: Callable[[str], None] | None = None,
    ):
        self.host = host
        self.requested_port = port
        self.secret = secret
        self.outcomes = outcomes if isinstance(outcomes, Outcomes) else Outcomes.from_config(outcomes)
        # The explicit argument wins over the config's "delay_seconds", which wins over 1 s.
        if delay_seconds is None:
            delay_seconds = self.outcomes.delay_seconds
        self.delay_seconds = DEFAULT_DELAY_SECONDS if delay_seconds is None else float(delay_seconds)
        self.retry_delays = tuple(float(delay) for delay in retry_delays)
        self.callback_timeout = callback_timeout
        self.log = log or logger.info
        self.charges: dict[str, dict[str, Any]] = {}
        self._by_key: dict[str, tuple[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._timers: dict[str, threading.Timer] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self.requested_port

    @property
    def url(self) -> str:
        host = self.host
        try:
            if ipaddress.ip_address(host).is_unspecified:
                host = "127.0.0.1"
        except ValueError:
            pass  # a host name
        return f"http://{host}:{self.port}"

    def start(self) -> GatewayEmulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = ThreadingHTTPServer((self.host, self.requested_port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="gateway-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> GatewayEmulator:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- charges ---------------------------------------------------------------------------

    def create_charge(self, body: Any, idempotency_key: str | None) -> tuple[int, dict[str, Any], bool]:
        """(HTTP status, answer, replayed) for a POST /charges."""
        clean, problems = _validate_charge(body)
        if problems:
            return 400, {"error": "invalid_request", "message": "The charge is invalid.", "fields": problems}, False
        with self._lock:
            if idempotency_key and idempotency_key in self._by_key:
                charge_id, first_body = self._by_key[idempotency_key]
                if first_body != clean:
                    return (
                        409,
                        {
                            "error": "idempotency_key_reused",
                            "message": "This Idempotency-Key was used for a charge with other parameters.",
                        },
                        False,
                    )
                return 201, self._answer(self.charges[charge_id]), True
            outcome = self.outcomes.for_charge(iban=clean["iban"], amount=clean["amount"])
            charge = {
                **clean,
                "charge_id": f"ch_{secrets.token_hex(12)}",
                "status": "pending",
                "outcome": outcome,
                "idempotency_key": idempotency_key or "",
                "created": int(time.time()),
                "event": None,
                "callback": {"state": "none" if outcome == NO_ANSWER else "scheduled", "attempts": []},
            }
            self.charges[charge["charge_id"]] = charge
            if idempotency_key:
                self._by_key[idempotency_key] = (charge["charge_id"], clean)
            if outcome != NO_ANSWER:
                timer = threading.Timer(self.delay_seconds, self._settle, args=(charge["charge_id"],))
                timer.daemon = True
                self._timers[charge["charge_id"]] = timer
                timer.start()
        self.log(
            f"charge {charge['charge_id']} payment={clean['payment_id']} e2e={clean['end_to_end_id']} "
            f"{clean['amount']} {clean['currency']} iban={clean['iban'][:4]}…{clean['iban'][-4:]} -> {outcome}"
            + ("" if outcome == NO_ANSWER else f" (answer in {self.delay_seconds:g} s)")
        )
        return 201, self._answer(charge), False

    @staticmethod
    def _answer(charge: dict[str, Any]) -> dict[str, Any]:
        return {"charge_id": charge["charge_id"], "status": "pending"}

    def charge(self, charge_id: str) -> dict[str, Any] | None:
        with self._lock:
            charge = self.charges.get(charge_id)
            return json.loads(json.dumps(charge)) if charge else None

    def _settle(self, charge_id: str) -> None:
        """The timer fired: decide the charge and call back."""
        if self._stopping.is_set():
            return
        with self._lock:
            self._timers.pop(charge_id, None)
            charge = self.charges[charge_id]
            failed = charge["outcome"] != SUCCEEDED
            event = {
                "event_id": f"evt_{secrets.token_hex(12)}",
                "type": "charge.failed" if failed else "charge.succeeded",
                "charge_id": charge_id,
                "payment_id": charge["payment_id"],
                "end_to_end_id": charge["end_to_end_id"],
                "amount": charge["amount"],
                "currency": charge["currency"],
                "failure_code": charge["outcome"] if failed else None,
                "failure_message": FAILURE_MESSAGES[charge["outcome"]] if failed else "",
                "created": int(time.time()),
            }
            charge["status"] = "failed" if failed else "succeeded"
            charge["event"] = event
            charge["callback"]["state"] = "delivering"
            url = charge["callback_url"]
        self._deliver(charge_id, url, json.dumps(event).encode())

    def _deliver(self, charge_id: str, url: str, body: bytes) -> None:
        """POST the event, retrying 5xx answers and connection errors with backoff."""
        event = json.loads(body)
        for attempt, wait in enumerate((0.0, *self.retry_delays), start=1):
            if wait and self._stopping.wait(wait):
                self._callback_state(charge_id, "cancelled")
                return
            if self._stopping.is_set():
                self._callback_state(charge_id, "cancelled")
                return
            status, error = self._post(url, body)
            self._callback_state(charge_id, None, {"at": int(time.time()), "status": status, "error": error})
            self.log(
                f"callback {event['event_id']} {event['type']} charge={charge_id} attempt {attempt} -> "
                + (f"HTTP {status}" if status else f"error: {error}")
            )
            if status is not None and status < 500:
                self._callback_state(charge_id, "delivered" if 200 <= status < 300 else "refused")
                return
        self._callback_state(charge_id, "gave_up")
        self.log(f"callback {event['event_id']} charge={charge_id}: gave up after {attempt} attempts")

    def _post(self, url: str, body: bytes) -> tuple[int | None, str]:
        request = urllib.request.Request(  # noqa: S310 - the callback URL was checked to be http(s)
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", HEADER: sign(body, self.secret)},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.callback_timeout) as response:  # noqa: S310 - http(s) only
                return response.status, ""
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code, ""
        except (urllib.error.URLError, OSError) as exc:
            return None, str(getattr(exc, "reason", exc))

    def _callback_state(self, charge_id: str, state: str | None, attempt: dict[str, Any] | None = None) -> None:
        with self._lock:
            callback = self.charges[charge_id]["callback"]
            if attempt is not None:
                callback["attempts"].append(attempt)
            if state is not None:
                callback["state"] = state


def _handler_for(emulator: GatewayEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "BoissipayGatewayEmulator/1.0"
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:
            logger.debug("%s %s", self.address_string(), fmt % args)

        def _send(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path.rstrip("/") or "/"
            if path == "/health":
                self._send(200, {"status": "ok"})
            elif path == "/charges":
                with emulator._lock:
                    ids = list(emulator.charges)
                self._send(200, {"charges": [emulator.charge(charge_id) for charge_id in ids]})
            elif match := _CHARGE_PATH.match(path):
                charge = emulator.charge(match.group(1))
                if charge is None:
                    self._send(404, {"error": "not_found", "message": "No such charge."})
                else:
                    self._send(200, charge)
            else:
                self._send(404, {"error": "not_found", "message": "No such resource."})

        def do_POST(self) -> None:
            path = urllib.parse.urlsplit(self.path).path.rstrip("/")
            if path != "/charges":
                self._send(404, {"error": "not_found", "message": "No such resource."})
                return
            try:
                length = int(self.headers.get("Content-Length") or "0")
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY_BYTES:
                self.close_connection = True
                self._send(400, {"error": "invalid_request", "message": "A JSON body of at most 64 KiB is expected."})
                return
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw) if raw else None
            except (json.JSONDecodeError, UnicodeDecodeError):
                self._send(400, {"error": "invalid_request", "message": "The body is not valid JSON."})
                return
            status, answer, replayed = emulator.create_charge(body, self.headers.get("Idempotency-Key") or None)
            self._send(status, answer, {"Idempotent-Replayed": "true"} if replayed else None)

        def _not_allowed(self) -> None:
            self._send(405, {"error": "method_not_allowed", "message": f"{self.command} is not allowed here."})

        do_PUT = do_PATCH = do_DELETE = _not_allowed

    return Handler
