"""API-key authentication (`Authorization: Api-Key <key>`) and scope permissions."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from boissipay.models import ApiKey
from boissipay.security import count_failed_api_key, refuse_if_locked_out

KEYWORD = "Api-Key"
KEY_PREFIX = "bp_"

SCOPES = {
    "contracts:read": "Read customers and contracts",
    "contracts:write": "Create and change customers and contracts",
    "operations:read": "Read operations and balances",
    "operations:write": "Submit purchases and refunds",
    "invoices:read": "Read invoices and their PDFs",
    "invoices:credit": "Issue credit notes against invoices (staff)",
    "billing-runs:write": "Start billing runs (staff)",
    "payments:read": "Read payments",
    "payments:manual": "Record payments received outside the debit (staff)",
}


def digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Client:
    """The authenticated client system behind a request."""

    key_id: str
    name: str
    scopes: frozenset[str]
    customer_id: str | None

    is_authenticated = True

    def can_see_customer(self, customer_id) -> bool:
        return self.customer_id is None or str(customer_id) == self.customer_id


class ApiKeyCache:
    """The API keys this process has recently seen, for API_KEY_CACHE_SECONDS (30 s by
    default): looking a key up on every request cost as much as deciding a purchase.

    Each web process keeps its own (nothing shared to go stale elsewhere), so a key
    revoked or changed in the database is refused by every process within that time; a
    key found neither here nor in the database is never kept (failures are counted and
    throttled instead, see boissipay.security). Bounded: emptied when it holds
    MAX_ENTRIES keys."""

    MAX_ENTRIES = 10_000

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._entries: dict[str, tuple[float, Client, ApiKey]] = {}

    def get(self, key_digest: str) -> tuple[Client, ApiKey] | None:
        entry = self._entries.get(key_digest)
        if entry is None or entry[0] <= self.clock():
            return None
        return entry[1], entry[2]

    def put(self, key_digest: str, client: Client, key: ApiKey) -> None:
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[key_digest] = (self.clock() + settings.API_KEY_CACHE_SECONDS, client, key)

    def clear(self) -> None:
        self._entries.clear()


api_keys = ApiKeyCache()


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != KEYWORD.lower().encode():
            return None
        refuse_if_locked_out(request)
        if len(header) != 2:
            count_failed_api_key(request)
            raise exceptions.AuthenticationFailed("Malformed Authorization header: expected 'Api-Key <key>'.")
        try:
            raw_key = header[1].decode()
        except UnicodeError:
            count_failed_api_key(request)
            raise exceptions.AuthenticationFailed("Invalid API key.") from None
        key_digest = digest(raw_key)
        cached = api_keys.get(key_digest)
        if cached is not None:
            return cached
        key = (
            ApiKey.objects.filter(digest=key_digest, revoked_at__isnull=True)
            .only("id", "name", "scopes", "customer_id")
            .first()
        )
        if key is None:
            count_failed_api_key(request)
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        client = Client(
            key_id=str(key.id),
            name=key.name,
            scopes=frozenset(key.scopes),
            customer_id=str(key.customer_id) if key.customer_id else None,
        )
        api_keys.put(key_digest, client, key)
        return client, key

    def authenticate_header(self, request) -> str:
        return KEYWORD


class HasScopes(BasePermission):
    """Views declare `required_scopes = {"GET": "contracts:read", "POST": "contracts:write"}`."""

    message = "This API key lacks the scope this operation needs."

    def has_permission(self, request, view) -> bool:
        client = request.user
        if not isinstance(client, Client):
            raise exceptions.NotAuthenticated("An API key is required: 'Authorization: Api-Key <key>'.")
        if request.method.lower() not in view.http_method_names or not hasattr(view, request.method.lower()):
            # A method the route does not have: 405 with Allow (DRF adds it), whatever the scopes.
            raise exceptions.MethodNotAllowed(request.method)
        scopes = getattr(view, "required_scopes", {})
        required = scopes.get("GET" if request.method == "HEAD" else request.method)
        if required is None:
            return False
        if required not in client.scopes:
            self.message = f"This API key lacks the '{required}' scope."
            return False
        return True
