"""The emulator gateway: hands each debit to our local provider emulator over HTTP
(`devtools.payments_emulator`), which answers later by calling our signed webhook."""

from __future__ import annotations

import requests
from django.conf import settings

from payments.gateways import Debit, Submission


class EmulatorGateway:
    name = "emulator"
    lead_business_days = 0  # the provider takes a debit on its due date

    def __init__(self, base_url: str | None = None, webhook_url: str | None = None, timeout: float = 5.0):
        self.base_url = (base_url or settings.PAYMENTS_EMULATOR_URL).rstrip("/")
        self.webhook_url = webhook_url or settings.PAYMENTS_WEBHOOK_URL
        self.timeout = timeout

    def submit(self, debits: list[Debit]) -> list[Submission]:
        return [self._charge(debit) for debit in debits]

    def _charge(self, debit: Debit) -> Submission:
        body = {
            "payment_id": debit.payment_id,
            "end_to_end_id": debit.end_to_end_id,
            "amount": debit.amount,
            "currency": debit.currency,
            "iban": debit.iban,
            "mandate_reference": debit.mandate_reference,
            "sequence_type": debit.sequence_type,
            "description": debit.remittance_information,
            "callback_url": self.webhook_url,
        }
        try:
            response = requests.post(
                f"{self.base_url}/charges",
                json=body,
                headers={"Idempotency-Key": debit.end_to_end_id},
                timeout=self.timeout,
            )
            response.raise_for_status()
            charge_id = response.json()["charge_id"]
        except (requests.RequestException, ValueError, KeyError) as exc:
            return Submission(debit.payment_id, accepted=False, error=f"emulator unreachable or refused: {exc}")
        return Submission(debit.payment_id, accepted=True, provider_reference=charge_id)
