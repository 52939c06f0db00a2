"""Signed webhooks (the payment provider's, the e-invoicing platform's): the body,
verified (boissipay.signatures) and parsed within the API's limits, or a problem."""

from __future__ import annotations

from collections.abc import Callable

from rest_framework.exceptions import ParseError

from boissipay import signatures
from boissipay.api.parsers import loads_checked
from boissipay.errors import DomainError


def signed_json(
    request, *, secret: str, tolerance_seconds: int, on_bad_signature: Callable[[], None] | None = None
) -> object:
    """The request's JSON body once its signature checks. Raises DomainError 401
    `invalid_signature` (after `on_bad_signature`, a metric say) or 400 `malformed_request`;
    nothing is applied then."""
    body = request.body  # the raw bytes the signature covers
    try:
        signatures.verify(request.headers.get(signatures.HEADER), body, secret, tolerance_seconds)
    except signatures.InvalidSignature as exc:
        if on_bad_signature is not None:
            on_bad_signature()
        raise DomainError("invalid_signature", str(exc), status_code=401) from exc
    try:
        return loads_checked(body)
    except (ParseError, UnicodeDecodeError):
        raise DomainError(
            "malformed_request", "The body is not JSON within the API's limits.", status_code=400
        ) from None
