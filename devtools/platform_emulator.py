"""A local emulator of an approved e-invoicing platform ("plateforme agréée"), for local
runs, demos and tests (issue 16). Standard library only; it never touches our database.

HTTP API (the one `invoicing.einvoicing` speaks to a real platform)
--------------------------------------------------------------------
- `POST /v1/invoices` with `Authorization: Bearer <token>` and a JSON body
  `{"invoice_number", "seller_siren", "buyer_siren", "total_incl_tax", "currency",
  "facturx_pdf": <base64>}` answers `201 {"message_id": "msg_<hex>"}`. The same invoice
  number deposited again answers `409 {"error": "already_deposited", "message_id": ...}`
  and nothing more happens; a wrong token `401`; a bad body `400`.
- Then, `delay_seconds` apart, it calls our webhook with each lifecycle status of the
  outcome, signed like the payment provider's callbacks (`Boissipay-Signature`):
  `{"event_id", "message_id", "invoice_number", "status", "reason", "occurred_at"}`.
  A failed call is retried a few times.
- `POST /v1/invoices/<message_id>/statuses` `{"status": "paid" | "payment_cancelled",
  "amount", "currency", "date"}`: the seller's own status (VAT on collection); `200`.
- `GET /v1/invoices/<message_id>`: what it holds (debugging and tests); `GET /health`.

Outcomes: `{"default": "approved", "siren": {"<buyer SIREN>": "rejected" | "refused"},
"delay_seconds": 0.5}` (constructor, `--outcomes` or PLATFORM_EMULATOR_OUTCOMES).
- approved: deposited, received, approved;
- rejected: rejected (a format error: the platform does not route it);
- refused: deposited, received, refused (the buyer refuses it);
- paid: deposited, received, approved, paid (the buyer reports its payment).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from boissipay import signatures

SEQUENCES = {
    "approved": [("deposited", ""), ("received", ""), ("approved", "")],
    "rejected": [("rejected", "Format error: the e-invoice was not accepted by the platform (emulated).")],
    "refused": [("deposited", ""), ("received", ""), ("refused", "Refused by the buyer (emulated).")],
    # The buyer's side says it paid (the platform relays it); the seller's own "paid" comes from us.
    "paid": [("deposited", ""), ("received", ""), ("approved", ""), ("paid", "Paid, as the buyer reports (emulated).")],
}
REQUIRED = ("invoice_number", "seller_siren", "buyer_siren", "total_incl_tax", "currency", "facturx_pdf")


class PlatformEmulator:
    def __init__(
        self,
        *,
        webhook_url: str,
        secret: str,
        token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        outcomes: dict | None = None,
    ):
        self.webhook_url, self.secret, self.token = webhook_url, secret, token
        self.outcomes = {"default": "approved", "siren": {}, "delay_seconds": 0.5, **(outcomes or {})}
        self.deposits: dict[str, dict] = {}  # message id -> what it holds
        self.by_number: dict[str, str] = {}
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> PlatformEmulator:
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- what it does ---------------------------------------------------------------------------

    def deposit(self, body: dict) -> tuple[int, dict]:
        missing = [name for name in REQUIRED if name not in body]
        if missing:
            return 400, {"error": "invalid_request", "message": f"missing: {', '.join(missing)}"}
        try:
            base64.b64decode(body["facturx_pdf"], validate=True)
        except (binascii.Error, ValueError, TypeError):
            return 400, {"error": "invalid_request", "message": "facturx_pdf is not base64"}
        with self.lock:
            number = str(body["invoice_number"])
            if number in self.by_number:
                return 409, {"error": "already_deposited", "message_id": self.by_number[number]}
            message_id = f"msg_{secrets.token_hex(8)}"
            outcome = self.outcomes["siren"].get(str(body["buyer_siren"]), self.outcomes["default"])
            self.by_number[number] = message_id
            self.deposits[message_id] = {"invoice_number": number, "outcome": outcome, "sent": [], "reports": []}
        threading.Thread(target=self._call_back, args=(message_id, number, outcome), daemon=True).start()
        return 201, {"message_id": message_id}

    def report(self, message_id: str, body: dict) -> tuple[int, dict]:
        with self.lock:
            held = self.deposits.get(message_id)
            if held is None:
                return 404, {"error": "unknown_message"}
            if body.get("status") not in ("paid", "payment_cancelled"):
                return 400, {"error": "invalid_request", "message": "status is paid or payment_cancelled"}
            held["reports"].append(body)
        return 200, {"received": True}

    def _call_back(self, message_id: str, number: str, outcome: str) -> None:
        for status, reason in SEQUENCES[outcome]:
            time.sleep(float(self.outcomes["delay_seconds"]))
            event = {
                "event_id": f"evt_{secrets.token_hex(8)}",
                "message_id": message_id,
                "invoice_number": number,
                "status": status,
                "reason": reason,
                "occurred_at": int(time.time()),
            }
            for attempt in range(5):
                payload = json.dumps(event).encode()
                headers = {"Content-Type": "application/json", signatures.HEADER: signatures.sign(payload, self.secret)}
                try:
                    answered = requests.post(self.webhook_url, data=payload, headers=headers, timeout=10).status_code
                except requests.RequestException:
                    answered = 0
                if 200 <= answered < 500:
                    break
                time.sleep(0.5 * 2**attempt)
            with self.lock:
                self.deposits[message_id]["sent"].append({**event, "answered": answered})

    def _handler(self):
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):
                if self.path == "/health":
                    return self._answer(200, {"status": "ok"})
                if self.path.startswith("/v1/invoices/"):
                    with emulator.lock:
                        held = emulator.deposits.get(self.path.rsplit("/", 1)[-1])
                    return self._answer(200, held) if held else self._answer(404, {"error": "unknown_message"})
                return self._answer(404, {"error": "not_found"})

            def do_POST(self):
                if self.headers.get("Authorization") != f"Bearer {emulator.token}":
                    return self._answer(401, {"error": "unauthorized"})
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                except ValueError:
                    return self._answer(400, {"error": "invalid_request", "message": "not JSON"})
                if not isinstance(body, dict):
                    return self._answer(400, {"error": "invalid_request", "message": "not a JSON object"})
                if self.path == "/v1/invoices":
                    return self._answer(*emulator.deposit(body))
                parts = self.path.strip("/").split("/")
                if len(parts) == 4 and parts[:2] == ["v1", "invoices"] and parts[3] == "statuses":
                    return self._answer(*emulator.report(parts[2], body))
                return self._answer(404, {"error": "not_found"})

            def log_message(self, *args):
                pass

        return Handler
