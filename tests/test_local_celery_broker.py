"""The local runs' Celery broker (devtools.embedded.celery_broker) never hands a
consumer a message that is still being written: the race of kombu's filesystem
transport that stopped the worker in the assembled fault test (kombu issue #1551)."""

import subprocess
import sys
import textwrap
from queue import Empty

from django.conf import settings
from kombu import Connection

from devtools.embedded.celery_broker import Transport

TRANSPORT = "devtools.embedded.celery_broker:Transport"
MESSAGES = 120
BODY_SIZE = 500_000  # large, so that a write takes long enough to be caught half-way


def _options(folder):
    return {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(folder / "control"),
        "polling_interval": 0,
    }


def test_local_runs_use_the_atomic_filesystem_broker():
    assert settings.CELERY_BROKER_URL == "filesystem://"
    assert settings.CELERY_BROKER_TRANSPORT == TRANSPORT
    with Connection(settings.CELERY_BROKER_URL, transport=settings.CELERY_BROKER_TRANSPORT) as connection:
        assert connection.transport_cls == TRANSPORT
        assert isinstance(connection.transport, Transport)


def test_a_consumer_reads_every_message_whole_while_another_process_writes(tmp_path):
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                from kombu import Connection
                with Connection(transport={TRANSPORT!r}, transport_options={_options(tmp_path)!r}) as c:
                    for n in range({MESSAGES}):
                        c.default_channel._put("q", {{"n": n, "body": "x" * {BODY_SIZE}}})
                """
            ),
        ],
        cwd=settings.BASE_DIR,
    )
    received, errors = [], []
    with Connection(transport=TRANSPORT, transport_options=_options(tmp_path)) as connection:
        channel = connection.default_channel
        while len(received) < MESSAGES and (writer.poll() is None or channel._size("q")):
            try:
                received.append(channel._get("q"))
            except Empty:
                continue
            except Exception as error:  # what the worker died of: a JSON error on a partial file
                errors.append(repr(error))
    assert writer.wait(timeout=60) == 0
    assert errors == []
    assert sorted(message["n"] for message in received) == list(range(MESSAGES))
    assert all(message["body"] == "x" * BODY_SIZE for message in received)
