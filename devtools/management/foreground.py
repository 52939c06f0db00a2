"""Running a local emulator in the foreground until Ctrl-C or SIGTERM (as run_local stops
its children), even when started with SIGINT ignored (a background job of a shell)."""

from __future__ import annotations

import signal
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def wait_for_stop() -> None:
    """Return once SIGINT or SIGTERM arrives; the previous handlers are put back."""
    stopping = threading.Event()
    previous = {number: signal.signal(number, lambda *_: stopping.set()) for number in STOP_SIGNALS}
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
