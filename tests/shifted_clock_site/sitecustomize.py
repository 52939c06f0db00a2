"""Loaded (through PYTHONPATH) by every Python process of the shifted-clock runs only.

Under libfaketime 0.9.10 with a shifted monotonic clock, condition waits with a timeout
(threading.Event.wait, queue.get) never return; with FAKETIME_DONT_FAKE_MONOTONIC=1 they
do, but `time.sleep` (clock_nanosleep on CLOCK_MONOTONIC, absolute) fails with EINVAL.
So those runs keep the monotonic clock real and sleep through select(), which faketime
leaves alone. The wall clock, the one the product reads, is the shifted one."""

import select
import time


def _sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    select.select([], [], [], seconds)


time.sleep = _sleep
