import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from boissipay import metrics
from boissipay.consumer import ContextConsumer
from boissipay.transport import CONSUMERS


class Command(BaseCommand):
    help = "Run a context's Kafka consumer group, feeding that context's event handlers."

    def add_arguments(self, parser):
        parser.add_argument("--context", required=True, choices=CONSUMERS)
        parser.add_argument("--group-id", help="Default: boissipay.<context>.")
        parser.add_argument(
            "--metrics-port", type=int, help="Serve this process's Prometheus metrics here (default: METRICS_PORT)."
        )

    def handle(self, *args, metrics_port, context, group_id, **options):
        metrics.serve_process_metrics(metrics_port)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        consumer = ContextConsumer(context, group_id=group_id)
        if context not in CONSUMERS:
            raise CommandError(f"unknown context {context}")
        self.stdout.write(f"consuming for {context} as group {consumer.group_id} from {consumer.servers}")
        consumer.run(stop=stop)
        self.stdout.write(f"applied {consumer.applied}, dead-lettered {consumer.dead_lettered}")
