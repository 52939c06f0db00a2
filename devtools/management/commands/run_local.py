"""Run every Boissipay process for a local run, side by side, until Ctrl-C or SIGTERM.

The web process is gunicorn with `gunicorn.conf.py`, as in production. A child that
exits is started again (with a growing pause), the others go on. Ctrl-C or SIGTERM
stops every child gracefully, then the embedded broker and PostgreSQL this checkout
runs on, and exits 0."""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

from django.conf import settings
from django.core.management.base import BaseCommand

from devtools import procfile
from devtools.embedded import kafka
from devtools.embedded.kafka import shared_local_broker

RESTART_PAUSES = (1, 2, 5, 10, 30)  # seconds before restarting a child that exited, growing
STOP_TIMEOUT = 20  # seconds a child has to stop gracefully before it is killed


def local_processes(host: str, port: int) -> dict[str, list[str]]:
    """name -> command line of each process the configuration needs: the Procfile's
    (devtools.procfile), plus the payment provider's and the e-invoicing platform's emulators
    when they are the gateways."""
    processes = {
        name: procfile.argv(command)
        for name, command in procfile.processes().items()
        if procfile.runs_under(name, settings.EVENT_FEED)
    }
    processes["web"] += ["--bind", f"{host}:{port}"]
    if settings.PAYMENTS_GATEWAY == "emulator":
        # Our local card/direct-debit provider, where PAYMENTS_EMULATOR_URL says it is.
        emulator = urllib.parse.urlsplit(settings.PAYMENTS_EMULATOR_URL)
        processes["gateway-emulator"] = [
            sys.executable,
            "manage.py",
            "run_gateway_emulator",
            "--host",
            emulator.hostname or "127.0.0.1",
            "--port",
            str(emulator.port or 8099),
        ]
    if settings.EINVOICING_GATEWAY == "platform_emulator":
        # Our approved e-invoicing platform, where EINVOICING_PLATFORM_URL says it is.
        platform = urllib.parse.urlsplit(settings.EINVOICING_PLATFORM_URL)
        processes["platform-emulator"] = [
            sys.executable,
            "manage.py",
            "run_platform_emulator",
            "--host",
            platform.hostname or "127.0.0.1",
            "--port",
            str(platform.port or 8098),
        ]
    return processes


def served_address(base_url: str) -> tuple[str, int]:
    """(host, port) of BOISSIPAY_BASE_URL: where `make run` serves."""
    parts = urllib.parse.urlsplit(base_url)
    return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)


class Supervisor:
    """Starts the children, restarts one that exits, stops them all on request."""

    def __init__(self, processes: dict[str, list[str]], env: dict[str, str], write):
        self.processes = processes
        self.env = env
        self.write = write
        self.children: dict[str, subprocess.Popen] = {}
        self.restarts: dict[str, int] = dict.fromkeys(processes, 0)
        self.restart_at: dict[str, float] = {}
        self.stopping = threading.Event()

    def start(self, name: str) -> None:
        child = subprocess.Popen(
            self.processes[name],
            env=self.env,
            cwd=settings.BASE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            process_group=0,  # Ctrl-C reaches the supervisor only: it stops the children in order
        )
        self.children[name] = child
        threading.Thread(target=self._forward, args=(name, child), daemon=True).start()

    def run(self) -> None:
        for name in self.processes:
            self.start(name)
        while not self.stopping.wait(0.5):
            now = time.monotonic()
            for name, child in list(self.children.items()):
                if child.poll() is None or self.stopping.is_set():
                    continue
                if name not in self.restart_at:
                    pause = RESTART_PAUSES[min(self.restarts[name], len(RESTART_PAUSES) - 1)]
                    self.write(f"{name} exited with {child.returncode}; restarting it in {pause} s")
                    self.restart_at[name] = now + pause
                elif now >= self.restart_at[name]:
                    del self.restart_at[name]
                    self.restarts[name] += 1
                    self.start(name)
        self.stop_children()

    def stop_children(self) -> None:
        running = {name: child for name, child in self.children.items() if child.poll() is None}
        for child in running.values():
            _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for name, child in running.items():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.write(f"{name} did not stop within {STOP_TIMEOUT} s; killing it")
                _signal_group(child, signal.SIGKILL)
                child.wait()

    def _forward(self, name: str, child: subprocess.Popen) -> None:
        for line in child.stdout:
            self.write(f"{name:>16} | {line.rstrip()}")


def _signal_group(child: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, sig)


class Command(BaseCommand):
    help = (
        "Run the Procfile's processes (gunicorn, the outbox relay, the event dispatcher or the consumers, the "
        "Celery worker, Beat and Flower) and the payment provider emulator together, on the embedded defaults."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", help="default: the host of BOISSIPAY_BASE_URL")
        parser.add_argument("--port", type=int, help="default: the port of BOISSIPAY_BASE_URL")

    def handle(self, *args, host, port, **options):
        default_host, default_port = served_address(settings.BASE_URL)
        host, port = host or default_host, port or default_port
        env = dict(os.environ)
        # Every child, and the provider emulator's webhook calls, agree on where we are served.
        env["BOISSIPAY_BASE_URL"] = f"http://{host}:{port}"
        env.setdefault("PAYMENTS_WEBHOOK_URL", f"http://{host}:{port}/api/v1/payments/webhook")
        # Flower, on this machine only; the worker runs two threads unless told otherwise.
        env.setdefault("FLOWER_ADDRESS", "127.0.0.1")
        env.setdefault("FLOWER_PORT", "5555")
        embedded_broker = not settings.KAFKA_BOOTSTRAP_SERVERS
        if embedded_broker:
            env["KAFKA_BOOTSTRAP_SERVERS"] = shared_local_broker()
            self.stdout.write(f"embedded Kafka-compatible broker on {env['KAFKA_BOOTSTRAP_SERVERS']}")
        supervisor = Supervisor(local_processes(host, port), env, self.stdout.write)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: supervisor.stopping.set())
        supervisor.run()
        self.stdout.write("every process stopped")
        if embedded_broker:
            kafka.stop_local_broker()
            self.stdout.write("embedded Kafka broker stopped")
        if not os.environ.get("DATABASE_URL"):
            from devtools.embedded.postgres import stop_embedded_server

            stop_embedded_server(settings.LOCAL_DIR / "pgdata")
            self.stdout.write("embedded PostgreSQL stopped")
