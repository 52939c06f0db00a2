"""The OpenAPI documents in openapi/ are the source of truth: the schema that
drf-spectacular generates from the code must not drift from them."""

import re
from pathlib import Path

import pytest
import yaml
from drf_spectacular.generators import SchemaGenerator
from openapi_spec_validator import validate

OPENAPI_DIR = Path(__file__).resolve().parent.parent / "openapi"
DOCUMENTS = sorted(p for p in OPENAPI_DIR.glob("*.yaml") if p.stem != "asyncapi")
METHODS = {"get", "post", "put", "patch", "delete"}


def _resolve(document: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        target = document
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _shape(document: dict, schema: dict | None) -> tuple:
    """What a body must contain: (required fields, all fields), following refs."""
    schema = _resolve(document, schema or {})
    if "allOf" in schema:
        schema = _resolve(document, schema["allOf"][0])
    return tuple(sorted(schema.get("required", []))), tuple(sorted(schema.get("properties", {})))


def _json_schema(document: dict, content: dict | None) -> dict | None:
    for media_type, body in (content or {}).items():
        if "json" in media_type:
            return body.get("schema")
    return None


def operations(document: dict) -> dict:
    """(path with anonymous parameters, method) -> what the operation promises."""
    result = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            request = _json_schema(document, _resolve(document, operation.get("requestBody", {})).get("content"))
            responses = {}
            for status, response in operation["responses"].items():
                response = _resolve(document, response)
                responses[status] = _shape(document, _json_schema(document, response.get("content")))
            query = sorted(
                p["name"]
                for p in map(lambda p: _resolve(document, p), operation.get("parameters", []))
                if p["in"] == "query"
            )
            result[(re.sub(r"\{[^}]+\}", "{}", path), method)] = {
                "request": _shape(document, request)[1] if request else (),
                "responses": responses,
                "query": query,
            }
    return result


@pytest.fixture(scope="module")
def generated() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_each_document_is_valid_openapi(path):
    validate(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_the_implementation_matches_the_contract_first_document(path, generated):
    written = operations(yaml.safe_load(path.read_text()))
    implemented = operations(generated)
    documented_paths = {path for path, _ in written}
    implemented = {key: value for key, value in implemented.items() if key[0] in documented_paths}
    assert sorted(implemented) == sorted(written), "operations differ between code and document"
    for key, promise in written.items():
        assert implemented[key] == promise, f"{key[1].upper()} {key[0]} drifted from {path.name}"
