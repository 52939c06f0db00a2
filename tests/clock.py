"""The tests' clock: no test depends on the real date.

A test where the date matters freezes the clock (`frozen_at`), or builds its dates
from the frozen business today (`tests.factories.today()`). `freeze_module_at` gives
a whole module one "today", so that the contracts its factories make are valid on the
dates its tests travel to."""

import datetime as dt

import pytest
import time_machine

from boissipay.clock import PARIS


def paris(day: dt.date, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=PARIS)


def frozen_at(day: dt.date, hour: int = 12, minute: int = 0, *, tick: bool = False):
    """Travel to `day` at `hour`:`minute` in Paris (frozen unless `tick`)."""
    return time_machine.travel(paris(day, hour, minute), tick=tick)


def freeze_module_at(day: dt.date, hour: int = 9):
    """An autouse fixture: every test of the module starts on `day` in Paris, the clock
    ticking, whatever the real date."""

    @pytest.fixture(autouse=True)
    def _module_today():
        with frozen_at(day, hour, tick=True):
            yield

    return _module_today
