"""What a failed run says (from librdkafka's own error texts), and the CLI's check ids."""

import logging

import pytest
from confluent_kafka import KafkaError

from pettwin_checks.cli import check_ids
from pettwin_checks.kafka_lag.client import ConnectionLog, explain_failure

pytestmark = pytest.mark.unit

BOOTSTRAP = "broker:9092"
# librdkafka's texts, as the real broker's listeners produced them (see test_a_protocol_mismatch_is_named_with_the_option)
SASL_ON_PLAINTEXT = (
    "sasl_plaintext://broker:9092/bootstrap: SASL PLAIN mechanism handshake failed: Broker: Request not valid in "
    "current SASL state: broker's supported mechanisms:  (after 0ms in state AUTH_HANDSHAKE)"
)
TLS_ON_PLAINTEXT = (
    "ssl://broker:9092/bootstrap: SSL handshake failed: Disconnected: SSL connection closed by peer: connecting to a "
    "PLAINTEXT broker listener? (after 0ms in state SSL_HANDSHAKE)"
)


def closed(after_ms: int, state: str) -> str:
    return (
        "[thrd:broker:9092/bootstrap]: broker:9092/bootstrap: Disconnected: connection closed by peer: receive 0 "
        f"after POLLIN (after {after_ms}ms in state {state})"
    )


def log_of(*lines: str) -> ConnectionLog:
    log = ConnectionLog(logging.getLogger("test"))
    for line in lines:
        log.log(7, "%s [%s] %s", "FAIL", "rdkafka#producer-1", line)
    return log


def test_a_sasl_client_on_a_listener_without_sasl():
    message = explain_failure(
        [KafkaError(KafkaError._AUTHENTICATION, SASL_ON_PLAINTEXT)], BOOTSTRAP, 5, "SASL_PLAINTEXT"
    )
    assert "does not take SASL" in message and "security_protocol (SASL_PLAINTEXT here" in message
    assert "authentication failed" not in message


def test_a_tls_client_on_a_plaintext_listener():
    message = explain_failure([KafkaError(KafkaError._TRANSPORT, TLS_ON_PLAINTEXT)], BOOTSTRAP, 5, "SSL")
    assert "does not speak TLS" in message and "security_protocol (SSL here" in message


def test_a_plaintext_client_on_a_tls_or_sasl_listener():
    down = [KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down")]
    for line in (closed(0, "APIVERSION_QUERY"), closed(332, "UP")):
        log = log_of(line)
        message = explain_failure(down, BOOTSTRAP, 5, "PLAINTEXT", log.closed_by_peer)
        assert "likely expects TLS or SASL" in message and "security_protocol (PLAINTEXT here" in message
    # a broker going away: connections up for long are closed, then new ones refused: not a mismatch
    assert not log_of(closed(45_000, "UP")).closed_by_peer
    refused = [KafkaError(KafkaError._TRANSPORT, "Connect to ipv4#127.0.0.1:9092 failed: Connection refused")]
    assert explain_failure(refused, BOOTSTRAP, 5, "PLAINTEXT", True).startswith("cannot connect")
    # each run starts afresh
    log = log_of(closed(0, "APIVERSION_QUERY"))
    log.clear()
    assert not log.closed_by_peer


def test_wrong_credentials_stay_an_authentication_failure():
    wrong = KafkaError(
        KafkaError._AUTHENTICATION,
        "SASL authentication error: Authentication failed during authentication due to invalid credentials with "
        "SASL mechanism SCRAM-SHA-512",
    )
    assert explain_failure([wrong], BOOTSTRAP, 5, "SASL_PLAINTEXT").startswith("authentication failed")


def test_each_cli_instance_gets_its_own_stable_id():
    a, b = {"kafka_connect_str": "k:9092", "consumer_groups": {"a": None}}, {"kafka_connect_str": "k:9092"}
    ids = check_ids("pettwin_kafka_lag", {}, [a, b])
    assert len(set(ids)) == 2 and all(i.startswith("pettwin_kafka_lag:") for i in ids)
    assert check_ids("pettwin_kafka_lag", {}, [a, b]) == ids  # the same configuration keeps its state
    twins = check_ids("pettwin_kafka_lag", {}, [a, dict(a)])
    assert len(set(twins)) == 2 and twins[1] == f"{twins[0]}:1"
