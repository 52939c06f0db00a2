"""Settings for the test suite: the normal settings on local defaults, faster hashing."""

import os

os.environ.setdefault("BOISSIPAY_ALLOW_DEV_SECRET", "1")
os.environ.setdefault("BOISSIPAY_READ_ENV_FILE", "0")  # a developer's .env never changes the tests
# Tasks run inline in the tests (a test of the real worker turns this off for itself),
# and a worker started by a test uses a queue folder of the test database's own.
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
# Invoices go by e-mail in the tests, unless a test starts the e-invoicing platform's
# emulator and says so (tests/invoicing/test_einvoicing.py).
os.environ.setdefault("EINVOICING_GATEWAY", "email")
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Each pytest-xdist worker runs as a checkout of its own: its own embedded PostgreSQL,
# broker, task queue and files under .local/xdist-<worker> (`make test` runs two).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault(
        "BOISSIPAY_LOCAL_DIR", os.path.join(_ROOT, ".local", "xdist-" + os.environ["PYTEST_XDIST_WORKER"])
    )
os.environ.setdefault(
    "CELERY_QUEUE_DIR",
    os.path.join(
        os.environ.get("BOISSIPAY_LOCAL_DIR", os.path.join(_ROOT, ".local")),
        "celery-queue-test-" + os.environ.get("BOISSIPAY_DB_NAME", "boissipay"),
    ),
)

from config.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
