"""All broker I/O of the Kafka lag check: Kafka protocol requests batched per broker, every wait bounded by the run's
deadline.

A run sends Metadata once, ListGroups once per broker, then per coordinator one DescribeGroups and one OffsetFetch
(v8+, KIP-709) for up to BATCH groups, and per partition leader one ListOffsets for up to BATCH partitions: the
number of requests follows the brokers and the batch caps, not the groups. Groups that were not listed get their
coordinator from FindCoordinator v4 (KIP-699), BATCH keys a request. Brokers older than 3.0 (their API versions
tell) get one OffsetFetch and one FindCoordinator per group. The requests are kafka-python's protocol classes, sent
over its connections (wire.py); the I/O is served on the check's thread while it waits, so nothing runs between runs.
Groups on the new consumer protocol (KIP-848) are not described by DescribeGroups, and kafka-python has no
ConsumerGroupDescribe: librdkafka describes those groups only (new_protocol.py); their committed offsets come with
every other group's.
Record timestamps for the exact time lag are read by a librdkafka consumer (records.py).
"""

from __future__ import annotations

import logging
import struct
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import kafka.errors as Errors
from kafka.future import Future
from kafka.protocol.admin import DescribeGroupsRequest, ListGroupsRequest
from kafka.protocol.consumer import ListOffsetsRequest, OffsetFetchRequest
from kafka.protocol.consumer.metadata import ConsumerProtocolAssignment
from kafka.protocol.metadata import FindCoordinatorRequest, MetadataRequest, MetadataResponse

from pettwin_checks.deadline import Deadline
from pettwin_checks.kafka.connection import KafkaConnection

from .lag import ClusterSnapshot, GroupSnapshot
from .new_protocol import NewProtocolGroups
from .records import RecordReader
from .selection import Selection
from .wire import BrokerUnavailable, Wire, explain_failure, reason

GROUP_STATES = {"Stable", "PreparingRebalance", "CompletingRebalance", "Empty", "Dead"}

# Share of collection_timeout the coordinator lookups, group descriptions and offset fetches may take; ListOffsets gets
# the rest.
GROUP_SHARE = 0.6
# Groups (per coordinator) or partitions (per leader) in one request. A batch's answers are the run's largest
# allocation and the process keeps the memory they took, so one round of batches is applied and dropped before the
# next is asked. Batches of 2,000 made a run at 2,000 groups 9 requests instead of 30, but no faster, and 3 MiB more.
BATCH = 500
# FindCoordinator answers these while the broker creates or loads the offsets topic: asked again after LOOKUP_RETRY.
COORDINATOR_NOT_READY = {Errors.CoordinatorNotAvailableError.errno, Errors.CoordinatorLoadInProgressError.errno}
LOOKUP_RETRY = 0.1
# DescribeGroups' answer from Kafka 4's coordinator for a group it does not know, and for a KIP-848 group.
GROUP_ID_NOT_FOUND = Errors.GroupIdNotFoundError.errno


def batches(items: list) -> list[list]:
    """`items` in batches of BATCH, in order."""
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]


class KafkaClient:
    def __init__(self, connection: KafkaConnection, timeout: float, log: logging.Logger) -> None:
        self._connection = connection
        self._timeout = timeout
        self._log = log
        self._wire = Wire(connection, timeout)
        # Each topic's partitions as (topic, partition) tuples, the same objects run after run: every committed
        # offset, assignment and high watermark is keyed by one of them instead of a tuple and a topic name of its
        # own (about 100,000 objects a run at 2,000 groups, most of what a run allocated).
        self._partitions: dict[str, tuple[tuple[str, int], ...]] = {}
        self._leaders: dict[str, list[int]] = {}  # each topic's partition leaders, by partition, from the metadata
        self._records = RecordReader(connection, timeout, log, self._partition)
        self._new_protocol = NewProtocolGroups(connection, timeout, log, self._partition)

    @property
    def requests(self) -> Counter[str]:
        """Requests asked for, by Kafka API (the benchmark counts what reaches the wire separately)."""
        return self._wire.requests

    def close(self) -> None:
        """When the check is unscheduled. The KIP-848 describer's librdkafka client stays: it may have calls in
        flight, and librdkafka never frees those of a client destroyed under them."""
        self._wire.close()
        self._records.close()

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
        if selection.needs_group_listing:
            coordinators = self._list_groups(deadline)
        groups = self._groups(selection.group_ids(list(coordinators)), coordinators, deadline)

        problems: dict[str, set[str]] = {}
        for group in groups.values():
            group.partitions, wrong = selection.resolve_partitions(group, self._partitions)
            if wrong:
                problems[group.group_id] = wrong
        wanted = sorted({tp for group in groups.values() for tp in group.partitions})
        high_watermarks, hw_errors = self._high_watermarks(wanted, deadline)
        return ClusterSnapshot(cluster_id, high_watermarks, hw_errors, list(groups.values())), problems

    def record_times(
        self, wanted: list[tuple[tuple[str, int], int]], deadline: float
    ) -> dict[tuple[tuple[str, int], int], int | None]:
        """The timestamp of the record at each (partition, committed offset), BATCH partitions at a time: see
        RecordReader.times."""
        return self._records.times(wanted, deadline, BATCH)

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
        request = MetadataRequest(
            topics=MetadataRequest.ALL_TOPICS,
            allow_auto_topic_creation=False,
            include_cluster_authorized_operations=False,
            include_topic_authorized_operations=False,
        )
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
        # The connection manager only needs the brokers' addresses.
        cluster.update_metadata(
            MetadataResponse(
                version=response.API_VERSION,
                brokers=response.brokers,
                cluster_id=response.cluster_id,
                controller_id=response.controller_id,
                topics=[],
            )
        )
        known_partitions, self._partitions, self._leaders = self._partitions, {}, {}
        for topic in response.topics:
            if topic.error_code:
                continue
            count = len(topic.partitions)
            partitions = known_partitions.get(topic.name)
            if partitions is None or len(partitions) != count:
                partitions = tuple((topic.name, p) for p in range(count))
            self._partitions[topic.name] = partitions
            leaders = [-1] * count
            for partition in topic.partitions:
                if 0 <= partition.partition_index < count and not partition.error_code:
                    leaders[partition.partition_index] = partition.leader_id
            self._leaders[topic.name] = leaders
        return response.cluster_id

    def _explain(self, errors: list[BaseException]) -> str:
        connection = self._connection
        return explain_failure(errors, connection.kafka_connect_str, self._timeout, connection.security_protocol)

    def _partition(self, topic: str, partition: int) -> tuple[str, int]:
        """The shared tuple of a partition the metadata listed, else a new one (a topic deleted or grown since)."""
        partitions = self._partitions.get(topic)
        if partitions is not None and 0 <= partition < len(partitions):
            return partitions[partition]
        return (topic, partition)

    def _list_groups(self, deadline: Deadline) -> dict[str, Any]:
        """Every group, with its coordinator: the broker that lists a group coordinates it."""
        asked = {
            broker.node_id: self._wire.send(broker.node_id, ListGroupsRequest())
            for broker in self._wire.manager.cluster.brokers()
        }
        self._wire.wait(asked.values(), deadline)
        coordinators: dict[str, Any] = {}
        failures: list[str] = []
        errors: list[BaseException] = []
        for node_id, answer in asked.items():
            if not answer.succeeded():
                failures.append(reason(answer))
                errors += [answer.exception] if answer.failed() else []
            elif answer.value.error_code:
                failures.append(Errors.for_code(answer.value.error_code).__name__)
            else:
                for group in answer.value.groups:
                    coordinators[group.group_id] = node_id
        if failures and len(failures) == len(asked):
            raise BrokerUnavailable(self._explain(errors))
        if failures:
            self._log.warning(
                "Listing groups failed on %d of %d brokers (%s): their groups are missing this run",
                len(failures),
                len(asked),
                failures[0],
            )
        return coordinators

    # -- groups -----------------------------------------------------------------------------------------------------

    def _groups(
        self, group_ids: list[str], coordinators: dict[str, Any], deadline: Deadline
    ) -> dict[str, GroupSnapshot]:
        """State, members and committed offsets of each group; a group whose answers do not come keeps its error."""
        groups = {group_id: GroupSnapshot(group_id) for group_id in group_ids}
        # A slow coordinator may hold its groups' answers; stop waiting early enough that the high watermarks
        # of every other group still fit in the run, so it costs only its own groups.
        share = Deadline(min(deadline.remaining(), GROUP_SHARE * self._timeout))
        unknown = [group_id for group_id in group_ids if group_id not in coordinators]
        if unknown:
            coordinators = {**coordinators, **self._find_coordinators(unknown, groups, share)}
        by_coordinator: dict[Any, list[str]] = defaultdict(list)
        for group_id in group_ids:
            if group_id in coordinators:
                by_coordinator[coordinators[group_id]].append(group_id)
        many_per_fetch = self._wire.api_version(OffsetFetchRequest) >= 8
        new_protocol: list[GroupSnapshot] = []  # groups DescribeGroups does not describe (KIP-848)

        def ask(node_id: Any, batch: list[str]) -> list[tuple[Future, Callable]]:
            described = self._wire.send(
                node_id, DescribeGroupsRequest(groups=batch, include_authorized_operations=False)
            )
            asked = [(described, lambda future: self._apply_descriptions(groups, batch, future, new_protocol))]
            if many_per_fetch:
                Group = OffsetFetchRequest.OffsetFetchRequestGroup
                request = OffsetFetchRequest(
                    groups=[Group(group_id=g, topics=None) for g in batch], require_stable=False, min_version=8
                )
                fetches = [(request, batch)]
            else:  # brokers before 3.0: one group a request
                fetches = [
                    (OffsetFetchRequest(group_id=g, topics=None, min_version=2, max_version=7), [g]) for g in batch
                ]
            for request, fetched in fetches:
                future = self._wire.send(node_id, request)
                asked.append((future, lambda future, fetched=fetched: self._apply_offsets(groups, fetched, future)))
            return asked

        self._wire.in_rounds({node: batches(ids) for node, ids in by_coordinator.items()}, ask, share)
        if new_protocol:
            self._new_protocol.describe(new_protocol, share.remaining())
        return groups

    def _find_coordinators(self, group_ids: list[str], groups: dict[str, GroupSnapshot], deadline: Deadline) -> dict:
        """The coordinator of each group that was not listed; a group whose lookup fails gets the error. A broker
        that has no coordinator ready yet (the offsets topic being created or loaded) is asked again shortly."""
        coordinators: dict[str, Any] = {}
        while group_ids:
            retry = []
            for key, answer in self._lookups(group_ids, deadline):
                if isinstance(answer, str):
                    groups[key].error = f"coordinator lookup failed: {answer}"
                elif answer.error_code in COORDINATOR_NOT_READY and deadline.remaining() > LOOKUP_RETRY:
                    retry.append(key)
                elif answer.error_code:
                    groups[key].error = f"coordinator lookup failed: {Errors.for_code(answer.error_code).__name__}"
                else:
                    coordinators[key] = answer.node_id
            if retry:
                self._wire.poll(LOOKUP_RETRY)
            group_ids = retry
        return coordinators

    def _lookups(self, group_ids: list[str], deadline: Deadline) -> list[tuple[str, Any]]:
        """(group, FindCoordinator answer, or why there is none) for each group."""
        node_id = self._wire.manager.least_loaded_node()
        if self._wire.api_version(FindCoordinatorRequest) >= 4:
            requests = [
                (FindCoordinatorRequest(key_type=0, coordinator_keys=b, min_version=4), b) for b in batches(group_ids)
            ]
        else:  # brokers before 3.0: one key a request
            requests = [(FindCoordinatorRequest(key=g, key_type=0, max_version=3), [g]) for g in group_ids]
        asked = [(self._wire.send(node_id, request), keys) for request, keys in requests]
        self._wire.wait([future for future, _ in asked], deadline)
        answers: list[tuple[str, Any]] = []
        for future, keys in asked:
            if not future.succeeded():
                answers += [(key, reason(future)) for key in keys]
            elif future.value.API_VERSION >= 4:
                answers += [(answer.key, answer) for answer in future.value.coordinators if answer.key in keys]
            else:
                answers.append((keys[0], future.value))
        return answers

    def _apply_descriptions(
        self, groups: dict[str, GroupSnapshot], batch: list[str], future: Future, new_protocol: list[GroupSnapshot]
    ) -> None:
        if not future.succeeded():
            # Lag can still be computed from the committed offsets; only state and members are unknown.
            self._log.debug("describe of %d groups failed: %s", len(batch), reason(future))
            return
        for described in future.value.groups:
            group = groups.get(described.group_id)
            if group is None:
                continue
            if described.error_code == GROUP_ID_NOT_FOUND and "classic" not in (described.error_message or ""):
                group.state = "Dead"  # what a classic coordinator answers for a group it does not know
                continue
            if described.error_code == GROUP_ID_NOT_FOUND:  # "not a classic group": a KIP-848 group
                new_protocol.append(group)
                continue
            if described.error_code:
                error = Errors.for_code(described.error_code).__name__
                self._log.debug("describe of group %s failed: %s", group.group_id, error)
                continue
            group.state = described.group_state if described.group_state in GROUP_STATES else "Unknown"
            group.members = len(described.members)
            if described.protocol_type == "consumer":
                group.assigned = {
                    self._partition(assigned.topic, p)
                    for member in described.members
                    for assigned in _assignment(member.member_assignment)
                    for p in assigned.partitions
                }

    def _apply_offsets(self, groups: dict[str, GroupSnapshot], batch: list[str], future: Future) -> None:
        if not future.succeeded():
            for group_id in batch:
                groups[group_id].error = f"offset fetch failed: {reason(future)}"
            return
        response = future.value
        answers = response.groups if response.API_VERSION >= 8 else [response]
        for group_id, answer in (
            ((a.group_id, a) for a in answers) if response.API_VERSION >= 8 else zip(batch, answers)
        ):
            group = groups.get(group_id)
            if group is None:
                continue
            if answer.error_code:
                group.error = f"offset fetch failed: {Errors.for_code(answer.error_code).__name__}"
                continue
            group.committed = {
                self._partition(topic.name, p.partition_index): p.committed_offset
                for topic in answer.topics
                for p in topic.partitions
                if not p.error_code and p.committed_offset >= 0
            }

    # -- high watermarks --------------------------------------------------------------------------------------------

    def _high_watermarks(self, partitions: list[tuple[str, int]], deadline: Deadline):
        high_watermarks: dict[tuple[str, int], int] = {}
        errors: dict[tuple[str, int], str] = {}
        by_leader: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for tp in partitions:
            leaders = self._leaders.get(tp[0])
            leader = leaders[tp[1]] if leaders is not None and tp[1] < len(leaders) else -1
            if leader < 0:
                errors[tp] = "no leader" if leaders is not None else "unknown topic"
            else:
                by_leader[leader].append(tp)
        Topic = ListOffsetsRequest.ListOffsetsTopic
        Partition = Topic.ListOffsetsPartition

        def keep(batch: list[tuple[str, int]], future: Future) -> None:
            if not future.succeeded():
                failure = reason(future)
                for tp in batch:
                    errors[tp] = failure
                return
            for topic in future.value.topics:
                for p in topic.partitions:
                    tp = self._partition(topic.name, p.partition_index)
                    if p.error_code:
                        errors[tp] = Errors.for_code(p.error_code).__name__
                    else:
                        high_watermarks[tp] = p.offset

        def ask(node_id: int, batch: list[tuple[str, int]]) -> list[tuple[Future, Callable]]:
            by_topic: dict[str, list] = defaultdict(list)
            for topic, p in batch:
                by_topic[topic].append(Partition(partition_index=p, current_leader_epoch=-1, timestamp=-1))
            request = ListOffsetsRequest(
                replica_id=-1,
                isolation_level=0,
                topics=[Topic(name=topic, partitions=asked) for topic, asked in by_topic.items()],
                min_version=1,
            )
            return [(self._wire.send(node_id, request), lambda future: keep(batch, future))]

        self._wire.in_rounds({node: batches(tps) for node, tps in by_leader.items()}, ask, deadline)
        return high_watermarks, errors


def _assignment(data: bytes) -> list:
    """A member's assigned topic partitions from its consumer-protocol assignment; none if it cannot be read."""
    if not data:
        return []
    try:
        return ConsumerProtocolAssignment.decode(data).assigned_partitions
    except (struct.error, ValueError, IndexError, UnicodeDecodeError):  # another protocol's bytes, or truncated
        return []
