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
    """All contexts' OpenAPI documents as one, for Swagger UI and ReDoc."""
    merged: dict = {
        "openapi": "3.1.0",
        "info": {"title": "Boissipay API", "version": "1.0.0"},
        "paths": {},
        "components": {},
    }
    for name in openapi_document_names():
        document = yaml.safe_load((OPENAPI_DIR / f"{name}.yaml").read_text())
        merged.setdefault("security", document.get("security", []))
        merged["paths"].update(document.get("paths", {}))
        merged.setdefault("tags", []).extend(document.get("tags", []))
        for section, items in document.get("components", {}).items():
            merged["components"].setdefault(section, {}).update(items)
    merged["info"]["description"] = "Contract-first documents: " + ", ".join(
        f"[{name}.yaml](/api/schema/{name}.yaml)" for name in openapi_document_names()
    )
    return merged


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
