"""Settings for the test suite: the normal settings on local defaults, faster hashing."""

import os

os.environ.setdefault("BOISSIPAY_ALLOW_DEV_SECRET", "1")

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
