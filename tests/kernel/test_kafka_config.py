"""A secured Kafka cluster can be configured (TLS, SASL PLAIN or SCRAM, a client
certificate), every Kafka client of the product takes the same settings, an
inconsistent set is refused naming what is wrong, and topics get the configured
partitions."""

import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from boissipay import kafka_config, transport
from tests.kernel.test_settings_and_docs import PRODUCTION, start_django


@pytest.fixture
def files(tmp_path):
    paths = {}
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_text("-----BEGIN CERTIFICATE-----\n")
        paths[name] = str(tmp_path / name)
    return paths


def test_sasl_ssl_with_scram_and_a_client_certificate_reaches_every_client(settings, files):
    settings.KAFKA_SECURITY_PROTOCOL = "SASL_SSL"
    settings.KAFKA_SASL_MECHANISM = "SCRAM-SHA-512"
    settings.KAFKA_SASL_USERNAME = "boissipay"
    settings.KAFKA_SASL_PASSWORD = "s3cret-from-the-vault"
    settings.KAFKA_SSL_CAFILE = files["ca.pem"]
    settings.KAFKA_SSL_CERTFILE = files["client.pem"]
    settings.KAFKA_SSL_KEYFILE = files["client.key"]

    options = kafka_config.client_options("kafka-1.example:9093,kafka-2.example:9093")

    assert options == {
        "bootstrap_servers": "kafka-1.example:9093,kafka-2.example:9093",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "boissipay",
        "sasl_plain_password": "s3cret-from-the-vault",
        "ssl_check_hostname": True,
        "ssl_cafile": files["ca.pem"],
        "ssl_certfile": files["client.pem"],
        "ssl_keyfile": files["client.key"],
        "ssl_password": None,
    }
    # Every option is one that kafka-python's producer, consumer and admin client know
    # (a misspelt one would be refused at start-up, in production).
    for client in (KafkaProducer, KafkaConsumer, KafkaAdminClient):
        assert set(options) <= set(client.DEFAULT_CONFIG), client.__name__


def test_the_plain_default_sends_nothing_but_the_servers(settings):
    assert kafka_config.client_options("127.0.0.1:9092") == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "PLAINTEXT",
    }


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL is 'TLS'"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM is 'GSSAPI'"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u"},
            "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are both needed",
        ),
        ({"KAFKA_SASL_MECHANISM": "PLAIN"}, "KAFKA_SASL_MECHANISM is set but KAFKA_SECURITY_PROTOCOL is PLAINTEXT"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/nowhere/ca.pem"},
            "KAFKA_SSL_CAFILE names no readable",
        ),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTFILE": "CERT"}, "go together"),
        ({"KAFKA_TOPIC_PARTITIONS": 0}, "KAFKA_TOPIC_PARTITIONS must be at least 1"),
    ],
)
def test_an_inconsistent_kafka_configuration_is_refused_saying_why(settings, files, changes, said):
    for name, value in changes.items():
        setattr(settings, name, files["client.pem"] if value == "CERT" else value)
    with pytest.raises(ImproperlyConfigured, match=said):
        transport.make_producer("127.0.0.1:1")


def test_production_refuses_a_password_in_clear_and_starts_on_sasl_ssl(files):
    clear = start_django(
        **{**PRODUCTION, "KAFKA_BOOTSTRAP_SERVERS": "kafka.example:9092"},
        KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        KAFKA_SASL_MECHANISM="PLAIN",
        KAFKA_SASL_USERNAME="boissipay",
        KAFKA_SASL_PASSWORD="secret",
    )
    assert clear.returncode != 0
    assert "PLAIN over SASL_PLAINTEXT sends the password in clear" in clear.stderr

    secured = start_django(
        code="from boissipay.kafka_config import client_options; print(client_options('k:9093')['security_protocol'])",
        **{**PRODUCTION, "KAFKA_BOOTSTRAP_SERVERS": "kafka.example:9093"},
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-256",
        KAFKA_SASL_USERNAME="boissipay",
        KAFKA_SASL_PASSWORD="secret",
        KAFKA_SSL_CAFILE=files["ca.pem"],
    )
    assert secured.returncode == 0, secured.stderr
    assert secured.stdout.split()[-1] == "SASL_SSL"


@pytest.mark.kafka
def test_topics_are_created_with_the_configured_partitions(settings, kafka_broker):
    settings.KAFKA_TOPIC_PARTITIONS = 3
    topic = f"test.partitions.{uuid.uuid4().hex[:8]}"
    transport.ensure_topics(kafka_broker.bootstrap_servers, topics=[topic])
    consumer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap_servers)
    try:
        assert consumer.partitions_for_topic(topic) == {0, 1, 2}
    finally:
        consumer.close()
