"""The Kafka client settings every client of the product shares (producer, consumers, the
admin client that creates topics): bootstrap servers plus, for a secured cluster, TLS and
SASL (PLAIN or SCRAM). Read from the settings (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*,
KAFKA_SSL_*); an inconsistent set raises ImproperlyConfigured naming every problem."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def security_problems(config) -> list[str]:
    """What is wrong with the Kafka security settings in `config` (settings, or a dict of
    them); an empty list when they hold together. With `production`, also what must not
    serve in production: a SASL password sent in clear."""
    get = config.get if isinstance(config, dict) else lambda name, default=None: getattr(config, name, default)
    protocol = get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    mechanism = get("KAFKA_SASL_MECHANISM", "")
    problems = []
    if protocol not in PROTOCOLS:
        problems.append(f"KAFKA_SECURITY_PROTOCOL is {protocol!r}: one of {', '.join(PROTOCOLS)}")
    if protocol.startswith("SASL_"):
        if mechanism not in MECHANISMS:
            problems.append(f"KAFKA_SASL_MECHANISM is {mechanism!r}: one of {', '.join(MECHANISMS)} with {protocol}")
        if not get("KAFKA_SASL_USERNAME", "") or not get("KAFKA_SASL_PASSWORD", ""):
            problems.append(f"KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are both needed with {protocol}")
    elif mechanism:
        problems.append(f"KAFKA_SASL_MECHANISM is set but KAFKA_SECURITY_PROTOCOL is {protocol}: use SASL_SSL")
    for name in ("KAFKA_SSL_CAFILE", "KAFKA_SSL_CERTFILE", "KAFKA_SSL_KEYFILE"):
        path = get(name, "")
        if path and not Path(path).is_file():
            problems.append(f"{name} names no readable file: {path}")
    if bool(get("KAFKA_SSL_CERTFILE", "")) != bool(get("KAFKA_SSL_KEYFILE", "")):
        problems.append("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together (a client certificate and its key)")
    if (get("KAFKA_SSL_CAFILE", "") or get("KAFKA_SSL_CERTFILE", "")) and not protocol.endswith("SSL"):
        problems.append(f"KAFKA_SSL_* files are set but KAFKA_SECURITY_PROTOCOL is {protocol}: use SSL or SASL_SSL")
    for name in ("KAFKA_TOPIC_PARTITIONS", "KAFKA_TOPIC_REPLICATION_FACTOR"):
        if int(get(name, 1)) < 1:
            problems.append(f"{name} must be at least 1")
    return problems


def production_problems(config) -> list[str]:
    """`security_problems`, plus: no password in clear on the network in production."""
    problems = security_problems(config)
    get = config.get if isinstance(config, dict) else lambda name, default=None: getattr(config, name, default)
    if get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT") == "SASL_PLAINTEXT" and get("KAFKA_SASL_MECHANISM", "") == "PLAIN":
        problems.append("KAFKA_SASL_MECHANISM=PLAIN over SASL_PLAINTEXT sends the password in clear: use SASL_SSL")
    return problems


def client_options(servers: str) -> dict:
    """kafka-python's connection options for `servers` under the configured security."""
    problems = security_problems(settings)
    if problems:
        raise ImproperlyConfigured("Kafka settings: " + "; ".join(problems))
    options: dict = {"bootstrap_servers": servers, "security_protocol": settings.KAFKA_SECURITY_PROTOCOL}
    if settings.KAFKA_SECURITY_PROTOCOL.startswith("SASL_"):
        options.update(
            sasl_mechanism=settings.KAFKA_SASL_MECHANISM,
            sasl_plain_username=settings.KAFKA_SASL_USERNAME,
            sasl_plain_password=settings.KAFKA_SASL_PASSWORD,
        )
    if settings.KAFKA_SECURITY_PROTOCOL.endswith("SSL"):
        options.update(
            ssl_check_hostname=True,
            ssl_cafile=settings.KAFKA_SSL_CAFILE or None,
            ssl_certfile=settings.KAFKA_SSL_CERTFILE or None,
            ssl_keyfile=settings.KAFKA_SSL_KEYFILE or None,
            ssl_password=settings.KAFKA_SSL_KEY_PASSWORD or None,
        )
    return options
