"""`manage.py process_alive KIND`: the containers' health check of a long-running process."""

import datetime as dt

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from boissipay.heartbeat import Heartbeat
from boissipay.models import Heartbeat as HeartbeatRow

pytestmark = pytest.mark.django_db


def test_a_process_that_beats_on_this_host_is_alive_and_one_gone_silent_is_not(settings):
    settings.HEARTBEAT_STALE_SECONDS = 60
    with pytest.raises(CommandError, match="no relay on"):
        call_command("process_alive", "relay")

    Heartbeat("relay").beat()
    call_command("process_alive", "relay")
    with pytest.raises(CommandError):
        call_command("process_alive", "relay", host="another-host")
    with pytest.raises(CommandError):
        call_command("process_alive", "worker")

    HeartbeatRow.objects.filter(kind="relay").update(beat_at=timezone.now() - dt.timedelta(seconds=61))
    with pytest.raises(CommandError, match="within 60 s"):
        call_command("process_alive", "relay")
