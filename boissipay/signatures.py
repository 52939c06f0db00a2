"""Signed webhooks (the payment provider's, the e-invoicing platform's):
`Boissipay-Signature: t=<unix time>,v1=<hex HMAC-SHA256>`, the HMAC
taken with the shared secret over `"<t>." + body` (the scheme Stripe made familiar).
A signature is refused when it does not match or when `t` is older than the tolerance
(5 minutes by default): a captured request cannot be replayed later."""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Boissipay-Signature"


class InvalidSignature(Exception):
    pass


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The header value signing `body` now (or at `timestamp`)."""
    moment = int(time.time() if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"{moment}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={moment},v1={digest}"


def verify(header: str | None, body: bytes, secret: str, tolerance_seconds: int, now: float | None = None) -> None:
    """Raise InvalidSignature unless `header` signs `body` with `secret`, recently."""
    if not header:
        raise InvalidSignature(f"The {HEADER} header is missing.")
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        moment = int(parts["t"])
        given = parts["v1"]
    except (ValueError, KeyError):
        raise InvalidSignature(f"The {HEADER} header is malformed.") from None
    if not given.isascii():  # compare_digest refuses non-ASCII text: a forged header, not a crash
        raise InvalidSignature(f"The {HEADER} header is malformed.")
    expected = hmac.new(secret.encode(), f"{moment}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        raise InvalidSignature("The signature does not match the body.")
    age = (time.time() if now is None else now) - moment
    if abs(age) > tolerance_seconds:
        raise InvalidSignature(f"The signature is {int(age)} s old; at most {tolerance_seconds} s is accepted.")
