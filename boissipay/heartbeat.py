"""Heartbeats of the long-running processes, read by /health/ready.

A process beats at most every HEARTBEAT_SECONDS (its loop calls `beat()`, or a thread of
its own does); readiness reports any process whose last beat is older than
HEARTBEAT_STALE_SECONDS. A process that stops cleanly removes its row (`forget()`), so
only one that died or hangs is reported."""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import socket
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

logger = logging.getLogger(__name__)


def process_name(kind: str) -> str:
    return f"{kind}@{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    """`beat()` from a process's loop: writes at most every HEARTBEAT_SECONDS; a database
    fault is logged and never stops the process (readiness will say it)."""

    def __init__(self, kind: str):
        self.kind = kind
        self.name = process_name(kind)
        self._last = 0.0

    def beat(self) -> None:
        if time.monotonic() - self._last < settings.HEARTBEAT_SECONDS:
            return
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO boissipay_heartbeat (name, kind, beat_at) VALUES (%s, %s, now()) "
                    "ON CONFLICT (name) DO UPDATE SET beat_at = excluded.beat_at",
                    [self.name, self.kind],
                )
            self._last = time.monotonic()
        except Exception as exc:
            logger.warning("heartbeat of %s not recorded: %r", self.name, exc)

    def forget(self) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM boissipay_heartbeat WHERE name = %s", [self.name])
        except Exception as exc:
            logger.warning("heartbeat of %s not removed: %r", self.name, exc)


def beat_in_background(kind: str) -> threading.Event:
    """For processes whose loop is not ours (Celery's worker and Beat): a daemon thread
    beats until the returned event is set, then removes the row."""
    stop = threading.Event()
    heartbeat = Heartbeat(kind)

    def run() -> None:
        try:
            while True:
                close_old_connections()
                heartbeat.beat()
                if stop.wait(settings.HEARTBEAT_SECONDS):
                    break
            heartbeat.forget()
        finally:
            connection.close()

    def at_exit() -> None:  # a daemon thread may not get to remove its row
        stop.set()
        heartbeat.forget()
        connection.close()

    threading.Thread(target=run, name=f"heartbeat-{kind}", daemon=True).start()
    atexit.register(at_exit)
    return stop


def processes() -> tuple[list[dict], list[dict]]:
    """(beating, stopped): the processes that beat within HEARTBEAT_STALE_SECONDS, and
    those silent for longer (died or hung without removing their row). A row silent for
    a day is the remains of a process long gone: removed, not reported for ever."""
    from boissipay.models import Heartbeat as Row

    now = timezone.now()
    Row.objects.filter(beat_at__lt=now - dt.timedelta(days=1)).delete()
    stale = now - dt.timedelta(seconds=settings.HEARTBEAT_STALE_SECONDS)
    beating: list[dict] = []
    stopped: list[dict] = []
    for row in Row.objects.all():
        entry = {"process": row.name, "kind": row.kind, "last_beat": row.beat_at.isoformat()}
        (stopped if row.beat_at < stale else beating).append(entry)
    return beating, stopped
