"""The API's JSON parser: bounded nesting and no control characters.

A body nested deeper than `API_MAX_JSON_DEPTH` is refused before it is parsed (Python's
json module would recurse until RecursionError: a 500). Every text, keys included, is
refused when it holds a C0 control character other than tab, line feed and carriage
return, NUL included: such text cannot go into the XML of an e-invoice, nor into a
bank file, so it never enters."""

from __future__ import annotations

import json
import re

from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def nesting_depth_exceeds(text: str, limit: int) -> bool:
    """Whether the JSON `text` opens more than `limit` arrays/objects inside each other
    (brackets inside strings do not count). Linear, no recursion."""
    if text.count("[") + text.count("{") <= limit:
        return False  # cannot be deeper than it has brackets (the usual body: no walk)
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def control_character_paths(data, path: str = "") -> list[str]:
    """The paths (`orders[0].items[1].label`) of texts holding a refused control character."""
    found = []
    if isinstance(data, str):
        if CONTROL_CHARACTERS.search(data):
            found.append(path)
    elif isinstance(data, dict):
        for key, value in data.items():
            child = f"{path}.{key}" if path else str(key)
            if CONTROL_CHARACTERS.search(str(key)):
                found.append(child)
            found += control_character_paths(value, child)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += control_character_paths(value, f"{path}[{index}]")
    return found


def loads_checked(raw: bytes | str):
    """Parse a JSON body under the API's limits. Raises ParseError (malformed, too deep)
    or ValidationError (control characters), both answered 400."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    limit = settings.API_MAX_JSON_DEPTH
    if nesting_depth_exceeds(text, limit):
        raise ParseError(f"The JSON body is nested more than {limit} levels deep.")
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"JSON parse error - {exc}") from None
    # A strict json.loads refuses raw control characters in strings: the refused ones can
    # only have come in escaped (\u0000, \b, ...), or as a raw DEL. The usual body has
    # neither a backslash nor a DEL, and is not walked.
    refused = control_character_paths(data) if "\\" in text or "\x7f" in text else []
    if refused:
        raise ValidationError(
            {path or "body": ["Control characters (other than tab and new line) are not accepted."] for path in refused}
        )
    return data


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class CheckedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        if stream is None:
            return None
        try:
            data = loads_checked(stream.read())
        except UnicodeDecodeError:
            raise ParseError("The body is not UTF-8.") from None
        if not isinstance(data, dict):
            # Every body of the API is an object: `null` or `[]` must not read as "no fields".
            raise ValidationError({"body": ["The body must be a JSON object."]})
        return data
