"""Errors to Sentry (sentry-sdk with its Django and Celery integrations) when SENTRY_DSN
is set, with no personal data: no user, cookies, headers or bodies are sent
(`send_default_pii=False`, request bodies off), and every string of an event, whether a
message, an exception's text or a local variable, has its IBANs, API keys and e-mail
addresses masked (boissipay.logs.redact) before it leaves the process."""

from __future__ import annotations

from typing import Any

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import LoggingIntegration

from boissipay.logs import redact


def scrub(value: Any) -> Any:
    """`value` with every string in it redacted, at any depth."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    return value


def before_send(event: Any, hint: dict[str, Any]) -> Any:
    event.pop("user", None)
    request = event.get("request")
    if isinstance(request, dict):
        for private in ("cookies", "data", "headers", "env"):
            request.pop(private, None)
    return scrub(event)


def init_sentry(dsn: str, *, environment: str, traces_sample_rate: float = 0.0) -> None:
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        send_default_pii=False,
        max_request_body_size="never",
        include_local_variables=True,  # useful, and scrubbed like the rest
        traces_sample_rate=traces_sample_rate,
        integrations=[
            DjangoIntegration(),
            CeleryIntegration(monitor_beat_tasks=False),
            LoggingIntegration(event_level=None),  # errors are sent as exceptions, not as log lines
        ],
        before_send=before_send,
        before_send_transaction=before_send,
        before_breadcrumb=lambda crumb, hint: scrub(crumb),
    )
