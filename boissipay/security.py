"""Guessing is throttled: failed back-office logins (django-axes) and failed API keys,
per client address. Both answer 429 with `Retry-After` while an address is locked out."""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse
from rest_framework import exceptions


def client_address(request) -> str:
    """The caller's address: REMOTE_ADDR (behind a proxy, the proxy sets it from the
    forwarded header it trusts, see gunicorn's forwarded_allow_ips)."""
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def admin_login_locked_out(request, original_response=None, credentials=None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: 429 with Retry-After, the cool-off in seconds."""
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    response = HttpResponse(
        "Trop de tentatives de connexion échouées depuis cette adresse : réessayez dans "
        f"{math.ceil(seconds / 60)} minutes. / Too many failed logins from this address.",
        status=429,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = str(seconds)
    return response


def _failures_key(address: str) -> str:
    return f"api-key-failures:{address}"


def refuse_if_locked_out(request) -> None:
    """Raise Throttled (429, Retry-After) while the caller's address is locked out for
    sending too many bad API keys."""
    record = cache.get(_failures_key(client_address(request)))
    if record and record["count"] >= settings.API_KEY_FAILURE_LIMIT:
        wait = max(1, math.ceil(record["until"] - time.time()))
        raise exceptions.Throttled(wait=wait, detail="Too many bad API keys from this address.")


def count_failed_api_key(request) -> None:
    """One more bad API key from the caller's address, within the failure window."""
    key = _failures_key(client_address(request))
    window = settings.API_KEY_FAILURE_WINDOW_SECONDS
    record = cache.get(key) or {"count": 0, "until": time.time() + window}
    record["count"] += 1
    cache.set(key, record, timeout=max(1, math.ceil(record["until"] - time.time())))
