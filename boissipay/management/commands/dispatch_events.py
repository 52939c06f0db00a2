import signal
import threading

from django.core.management.base import BaseCommand

from boissipay import metrics
from boissipay.dispatcher import EventDispatcher


class Command(BaseCommand):
    help = (
        "Feed the in-process contexts' handlers from the outbox, in batches, after commit "
        "(long-running; --once delivers what is due and exits)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Deliver what is due, then exit.")
        parser.add_argument("--batch-size", type=int)
        parser.add_argument(
            "--metrics-port", type=int, help="Serve this process's Prometheus metrics here (default: METRICS_PORT)."
        )

    def handle(self, *args, metrics_port, once, batch_size, **options):
        metrics.serve_process_metrics(metrics_port)
        dispatcher = EventDispatcher(batch_size=batch_size)
        if once:
            stats = dispatcher.drain()
        else:
            stop = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            self.stdout.write(f"dispatching events in batches of {dispatcher.batch_size}")
            stats = dispatcher.run(stop=stop)
        self.stdout.write(
            f"dispatched {stats.dispatched} in {stats.batches} batches, to retry {stats.retried}, "
            f"dead-lettered {stats.dead_lettered}"
        )
