"""The Celery broker of local runs: kombu's filesystem transport, made safe for
several processes.

kombu's `filesystem://` writes a message in place: it opens the file (visible, empty),
then writes it. A consumer polling the folder can take the file in between and read
nothing, and the JSON error that follows stops the Celery worker (kombu issue #1551).
With task events on, the worker, Beat and Flower exchange messages every few seconds,
and under load the worker exited with 1 in the assembled fault test. Here a message
is written under a name no queue matches, then renamed into place, which is atomic on
one filesystem; an exchange table caught while it is being created is read again.

Development only: production runs Redis (config.production refuses `filesystem://`).
Selected by config.settings through CELERY_BROKER_TRANSPORT, a dotted path, so no
production module imports this one."""

from __future__ import annotations

import os
import time
import uuid

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put `payload` on `queue` whole: written aside, then renamed into the folder."""
        name = f"{round(time.monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # A leading dot: `_get` matches "<anything>.<queue>.msg" after the first dot,
        # which ".<name>.part" never is.
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc

    def get_table(self, exchange):
        """The exchange's bindings; an empty or partial file (being created by another
        process's bind, between its open and its lock) is read again."""
        for attempt in range(50):
            try:
                return super().get_table(exchange)
            except ValueError:
                time.sleep(0.01 * (attempt + 1))
        return super().get_table(exchange)


class Transport(filesystem.Transport):
    Channel = Channel
