"""`manage.py run_platform_emulator [--host 127.0.0.1] [--port 8098] [--outcomes JSON]`: run
the local e-invoicing platform emulator (`devtools.platform_emulator`) in the foreground
until Ctrl-C. It calls EINVOICING_WEBHOOK_URL with callbacks signed with
EINVOICING_WEBHOOK_SECRET; outcomes from --outcomes, else $PLATFORM_EMULATOR_OUTCOMES,
else every invoice approved."""

import json
import os
import urllib.parse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devtools.management.foreground import wait_for_stop
from devtools.platform_emulator import SEQUENCES, PlatformEmulator


class Command(BaseCommand):
    help = "Run the local e-invoicing platform emulator (lifecycle statuses by signed callbacks) until Ctrl-C."
    requires_system_checks = []  # the platform needs nothing of ours (no database)

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=None, help="default: the port of EINVOICING_PLATFORM_URL")
        parser.add_argument(
            "--outcomes",
            default=None,
            help='JSON, e.g. \'{"default": "approved", "siren": {"123456782": "refused"}, "delay_seconds": 0.5}\'',
        )

    def handle(self, *args, host, port, outcomes, **options):
        config = outcomes if outcomes is not None else os.environ.get("PLATFORM_EMULATOR_OUTCOMES")
        try:
            parsed = json.loads(config) if config else {}
            if not isinstance(parsed, dict) or not isinstance(parsed.get("siren", {}), dict):
                raise ValueError("a JSON object, its siren rules an object")
            chosen = [parsed.get("default", "approved"), *parsed.get("siren", {}).values()]
            if any(value not in SEQUENCES for value in chosen):
                raise ValueError(f"outcomes are {', '.join(SEQUENCES)}")
        except ValueError as exc:
            raise CommandError(f"--outcomes: {exc}") from exc
        emulator = PlatformEmulator(
            host=host,
            port=port if port is not None else urllib.parse.urlsplit(settings.EINVOICING_PLATFORM_URL).port or 8098,
            webhook_url=settings.EINVOICING_WEBHOOK_URL,
            secret=settings.EINVOICING_WEBHOOK_SECRET,
            token=settings.EINVOICING_PLATFORM_TOKEN,
            outcomes=parsed,
        ).start()
        self.stdout.write(f"e-invoicing platform emulator on {emulator.url}; Ctrl-C to stop")
        self.stdout.flush()
        try:
            wait_for_stop()
        finally:
            emulator.stop()
            self.stdout.write("e-invoicing platform emulator stopped")
