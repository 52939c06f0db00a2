"""Retention benchmark: `.venv/bin/python benchmarks/retention.py [--rows 1000000 --rate 100 --seconds 60]`.

1. Loads R outbox rows (published and dispatched 40 days ago) and R inbox rows (applied
   40 days ago) into the operations benchmark's database (boissipay_bench_ops, its
   contracts and its gunicorn set-up: benchmarks/operations.py).
2. Baseline, same run: an open loop of purchases at `--rate`/s on the real endpoint, with
   the event dispatcher running, for `--seconds`: latency percentiles.
3. The same open loop again while the daily purge (`services.purge_event_records`, 5,000
   rows per short transaction) deletes the 2 x R rows: its duration and rows/s, and the
   purchases' latency over the purge's window, beside the baseline's.

Not part of the test suite; figures are printed, never asserted."""

import argparse
import datetime as dt
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import operations as ops
from django.core.management import call_command
from django.db import connection

from boissipay import services
from boissipay.services import issue_api_key


def load(rows: int) -> None:
    print(f"loading {rows:,} outbox rows and {rows:,} inbox rows, 40 days old ...", flush=True)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE boissipay_outboxevent, boissipay_inboxentry")
        cursor.execute(
            """
            INSERT INTO boissipay_outboxevent (id, topic, aggregate_type, aggregate_id, event_type, schema_version,
                payload, occurred_at, published_at, attempts, last_error, dispatch_attempts, dispatched_at)
            SELECT gen_random_uuid(), 'boissipay.billing.v1', 'contract', md5(i::text)::uuid::text,
                   'billing.operation.accepted', 1, jsonb_build_object('n', i), now() - interval '40 days',
                   now() - interval '40 days', 1, '', 1, now() - interval '40 days'
            FROM generate_series(1, %s) AS i
            """,
            [rows],
        )
        cursor.execute(
            "INSERT INTO boissipay_inboxentry (handler, event_id, event_type, processed_at) "
            "SELECT 'bench.handler', gen_random_uuid(), 'billing.operation.accepted', now() - interval '40 days' "
            "FROM generate_series(1, %s)",
            [rows],
        )
        cursor.execute("VACUUM ANALYZE boissipay_outboxevent")
        cursor.execute("VACUUM ANALYZE boissipay_inboxentry")
    print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)


def window_figures(results, start: float, end: float) -> dict:
    latencies = sorted((finished - due) * 1000 for due, finished, _, _ in results if start <= due < end)
    return {
        "count": len(latencies),
        "p50": ops.percentile(latencies, 0.5),
        "p99": ops.percentile(latencies, 0.99),
        "max": latencies[-1] if latencies else float("nan"),
        "errors": sum(1 for due, _, status, _ in results if start <= due < end and status not in (201, 422)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="outbox rows, and as many inbox rows")
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--pause-ms", type=int, default=100, help="the purge's pause between batches")
    parser.add_argument("--workers", type=int)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    contract_ids = ops.prepare_contracts(1_000)
    key, api_key = issue_api_key(name=f"bench {uuid.uuid4().hex[:6]}", scopes=["operations:write"])
    ops.reset_balances()
    load(args.rows)
    connection.close()
    target = ops.Target("service", ops.PATH, api_key, str(key.pk))
    server = ops.serve(args, "retention")
    dispatcher = ops.start_dispatcher()
    try:
        baseline = ops.open_loop(server, target, contract_ids, rate=args.rate, seconds=args.seconds)
        purge: dict = {}

        def run_purge() -> None:
            time.sleep(2)
            purge["start"] = time.perf_counter()
            purged = services.purge_event_records(
                outbox_older_than=dt.timedelta(days=30),
                inbox_older_than=dt.timedelta(days=30),
                pause_seconds=args.pause_ms / 1000,
            )
            purge["end"] = time.perf_counter()
            purge["outbox"], purge["inbox"] = purged.outbox, purged.inbox
            connection.close()

        purging = threading.Thread(target=run_purge)
        purging.start()
        during = ops.open_loop(server, target, contract_ids, rate=args.rate, seconds=args.seconds)
        purging.join()
    finally:
        server.stop()
        ops.stop_process(dispatcher)

    seconds = purge["end"] - purge["start"]
    in_window = window_figures(during["results"], purge["start"], purge["end"])
    whole = window_figures(baseline["results"], 0, float("inf"))
    print(
        f"\npurge: {purge['outbox']:,} outbox rows and {purge['inbox']:,} inbox rows in {seconds:.1f} s "
        f"({(purge['outbox'] + purge['inbox']) / seconds:,.0f} rows/s, 5,000 per transaction, "
        f"{args.pause_ms} ms between two)"
    )
    print(f"purchases at {args.rate:.0f}/s, latency from the scheduled time:")
    print(
        f"  without the purge (baseline): p50 {whole['p50']:.1f} ms, p99 {whole['p99']:.1f} ms, "
        f"max {whole['max']:.0f} ms over {whole['count']:,} purchases, errors {whole['errors']}"
    )
    covered = min(1.0, seconds / args.seconds)
    print(
        f"  while the purge ran:          p50 {in_window['p50']:.1f} ms, p99 {in_window['p99']:.1f} ms, "
        f"max {in_window['max']:.0f} ms over {in_window['count']:,} purchases, errors {in_window['errors']}"
        + ("" if covered < 1 else "  (the purge outlasted the load: only its first part is covered)")
    )


if __name__ == "__main__":
    main()
