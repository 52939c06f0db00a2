"""The audit trail: every change to a contract, mandate, customer, API key, invoice or
credit note, manual payment and billing run, kept by PostgreSQL triggers
(django-pghistory, ADR 0031).

A tracked model gets an append-only `<Model>Event` table: one row per insert and per
update that changed something, with the row as it became, when, and the context of the
change: who acted (`actor`: a staff user, an API key or the system) and why (`reason`).
Triggers see every write, the ORM's, a queryset's `update()` and the billing run's plain
SQL alike. The context is opened by the web request, the task, the event handler or the
service that gives a reason (boissipay.actor)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pghistory

# Columns that are not what staff changed, or that must not be copied (a key's digest).
NEVER_SNAPSHOT = {"digest"}


def track(*, exclude: list[str] | None = None):
    """`@track()` on a model: keep its audit trail."""
    return pghistory.track(
        pghistory.InsertEvent(),
        pghistory.UpdateEvent(),
        exclude=exclude,
        context_field=pghistory.ContextJSONField(),
        append_only=True,
    )


@dataclass(frozen=True)
class Change:
    """One entry of a record's history, as staff read it."""

    at: Any
    label: str  # "insert" or "update"
    actor: dict | None
    reason: str
    changes: dict[str, tuple[Any, Any]]  # field: (before, after); every field on insert

    @property
    def actor_label(self) -> str:
        if not self.actor:
            return "system"
        kinds = {"staff": "", "api_key": "API key ", "system": "system: "}
        kind = str(self.actor.get("type", ""))
        return f"{kinds.get(kind, '')}{self.actor.get('name', '')}".strip()


def history_of(obj, limit: int = 200) -> list[Change]:
    """The changes of one tracked record, newest first."""
    from pghistory.models import Events

    events = Events.objects.tracks(obj).order_by("-pgh_created_at", "-pgh_id")[:limit]
    changes = []
    for event in events:
        context = event.pgh_context or {}
        if event.pgh_label == "insert" or not event.pgh_diff:
            diff = {name: (None, value) for name, value in (event.pgh_data or {}).items() if name not in NEVER_SNAPSHOT}
        else:
            diff = {name: tuple(values) for name, values in event.pgh_diff.items() if name not in NEVER_SNAPSHOT}
        changes.append(
            Change(
                at=event.pgh_created_at,
                label=event.pgh_label,
                actor=context.get("actor"),
                reason=context.get("reason") or "",
                changes=diff,
            )
        )
    return changes
