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

from ..deadline import Deadline
from . import protocol
from .connection import KafkaConnection
from .lag import ClusterSnapshot, GroupSnapshot
from .new_protocol import NewProtocolGroups
from .records import RecordReader
from .selection import Selection
from .time_lag import PartitionRead, RecordKey
from .wire import BrokerUnavailable, Wire, explain_failure, reason

GROUP_STATES = {"Stable", "PreparingRebalance", "CompletingRebalance", "Empty", "Dead"}

# Share of kafka_timeout the coordinator lookups, group descriptions and offset fetches may take; ListOffsets gets
# the rest.
GROUP_SHARE = 0.6
# Groups (per coordinator) or partitions (per leader) in one request. A batch's answers are the run's largest
# allocation and the process keeps the memory they took, so one round of batches is applied and dropped before the
# next is asked. Larger batches are fewer requests but no faster (bench/README.md).
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
        # own, most of what a run would allocate otherwise.
        self._partitions: dict[str, tuple[tuple[str, int], ...]] = {}
        self._leaders: dict[str, list[int]] = {}  # each topic's partition leaders, by partition, from the metadata
        self._records = RecordReader(self._wire, self._leader, self._partition)
        self._new_protocol = NewProtocolGroups(connection, timeout, log, self._partition)

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
        self, wanted: list[RecordKey], deadline: Deadline
    ) -> tuple[dict[tuple[str, int], PartitionRead], dict[tuple[str, int], str]]:
        """What the records at each (partition, committed offset) tell, and why some could not be read: see
        RecordReader.read."""
        return self._records.read(wanted, deadline)

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
            leaders = [-1] * count
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
        """A partition's leader from this run's metadata; -1 when it has none or is not known."""
        leaders = self._leaders.get(tp[0])
        return leaders[tp[1]] if leaders is not None and 0 <= tp[1] < len(leaders) else -1

    def _list_groups(self, deadline: Deadline) -> dict[str, Any]:
        """Every group, with its coordinator: the broker that lists a group coordinates it."""
        asked = {
            broker.node_id: self._wire.send(broker.node_id, protocol.list_groups_request())
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
            elif (listed := protocol.listed_groups(answer.value))[0]:
                failures.append(Errors.for_code(listed[0]).__name__)
            else:
                for group_id in listed[1]:
                    coordinators[group_id] = node_id
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
        many_per_fetch = protocol.batched_offset_fetch(self._wire.api_version)
        new_protocol: list[GroupSnapshot] = []  # groups DescribeGroups does not describe (KIP-848)

        def ask(node_id: Any, batch: list[str]) -> list[tuple[Future, Callable]]:
            described = self._wire.send(node_id, protocol.describe_groups_request(batch))
            asked = [(described, lambda future: self._apply_descriptions(groups, batch, future, new_protocol))]
            # brokers before 3.0: one group a request
            for request, fetched in protocol.offset_fetch_requests(batch, many_per_fetch):
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
                    continue
                error_code, node_id = answer
                if error_code in COORDINATOR_NOT_READY and deadline.remaining() > LOOKUP_RETRY:
                    retry.append(key)
                elif error_code:
                    groups[key].error = f"coordinator lookup failed: {Errors.for_code(error_code).__name__}"
                else:
                    coordinators[key] = node_id
            if retry:
                self._wire.poll(LOOKUP_RETRY)
            group_ids = retry
        return coordinators

    def _lookups(self, group_ids: list[str], deadline: Deadline) -> list[tuple[str, Any]]:
        """(group, (error code, coordinator) or why there is no answer) for each group."""
        node_id = self._wire.manager.least_loaded_node()
        # brokers before 3.0: one key a request
        batched = protocol.batched_find_coordinator(self._wire.api_version)
        requests = protocol.find_coordinator_requests(group_ids, batched, BATCH)
        asked = [(self._wire.send(node_id, request), keys) for request, keys in requests]
        self._wire.wait([future for future, _ in asked], deadline)
        answers: list[tuple[str, Any]] = []
        for future, keys in asked:
            if not future.succeeded():
                answers += [(key, reason(future)) for key in keys]
            else:
                found = protocol.found_coordinators(future.value, keys)
                answers += [(key, (error_code, node)) for key, error_code, node in found]
        return answers

    def _apply_descriptions(
        self, groups: dict[str, GroupSnapshot], batch: list[str], future: Future, new_protocol: list[GroupSnapshot]
    ) -> None:
        if not future.succeeded():
            # Lag can still be computed from the committed offsets; only state and members are unknown.
            self._log.debug("describe of %d groups failed: %s", len(batch), reason(future))
            return
        for group_id, error_code, error_message, state, members, assigned in protocol.described_groups(future.value):
            group = groups.get(group_id)
            if group is None:
                continue
            if error_code == GROUP_ID_NOT_FOUND and "classic" not in error_message:
                group.state = "Dead"  # what a classic coordinator answers for a group it does not know
                continue
            if error_code == GROUP_ID_NOT_FOUND:  # "not a classic group": a KIP-848 group
                new_protocol.append(group)
                continue
            if error_code:
                error = Errors.for_code(error_code).__name__
                self._log.debug("describe of group %s failed: %s", group.group_id, error)
                continue
            group.state = state if state in GROUP_STATES else "Unknown"
            group.members = members
            if assigned is not None:
                group.assigned = {self._partition(topic, p) for topic, p in assigned}

    def _apply_offsets(self, groups: dict[str, GroupSnapshot], batch: list[str], future: Future) -> None:
        if not future.succeeded():
            for group_id in batch:
                groups[group_id].error = f"offset fetch failed: {reason(future)}"
            return
        for group_id, error_code, offsets in protocol.fetched_offsets(future.value, batch):
            group = groups.get(group_id)
            if group is None:
                continue
            if error_code:
                group.error = f"offset fetch failed: {Errors.for_code(error_code).__name__}"
                continue
            group.committed = {self._partition(topic, p): offset for topic, p, offset in offsets}

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

        def keep(batch: list[tuple[str, int]], future: Future) -> None:
            if not future.succeeded():
                failure = reason(future)
                for tp in batch:
                    errors[tp] = failure
                return
            for topic, p, error_code, offset in protocol.listed_offsets(future.value):
                tp = self._partition(topic, p)
                if error_code:
                    errors[tp] = Errors.for_code(error_code).__name__
                else:
                    high_watermarks[tp] = offset

        def ask(node_id: int, batch: list[tuple[str, int]]) -> list[tuple[Future, Callable]]:
            request = protocol.list_offsets_request(batch)
            return [(self._wire.send(node_id, request), lambda future: keep(batch, future))]

        self._wire.in_rounds({node: batches(tps) for node, tps in by_leader.items()}, ask, deadline)
        return high_watermarks, errors
