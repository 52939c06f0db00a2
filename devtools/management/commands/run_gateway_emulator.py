"""`manage.py run_gateway_emulator [--host 127.0.0.1] [--port 8099] [--outcomes JSON] [--delay 1]`:
run the local card / direct-debit provider emulator (`devtools.payments_emulator`) in the
foreground until Ctrl-C. It signs its callbacks with settings.PAYMENTS_WEBHOOK_SECRET;
the outcomes come from --outcomes, else from the environment variable
PAYMENTS_EMULATOR_OUTCOMES, else the defaults (success, except amounts ending in 01)."""

import os
import threading
import urllib.parse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devtools.management.foreground import wait_for_stop
from devtools.payments_emulator import GatewayEmulator, Outcomes


def _default_port() -> int:
    return urllib.parse.urlsplit(settings.PAYMENTS_EMULATOR_URL).port or 8099


class Command(BaseCommand):
    help = "Run the local payment provider emulator (answers charges later by a signed webhook) until Ctrl-C."
    requires_system_checks = []  # the provider needs nothing of ours (no database)

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=None, help="default: the port of PAYMENTS_EMULATOR_URL")
        parser.add_argument(
            "--outcomes",
            default=None,
            help='JSON, e.g. \'{"default": "succeeded", "iban": {"DE89...": "insufficient_funds"}, '
            '"amount": {"1313": "technical_error"}, "cents": {"01": "insufficient_funds"}, "delay_seconds": 1}\' '
            "(default: $PAYMENTS_EMULATOR_OUTCOMES)",
        )
        parser.add_argument(
            "--delay", type=float, default=None, help="seconds before the answer (default: the outcomes' or 1)"
        )

    def handle(self, *args, host, port, outcomes, delay, **options):
        lock = threading.Lock()

        def log(line: str) -> None:
            with lock:
                self.stdout.write(line)
                self.stdout.flush()  # lines show at once when run_local reads us through a pipe

        config = outcomes if outcomes is not None else os.environ.get("PAYMENTS_EMULATOR_OUTCOMES")
        try:
            parsed = Outcomes.from_config(config)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if delay is not None and delay < 0:
            raise CommandError("--delay must be 0 or more seconds.")
        emulator = GatewayEmulator(
            host=host,
            port=_default_port() if port is None else port,
            secret=settings.PAYMENTS_WEBHOOK_SECRET,
            outcomes=parsed,
            delay_seconds=delay,
            log=log,
        )
        try:
            emulator.start()
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{emulator.requested_port}: {exc}") from exc
        log(
            f"gateway emulator on {emulator.url} (answers after {emulator.delay_seconds:g} s; "
            f"default outcome {parsed.default}; iban rules {len(parsed.by_iban)}, amount rules "
            f"{len(parsed.by_amount)}, cents rules {dict(parsed.by_cents) or 'none'}); Ctrl-C to stop"
        )
        try:
            wait_for_stop()
        finally:
            emulator.stop()
            log("gateway emulator stopped")
