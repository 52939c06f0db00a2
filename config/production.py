"""What production settings (DEBUG off) refuse: a development secret, a missing one, or a
development-only default. `config.settings` raises ImproperlyConfigured with every problem
at once, so an operator fixes them in one go.

`BOISSIPAY_ALLOW_DEV_SECRET=1` lifts the guard for local runs and the tests only (the
Makefile and the test settings set it); a production deployment never sets it."""

from __future__ import annotations

DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"  # noqa: S105 - refused in production
DEV_WEBHOOK_SECRET = "whsec_local_development_only"  # noqa: S105 - refused in production
MIN_SECRET_LENGTH = 50  # and 5 different characters at least: Django's own check (W009)
LOCAL_EMAIL_BACKENDS = {
    "boissipay.mail.PrivateFileEmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
}


def production_problems(settings: dict, environ: dict) -> list[str]:
    """Why these settings must not serve in production (an empty list when they may)."""
    problems = []
    if not environ.get("DATABASE_URL"):
        problems.append("DATABASE_URL is not set (the embedded PostgreSQL is for local runs only)")
    if not settings["KAFKA_BOOTSTRAP_SERVERS"]:
        problems.append("KAFKA_BOOTSTRAP_SERVERS is not set (the embedded broker is for local runs only)")
    if settings["CELERY_BROKER_URL"].startswith("filesystem://"):
        problems.append("CELERY_BROKER_URL is not set (the local folder transport is for local runs only): name Redis")
    secret_key = settings["SECRET_KEY"]
    if not secret_key or secret_key == DEV_SECRET_KEY:
        problems.append("SECRET_KEY is missing or is the development key: set a random one")
    elif len(secret_key) < MIN_SECRET_LENGTH or len(set(secret_key)) < 5 or secret_key.startswith("django-insecure-"):
        problems.append(
            f"SECRET_KEY is shorter than {MIN_SECRET_LENGTH} characters or not random: "
            "generate one (python -c 'import secrets; print(secrets.token_urlsafe(50))')"
        )
    if DEV_SECRET_KEY in settings.get("SECRET_KEY_FALLBACKS", []):
        problems.append("SECRET_KEY_FALLBACKS holds the development key: remove it")
    webhook_secret = settings["PAYMENTS_WEBHOOK_SECRET"]
    if not webhook_secret or webhook_secret == DEV_WEBHOOK_SECRET:
        problems.append(
            "PAYMENTS_WEBHOOK_SECRET is missing or is the public development secret: "
            "set the provider's webhook signing secret"
        )
    elif len(webhook_secret) < 16:
        problems.append("PAYMENTS_WEBHOOK_SECRET is shorter than 16 characters")
    einvoicing_secret = settings["EINVOICING_WEBHOOK_SECRET"]
    if not einvoicing_secret or einvoicing_secret == DEV_WEBHOOK_SECRET or len(einvoicing_secret) < 16:
        problems.append(
            "EINVOICING_WEBHOOK_SECRET is missing, short or the public development secret: "
            "set the e-invoicing platform's callback signing secret"
        )
    if settings["EINVOICING_GATEWAY"] == "platform_emulator" and environ.get("EINVOICING_ALLOW_EMULATOR") != "1":
        problems.append(
            "EINVOICING_GATEWAY is the local platform emulator: set EINVOICING_GATEWAY=platform and "
            "EINVOICING_PLATFORM_URL (or EINVOICING_ALLOW_EMULATOR=1 for a staging rehearsal)"
        )
    if settings["EINVOICING_PLATFORM_TOKEN"] in ("", "dev-platform-token"):
        problems.append("EINVOICING_PLATFORM_TOKEN is missing or the development token: set the platform's API token")
    if settings["PAYMENTS_GATEWAY"] == "emulator" and environ.get("PAYMENTS_ALLOW_EMULATOR") != "1":
        problems.append(
            "PAYMENTS_GATEWAY is the local provider emulator: choose a real gateway "
            "(or PAYMENTS_ALLOW_EMULATOR=1 for a staging rehearsal)"
        )
    if settings["EMAIL_BACKEND"] in LOCAL_EMAIL_BACKENDS and environ.get("EMAIL_ALLOW_LOCAL_BACKEND") != "1":
        problems.append(
            f"EMAIL_BACKEND is {settings['EMAIL_BACKEND']}, which keeps invoices on this machine: "
            "set EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and EMAIL_HOST"
        )
    elif settings["EMAIL_BACKEND"].endswith("smtp.EmailBackend") and not environ.get("EMAIL_HOST"):
        problems.append("EMAIL_HOST is not set: invoices would go to an SMTP server on this machine")
    from boissipay.kafka_config import production_problems as kafka_problems

    problems += kafka_problems(settings)
    return problems
