"""A container's health check: exits 0 when a process of this kind on this host has beaten
within HEARTBEAT_STALE_SECONDS (boissipay.heartbeat), 1 otherwise."""

import socket

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from boissipay.models import Heartbeat


class Command(BaseCommand):
    help = "Exit 0 if a process of this kind (relay, dispatcher, consumer-billing, worker, beat...) beats on this host."

    def add_arguments(self, parser):
        parser.add_argument("kind")
        parser.add_argument("--host", default=None, help="Default: this host's name (the container's).")

    def handle(self, *args, kind, host, **options):
        import datetime as dt

        host = host or socket.gethostname()
        fresh = Heartbeat.objects.filter(
            kind=kind,
            name__startswith=f"{kind}@{host}:",
            # Stale as /health/ready says it (boissipay.heartbeat.processes): by this host's clock.
            beat_at__gte=timezone.now() - dt.timedelta(seconds=settings.HEARTBEAT_STALE_SECONDS),
        )
        if not fresh.exists():
            raise CommandError(f"no {kind} on {host} has beaten within {settings.HEARTBEAT_STALE_SECONDS} s")
        self.stdout.write(f"{kind} on {host}: alive")
