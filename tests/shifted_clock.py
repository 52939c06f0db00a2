"""`python -m tests.shifted_clock [PYTEST ARGS]`: the date-sensitive part of the suite
again under shifted clocks (`make test`).

Debian's `faketime` shifts the clock of pytest and of every process it starts (the
embedded PostgreSQL, the broker, the relay, workers) by the same offset, so Python's
clock and the database's `now()` agree. The embedded PostgreSQL is stopped before each
run, so that it restarts under the shifted clock, and after the last, so that the next
command finds it on the real one. The slow fault tests are left to the real-clock run:
they test processes, not dates.

Instants (Europe/Paris): one minute before the new year of next year, and 29 February
2028 at noon. `SHIFTED_CLOCK_AT="2031-12-31T23:59"` (comma-separated) chooses others."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
ROOT = Path(__file__).resolve().parents[1]
PYTEST_ARGS = ["-m", "not slow", "-p", "no:cacheprovider", "-q", "--timeout", "120", "--durations", "10"]
# On as many pytest-xdist workers as the real-clock run (`make test` passes TEST_WORKERS),
# each with its embedded servers of its own, started under the shifted clock.
WORKERS = os.environ.get("TEST_WORKERS", "2")
# The part of the suite where dates decide: the contexts' rules, runs, documents and
# collections, and the events they publish. The kernel's relay and consumer tests, the
# fuzzing and the local-run tests run on the real clock only (`make test` runs them).
DATE_SENSITIVE = [
    "tests/billing",
    "tests/contracts",
    "tests/invoicing",
    "tests/payments",
    "tests/test_event_schemas.py",
    "tests/test_demo.py",
    # Not: the provider emulator's own tests (a network emulator, no dates), the
    # documents' schematron checks (a frozen module whose every date is given), and the
    # ledger's (tests/accounting: its dates are the payloads', every one given).
    "--ignore",
    "tests/payments/test_emulator.py",
    "--ignore",
    "tests/invoicing/test_documents.py",
]


def instants(now: dt.datetime) -> list[dt.datetime]:
    chosen = os.environ.get("SHIFTED_CLOCK_AT", "")
    if chosen:
        return [dt.datetime.fromisoformat(text.strip()).replace(tzinfo=PARIS) for text in chosen.split(",")]
    return [
        dt.datetime(now.year + 1, 12, 31, 23, 59, tzinfo=PARIS),
        dt.datetime(2028, 2, 29, 12, 0, tzinfo=PARIS),
    ]


def shifted_env() -> dict[str, str]:
    """The environment of a shifted run: the wall clock shifted, the monotonic one real
    (see shifted_clock_site/sitecustomize.py for why)."""
    site = str(Path(__file__).resolve().parent / "shifted_clock_site")
    python_path = os.pathsep.join(filter(None, [site, os.environ.get("PYTHONPATH", "")]))
    return {**os.environ, "FAKETIME_DONT_FAKE_MONOTONIC": "1", "PYTHONPATH": python_path}


def stop_embedded_servers() -> None:
    subprocess.run([sys.executable, "-m", "devtools.embedded.stop"], cwd=ROOT, check=False, capture_output=True)


def main() -> int:
    if shutil.which("faketime") is None:
        print("faketime is missing: `make test` installs Debian's faketime", file=sys.stderr)
        return 2
    failures = 0
    for instant in instants(dt.datetime.now(PARIS)):
        offset = int(instant.timestamp() - time.time())
        print(f"\n=== the suite at {instant:%Y-%m-%d %H:%M %Z} (clock shifted by {offset:+d} s) ===", flush=True)
        stop_embedded_servers()
        selection = sys.argv[1:] or DATE_SENSITIVE
        workers = ["-n", WORKERS, "--dist", "loadfile"] if WORKERS not in ("", "0") else []
        pytest = [sys.executable, "-m", "pytest", *PYTEST_ARGS, *workers, *selection]
        command = ["faketime", "-f", f"{offset:+d}s", *pytest]
        result = subprocess.run(command, cwd=ROOT, env=shifted_env(), check=False)
        failures += result.returncode != 0
    stop_embedded_servers()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
