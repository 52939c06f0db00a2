"""Holds every API response seen in the tests to the contract-first documents."""

import json
from functools import cache
from pathlib import Path

from openapi_core import Config, OpenAPI
from openapi_core.templating.paths.exceptions import PathNotFound
from openapi_core.testing import MockRequest, MockResponse

OPENAPI_DIR = Path(__file__).resolve().parent.parent / "openapi"


@cache
def documents() -> dict[str, OpenAPI]:
    config = Config(
        extra_media_type_deserializers={
            "application/problem+json": json.loads,
            # A binary body is a `string` (format: binary) to the document.
            "application/pdf": lambda content: content.decode("latin-1"),
        }
    )
    return {
        p.stem: OpenAPI.from_file_path(str(p), config=config)
        for p in sorted(OPENAPI_DIR.glob("*.yaml"))
        if p.stem != "asyncapi"
    }


def validate_response(method: str, path: str, status_code: int, content: bytes, content_type: str) -> str | None:
    """Validate against the document that describes `path`; return that document's name,
    or None when no document describes the path. Raises on a response that breaks it."""
    request = MockRequest("http://testserver", method.lower(), path)
    response = MockResponse(content, status_code=status_code, content_type=content_type.split(";")[0])
    for name, document in documents().items():
        try:
            document.validate_response(request, response)
        except PathNotFound:
            continue
        return name
    return None
