"""The e-invoicing channel (issue 16, French reform of 2026): a domestic B2B invoice is
deposited on an approved platform, which routes it to the buyer's and calls us back with
its lifecycle statuses; a buyer outside the reform's scope (abroad, or no SIREN) gets
the PDF by e-mail as before.

One interface whatever the platform (settings.EINVOICING_GATEWAY): `platform` (a real one
at EINVOICING_PLATFORM_URL) or `platform_emulator` (devtools.platform_emulator, which
speaks the same API; `make run` starts it); `email` sends everything by e-mail.

- `deposit` hands the Factur-X PDF over and returns the platform's message id. A second
  deposit of the same invoice is refused by the platform with the first id, which we keep.
- `apply_status` records a status the platform called back with (once per event id),
  publishes it, and says when collection must wait (rejected, refused).
- `report` tells the platform "paid" (VAT on services is due on collection), or that a
  payment came back."""

from __future__ import annotations

import base64
import datetime as dt
import logging
from typing import Any

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from boissipay import outbox
from boissipay.errors import NotFound
from invoicing.events import InvoiceLifecycleChanged
from invoicing.models import Invoice, InvoiceLifecycleStatus, LifecycleStatus

logger = logging.getLogger(__name__)

PLATFORM_GATEWAYS = ("platform", "platform_emulator")
# Statuses after which collection waits for staff: a format error, or the buyer's refusal (a dispute).
BLOCKING = (LifecycleStatus.REJECTED, LifecycleStatus.REFUSED)


class PlatformError(Exception):
    """The platform did not take the request (retried by the task that made it)."""


def channel_for(buyer: dict) -> str:
    """`platform` for a French buyer with a SIREN when a platform is configured, else `email`."""
    in_scope = buyer.get("country") == "FR" and bool((buyer.get("siren") or "").strip())
    return "platform" if in_scope and settings.EINVOICING_GATEWAY in PLATFORM_GATEWAYS else "email"


def _headers() -> dict:
    return {"Authorization": f"Bearer {settings.EINVOICING_PLATFORM_TOKEN}"}


def deposit(invoice: Invoice, facturx_pdf: bytes) -> str:
    """Deposit the invoice's Factur-X PDF; its message id. Raises PlatformError."""
    body: dict[str, Any] = {
        "invoice_number": invoice.number,
        "seller_siren": settings.SELLER["siren"],
        "buyer_siren": invoice.buyer.get("siren", ""),
        "total_incl_tax": invoice.total_incl_tax,
        "currency": invoice.currency,
        "facturx_pdf": base64.b64encode(facturx_pdf).decode(),
    }
    try:
        answer = requests.post(
            f"{settings.EINVOICING_PLATFORM_URL}/v1/invoices", json=body, headers=_headers(), timeout=30
        )
    except requests.RequestException as exc:
        raise PlatformError(f"the platform cannot be reached: {exc}") from exc
    if answer.status_code in (201, 409) and "message_id" in _json(answer):
        return str(_json(answer)["message_id"])  # 409: deposited already, under that id
    raise PlatformError(f"the platform answered {answer.status_code}: {answer.text[:300]}")


def report(invoice: Invoice, status: str, *, amount: int, on: dt.date) -> None:
    """Tell the platform the invoice is paid (or that its payment came back), and keep it
    on the invoice's timeline. Raises PlatformError."""
    body: dict[str, Any] = {"status": status, "amount": amount, "currency": invoice.currency, "date": on.isoformat()}
    try:
        answer = requests.post(
            f"{settings.EINVOICING_PLATFORM_URL}/v1/invoices/{invoice.platform_message_id}/statuses",
            json=body,
            headers=_headers(),
            timeout=30,
        )
    except requests.RequestException as exc:
        raise PlatformError(f"the platform cannot be reached: {exc}") from exc
    if answer.status_code != 200:
        raise PlatformError(f"the platform answered {answer.status_code}: {answer.text[:300]}")
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        InvoiceLifecycleStatus.objects.create(
            invoice=locked, status=status, source="boissipay", occurred_at=timezone.now(), reason=f"{amount} on {on}"
        )
        _publish(locked, status, f"reported {amount} on {on}")


def apply_status(*, event_id: str, message_id: str, status: str, reason: str, occurred_at: dt.datetime) -> bool:
    """A lifecycle status the platform called back with. Returns False when it was
    applied already (the same event id). Raises NotFound for an unknown message."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().filter(platform_message_id=message_id).first()
        if invoice is None:
            raise NotFound(f"No invoice was deposited as {message_id}.", "message_unknown")
        try:
            with transaction.atomic():
                InvoiceLifecycleStatus.objects.create(
                    invoice=invoice,
                    status=status,
                    reason=reason[:500],
                    source="platform",
                    event_id=event_id,
                    occurred_at=occurred_at,
                )
        except IntegrityError:
            return False  # this event was applied already
        invoice.platform_status = status
        invoice.save(update_fields=["platform_status"])
        if status in BLOCKING:
            # Staff are told (the log goes to Sentry; the admin filters these invoices) and
            # collection waits for their decision: a credit note, or issuing it again.
            logger.error("invoice %s %s by the e-invoicing platform: %s", invoice.number, status, reason)
        _publish(invoice, status, reason)
        return True


def _publish(invoice: Invoice, status: str, reason: str) -> None:
    from invoicing.services import invoice_state

    outbox.record(
        InvoiceLifecycleChanged(
            contract_id=invoice.contract_id,
            invoice=invoice_state(invoice),
            platform_message_id=invoice.platform_message_id or "",
            status=status,
            reason=reason[:500],
            blocks_collection=status in BLOCKING,
        )
    )


def _json(answer) -> dict:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
