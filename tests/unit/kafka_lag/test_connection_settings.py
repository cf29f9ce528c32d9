"""The connection options translated to kafka-python's settings and TLS context (the lag reads)."""

import ssl

import pytest

from pettwin_checks.kafka.connection import KafkaConnection, kafka_python_config, tls_context
from tests.fixtures.tls import write_self_signed_ca

pytestmark = pytest.mark.unit


@pytest.fixture
def ca_file(tmp_path):
    return write_self_signed_ca(tmp_path / "ca.pem", "test-ca")


def test_confluent_cloud_settings(ca_file):
    connection = KafkaConnection(
        kafka_connect_str="pkc-1.confluent.cloud:9092, pkc-2.confluent.cloud:9092",
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_plain_username="KEY",
        sasl_plain_password="SECRET",
        tls_ca_cert=ca_file,
    )
    assert kafka_python_config(connection) == {
        "bootstrap_servers": ["pkc-1.confluent.cloud:9092", "pkc-2.confluent.cloud:9092"],
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "KEY",
        "sasl_plain_password": "SECRET",
    }
    context = tls_context(connection)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "test-ca"),),)]


@pytest.mark.parametrize(
    "options, verify_mode, check_hostname",
    [
        ({}, ssl.CERT_REQUIRED, True),
        ({"tls_validate_hostname": False}, ssl.CERT_REQUIRED, False),
        ({"tls_verify": False}, ssl.CERT_NONE, False),
    ],
)
def test_tls_verification_options(ca_file, options, verify_mode, check_hostname):
    connection = KafkaConnection(kafka_connect_str="b:9093", security_protocol="SSL", tls_ca_cert=ca_file, **options)
    context = tls_context(connection)
    assert context.verify_mode == verify_mode and context.check_hostname == check_hostname


def test_no_tls_and_no_sasl_without_them():
    connection = KafkaConnection(kafka_connect_str="b:9092")
    assert tls_context(connection) is None
    assert kafka_python_config(connection) == {"bootstrap_servers": ["b:9092"], "security_protocol": "PLAINTEXT"}
