"""Run every Boissipay process for a local run, side by side, until Ctrl-C."""

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

from django.conf import settings
from django.core.management.base import BaseCommand

from boissipay.embedded.kafka import shared_local_broker


def local_processes(host: str, port: int) -> dict[str, list[str]]:
    """name -> command line of each process the configuration needs."""
    manage = [sys.executable, "manage.py"]
    processes = {
        "web": [*manage, "runserver", f"{host}:{port}", "--noreload"],
        "relay": [*manage, "relay_outbox"],
        # Celery: the worker runs the billing runs and sends the invoices; Beat fires the
        # periodic tasks stored in the database ("monthly billing run", ...).
        "worker": [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=threads",
            "--concurrency=2",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
        ],
        "beat": [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO"],
    }
    if settings.PAYMENTS_GATEWAY == "emulator":
        # Our local card/direct-debit provider, where PAYMENTS_EMULATOR_URL says it is.
        emulator = urllib.parse.urlsplit(settings.PAYMENTS_EMULATOR_URL)
        processes["gateway-emulator"] = [
            *manage,
            "run_gateway_emulator",
            "--host",
            emulator.hostname or "127.0.0.1",
            "--port",
            str(emulator.port or 8099),
        ]
    for context, feed in settings.EVENT_FEED.items():
        if feed == "kafka":
            processes[f"consume-{context}"] = [*manage, "consume_events", "--context", context]
    return processes


class Command(BaseCommand):
    help = "Run the web server, the outbox relay and the configured consumers together (local runs)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, host, port, **options):
        env = dict(os.environ)
        # The provider emulator calls our webhook back on the port served here.
        env.setdefault("PAYMENTS_WEBHOOK_URL", f"http://{host}:{port}/api/v1/payments/webhook")
        if not settings.KAFKA_BOOTSTRAP_SERVERS:
            env["KAFKA_BOOTSTRAP_SERVERS"] = shared_local_broker()
            self.stdout.write(f"embedded Kafka-compatible broker on {env['KAFKA_BOOTSTRAP_SERVERS']}")
        children: dict[str, subprocess.Popen] = {}
        for name, command in local_processes(host, port).items():
            children[name] = subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
            )
            threading.Thread(target=self._forward, args=(name, children[name]), daemon=True).start()
        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        try:
            while not stopping.is_set():
                for name, child in children.items():
                    if child.poll() is not None:
                        self.stderr.write(f"{name} exited with {child.returncode}; stopping the others")
                        stopping.set()
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        for child in children.values():
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()

    def _forward(self, name: str, child: subprocess.Popen) -> None:
        for line in child.stdout:
            self.stdout.write(f"{name:>16} | {line.rstrip()}")
