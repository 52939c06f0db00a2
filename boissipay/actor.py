"""Who is acting: a staff user, an API key or the system (a scheduled task, a command, an
event handler). Every domain event carries it (`boissipay.outbox`), and every historical
record of the audit trail names it (`boissipay.history`).

The web request is remembered by `ActorMiddleware`; the actor is read from it only when
a service records something, so that a request that changes nothing pays nothing. DRF
sets the Django request's `user` to the API key's client when it authenticates, and the
admin's session gives the staff user. Outside a request, `acting_as()` names the actor
(a command names its operator, a task its name); otherwise it is the system process."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import sys
from dataclasses import dataclass
from typing import Any, Literal

from django.core.serializers.json import DjangoJSONEncoder

ActorKind = Literal["staff", "api_key", "system"]


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    id: str
    name: str

    def payload(self) -> dict[str, str]:
        return {"type": self.kind, "id": self.id, "name": self.name}

    def __str__(self) -> str:
        labels = {"staff": "staff", "api_key": "API key", "system": "system"}
        return f"{labels[self.kind]} {self.name}"


_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("boissipay_actor", default=None)
_request: contextvars.ContextVar[Any] = contextvars.ContextVar("boissipay_actor_request", default=None)
_reason: contextvars.ContextVar[str] = contextvars.ContextVar("boissipay_change_reason", default="")


def _process_name() -> str:
    """`manage.py suspend_overdue`, `celery`, `gunicorn`...: what this process is."""
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    if program == "manage.py" and len(sys.argv) > 1:
        return f"manage.py {sys.argv[1]}"
    return program


def system(name: str | None = None) -> Actor:
    return Actor("system", "", name or _process_name())


def staff(user) -> Actor:
    return Actor("staff", str(user.pk), user.get_username())


def _from_request(request) -> Actor | None:
    user = getattr(request, "user", None)
    if user is None:
        return None
    key_id = getattr(user, "key_id", None)  # boissipay.api.auth.Client
    if key_id is not None:
        return Actor("api_key", str(key_id), user.name)
    if getattr(user, "is_authenticated", False):
        return staff(user)
    return None


def current() -> Actor:
    """The actor of what is being done now."""
    actor = _actor.get()
    if actor is not None:
        return actor
    request = _request.get()
    if request is not None:
        actor = _from_request(request)
        if actor is not None:
            return actor
    return system()


def current_reason() -> str:
    """The reason given for the change being made (`acting_as(..., reason=...)`), or ""."""
    return _reason.get()


@contextlib.contextmanager
def acting_as(actor: Actor | None = None, *, reason: str | None = None):
    """Name the actor (and/or the reason) of everything done inside the block."""
    actor_token = _actor.set(actor) if actor is not None else None
    reason_token = _reason.set(reason.strip()) if reason is not None else None
    try:
        yield
    finally:
        if reason_token is not None:
            _reason.reset(reason_token)
        if actor_token is not None:
            _actor.reset(actor_token)


# Requests that change no audited table: the purchase path (billing's operations are
# their own record, with the API key that sent them) stays free of the trail's cost.
UNAUDITED_PATHS = ("/api/v1/operations",)


class ActorMiddleware:
    """Remembers the request so that `current()` can name who sent it; a request that may
    write opens the audit session of its changes."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        try:
            if request.method in ("GET", "HEAD", "OPTIONS") or request.path.startswith(UNAUDITED_PATHS):
                return self.get_response(request)
            with audited():
                return self.get_response(request)
        finally:
            _request.reset(token)


# --- the audit trail's context (boissipay.history) ------------------------------------


class _Lazy:
    """Stands in the audit context for what is only known when a row changes: the
    actor (DRF authenticates inside the view) and the reason (given by the service)."""

    def __init__(self, resolve):
        self.resolve = resolve


ACTOR = _Lazy(lambda: current().payload())
REASON = _Lazy(current_reason)


class HistoryJSONEncoder(DjangoJSONEncoder):
    """django-pghistory serialises the context before each write statement: the lazy
    actor and reason become what they are at that moment (PGHISTORY_JSON_ENCODER)."""

    def default(self, o):
        if isinstance(o, _Lazy):
            return o.resolve()
        return super().default(o)


def audited():
    """The audit session of a unit of work (a web request that writes, a task, an event
    handled): every tracked row it changes records the actor and the reason."""
    import pghistory

    return pghistory.context(actor=ACTOR, reason=REASON)


@contextlib.contextmanager
def because(reason: str):
    """Changes made inside the block were made for `reason` (in their history, with the
    actor). Opens an audit session when none is open (a command, a test)."""
    with acting_as(reason=reason or None), audited():
        yield


def gives_reason(service):
    """A service whose `reason` keyword is the reason of its changes in the audit trail."""

    @functools.wraps(service)
    def with_reason(*args, **kwargs):
        with because(kwargs.get("reason") or ""):
            return service(*args, **kwargs)

    return with_reason
