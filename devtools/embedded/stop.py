"""`python -m devtools.embedded.stop` (`make stop`): stop the embedded servers of this
checkout that commands other than `make run` left running (the tests, `manage.py`)."""

from pathlib import Path

from devtools.embedded import kafka
from devtools.embedded.postgres import stop_embedded_server

PGDATA = Path(__file__).resolve().parents[2] / ".local" / "pgdata"


def main() -> None:
    stop_embedded_server(PGDATA)
    kafka.stop_local_broker()


if __name__ == "__main__":
    main()
