"""`python -m devtools.embedded.stop` (`make stop`): stop the embedded servers of this
checkout that commands other than `make run` left running (the tests, `manage.py`), the
test workers' own included (.local/xdist-*: each pytest-xdist worker has its own)."""

from pathlib import Path

from devtools.embedded import kafka
from devtools.embedded.postgres import stop_embedded_server

LOCAL = Path(__file__).resolve().parents[2] / ".local"


def main() -> None:
    for local in (LOCAL, *sorted(LOCAL.glob("xdist-*"))):
        stop_embedded_server(local / "pgdata")
        kafka.stop_local_broker(local / "kafka.json")


if __name__ == "__main__":
    main()
