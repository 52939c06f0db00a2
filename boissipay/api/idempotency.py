"""Idempotency-Key handling for client writes.

The key is claimed in the same transaction as the write: a concurrent retry waits on
the unique index until the first request commits, then gets its answer back. A
request that fails validation commits nothing, the key included, so its retry is
validated again and answered the same way."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from rest_framework.response import Response

from boissipay import db
from boissipay.errors import DomainError
from boissipay.models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def request_digest(request) -> str:
    body = json.dumps(request.data, sort_keys=True, default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def idempotent(request, perform: Callable[[], Response], *, required: bool = False) -> Response:
    """Run `perform` once per (API key, Idempotency-Key); replay its answer on retries.

    Raises DomainError 400 when the key is missing (and required) or too long, and 409
    (`idempotency_key_reused`) when the key was used for a different request."""
    key = request.headers.get(HEADER)
    if key is not None and not key.strip():
        raise DomainError("invalid_idempotency_key", f"{HEADER} is empty.", status_code=400)
    if not key:
        if required:
            raise DomainError("idempotency_key_required", f"The {HEADER} header is required.", status_code=400)
        with transaction.atomic():
            return perform()
    if len(key) > MAX_KEY_LENGTH:
        raise DomainError(
            "invalid_idempotency_key", f"{HEADER} is at most {MAX_KEY_LENGTH} characters.", status_code=400
        )
    api_key = request.auth
    digest = request_digest(request)
    with transaction.atomic():
        # Claim the key first: a concurrent request with the same key blocks here on the
        # unique index until this transaction ends, then finds the key taken. ON CONFLICT
        # instead of catching IntegrityError: no savepoint needed around the claim.
        record_id = _claim(api_key.pk, key, request.method, request.path[:500], digest)
        if record_id is not None:
            response = perform()
            _keep_answer(record_id, response)
            return response
    return _replay(api_key, key, digest)


def _claim(api_key_id, key: str, method: str, path: str, digest: str) -> int | None:
    """Insert the (API key, Idempotency-Key) record; None when the key is already taken."""
    row = db.fetch_one(_CLAIM, [api_key_id, key, method, path, digest])
    return row[0] if row else None


_CLAIM = (
    f"INSERT INTO {IdempotencyRecord._meta.db_table} "
    "(api_key_id, key, method, path, request_digest, response_status, response_body, created_at) "
    "VALUES (%s, %s, %s, %s, %s, 0, '{}'::jsonb, now()) "
    "ON CONFLICT (api_key_id, key) DO NOTHING RETURNING id"
)
_KEEP_ANSWER = (
    f"UPDATE {IdempotencyRecord._meta.db_table} SET response_status = %s, response_body = %s::jsonb WHERE id = %s"
)


def _keep_answer(record_id: int, response: Response) -> None:
    """Store the answer a retry with the same key gets back (plain SQL: this runs on
    every client write)."""
    db.execute(_KEEP_ANSWER, [response.status_code, json.dumps(response.data, cls=DjangoJSONEncoder), record_id])


def _replay(api_key, key: str, digest: str) -> Response:
    previous = IdempotencyRecord.objects.get(api_key=api_key, key=key)
    if previous.request_digest != digest:
        raise DomainError("idempotency_key_reused", f"This {HEADER} was already used for a different request.")
    replay = Response(previous.response_body, status=previous.response_status)
    replay["Idempotent-Replayed"] = "true"
    return replay
