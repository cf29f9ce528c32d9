"""All broker I/O of the Kafka lag check: Kafka protocol requests batched per broker, every wait bounded by the run's
deadline.

A run sends Metadata once, ListGroups once per broker, then per coordinator one DescribeGroups and one OffsetFetch
(v8+, KIP-709) for up to BATCH groups, and per partition leader one ListOffsets for up to BATCH partitions: the
number of requests follows the brokers and the batch caps, not the groups. Groups that were not listed get their
coordinator from FindCoordinator v4 (KIP-699), BATCH keys a request. Brokers older than 3.0 (their API versions
tell) get one OffsetFetch and one FindCoordinator per group. The requests are built and their answers read by
protocol.py (kafka-python's protocol classes, there only), sent over kafka-python's connections (wire.py); the I/O is
served on the check's thread while it waits, so nothing runs between runs.
Groups on the new consumer protocol (KIP-848) are not described by DescribeGroups, and kafka-python has no
ConsumerGroupDescribe: librdkafka describes those groups only (new_protocol.py); their committed offsets come with
every other group's.
Record timestamps for the exact time lag are read with Fetch, per partition leader (records.py).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import kafka.errors as Errors
from kafka.future import Future

from pettwin_checks.deadline import Deadline
from pettwin_checks.kafka.connection import KafkaConnection

from . import protocol
from .groups import GroupRequests
from .lag import ClusterSnapshot
from .new_protocol import NewProtocolGroups
from .records import Reading, RecordReader
from .retries import Backoff, failure_lines, leader_moved
from .selection import Selection
from .time_lag import RecordKey
from .wire import BrokerUnavailable, Wire, batches, explain_failure, reason

# Share of collection_timeout the coordinator lookups, group descriptions and offset fetches may take; ListOffsets gets
# the rest.
GROUP_SHARE = 0.6
NO_LEADER = -1  # the metadata's leader of a partition whose election is under way


class KafkaClient:
    def __init__(self, connection: KafkaConnection, timeout: float, log: logging.Logger) -> None:
        self._connection = connection
        self._timeout = timeout
        self._log = log
        self._wire = Wire(connection, timeout)
        # Each topic's partitions as (topic, partition) tuples, the same objects run after run: every committed
        # offset, assignment and high watermark is keyed by one of them instead of a tuple and a topic name of its
        # own, most of what a run would allocate otherwise.
        self._partitions: dict[str, tuple[tuple[str, int], ...]] = {}
        self._leaders: dict[str, list[int]] = {}  # each topic's partition leaders, by partition, from the metadata
        self._records = RecordReader(self._wire, self._leader, self._partition)
        self._new_protocol = NewProtocolGroups(connection, timeout, log, self._partition)
        self._groups = GroupRequests(self._wire, log, self._partition, self._new_protocol, self._broker_name)
        self._listed: set[str] = set()  # the groups brokers listed (or that were found although not listed) last run

    @property
    def requests(self) -> Counter[str]:
        """Requests asked for, by Kafka API (the benchmark counts what reaches the wire separately)."""
        return self._wire.requests

    def close(self) -> None:
        """When the check is unscheduled. The KIP-848 describer's librdkafka client stays: it may have calls in
        flight, and librdkafka never frees those of a client destroyed under them."""
        self._wire.close()

    def snapshot(self, selection: Selection) -> tuple[ClusterSnapshot, dict[str, set[str]]]:
        """`_snapshot`, with fresh connections next run when the cluster could not be asked or a request went
        unanswered: a silent connection is dropped with what it holds. A broker that answers with an error (say, not
        authorised for one group) keeps its connection."""
        self._wire.unanswered = False
        try:
            result = self._snapshot(selection)
        except BrokerUnavailable:
            self._wire.close()
            raise
        if self._wire.unanswered:
            self._wire.close()
        return result

    def _snapshot(self, selection: Selection) -> tuple[ClusterSnapshot, dict[str, set[str]]]:
        """One consistent view of the watched groups; also, by group, what is wrong with the topics and partitions it
        references (see Selection.resolve_partitions).

        Committed offsets are fetched before the high watermarks, so lag can be overstated by what was produced in
        between but never understated.
        """
        deadline = Deadline(self._timeout)
        cluster_id = self._metadata(deadline)
        coordinators: dict[str, Any] = {}
        degraded: list[str] = []
        listed: list[str] = []
        if selection.needs_group_listing:
            coordinators, degraded = self._list_groups(deadline)
            # A group listed last run but by no broker now is looked up all the same: between two coordinators (its
            # broker dead, the new one not loaded yet) a broker lists it nowhere, and it must not vanish silently.
            unlisted = self._listed - coordinators.keys()
            listed = [*coordinators, *unlisted]
        # A slow coordinator may hold its groups' answers; stop waiting early enough that the high watermarks
        # of every other group still fit in the run, so it costs only its own groups.
        share = Deadline(min(deadline.remaining(), GROUP_SHARE * self._timeout))
        groups, group_failures = self._groups.fetch(selection.group_ids(listed), coordinators, share)
        if selection.needs_group_listing:
            for group_id in unlisted:  # gone for good when its coordinator says so (deleted, or expired)
                group = groups.get(group_id)
                if group is not None and group.state == "Dead" and not group.committed and not group.error:
                    del groups[group_id]
            self._listed = coordinators.keys() | (unlisted & groups.keys())

        problems: dict[str, set[str]] = {}
        for group in groups.values():
            group.partitions, wrong = selection.resolve_partitions(group, self._partitions)
            if wrong:
                problems[group.group_id] = wrong
        wanted = sorted({tp for group in groups.values() for tp in group.partitions})
        high_watermarks, hw_errors, hw_failures = self._high_watermarks(wanted, deadline)
        degraded += group_failures + hw_failures
        snapshot = ClusterSnapshot(cluster_id, high_watermarks, hw_errors, list(groups.values()), degraded)
        return snapshot, problems

    def start_reading(self, wanted: list[RecordKey]) -> Reading:
        """The reads of the records at each (partition, committed offset), on the wire until `Reading.finish` says
        what they told and why some could not be read."""
        return self._records.start(wanted)

    # -- the cluster ------------------------------------------------------------------------------------------------

    def _metadata(self, deadline: Deadline) -> str | None:
        """The cluster id; updates the brokers, each topic's partitions and their leaders. Asked of a known broker,
        then of the bootstrap servers in turn until one answers. The full metadata (an object per partition) is
        dropped."""
        manager = self._wire.manager
        cluster = manager.cluster
        candidates = [broker.node_id for broker in cluster.bootstrap_brokers()]
        known = manager.least_loaded_node() if cluster.brokers() else None
        if known is not None:
            candidates.insert(0, known)
        request = protocol.metadata_request()
        errors: list[BaseException] = []
        response = None
        for number, node_id in enumerate(candidates):
            answer = self._wire.send(node_id, request)
            # each broker asked waits an even share of what is left, so one silent broker does not cost the run
            self._wire.wait([answer], Deadline(deadline.remaining() / (len(candidates) - number)))
            if answer.succeeded():
                response = answer.value
                break
            if answer.failed():
                errors.append(answer.exception)
        if response is None:
            raise BrokerUnavailable(self._explain(errors))
        cluster.update_metadata(protocol.brokers_only(response))
        known_partitions, self._partitions, self._leaders = self._partitions, {}, {}
        for name, error_code, count, topic_partitions in protocol.metadata_topics(response):
            if error_code:
                continue
            partitions = known_partitions.get(name)
            if partitions is None or len(partitions) != count:
                partitions = tuple((name, p) for p in range(count))
            self._partitions[name] = partitions
            leaders = [NO_LEADER] * count
            for index, partition_error, leader_id in topic_partitions:
                if 0 <= index < count and not partition_error:
                    leaders[index] = leader_id
            self._leaders[name] = leaders
        return protocol.cluster_id(response)

    def _explain(self, errors: list[BaseException]) -> str:
        connection = self._connection
        return explain_failure(errors, connection.kafka_connect_str, self._timeout, connection.security_protocol)

    def _partition(self, topic: str, partition: int) -> tuple[str, int]:
        """The shared tuple of a partition the metadata listed, else a new one (a topic deleted or grown since)."""
        partitions = self._partitions.get(topic)
        if partitions is not None and 0 <= partition < len(partitions):
            return partitions[partition]
        return (topic, partition)

    def _leader(self, tp: tuple[str, int]) -> int:
        """A partition's leader from this run's metadata; NO_LEADER when it has none or is not known."""
        leaders = self._leaders.get(tp[0])
        return leaders[tp[1]] if leaders is not None and 0 <= tp[1] < len(leaders) else NO_LEADER

    def _list_groups(self, deadline: Deadline) -> tuple[dict[str, Any], list[str]]:
        """Every group, with its coordinator (the broker that lists a group coordinates it), and a line per broker
        that could not list its groups."""
        asked = {
            broker.node_id: self._wire.send(broker.node_id, protocol.list_groups_request())
            for broker in self._wire.manager.cluster.brokers()
        }
        self._wire.wait(asked.values(), deadline)
        coordinators: dict[str, Any] = {}
        failures: list[str] = []
        for node_id, answer in asked.items():
            if not answer.succeeded():
                failures.append(f"{self._broker_name(node_id)}: ListGroups failed: {reason(answer)}")
                continue
            error_code, group_ids = protocol.listed_groups(answer.value)
            if error_code:  # loading: the groups it has loaded are listed all the same
                error = Errors.for_code(error_code).__name__
                failures.append(f"{self._broker_name(node_id)}: ListGroups failed: {error}")
            for group_id in group_ids:
                coordinators[group_id] = node_id
        if asked and all(not answer.succeeded() for answer in asked.values()):
            raise BrokerUnavailable(self._explain([a.exception for a in asked.values() if a.failed()]))
        return coordinators, [f"{line} (groups it lists for the first time are missing this run)" for line in failures]

    def _broker_name(self, node_id: Any) -> str:
        if node_id is None:
            return "no broker available"
        if node_id == NO_LEADER:
            return "no leader (being elected)"
        broker = self._wire.manager.cluster.broker_metadata(node_id)
        return f"broker {node_id} ({broker.host}:{broker.port})" if broker is not None else f"broker {node_id}"

    # -- high watermarks --------------------------------------------------------------------------------------------

    def _high_watermarks(
        self, partitions: list[tuple[str, int]], deadline: Deadline
    ) -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], str], list[str]]:
        """Each partition's high watermark, or why there is none, and a line per broker that still failed some.
        Partitions whose leader moved (or has none yet, or whose connection dropped) are asked again of their leader
        in fresh metadata, after a backoff, while the run lasts."""
        high_watermarks: dict[tuple[str, int], int] = {}
        errors: dict[tuple[str, int], str] = {}
        failed: dict[tuple[str, int], tuple[Any, str]] = {}  # partition: (broker, why) of its latest attempt
        pending, backoff = partitions, Backoff()
        while True:
            retry = self._ask_high_watermarks(pending, high_watermarks, errors, failed, deadline)
            wait = backoff.next()
            if not retry or deadline.remaining() <= wait:
                break
            self._wire.poll(wait)
            try:
                self._metadata(deadline)  # where the leaders are now
            except BrokerUnavailable:
                break
            pending = retry
        lines = failure_lines(
            "ListOffsets", ((tp, broker, why) for tp, (broker, why) in failed.items()), self._broker_name, _named
        )
        return high_watermarks, errors, lines

    def _by_leader(
        self,
        partitions: list[tuple[str, int]],
        errors: dict[tuple[str, int], str],
        failed: dict[tuple[str, int], tuple[Any, str]],
        retry: list[tuple[str, int]],
    ) -> dict[int, list[tuple[str, int]]]:
        """The partitions by leader in the metadata; one without a leader (being elected) is asked again later, one
        of a topic the metadata no longer lists is not."""
        by_leader: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for tp in partitions:
            leaders = self._leaders.get(tp[0])
            leader = leaders[tp[1]] if leaders is not None and tp[1] < len(leaders) else NO_LEADER
            if leader >= 0:
                by_leader[leader].append(tp)
            elif leaders is None:
                errors[tp] = "unknown topic"
                failed.pop(tp, None)
            else:
                errors[tp] = "no leader"
                failed[tp] = (NO_LEADER, "no leader")
                retry.append(tp)
        return by_leader

    def _ask_high_watermarks(
        self,
        partitions: list[tuple[str, int]],
        high_watermarks: dict[tuple[str, int], int],
        errors: dict[tuple[str, int], str],
        failed: dict[tuple[str, int], tuple[Any, str]],
        deadline: Deadline,
    ) -> list[tuple[str, int]]:
        """One ListOffsets per leader and batch; the partitions worth asking again."""
        retry: list[tuple[str, int]] = []
        by_leader = self._by_leader(partitions, errors, failed, retry)

        def keep(node_id: int, batch: list[tuple[str, int]], future: Future) -> None:
            if not future.succeeded():
                why = reason(future)
                for tp in batch:
                    errors[tp] = why
                    failed[tp] = (node_id, why)
                retry.extend(batch if future.failed() else ())
                return
            for topic, p, error_code, offset in protocol.listed_offsets(future.value):
                tp = self._partition(topic, p)
                if error_code:
                    errors[tp] = Errors.for_code(error_code).__name__
                    failed[tp] = (node_id, errors[tp])
                    if leader_moved(error_code):
                        retry.append(tp)
                else:
                    high_watermarks[tp] = offset
                    errors.pop(tp, None)
                    failed.pop(tp, None)

        def ask(node_id: int, batch: list[tuple[str, int]]) -> list[tuple[Future, Callable]]:
            request = protocol.list_offsets_request(batch)
            return [(self._wire.send(node_id, request), lambda future: keep(node_id, batch, future))]

        self._wire.in_rounds({node: batches(tps) for node, tps in by_leader.items()}, ask, deadline)
        return retry


def _named(tp: tuple[str, int]) -> str:
    return f"{tp[0]}[{tp[1]}]"
