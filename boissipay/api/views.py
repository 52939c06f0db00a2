"""Platform endpoints: health and the contract-first OpenAPI documents."""

from functools import cache
from pathlib import Path

import yaml
from django.conf import settings
from django.db import connection
from django.http import Http404, HttpResponse, JsonResponse

OPENAPI_DIR = Path(settings.BASE_DIR) / "openapi"


def openapi_document_names() -> list[str]:
    return sorted(p.stem for p in OPENAPI_DIR.glob("*.yaml") if p.stem != "asyncapi")


@cache
def merged_openapi_document() -> dict:
    """All contexts' OpenAPI documents as one, for Swagger UI and ReDoc.

    Components that several documents define alike are kept once under their own name;
    those they define differently (each context's `NotFound` lists its own codes) are
    renamed `<Context><Name>` in each document, references included, so no document's
    responses are overwritten by another's. A path two documents both claim is an error."""
    documents = {name: yaml.safe_load((OPENAPI_DIR / f"{name}.yaml").read_text()) for name in openapi_document_names()}
    merged: dict = {
        "openapi": "3.1.0",
        "info": {"title": "Boissipay API", "version": "1.0.0"},
        "paths": {},
        "components": {},
    }
    for name, document in _namespaced(documents).items():
        merged.setdefault("security", document.get("security", []))
        for path, item in document.get("paths", {}).items():
            if path in merged["paths"]:
                raise ValueError(f"{path} is described by two OpenAPI documents (the second is {name}.yaml)")
            merged["paths"][path] = item
        merged.setdefault("tags", []).extend(document.get("tags", []))
        for section, items in document.get("components", {}).items():
            merged["components"].setdefault(section, {}).update(items)
    merged["info"]["description"] = "Contract-first documents: " + ", ".join(
        f"[{name}.yaml](/api/schema/{name}.yaml)" for name in openapi_document_names()
    )
    return merged


def _namespaced(documents: dict[str, dict]) -> dict[str, dict]:
    """The documents with every component that collides across them renamed per context."""
    definitions: dict[tuple[str, str], list] = {}
    for document in documents.values():
        for section, items in document.get("components", {}).items():
            for component, value in items.items():
                definitions.setdefault((section, component), []).append(value)
    clashing = {key for key, values in definitions.items() if any(value != values[0] for value in values)}
    result = {}
    for name, document in documents.items():
        prefix = name.capitalize()
        renames = {
            f"#/components/{section}/{component}": f"#/components/{section}/{prefix}{component}"
            for section, items in document.get("components", {}).items()
            for component in items
            if (section, component) in clashing
        }
        document = _renamed_refs(document, renames)
        for section, items in document.get("components", {}).items():
            document["components"][section] = {
                (f"{prefix}{component}" if (section, component) in clashing else component): value
                for component, value in items.items()
            }
        result[name] = document
    return result


def _renamed_refs(node, renames: dict[str, str]):
    if isinstance(node, dict):
        return {
            key: (
                renames.get(value, value) if key == "$ref" and isinstance(value, str) else _renamed_refs(value, renames)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_renamed_refs(value, renames) for value in node]
    return node


def contract_documents(request):
    return HttpResponse(yaml.safe_dump(merged_openapi_document(), sort_keys=False), content_type="application/yaml")


def contract_document(request, name: str):
    if name not in [*openapi_document_names(), "asyncapi"]:
        raise Http404
    return HttpResponse((OPENAPI_DIR / f"{name}.yaml").read_text(), content_type="application/yaml")


def health(request):
    """Liveness and readiness: the database answers; the outbox backlog is reported."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), extract(epoch FROM now() - min(occurred_at)) FROM boissipay_outboxevent "
            "WHERE published_at IS NULL AND dead_lettered_at IS NULL"
        )
        backlog, oldest_age = cursor.fetchone()
    return JsonResponse(
        {
            "status": "ok",
            "outbox": {"backlog": backlog, "oldest_unpublished_age_seconds": float(oldest_age or 0)},
        }
    )


def live(request):
    """Liveness: this process answers."""
    return JsonResponse({"status": "ok"})


def ready(request):
    """Readiness (boissipay.health): 503 only when PostgreSQL does not answer; Kafka, the
    Celery broker and the processes' heartbeats are reported ("degraded")."""
    from boissipay.health import readiness

    status, body = readiness()
    return JsonResponse(body, status=status)
