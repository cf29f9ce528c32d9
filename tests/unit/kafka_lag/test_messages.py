"""What a failed run says, from the errors kafka-python gives for each kind of failure (their texts as measured against
the real broker's listeners, see test_a_protocol_mismatch_is_named_with_the_option), and the CLI's check ids."""

from types import SimpleNamespace

import kafka.errors as Errors
import pytest
from kafka.future import Future

from pettwin_checks.cli import check_ids
from pettwin_checks.kafka.connection import KafkaConnection
from pettwin_checks.kafka_lag.wire import ClosedByBroker, Wire, explain_failure

pytestmark = pytest.mark.unit

BOOTSTRAP = "broker-1:9092"


@pytest.mark.parametrize(
    "errors, protocol, says, names",
    [
        ([Errors.KafkaConnectionError("DNS Resolution failure")], "PLAINTEXT", "cannot resolve", "kafka_connect_str"),
        (
            [Errors.KafkaConnectionError("unable to connect: [Errno 111] Connection refused")],
            "PLAINTEXT",
            "cannot connect",
            "kafka_connect_str",
        ),
        (
            [
                Errors.KafkaConnectionError(
                    "Handshake failed: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
                )
            ],
            "SSL",
            "TLS handshake failed",
            "tls_ca_cert",
        ),
        (
            [Errors.KafkaConnectionError("Handshake failed: [SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred")],
            "SSL",
            "does not speak TLS",
            "security_protocol",
        ),
        (
            [Errors.SaslAuthenticationFailedError("connection closed during SASL authentication")],
            "SASL_SSL",
            "authentication failed",
            "sasl_plain_password",
        ),
        ([Errors.IllegalSaslStateError()], "SASL_PLAINTEXT", "does not take SASL", "security_protocol"),
        ([ClosedByBroker("socket disconnected")], "PLAINTEXT", "likely expects TLS or SASL", "security_protocol"),
        ([ClosedByBroker("socket disconnected")], "SSL", "likely expects SASL", "security_protocol"),
        ([], "PLAINTEXT", "no answer", "collection_timeout"),
    ],
    ids=["dns", "refused", "tls-ca", "tls-on-plaintext", "auth", "no-sasl", "closed", "closed-ssl", "silent"],
)
def test_each_failure_names_what_to_check(errors, protocol, says, names):
    message = explain_failure(errors, BOOTSTRAP, 5.0, protocol)
    assert says in message and names in message and BOOTSTRAP in message


def connection(sasl: bool, versions_answered: bool, ready: bool):
    """A kafka-python connection as the client sees it when one of its requests fails."""
    init = Future().success(None) if ready else Future().failure(Errors.KafkaConnectionError("socket disconnected"))
    return SimpleNamespace(
        sasl_enabled=sasl, init_future=init, broker_version_data=object() if versions_answered else None
    )


def failure(wire: Wire, conn, error: BaseException) -> BaseException:
    answer = Future()
    wire._in_flight[1] += 1
    wire.answered(1, conn, answer, error)
    return answer.exception


def test_what_a_failure_on_fresh_connections_means():
    wire = Wire(KafkaConnection(kafka_connect_str=BOOTSTRAP), 5)
    closed = Errors.KafkaConnectionError("socket disconnected")
    # closed in the SASL exchange, after the broker answered ApiVersions: wrong credentials
    assert isinstance(failure(wire, connection(True, True, False), closed), Errors.SaslAuthenticationFailedError)
    # a listener without SASL says so; kept as it is
    refused_sasl = Errors.IllegalSaslStateError()
    assert failure(wire, connection(True, True, False), refused_sasl) is refused_sasl
    # closed before any answer, or answered with a TLS alert read as a frame: a listener expecting what the client
    # does not speak
    assert isinstance(failure(wire, connection(False, False, False), closed), ClosedByBroker)
    tls_alert = Errors.InvalidReceiveError("Invalid frame length: 352518912")  # 0x15030300: a TLS alert record
    assert isinstance(failure(wire, connection(False, False, False), tls_alert), ClosedByBroker)


def test_a_broker_going_away_is_not_a_mismatch():
    """Connections that have been answered and are closed later (a broker stopping) keep their plain error."""
    wire = Wire(KafkaConnection(kafka_connect_str=BOOTSTRAP), 5)
    answered = Future()
    wire._in_flight[1] += 1
    wire.answered(1, connection(False, True, True), answered, SimpleNamespace())
    closed = Errors.KafkaConnectionError("socket disconnected")
    error = failure(wire, connection(False, True, True), closed)
    assert error is closed
    assert explain_failure([error], BOOTSTRAP, 5, "PLAINTEXT").startswith("cannot connect")


def test_each_cli_instance_gets_its_own_stable_id():
    a, b = {"kafka_connect_str": "k:9092", "consumer_groups": {"a": None}}, {"kafka_connect_str": "k:9092"}
    ids = check_ids("pettwin_kafka_lag", {}, [a, b])
    assert len(set(ids)) == 2 and all(i.startswith("pettwin_kafka_lag:") for i in ids)
    assert check_ids("pettwin_kafka_lag", {}, [a, b]) == ids  # the same configuration keeps its state
    twins = check_ids("pettwin_kafka_lag", {}, [a, dict(a)])
    assert len(set(twins)) == 2 and twins[1] == f"{twins[0]}:1"
