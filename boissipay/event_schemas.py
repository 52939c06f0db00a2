"""The event catalogue as code: hold an event payload to its published JSON Schema.

Each event type and version has a JSON Schema (draft 2020-12) in `openapi/events/`,
named `<event_type>.v<version>.json` (the path the CloudEvents `dataschema` attribute
gives, relative to `openapi/`). A schema's `$ref`s to sibling files, such as
`common.v1.json#/$defs/ContractState`, are resolved in that same folder. Formats
(`uuid`, `date`, `email`) are asserted, not just annotations."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT202012

EVENT_SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "openapi" / "events"
_SCHEMA_FILE = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)*\.v[0-9]+\.json")


def schema_path(event_type: str, version: int) -> Path:
    """Where the schema of `event_type` at `version` lives (whether it exists or not)."""
    return EVENT_SCHEMAS_DIR / f"{event_type}.v{version}.json"


def _load(name: str) -> dict[str, Any]:
    if not _SCHEMA_FILE.fullmatch(name):
        raise FileNotFoundError(f"{name!r} is not the name of an event schema file.")
    path = EVENT_SCHEMAS_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"No event schema {name} in {EVENT_SCHEMAS_DIR}.")
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def _retrieve(uri: str) -> Resource:
    try:
        return Resource.from_contents(_load(uri), default_specification=DRAFT202012)
    except FileNotFoundError as exc:
        raise NoSuchResource(ref=uri) from exc  # type: ignore[call-arg]  # attrs class: mypy misses its fields


@cache
def validator_for(event_type: str, version: int) -> Draft202012Validator:
    """The (cached) validator of one event type and version.

    Raises `FileNotFoundError` when the catalogue has no schema for them."""
    schema = _load(f"{event_type}.v{version}.json")
    return Draft202012Validator(
        schema,
        registry=Registry(retrieve=_retrieve),  # type: ignore[call-arg]  # likewise
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def validate_event(event_type: str, version: int, payload: dict[str, Any]) -> None:
    """Check `payload` (the event's JSON `data`) against its published schema.

    Raises `jsonschema.ValidationError` on a mismatch (the most relevant error), and
    `FileNotFoundError` when no schema exists for that event type and version."""
    validator_for(event_type, version).validate(payload)
