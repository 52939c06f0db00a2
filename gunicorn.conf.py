"""Gunicorn settings of the web process, read from the environment: the same file for
`make run` and for production (`gunicorn -c gunicorn.conf.py config.wsgi`).

| variable | default | |
|---|---|---|
| `GUNICORN_BIND` | `127.0.0.1:8000` | host:port, or several separated by commas |
| `WEB_CONCURRENCY` | cores | worker processes |
| `GUNICORN_THREADS` | 4 | threads per worker (gthread) |
| `GUNICORN_BACKLOG` | 2048 | pending connections the listen socket holds |
| `GUNICORN_TIMEOUT` | 30 | seconds before a silent worker is restarted |
| `GUNICORN_KEEPALIVE` | 5 | seconds a keep-alive connection waits for its next request |
"""

import multiprocessing
import os

bind = [address.strip() for address in os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",") if address.strip()]
# One process per core, each with GUNICORN_THREADS threads: the threads overlap the
# requests' waits on PostgreSQL, the processes use the cores. Measured on 2 cores
# (benchmarks/operations.py, 32 clients): 2 x 4 served 436 purchases/s, 5 x 4 only 314
# (more processes than cores fight over them). Raise it where requests wait on more
# than the database.
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count())
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
# The development server's listen queue was 10: bursts of concurrent clients were reset.
backlog = int(os.environ.get("GUNICORN_BACKLOG") or 2048)
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 30)
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT") or 30)
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE") or 5)
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS") or 0)
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER") or 0)
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
proc_name = "boissipay-web"
# gunicorn's own lines as JSON too where the service logs JSON (LOG_FORMAT, as in
# config.settings: json unless a local run).
_local_run = os.environ.get("DEBUG") == "1" or os.environ.get("BOISSIPAY_ALLOW_DEV_SECRET") == "1"
if os.environ.get("LOG_FORMAT", "plain" if _local_run else "json") == "json":
    _json = {"()": "pythonjsonlogger.json.JsonFormatter", "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
             "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"}}  # fmt: skip
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": _json},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
        "loggers": {
            "gunicorn.error": {"handlers": ["console"], "level": loglevel.upper(), "propagate": False},
            "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        },
    }
# Django's own settings tell it that it sits behind a TLS proxy (BEHIND_TLS_PROXY).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Prometheus metrics shared by the workers (boissipay.metrics): each worker writes its
# counters under PROMETHEUS_MULTIPROC_DIR and /metrics adds them up. A folder of this
# server's own when none is given, emptied at start; a dead worker's gauges are dropped.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    import tempfile

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="boissipay-metrics-")


def on_starting(server):
    import pathlib

    for stale in pathlib.Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
        stale.unlink()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
