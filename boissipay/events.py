"""Domain events: what a context publishes, and what a handler receives.

A context declares its events as frozen dataclasses subclassing `DomainEvent` in its own
`events.py`; services record them with `boissipay.outbox.record(event)`. Handlers
receive an `EventMessage`, the same whether it came in-process or from Kafka.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

TOPIC_PREFIX = "boissipay"


def topic_for(context: str) -> str:
    """Kafka topic of a publishing context, e.g. `boissipay.contracts.v1`."""
    return f"{TOPIC_PREFIX}.{context}.v1"


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


@dataclass(frozen=True, kw_only=True)
class DomainEvent:
    """Base of every published event. Subclasses set `context`, `event_type` and
    `version`, and carry a `contract_id`: it is the Kafka key, so one contract's events
    stay in order (an event about another aggregate overrides `aggregate_id`)."""

    context: ClassVar[str]
    event_type: ClassVar[str]
    version: ClassVar[int] = 1
    aggregate_type: ClassVar[str] = "contract"

    @property
    def aggregate_id(self) -> str:
        return str(self.contract_id)  # type: ignore[attr-defined]

    def payload(self) -> dict[str, Any]:
        # _jsonable builds new containers all the way down: no need for asdict's deep copy.
        return _jsonable({field.name: getattr(self, field.name) for field in dataclasses.fields(self)})


@dataclass(frozen=True)
class EventMessage:
    """An event as a handler sees it: plain data, whatever path brought it."""

    id: uuid.UUID
    type: str
    version: int
    source: str
    aggregate_id: str
    occurred_at: dt.datetime | None  # None only for an undecodable Kafka record, dead-lettered
    data: dict[str, Any]
    request_id: str = ""  # the HTTP request that caused it, for the logs (boissipay.logs)
