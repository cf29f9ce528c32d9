"""State, members and assignment of groups on the new consumer protocol (KIP-848), which DescribeGroups does not
describe ("not a classic group") and kafka-python cannot ask (it has no ConsumerGroupDescribe): librdkafka's
describe_consumer_groups asks those groups only. Their committed offsets come with every other group's."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import wait

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from pettwin_checks.kafka.connection import DebugLogger, KafkaConnection, librdkafka_config

from .lag import GroupSnapshot
from .wire import MAX_IN_FLIGHT

STATES = {
    "STABLE": "Stable",
    "PREPARING_REBALANCING": "PreparingRebalance",
    "COMPLETING_REBALANCING": "CompletingRebalance",
    "EMPTY": "Empty",
    "DEAD": "Dead",
}
# librdkafka's own request timeout must never fire: an answer arriving after it has fired aborts the process
# (confluent-kafka 2.11 to 2.16). A silent connection fails its requests after SOCKET_TIMEOUT first; the run's
# deadline is kept by how long the check waits.
SOCKET_TIMEOUT = 60.0
REQUEST_TIMEOUT = 300.0


class NewProtocolGroups:
    """One librdkafka admin client, made the first time such a group is seen and kept for the process: librdkafka
    never frees a request whose client is destroyed under it, so it is not replaced while calls may be in flight."""

    def __init__(
        self,
        connection: KafkaConnection,
        timeout: float,
        log: logging.Logger,
        partition: Callable[[str, int], tuple[str, int]],
    ) -> None:
        self._connection = connection
        self._timeout = timeout
        self._log = log
        self._partition = partition
        self._admin: AdminClient | None = None

    def describe(self, groups: list[GroupSnapshot], seconds: float) -> None:
        """Fills in state, members and assigned partitions of `groups`, as far as answered within `seconds`."""
        if self._admin is None:
            self._admin = AdminClient(
                {
                    **librdkafka_config(self._connection),
                    "logger": DebugLogger(self._log),
                    "socket.connection.setup.timeout.ms": int(self._timeout * 1000),
                    "socket.timeout.ms": int(SOCKET_TIMEOUT * 1000),
                    # librdkafka's default is a million; thousands pipelined once wedged a broker connection
                    "max.in.flight.requests.per.connection": MAX_IN_FLIGHT,
                }
            )
        by_id = {group.group_id: group for group in groups}
        futures = self._admin.describe_consumer_groups(list(by_id), request_timeout=REQUEST_TIMEOUT)
        wait(list(futures.values()), timeout=max(seconds, 0.0))
        for group_id, future in futures.items():
            if not future.done():
                continue
            try:
                description = future.result(timeout=0)
            except KafkaException as e:
                self._log.debug("describe of group %s failed: %s", group_id, e)
                continue
            group = by_id[group_id]
            group.state = STATES.get(description.state.name, "Unknown")
            group.members = len(description.members)
            group.assigned = {
                self._partition(tp.topic, tp.partition)
                for member in description.members
                if member.assignment is not None
                for tp in member.assignment.topic_partitions
            }
