"""`manage.py process_alive KIND`: the containers' health check of a long-running process."""

import datetime as dt
import socket

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from boissipay.models import Heartbeat
from tests.clock import freeze_module_at

pytestmark = pytest.mark.django_db

# Heartbeats are dated from one frozen "today", whatever the real date.
_today = freeze_module_at(dt.date(2026, 6, 15))


def beat(kind: str, host: str, seconds_ago: int) -> None:
    Heartbeat.objects.create(
        name=f"{kind}@{host}:4242", kind=kind, beat_at=timezone.now() - dt.timedelta(seconds=seconds_ago)
    )


def test_a_process_that_beats_on_this_host_is_alive_and_one_gone_silent_is_not(settings):
    settings.HEARTBEAT_STALE_SECONDS = 60
    with pytest.raises(CommandError, match="no relay on"):
        call_command("process_alive", "relay")

    beat("relay", socket.gethostname(), seconds_ago=5)
    call_command("process_alive", "relay")
    with pytest.raises(CommandError):
        call_command("process_alive", "relay", host="another-host")
    with pytest.raises(CommandError):
        call_command("process_alive", "worker")

    Heartbeat.objects.filter(kind="relay").update(beat_at=timezone.now() - dt.timedelta(seconds=61))
    with pytest.raises(CommandError, match="within 60 s"):
        call_command("process_alive", "relay")
