"""The group requests of a run: each group's coordinator (FindCoordinator), state and members (DescribeGroups) and
committed offsets (OffsetFetch), batched per coordinator, asked again where the coordinator moved."""

from __future__ import annotations

import logging
import struct
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import kafka.errors as Errors
from kafka.future import Future
from kafka.protocol.admin import DescribeGroupsRequest
from kafka.protocol.consumer import OffsetFetchRequest
from kafka.protocol.consumer.metadata import ConsumerProtocolAssignment
from kafka.protocol.metadata import FindCoordinatorRequest

from pettwin_checks.deadline import Deadline

from .lag import GroupSnapshot, TopicPartition
from .new_protocol import NewProtocolGroups
from .retries import Backoff, coordinator_moved, failure_lines
from .wire import Wire, batches, reason

GROUP_STATES = {"Stable", "PreparingRebalance", "CompletingRebalance", "Empty", "Dead"}

# DescribeGroups' answer from Kafka 4's coordinator for a group it does not know, and for a KIP-848 group.
GROUP_ID_NOT_FOUND = Errors.GroupIdNotFoundError.errno


class GroupRequests:
    def __init__(
        self,
        wire: Wire,
        log: logging.Logger,
        partition: Callable[[str, int], TopicPartition],
        new_protocol: NewProtocolGroups,
        broker_name: Callable[[Any], str],
    ) -> None:
        self._wire = wire
        self._log = log
        self._partition = partition
        self._new_protocol = new_protocol
        self._broker_name = broker_name

    def fetch(
        self, group_ids: list[str], coordinators: dict[str, Any], deadline: Deadline
    ) -> tuple[dict[str, GroupSnapshot], list[str]]:
        """State, members and committed offsets of each group, and a line per broker that still failed some. A group
        whose coordinator moved, is loading, or whose connection dropped is looked up and asked again while
        `deadline` lasts; one whose answers do not come keeps its error."""
        attempt = _GroupAttempt({group_id: GroupSnapshot(group_id) for group_id in group_ids})
        coordinators = {group_id: coordinators[group_id] for group_id in group_ids if group_id in coordinators}
        pending, backoff = group_ids, Backoff()
        while True:
            unknown = [group_id for group_id in pending if group_id not in coordinators]
            if unknown:
                coordinators.update(self._find_coordinators(unknown, attempt, deadline))
            self._ask([g for g in pending if g in coordinators], coordinators, attempt, deadline)
            wait = backoff.next()
            if not attempt.retry or deadline.remaining() <= wait:
                break
            self._wire.poll(wait)
            pending = attempt.again()
            for group_id in pending:
                coordinators.pop(group_id, None)
        if attempt.new_protocol:
            self._new_protocol.describe(attempt.new_protocol, deadline.remaining())
        failed = ((group_id, broker, why) for group_id, (broker, why) in attempt.failed.items())
        return attempt.groups, failure_lines("group requests", failed, self._broker_name, str)

    def _ask(
        self, group_ids: list[str], coordinators: dict[str, Any], attempt: _GroupAttempt, deadline: Deadline
    ) -> None:
        """One DescribeGroups and one OffsetFetch per coordinator and batch (one OffsetFetch a group before 3.0)."""
        by_coordinator: dict[Any, list[str]] = defaultdict(list)
        for group_id in group_ids:
            by_coordinator[coordinators[group_id]].append(group_id)
        many_per_fetch = self._wire.api_version(OffsetFetchRequest) >= 8

        def ask(node_id: Any, batch: list[str]) -> list[tuple[Future, Callable]]:
            described = self._wire.send(
                node_id, DescribeGroupsRequest(groups=batch, include_authorized_operations=False)
            )
            asked = [(described, lambda future: self._apply_descriptions(attempt, batch, future))]
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
                asked.append(
                    (future, lambda future, fetched=fetched: self._apply_offsets(attempt, fetched, node_id, future))
                )
            return asked

        self._wire.in_rounds({node: batches(ids) for node, ids in by_coordinator.items()}, ask, deadline)

    def _find_coordinators(self, group_ids: list[str], attempt: _GroupAttempt, deadline: Deadline) -> dict:
        """The coordinator of each group that was not listed or whose coordinator moved; a group whose lookup fails
        gets the error. A broker with no coordinator ready yet (the offsets topic being created, loaded or moved) or
        a dropped connection is asked again after a backoff (another broker, if that one is down)."""
        coordinators: dict[str, Any] = {}
        backoff = Backoff()
        while group_ids:
            retry = []
            node_id, answers = self._lookups(group_ids, deadline)
            for key, answer in answers:
                if isinstance(answer, str):
                    why, again = answer, True
                elif answer.error_code:
                    why, again = Errors.for_code(answer.error_code).__name__, coordinator_moved(answer.error_code)
                else:
                    coordinators[key] = answer.node_id
                    attempt.failed.pop(key, None)
                    attempt.groups[key].error = None
                    continue
                attempt.groups[key].error = f"coordinator lookup failed: {why}"
                attempt.failed[key] = (node_id, f"FindCoordinator: {why}")
                if again:
                    retry.append(key)
            wait = backoff.next()
            if not retry or deadline.remaining() <= wait:
                break
            self._wire.poll(wait)
            group_ids = retry
        return coordinators

    def _lookups(self, group_ids: list[str], deadline: Deadline) -> tuple[Any, list[tuple[str, Any]]]:
        """The broker asked, and (group, FindCoordinator answer, or why there is none) for each group."""
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
        return node_id, answers

    def _apply_descriptions(self, attempt: _GroupAttempt, batch: list[str], future: Future) -> None:
        if not future.succeeded():
            # Lag can still be computed from the committed offsets; only state and members are unknown.
            self._log.debug("describe of %d groups failed: %s", len(batch), reason(future))
            if future.failed():  # the connection dropped: asked again with the offsets
                attempt.retry.update(batch)
            return
        for described in future.value.groups:
            group = attempt.groups.get(described.group_id)
            if group is None:
                continue
            if described.error_code == GROUP_ID_NOT_FOUND and "classic" not in (described.error_message or ""):
                group.state = "Dead"  # what a classic coordinator answers for a group it does not know
                continue
            if described.error_code == GROUP_ID_NOT_FOUND:  # "not a classic group": a KIP-848 group
                attempt.new_protocol.append(group)
                continue
            if described.error_code:
                if coordinator_moved(described.error_code):
                    attempt.retry.add(group.group_id)
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

    def _apply_offsets(self, attempt: _GroupAttempt, batch: list[str], node_id: Any, future: Future) -> None:
        if not future.succeeded():
            why = reason(future)
            for group_id in batch:
                attempt.fail(group_id, node_id, f"offset fetch failed: {why}", again=future.failed())
            return
        response = future.value
        answers = response.groups if response.API_VERSION >= 8 else [response]
        for group_id, answer in (
            ((a.group_id, a) for a in answers) if response.API_VERSION >= 8 else zip(batch, answers)
        ):
            group = attempt.groups.get(group_id)
            if group is None:
                continue
            if answer.error_code:
                why = f"offset fetch failed: {Errors.for_code(answer.error_code).__name__}"
                attempt.fail(group_id, node_id, why, again=coordinator_moved(answer.error_code))
                continue
            committed = {}
            for topic in answer.topics:
                for p in topic.partitions:
                    if p.error_code:  # a partition the broker could not answer for is said, never left out
                        error = Errors.for_code(p.error_code)
                        why = f"offset fetch failed for {topic.name}[{p.partition_index}]: {error.__name__}"
                        attempt.fail(group_id, node_id, why, again=error.retriable)
                    elif p.committed_offset >= 0:
                        committed[self._partition(topic.name, p.partition_index)] = p.committed_offset
            group.committed = committed


@dataclass
class _GroupAttempt:
    """The groups of a run as their answers come in, and what failed: a group's latest failure (broker, why), and
    the groups to look up and ask again (their coordinator moved, is loading, or the connection dropped)."""

    groups: dict[str, GroupSnapshot]
    new_protocol: list[GroupSnapshot] = field(default_factory=list)  # groups DescribeGroups does not describe
    failed: dict[str, tuple[Any, str]] = field(default_factory=dict)
    retry: set[str] = field(default_factory=set)

    def fail(self, group_id: str, broker: Any, why: str, again: bool) -> None:
        self.groups[group_id].error = why
        self.failed[group_id] = (broker, why)
        if again:
            self.retry.add(group_id)

    def again(self) -> list[str]:
        """The groups to ask again, afresh: what their earlier answers said is dropped."""
        again = sorted(self.retry)
        self.retry = set()
        for group_id in again:
            self.groups[group_id] = GroupSnapshot(group_id)
            self.failed.pop(group_id, None)
        self.new_protocol = [group for group in self.new_protocol if group.group_id not in again]
        return again


def _assignment(data: bytes) -> list:
    """A member's assigned topic partitions from its consumer-protocol assignment; none if it cannot be read."""
    if not data:
        return []
    try:
        return ConsumerProtocolAssignment.decode(data).assigned_partitions
    except (struct.error, ValueError, IndexError, UnicodeDecodeError):  # another protocol's bytes, or truncated
        return []
