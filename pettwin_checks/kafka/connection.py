"""How to reach a Kafka cluster: the connection options (integrations-core's names) and their translation to the
settings of each Kafka client the project uses (kafka-python for the lag check's reads, librdkafka for the leader
election's group membership)."""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
import threading
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator


class KafkaConnection(BaseModel):
    """Connection options, named as in integrations-core's kafka_consumer; shared by every config that talks Kafka."""

    model_config = ConfigDict(frozen=True, extra="allow")

    kafka_connect_str: str | list[str]
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_plain_username: str | None = None
    sasl_plain_password: str | None = None
    tls_verify: bool = True
    tls_validate_hostname: bool = True
    tls_ca_cert: str | None = None
    tls_cert: str | None = None
    tls_private_key: str | None = None
    tls_private_key_password: str | None = None

    @field_validator("kafka_connect_str")
    @classmethod
    def _bootstrap(cls, value: str | list[str]) -> str:
        return bootstrap_servers(value)

    @model_validator(mode="after")
    def _connection(self):
        return check_connection(self)


def bootstrap_servers(value: str | list[str] | tuple[str, ...]) -> str:
    """`kafka_connect_str` as librdkafka takes it: "host:port,host:port"."""
    servers = [s.strip() for s in (value.split(",") if isinstance(value, str) else value) if s.strip()]
    if not servers:
        raise ValueError("at least one host:port is required")
    return ",".join(servers)


def check_connection(connection):
    """The connection options across fields. Takes any object with KafkaConnection's attributes: the generated
    config models of the checks validate their connection options with it too."""
    if connection.security_protocol.startswith("SASL_"):
        for name in ("sasl_plain_username", "sasl_plain_password"):
            if not getattr(connection, name):
                raise ValueError(f"{name} is required when security_protocol is {connection.security_protocol}")
    for name in ("tls_ca_cert", "tls_cert", "tls_private_key"):
        path = getattr(connection, name)
        if path and not os.path.isfile(path):
            raise ValueError(f"{name}: no such file: {path}")
    if bool(connection.tls_cert) != bool(connection.tls_private_key):
        raise ValueError("tls_cert and tls_private_key go together (mutual TLS needs both)")
    return connection


def uses_tls(connection) -> bool:
    return connection.security_protocol in ("SSL", "SASL_SSL")


def connection_secrets(connection) -> list[str]:
    """The connection options the agent must scrub from log lines (register_secret): passwords of SASL and the key."""
    values = (getattr(connection, "sasl_plain_password", None), getattr(connection, "tls_private_key_password", None))
    return [value for value in values if value]


def librdkafka_config(connection: KafkaConnection) -> dict[str, Any]:
    """librdkafka settings from the connection options."""
    settings = {"bootstrap.servers": connection.kafka_connect_str, "security.protocol": connection.security_protocol}
    if connection.security_protocol.startswith("SASL_"):
        settings.update(
            {
                "sasl.mechanism": connection.sasl_mechanism,
                "sasl.username": connection.sasl_plain_username,
                "sasl.password": connection.sasl_plain_password,
            }
        )
    if uses_tls(connection):
        settings["enable.ssl.certificate.verification"] = connection.tls_verify
        settings["ssl.endpoint.identification.algorithm"] = (
            "https" if connection.tls_verify and connection.tls_validate_hostname else "none"
        )
        optional = {
            "ssl.ca.location": connection.tls_ca_cert,
            "ssl.certificate.location": connection.tls_cert,
            "ssl.key.location": connection.tls_private_key,
            "ssl.key.password": connection.tls_private_key_password,
        }
        settings.update({key: value for key, value in optional.items() if value})
    return settings


def kafka_python_config(connection: KafkaConnection) -> dict[str, Any]:
    """kafka-python settings from the connection options, without the TLS context (see `tls_context`)."""
    settings: dict[str, Any] = {
        "bootstrap_servers": connection.kafka_connect_str.split(","),
        "security_protocol": connection.security_protocol,
    }
    if connection.security_protocol.startswith("SASL_"):
        settings.update(
            {
                "sasl_mechanism": connection.sasl_mechanism,
                "sasl_plain_username": connection.sasl_plain_username,
                "sasl_plain_password": connection.sasl_plain_password,
            }
        )
    return settings


def tls_context(connection: KafkaConnection) -> ssl.SSLContext | None:
    """The TLS context of the connection options, None without TLS. Reads the certificate files, so it is made when
    the client first connects (a bad file then fails the run with a message, not the agent's loading of the check)."""
    if not uses_tls(connection):
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = connection.tls_verify and connection.tls_validate_hostname
    if connection.tls_verify:
        if connection.tls_ca_cert:
            context.load_verify_locations(connection.tls_ca_cert)
        else:
            context.load_default_certs()
    else:
        context.verify_mode = ssl.CERT_NONE
    if connection.tls_cert:
        context.load_cert_chain(
            connection.tls_cert, connection.tls_private_key, password=connection.tls_private_key_password
        )
    return context


class DebugLogger:
    """librdkafka retries connections in the background and logs every attempt; those lines go to debug so a
    dead broker costs one clear line per run (the check's), not a burst of them."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log

    def log(self, level: int, msg: str, *args: Any) -> None:
        self._log.debug(msg, *args)


# librdkafka's consumer close has no timeout and has been seen to block for good (once in a test run, over 15 min,
# leaving a group mid-rebalance); an agent unscheduling a check must not wait on it.
CLOSE_TIMEOUT = 10.0


def close_within(consumer, seconds: float) -> bool:
    """Close a librdkafka consumer, waiting at most `seconds`; False when it is left to finish in the background."""
    closing = threading.Thread(target=_close_quietly, args=(consumer,), name="pettwin-consumer-close", daemon=True)
    closing.start()
    closing.join(seconds)
    return not closing.is_alive()


def _close_quietly(consumer) -> None:
    # A close that fails has nothing left to release that we could act on.
    with contextlib.suppress(Exception):
        consumer.close()
