"""The Procfile: Boissipay's production processes, listed once, and which of them a
configuration runs. `run_local` starts these on the embedded defaults; compose.yaml and
docs/deploy.md list the same (tests/kernel/test_deployment_files.py holds them together)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

PROCFILE = Path(__file__).resolve().parent.parent / "Procfile"
ONE_OFF = {"release"}  # run once per deployment, not kept running


def processes(path: Path = PROCFILE) -> dict[str, str]:
    """name -> command line, in the Procfile's order."""
    listed = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, command = line.partition(":")
        listed[name.strip()] = command.strip()
    return listed


def runs_under(name: str, event_feed: dict[str, str]) -> bool:
    """Whether a long-running process is needed when the contexts are fed as `event_feed`
    says: the dispatcher for "inprocess" contexts, a consumer for each "kafka" one."""
    if name in ONE_OFF:
        return False
    if name == "dispatcher":
        return "inprocess" in event_feed.values()
    if name.startswith("consume-"):
        return event_feed.get(name.removeprefix("consume-")) == "kafka"
    return True


def argv(command: str) -> list[str]:
    """The command line run with this interpreter (the checkout's virtualenv)."""
    words = shlex.split(command)
    if words[0] == "python":
        return [sys.executable, *words[1:]]
    return [sys.executable, "-m", *words]
