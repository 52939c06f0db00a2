import signal
import threading

from django.core.management.base import BaseCommand

from boissipay import metrics
from boissipay.relay import OutboxRelay


class Command(BaseCommand):
    help = "Relay the transactional outbox to Kafka (long-running; --once drains and exits)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Publish what is due, then exit.")
        parser.add_argument("--batch-size", type=int)
        parser.add_argument(
            "--metrics-port", type=int, help="Serve this process's Prometheus metrics here (default: METRICS_PORT)."
        )

    def handle(self, *args, metrics_port, once, batch_size, **options):
        metrics.serve_process_metrics(metrics_port)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        relay = OutboxRelay(batch_size=batch_size)
        self.stdout.write(f"relaying the outbox to {relay.servers}" + (" (once)" if once else ""))
        stats = relay.run(once=once, stop=stop)
        self.stdout.write(f"published {stats.published}, failed attempts {stats.failed}")
