"""Boissipay settings, read from the environment.

Production gives DATABASE_URL, SECRET_KEY, ALLOWED_HOSTS, KAFKA_BOOTSTRAP_SERVERS,
CELERY_BROKER_URL and the e-mail settings. Without DATABASE_URL an embedded PostgreSQL
server is started (or found running) under .local/, so a fresh machine needs nothing else.
"""

import datetime as dt
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from boissipay.env import env, env_bool, env_int, env_list
from boissipay.logs import logging_config
from config.production import DEV_SECRET_KEY, DEV_WEBHOOK_SECRET, production_problems

BASE_DIR = Path(__file__).resolve().parent.parent

# A `.env` file beside manage.py (or BOISSIPAY_ENV_FILE) gives defaults that every
# process of this checkout shares: `make run` and an operator's manage.py commands alike.
# The real environment wins over it; the test settings do not read it.
if env_bool("BOISSIPAY_READ_ENV_FILE", True):
    from dotenv import load_dotenv

    load_dotenv(env("BOISSIPAY_ENV_FILE", str(BASE_DIR / ".env")), override=False)
LOCAL_DIR = Path(env("BOISSIPAY_LOCAL_DIR", str(BASE_DIR / ".local")))

# --- Core ---------------------------------------------------------------------------
DEBUG = env_bool("DEBUG", False)
# Development values are refused with DEBUG off (see the production guard at the end).
SECRET_KEY = env("SECRET_KEY", DEV_SECRET_KEY)
# Keys being rotated out (docs/deploy.md): sessions and signed links made with them stay valid.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", [])
# Where this service's web process is reached: `make run` serves there, and what tells
# others how to reach us (the payment provider's webhook) derives from it.
BASE_URL = env("BOISSIPAY_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
CSRF_FAILURE_VIEW = "boissipay.api.errors.csrf_failure"

INSTALLED_APPS = [
    "unfold.apps.BasicAppConfig",  # the theme (ADR 0034): its templates before the admin's; our own site
    "unfold.contrib.import_export",
    "boissipay.admin_config.BoissipayAdminConfig",  # django.contrib.admin, with Boissipay's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "import_export",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "pgtrigger",
    "pghistory",
    "boissipay",
    "contracts",
    "billing",
    "invoicing",
    "payments",
    "accounting",
]
# Development-only tools (devtools: the embedded servers, the provider emulator, run_local,
# demo) are an app for local runs and the tests only; production neither lists nor ships them.
LOCAL_RUN = DEBUG or env_bool("BOISSIPAY_ALLOW_DEV_SECRET", False)
if LOCAL_RUN:
    INSTALLED_APPS.append("devtools")

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",  # request metrics (boissipay.metrics)
    "boissipay.logs.RequestIdMiddleware",  # first: every log line of the request carries its id
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "boissipay.i18n.BackOfficeLocaleMiddleware",  # French back office, English API
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): the admin's two-factor login
    "boissipay.actor.ActorMiddleware",  # who acts: the staff user or the API key (events, history)
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "boissipay.api.errors.ApiProblemMiddleware",
    "axes.middleware.AxesMiddleware",  # it answers a locked-out login
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Back-office accounts: password rules, and guessing throttled per address ---------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
# Two-factor authentication of the admin (boissipay.admin_site): each account may turn it
# on; with ADMIN_REQUIRE_2FA every staff account must, before anything else.
ADMIN_REQUIRE_2FA = env_bool("ADMIN_REQUIRE_2FA", False)
OTP_TOTP_ISSUER = "Boissipay"

# Audit trail (boissipay.history, ADR 0031): the context of each change names its actor
# and reason when the row changes.
PGHISTORY_JSON_ENCODER = "boissipay.actor.HistoryJSONEncoder"

AXES_FAILURE_LIMIT = env_int("ADMIN_LOGIN_FAILURE_LIMIT", 10)  # failed logins from one address...
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("ADMIN_LOGIN_COOLOFF_MINUTES", 15))  # ...lock it out this long
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "boissipay.security.admin_login_locked_out"  # 429 with Retry-After
# Bad API keys from one address within the window lock it out (429, Retry-After) until
# the window ends. Counted in the cache: per process unless CACHES names a shared one.
API_KEY_FAILURE_LIMIT = env_int("API_KEY_FAILURE_LIMIT", 20)
# Each web process keeps the API keys it has seen for this long: a revoked key (or a
# changed scope) takes effect in every process within it (boissipay.api.auth.ApiKeyCache).
API_KEY_CACHE_SECONDS = env_int("API_KEY_CACHE_SECONDS", 30)
API_KEY_FAILURE_WINDOW_SECONDS = env_int("API_KEY_FAILURE_WINDOW_SECONDS", 300)
# Requests per API key and minute (boissipay.api.throttling); 0: no limit.
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 60_000)

# --- Database: PostgreSQL only (row locks and constraints must be the real ones) -----
if env("DATABASE_URL", ""):
    DATABASES = {"default": dj_database_url.parse(env("DATABASE_URL"), conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
elif LOCAL_RUN:
    from devtools.embedded.postgres import embedded_database_settings

    DATABASES = {
        "default": embedded_database_settings(LOCAL_DIR / "pgdata", name=env("BOISSIPAY_DB_NAME", "boissipay"))
    }
else:  # refused by the production guard below, with the other problems
    DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": ""}}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("Boissipay runs on PostgreSQL only.")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Time, language -------------------------------------------------------------------
# The back office is in French, English on request; the API always in English (boissipay.i18n).
LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français"), ("en", "English")]
FORMAT_MODULE_PATH = ["config.formats"]  # short French dates: 16/12/2026
TIME_ZONE = "Europe/Paris"  # business dates are Paris dates; datetimes are stored in UTC
USE_I18N = True
# Our own catalogue (ADR 0034): the labels of the models and the admin, and the staff's pages
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True

# --- Static files ---------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(LOCAL_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(LOCAL_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # serve admin and Swagger assets without collectstatic in local runs

# --- Request limits: oversized bodies are refused before parsing ----------------------
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 256 * 1024)

# --- Security (production) ------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (the production shape):
# plain HTTP is redirected to HTTPS (except the health probes, which come from inside)
# and browsers are told to use HTTPS only (HSTS, a year, subdomains, preload list).
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG and BEHIND_TLS_PROXY)
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]  # probed and scraped from inside
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if not DEBUG and BEHIND_TLS_PROXY else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

# --- REST API -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["boissipay.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["boissipay.api.auth.HasScopes"],
    "DEFAULT_PARSER_CLASSES": ["boissipay.api.parsers.CheckedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["boissipay.api.renderers.ProblemAwareJSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "boissipay.api.renderers.DefaultFirstNegotiation",
    "DEFAULT_THROTTLE_CLASSES": ["boissipay.api.throttling.ApiKeyRateThrottle"],
    "EXCEPTION_HANDLER": "boissipay.api.errors.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
# The kernel asks the contracts context, through this published query, whether a
# customer exists before restricting an API key to it (the kernel imports no context).
CUSTOMER_EXISTS = "contracts.published.customer_exists"
# The answers kept for Idempotency-Key retries (whole response bodies, customer data) are
# purged daily once older than this. A client retrying later is decided again: a booking
# is still counted once (its external reference). Stripe keeps keys for 24 hours.
IDEMPOTENCY_RETENTION_HOURS = env_int("IDEMPOTENCY_RETENTION_HOURS", 7 * 24)
# Outbox rows everyone has had (published and dispatched), and inbox rows, are purged
# daily (04:00 Paris) once older than these. An inbox row must outlive any redelivery of
# its event: keep INBOX_RETENTION_DAYS above the Kafka topics' retention (7 days by default).
OUTBOX_RETENTION_DAYS = env_int("OUTBOX_RETENTION_DAYS", 30)
INBOX_RETENTION_DAYS = env_int("INBOX_RETENTION_DAYS", 30)
# The purges delete 5,000 rows per transaction and pause this long between two.
RETENTION_PURGE_PAUSE_MS = env_int("RETENTION_PURGE_PAUSE_MS", 100)
# Request bodies nested deeper than this are refused before parsing (400, not a 500).
API_MAX_JSON_DEPTH = env_int("API_MAX_JSON_DEPTH", 32)
SPECTACULAR_SETTINGS = {
    "TITLE": "Boissipay API",
    "DESCRIPTION": "Deferred-payment contracts, operations, invoices and payments.",
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "DEFAULT_GENERATOR_CLASS": "boissipay.api.schema.EnglishSchemaGenerator",  # the labels it quotes in English
    # Fields named alike in several contexts get an enum each, named after what they are.
    "ENUM_NAME_OVERRIDES": {
        "OperationStatusEnum": "billing.models.OperationStatus",
        "OperationTypeEnum": "billing.models.OperationType",
        "InvoiceStatusEnum": "invoicing.models.InvoiceStatus",
    },
}

# --- Events: Kafka and how each context is fed ---------------------------------------
KAFKA_BOOTSTRAP_SERVERS = env("KAFKA_BOOTSTRAP_SERVERS", "")
# Without KAFKA_BOOTSTRAP_SERVERS, a local run starts (or finds) this checkout's embedded
# broker through this module; production has none and must name its cluster.
EMBEDDED_KAFKA = "devtools.embedded.kafka" if LOCAL_RUN else ""
# A consumer-group join waits for this rebalance timeout on the embedded broker: keep it
# short there; Kafka's usual 5 minutes elsewhere.
KAFKA_MAX_POLL_INTERVAL_MS = env_int("KAFKA_MAX_POLL_INTERVAL_MS", 300_000 if KAFKA_BOOTSTRAP_SERVERS else 3_000)
# A secured cluster (SASL_SSL with SCRAM, say). Every Kafka client of the product (relay,
# consumers, topic creation, the health check) takes these (boissipay.kafka_config);
# an inconsistent set is refused, naming what is wrong.
KAFKA_SECURITY_PROTOCOL = env("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")  # PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
KAFKA_SASL_MECHANISM = env("KAFKA_SASL_MECHANISM", "")  # PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
KAFKA_SASL_USERNAME = env("KAFKA_SASL_USERNAME", "")
KAFKA_SASL_PASSWORD = env("KAFKA_SASL_PASSWORD", "")
KAFKA_SSL_CAFILE = env("KAFKA_SSL_CAFILE", "")  # the cluster's CA, when not in the system's
KAFKA_SSL_CERTFILE = env("KAFKA_SSL_CERTFILE", "")  # a client certificate (mutual TLS) ...
KAFKA_SSL_KEYFILE = env("KAFKA_SSL_KEYFILE", "")  # ... and its key
KAFKA_SSL_KEY_PASSWORD = env("KAFKA_SSL_KEY_PASSWORD", "")
# Topics the product creates when they are missing. One partition keeps every event in
# one order (SPEC); more spread the load, and each contract's events still keep their
# order (the key is the contract id). In production the topics are made beforehand
# (docs/deploy.md), and these only apply where they are not.
KAFKA_TOPIC_PARTITIONS = env_int("KAFKA_TOPIC_PARTITIONS", 1)
KAFKA_TOPIC_REPLICATION_FACTOR = env_int("KAFKA_TOPIC_REPLICATION_FACTOR", 1)
OUTBOX_RELAY = {
    "BATCH_SIZE": env_int("OUTBOX_RELAY_BATCH_SIZE", 2000),
    "LEASE_SECONDS": env_int("OUTBOX_RELAY_LEASE_SECONDS", 30),
    "MAX_ATTEMPTS": env_int("OUTBOX_RELAY_MAX_ATTEMPTS", 20),  # per-message errors only; outages never dead-letter
}
# The event dispatcher (manage.py dispatch_events) feeds the "inprocess" contexts from the
# outbox after commit: up to BATCH_SIZE events per transaction, looking for new ones every
# POLL_SECONDS when idle (the delay before a contract change reaches billing's decisions).
# Long-running processes (relay, dispatcher, consumers, Celery worker and Beat) record a
# heartbeat this often; /health/ready reports one silent for longer than the second.
HEARTBEAT_SECONDS = env_int("HEARTBEAT_SECONDS", 10)
HEARTBEAT_STALE_SECONDS = env_int("HEARTBEAT_STALE_SECONDS", 60)
READINESS_CACHE_SECONDS = env_int("READINESS_CACHE_SECONDS", 5)
EVENT_DISPATCHER = {
    "BATCH_SIZE": env_int("EVENT_DISPATCHER_BATCH_SIZE", 500),
    "POLL_SECONDS": env_int("EVENT_DISPATCHER_POLL_MS", 50) / 1000,
}
EVENT_HANDLER_MAX_ATTEMPTS = env_int("EVENT_HANDLER_MAX_ATTEMPTS", 3)
# "inprocess": the event dispatcher (manage.py dispatch_events) feeds them from the outbox;
# "kafka": a consumer group (manage.py consume_events --context X) feeds them.
EVENT_FEED = {
    context: env(f"EVENT_FEED_{context.upper()}", env("EVENT_FEED", "inprocess"))
    for context in ("contracts", "billing", "invoicing", "payments", "accounting")
}

# --- Accounting: the ledger's accounts (plan comptable général) and the FEC -------------
# VAT collected per rate: ACCOUNTING_VAT_ACCOUNTS="20=445712,10=445711,5.5=445713,2.1=445714".
ACCOUNTING = {
    "customers": env("ACCOUNTING_CUSTOMERS_ACCOUNT", "411000"),
    "customers_label": "Clients",
    "auxiliary_prefix": env("ACCOUNTING_AUXILIARY_PREFIX", "C"),
    "revenue": env("ACCOUNTING_REVENUE_ACCOUNT", "706000"),
    "revenue_label": "Prestations de services",
    "vat": dict(
        pair.strip().split("=", 1)
        for pair in env("ACCOUNTING_VAT_ACCOUNTS", "20=445712,10=445711,5.5=445713,2.1=445714").split(",")
        if pair.strip()
    ),
    "vat_default": env("ACCOUNTING_VAT_ACCOUNT", "445710"),
    "bank": env("ACCOUNTING_BANK_ACCOUNT", "512000"),
    "bank_label": "Banque",
}

# --- Back office theme (django-unfold, ADR 0034) -------------------------------------------
UNFOLD = {
    "SITE_TITLE": "Boissipay",
    "SITE_HEADER": "Boissipay",
    "SITE_SUBHEADER": "Paiement différé",
    "SITE_URL": None,  # no public site: no "View site" link
    "SITE_SYMBOL": "account_balance",
    "SHOW_VIEW_ON_SITE": False,
    "SHOW_HISTORY": True,  # the audit trail (boissipay.admin_base.AuditTrailMixin)
    "SHOW_LANGUAGES": True,  # French by default, English available
    "ENVIRONMENT": "boissipay.admin_site.environment_badge",
    "SIDEBAR": {"show_search": True, "show_all_applications": True},
}

# --- Back office exports (django-import-export): CSV and XLSX of the lists, as filtered ----
from import_export.formats.base_formats import CSV, XLSX  # noqa: E402

EXPORT_FORMATS = [CSV, XLSX]
IMPORT_EXPORT_SKIP_ADMIN_ACTION_EXPORT_UI = False

# --- Celery ---------------------------------------------------------------------------
# With no broker server, kombu's filesystem transport passes messages through a local folder
# (local runs only; devtools.embedded.celery_broker writes each message atomically).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    CELERY_BROKER_TRANSPORT = "devtools.embedded.celery_broker:Transport"
    _queue_dir = Path(env("CELERY_QUEUE_DIR", str(LOCAL_DIR / "celery-queue")))
    _queue_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "control_folder": str(_queue_dir / "control"),
    }
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# prefork in production (it enforces the tasks' time limits); threads for local runs.
CELERY_WORKER_POOL = env("CELERY_WORKER_POOL", "threads" if LOCAL_RUN else "prefork")
CELERY_WORKER_CONCURRENCY = env_int("CELERY_WORKER_CONCURRENCY", 2)
# Task events for Flower (the `flower` process): what runs, succeeded, failed, retried.
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True
# Every task is bounded (a stuck one is stopped) and retried on a passing fault; tasks
# say their own bounds where these do not fit (boissipay.tasks.RETRIED).
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 15 * 60)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 20 * 60)

# --- Invoicing ------------------------------------------------------------------------
# Who issues the invoices: printed on every invoice and in its Factur-X XML.
SELLER = {
    "name": env("SELLER_NAME", "Boissipay Voyages SAS"),
    "siren": env("SELLER_SIREN", "732829320"),
    "vat_number": env("SELLER_VAT_NUMBER", "FR44732829320"),
    "address": env("SELLER_ADDRESS", "12 rue de la Gare\n75010 Paris"),
    "country": env("SELLER_COUNTRY", "FR"),
    "email": env("SELLER_EMAIL", "billing@boissipay.example"),
    # Legal form, share capital and trade register, printed on every invoice (Code de
    # commerce R123-237) and carried in the e-invoice (BT-33).
    "legal_form": env("SELLER_LEGAL_FORM", "SAS"),
    "share_capital": env("SELLER_SHARE_CAPITAL", "10 000,00 €"),
    "rcs": env("SELLER_RCS", "RCS Paris 732 829 320"),
    # "TVA acquittée d'après les débits": the seller opted to pay the VAT on its services
    # when it invoices rather than when it is paid (CGI article 269-2-c).
    "vat_on_debits": env_bool("SELLER_VAT_ON_DEBITS", False),
    # SEPA creditor identifier (ICS), printed on the direct-debit pre-notification.
    "creditor_identifier": env("SEPA_CREDITOR_IDENTIFIER", "FR72ZZZ123456"),
}
INVOICE_NUMBER_PREFIX = env("INVOICE_NUMBER_PREFIX", "BP")
BILLING_RUN_CHUNK_SIZE = env_int("BILLING_RUN_CHUNK_SIZE", 2000)  # contracts invoiced per transaction

# --- Payments -------------------------------------------------------------------------
# "emulator": our local card/direct-debit provider (asynchronous answers by signed
# webhook); "sepa_file": the day's debits written as a SEPA pain.008 file for the bank.
PAYMENTS_GATEWAY = env("PAYMENTS_GATEWAY", "emulator")
# A failed collection is tried again this many days after its due date; after the last
# retry fails the payment is failed for good (and the contract is suspended).
PAYMENTS_RETRY_DAYS = [int(days) for days in env("PAYMENTS_RETRY_DAYS", "3,7").split(",") if days.strip()]
PAYMENTS_WEBHOOK_SECRET = env("PAYMENTS_WEBHOOK_SECRET", DEV_WEBHOOK_SECRET)
PAYMENTS_WEBHOOK_TOLERANCE_SECONDS = env_int("PAYMENTS_WEBHOOK_TOLERANCE_SECONDS", 300)
PAYMENTS_EMULATOR_URL = env("PAYMENTS_EMULATOR_URL", "http://127.0.0.1:8099")

# --- E-invoicing (issue 16): domestic B2B invoices go through an approved platform ----------
# "platform_emulator": our emulator of an approved platform's API (devtools, `make run`
# starts it); "platform": a real one at EINVOICING_PLATFORM_URL. Buyers outside the
# reform's scope (abroad, or no SIREN) get today's e-mail whatever this says.
EINVOICING_GATEWAY = env("EINVOICING_GATEWAY", "platform_emulator")
EINVOICING_PLATFORM_URL = env("EINVOICING_PLATFORM_URL", "http://127.0.0.1:8098")
EINVOICING_PLATFORM_TOKEN = env("EINVOICING_PLATFORM_TOKEN", "dev-platform-token")
# Signs the platform's lifecycle-status callbacks (boissipay.signatures), like the payments webhook.
EINVOICING_WEBHOOK_SECRET = env("EINVOICING_WEBHOOK_SECRET", DEV_WEBHOOK_SECRET)
EINVOICING_WEBHOOK_URL = env("EINVOICING_WEBHOOK_URL", f"{BASE_URL}/api/v1/einvoicing/webhook")
# Where the provider sends its answers (our webhook): on the service's own address unless
# the provider must reach us elsewhere (a proxy, a tunnel).
PAYMENTS_WEBHOOK_URL = env("PAYMENTS_WEBHOOK_URL", f"{BASE_URL}/api/v1/payments/webhook")
PAYMENTS_SEPA_OUTPUT_DIR = Path(env("PAYMENTS_SEPA_OUTPUT_DIR", str(LOCAL_DIR / "sepa")))
# The creditor's account credited by the direct debits (SEPA files).
PAYMENTS_CREDITOR = {
    "name": env("SEPA_CREDITOR_NAME", "Boissipay Voyages SAS"),
    "iban": env("SEPA_CREDITOR_IBAN", "FR7630006000011234567890189"),
    "bic": env("SEPA_CREDITOR_BIC", "AGRIFRPP"),
}

# The ECB's main refinancing rate (percent) that late-payment penalties add 10 points to
# (article L441-10 of the Commercial Code): the rate in force on 1 January or 1 July.
LATE_PAYMENT_ECB_RATE = env("LATE_PAYMENT_ECB_RATE", "2.15")

# --- E-mail ---------------------------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", "boissipay.mail.PrivateFileEmailBackend")  # files 0600 under .local/mail
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", str(LOCAL_DIR / "mail"))
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "billing@boissipay.example")

# --- Logging --------------------------------------------------------------------------
# JSON lines in production (LOG_FORMAT=json, the default with DEBUG off), plain text for
# local runs; every line carries the request id and event id, and IBANs, API keys and
# e-mail addresses are masked whoever logs them (boissipay.logs).
LOG_FORMAT = env("LOG_FORMAT", "plain" if LOCAL_RUN else "json")
LOGGING = logging_config(level=env("LOG_LEVEL", "INFO"), json_lines=LOG_FORMAT == "json")

# --- Observability --------------------------------------------------------------------
# /metrics (boissipay.metrics): Prometheus presents this bearer token; without one the
# endpoint is closed, unless the network protects it (METRICS_ALLOW_UNAUTHENTICATED=1).
METRICS_TOKEN = env("METRICS_TOKEN", "")
METRICS_ALLOW_UNAUTHENTICATED = env_bool("METRICS_ALLOW_UNAUTHENTICATED", LOCAL_RUN)
# Errors to Sentry when SENTRY_DSN is set, without personal data (boissipay.sentry).
SENTRY_DSN = env("SENTRY_DSN", "")
SENTRY_ENVIRONMENT = env("SENTRY_ENVIRONMENT", "production")
SENTRY_TRACES_SAMPLE_RATE = float(env("SENTRY_TRACES_SAMPLE_RATE", "0"))
if SENTRY_DSN:
    from boissipay.sentry import init_sentry

    init_sentry(SENTRY_DSN, environment=SENTRY_ENVIRONMENT, traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE)

# --- Production guard -------------------------------------------------------------------
# With DEBUG off the service refuses to start on any development secret or default, and
# says every problem at once. BOISSIPAY_ALLOW_DEV_SECRET=1 is for local runs and tests only.
if not DEBUG and not env_bool("BOISSIPAY_ALLOW_DEV_SECRET", False):
    import os as _os

    _problems = production_problems(globals(), _os.environ)
    if _problems:
        raise ImproperlyConfigured(
            "Refusing to start with DEBUG off: " + "; ".join(_problems) + ". (DEBUG=1 or BOISSIPAY_ALLOW_DEV_SECRET=1 "
            "for a local run only.)"
        )
