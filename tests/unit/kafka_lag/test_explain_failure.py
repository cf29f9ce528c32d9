"""What a failed run says, from the errors kafka-python gives for each kind of failure (their texts as measured against
the real broker's listeners; the listener cases themselves run in tests/integration/kafka_lag)."""

import kafka.errors as Errors
import pytest

from pettwin_checks.kafka_lag.wire import ClosedByBroker, explain_failure

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
        ([], "PLAINTEXT", "no answer", "kafka_timeout"),
    ],
    ids=["dns", "refused", "tls-ca", "tls-on-plaintext", "auth", "no-sasl", "closed", "closed-ssl", "silent"],
)
def test_each_failure_names_what_to_check(errors, protocol, says, names):
    message = explain_failure(errors, BOOTSTRAP, 5.0, protocol)
    assert says in message and names in message and BOOTSTRAP in message
