"""One collector among agents that run the same check configuration, elected through Kafka's group protocol.

Every agent joins the same consumer group on a one-partition topic; the broker's group coordinator assigns that
partition to exactly one live member, and that member collects the cluster- or project-scope metrics. When its
agent dies, the coordinator notices after `session.timeout.ms` and hands the partition to another member, which
sees it on its next run. Nothing is produced to or consumed from the topic: only the assignment matters.
"""

from __future__ import annotations

import hashlib
import logging
import time
from concurrent.futures import TimeoutError as FutureTimeout

from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import Field

from pettwin_checks.kafka.connection import (
    CLOSE_TIMEOUT,
    DebugLogger,
    KafkaConnection,
    close_within,
    librdkafka_config,
)

LEADER_TOPIC = "pettwin-checks-leader"
DEFAULT_SESSION_TIMEOUT = 10.0
TOPIC_TIMEOUT = 10.0  # to look up and, the first time, create the leader topic
MIN_WAIT = 0.5  # what the lookup gets even when the run has less left, so a late election can still join


class LeaderElectionConfig(KafkaConnection):
    """The `leader_election` block of checks that do not otherwise talk to Kafka."""

    group: str | None = Field(None, min_length=1)
    session_timeout: float = Field(DEFAULT_SESSION_TIMEOUT, ge=1, le=300)


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

    def is_leader(self, seconds: float | None = None) -> bool:
        """Serve the group protocol and say whether this member holds the partition now; False on any failure.

        `seconds`: what the run can spend here (the topic lookup before the first join waits at most that long)."""
        try:
            if self._consumer is None:
                self._ensure_topic(TOPIC_TIMEOUT if seconds is None else min(TOPIC_TIMEOUT, max(MIN_WAIT, seconds)))
                self._consumer = Consumer(self._config)
                self._consumer.subscribe([self._topic])
            self._consumer.poll(0)
            return any(tp.topic == self._topic for tp in self._consumer.assignment())
        except KafkaException as e:
            self._log.warning("Leader election unavailable (%s): not collecting cluster-scope metrics this run", e)
            self.close()
            return False

    def _ensure_topic(self, seconds: float) -> None:
        ends = time.monotonic() + seconds
        admin = AdminClient(self._connection)
        if self._topic in admin.list_topics(timeout=seconds).topics:
            return
        # Replication factor -1: the cluster's default (Confluent Cloud requires 3).
        future = admin.create_topics([NewTopic(self._topic, num_partitions=1, replication_factor=-1)])[self._topic]
        try:
            future.result(timeout=max(0.0, ends - time.monotonic()))
        except FutureTimeout:
            # A KafkaException like the others, so is_leader logs it and the next run retries.
            raise KafkaException(
                KafkaError(KafkaError._TIMED_OUT, f"creating topic {self._topic} took over {seconds:g}s")
            ) from None
        except KafkaException as e:
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise

    def close(self) -> None:
        """Leave the group, waiting at most CLOSE_TIMEOUT; the broker evicts a member that did not leave anyway."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None and not close_within(consumer, CLOSE_TIMEOUT):
            self._log.warning(
                "Leaving the leader election group took over %gs; left to finish in the background (another agent "
                "takes over within session_timeout)",
                CLOSE_TIMEOUT,
            )


class ScopedElection:
    """The election among agents watching the same scope, which a GCP check knows only at run time (the project from
    the metadata server or credentials, the location, the services): agents of different scopes sharing one Kafka
    cluster must not elect one collector between them. A scope that changes (a project learned late) joins its own
    group."""

    def __init__(self, config: LeaderElectionConfig, check_name: str, max_run_interval: float, log: logging.Logger):
        self._config = config
        self._check_name = check_name
        self._max_run_interval = max_run_interval
        self._log = log
        self._scope: str | None = None
        self._election: LeaderElection | None = None

    def for_scope(self, scope: str) -> LeaderElection:
        if self._election is None or scope != self._scope:
            self.close()
            self._election = LeaderElection.from_config(
                self._config, self._check_name, scope, self._max_run_interval, self._log
            )
            self._scope = scope
        return self._election

    def close(self) -> None:
        if self._election is not None:
            self._election.close()
            self._election = None


def collects_here(check, leader: LeaderElection | None, tags: list[str], seconds: float | None = None) -> bool:
    """Whether this agent collects the shared scope this run: always without an election; else only the leader.

    With an election every agent submits `<namespace>.collector.leader` (1 or 0), so the fleet's choice shows.
    """
    if leader is None:
        return True
    is_leader = leader.is_leader(seconds)
    check.gauge("collector.leader", int(is_leader), tags=tags)
    return is_leader
