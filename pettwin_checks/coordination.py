"""One collector among agents that run the same check configuration, elected through Kafka's group protocol.

Every agent joins the same consumer group on a one-partition topic; the broker's group coordinator assigns that
partition to exactly one live member, and that member collects the cluster- or project-scope metrics. When its
agent dies, the coordinator notices after `session.timeout.ms` and hands the partition to another member, which
sees it on its next run. Nothing is produced to or consumed from the topic: only the assignment matters.
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Literal

from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

LEADER_TOPIC = "pettwin-checks-leader"
DEFAULT_SESSION_TIMEOUT = 10.0
TOPIC_TIMEOUT = 10.0  # to look up and, the first time, create the leader topic


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
    """The connection options across fields (any object with KafkaConnection's attributes)."""
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


class LeaderElectionConfig(KafkaConnection):
    """The `leader_election` block of checks that do not otherwise talk to Kafka."""

    group: str | None = Field(None, min_length=1)
    session_timeout: float = Field(DEFAULT_SESSION_TIMEOUT, ge=1, le=300)


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
    if connection.security_protocol in ("SSL", "SASL_SSL"):
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


class DebugLogger:
    """librdkafka retries connections in the background and logs every attempt; those lines go to debug so a
    dead broker costs one clear line per run (the check's), not a burst of them."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log

    def log(self, level: int, msg: str, *args: Any) -> None:
        self._log.debug(msg, *args)


def default_group(check_name: str, scope: str) -> str:
    """The same group for every agent with the same check and scope (e.g. the bootstrap servers or the project)."""
    return f"pettwin-checks.{check_name}.{hashlib.sha256(scope.encode()).hexdigest()[:12]}"


class LeaderElection:
    @classmethod
    def from_config(
        cls, config: LeaderElectionConfig, check_name: str, scope: str, max_run_interval: float, log: logging.Logger
    ) -> LeaderElection:
        return cls(config, config.group, config.session_timeout, check_name, scope, max_run_interval, log)

    def __init__(
        self,
        connection: KafkaConnection,
        group: str | None,
        session_timeout: float,
        check_name: str,
        scope: str,
        max_run_interval: float,
        log: logging.Logger,
    ) -> None:
        """`group` None: the one every agent with this check and scope (bootstrap servers, project) derives."""
        self._connection = {**librdkafka_config(connection), "logger": DebugLogger(log)}
        self._config = {
            **self._connection,
            "group.id": group or default_group(check_name, scope),
            "session.timeout.ms": int(session_timeout * 1000),
            "heartbeat.interval.ms": max(100, int(session_timeout * 1000 / 3)),
            # The check polls once per run, so a member must survive a few missed runs before it is evicted.
            "max.poll.interval.ms": max(int(3 * max_run_interval * 1000), int(session_timeout * 1000)),
            "enable.auto.commit": False,
            # Sticky: a member that joins never takes the partition from a live leader, so leadership does not flap.
            "partition.assignment.strategy": "cooperative-sticky",
        }
        self._topic = LEADER_TOPIC
        self._log = log
        self._consumer: Consumer | None = None

    def is_leader(self) -> bool:
        """Serve the group protocol and say whether this member holds the partition now; False on any failure."""
        try:
            if self._consumer is None:
                self._ensure_topic()
                self._consumer = Consumer(self._config)
                self._consumer.subscribe([self._topic])
            self._consumer.poll(0)
            return any(tp.topic == self._topic for tp in self._consumer.assignment())
        except KafkaException as e:
            self._log.warning("Leader election unavailable (%s): not collecting cluster-scope metrics this run", e)
            self.close()
            return False

    def _ensure_topic(self) -> None:
        admin = AdminClient(self._connection)
        if self._topic in admin.list_topics(timeout=TOPIC_TIMEOUT).topics:
            return
        # Replication factor -1: the cluster's default (Confluent Cloud requires 3).
        future = admin.create_topics([NewTopic(self._topic, num_partitions=1, replication_factor=-1)])[self._topic]
        try:
            future.result(timeout=TOPIC_TIMEOUT)
        except FutureTimeout:
            # A KafkaException like the others, so is_leader logs it and the next run retries.
            raise KafkaException(
                KafkaError(KafkaError._TIMED_OUT, f"creating topic {self._topic} took over {TOPIC_TIMEOUT:g}s")
            ) from None
        except KafkaException as e:
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise

    def close(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close()
            except (KafkaException, RuntimeError):
                pass
            self._consumer = None


def collects_here(check, leader: LeaderElection | None, tags: list[str]) -> bool:
    """Whether this agent collects the shared scope this run: always without an election; else only the leader.

    With an election every agent submits `<namespace>.collector.leader` (1 or 0), so the fleet's choice shows.
    """
    if leader is None:
        return True
    is_leader = leader.is_leader()
    check.gauge("collector.leader", int(is_leader), tags=tags)
    return is_leader
