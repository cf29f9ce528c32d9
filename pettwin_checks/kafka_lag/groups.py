"""The group requests of a run: each group's coordinator (FindCoordinator), state and members (DescribeGroups) and
committed offsets (OffsetFetch), batched per coordinator, asked again where the coordinator moved."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import kafka.errors as Errors
from kafka.future import Future

from pettwin_checks.deadline import Deadline

from . import protocol
from .lag import GroupSnapshot, TopicPartition
from .new_protocol import NewProtocolGroups
from .retries import Backoff, coordinator_moved, failure_lines
from .wire import BATCH, Wire, batches, reason

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
        many_per_fetch = protocol.batched_offset_fetch(self._wire.api_version)

        def ask(node_id: Any, batch: list[str]) -> list[tuple[Future, Callable]]:
            described = self._wire.send(node_id, protocol.describe_groups_request(batch))
            asked = [(described, lambda future: self._apply_descriptions(attempt, batch, future))]
            # brokers before 3.0: one group a request
            for request, fetched in protocol.offset_fetch_requests(batch, many_per_fetch):
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
                elif answer[0]:
                    why, again = Errors.for_code(answer[0]).__name__, coordinator_moved(answer[0])
                else:
                    coordinators[key] = answer[1]
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
        """The broker asked, and (group, (error code, coordinator) or why there is no answer) for each group."""
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
        return node_id, answers

    def _apply_descriptions(self, attempt: _GroupAttempt, batch: list[str], future: Future) -> None:
        if not future.succeeded():
            # Lag can still be computed from the committed offsets; only state and members are unknown.
            self._log.debug("describe of %d groups failed: %s", len(batch), reason(future))
            if future.failed():  # the connection dropped: asked again with the offsets
                attempt.retry.update(batch)
            return
        for group_id, error_code, error_message, state, members, assigned in protocol.described_groups(future.value):
            group = attempt.groups.get(group_id)
            if group is None:
                continue
            if error_code == GROUP_ID_NOT_FOUND and "classic" not in error_message:
                group.state = "Dead"  # what a classic coordinator answers for a group it does not know
                continue
            if error_code == GROUP_ID_NOT_FOUND:  # "not a classic group": a KIP-848 group
                attempt.new_protocol.append(group)
                continue
            if error_code:
                if coordinator_moved(error_code):
                    attempt.retry.add(group.group_id)
                error = Errors.for_code(error_code).__name__
                self._log.debug("describe of group %s failed: %s", group.group_id, error)
                continue
            group.state = state if state in GROUP_STATES else "Unknown"
            group.members = members
            if assigned is not None:
                group.assigned = {self._partition(topic, p) for topic, p in assigned}

    def _apply_offsets(self, attempt: _GroupAttempt, batch: list[str], node_id: Any, future: Future) -> None:
        if not future.succeeded():
            why = reason(future)
            for group_id in batch:
                attempt.fail(group_id, node_id, f"offset fetch failed: {why}", again=future.failed())
            return
        for group_id, error_code, offsets in protocol.fetched_offsets(future.value, batch):
            group = attempt.groups.get(group_id)
            if group is None:
                continue
            if error_code:
                why = f"offset fetch failed: {Errors.for_code(error_code).__name__}"
                attempt.fail(group_id, node_id, why, again=coordinator_moved(error_code))
                continue
            committed = {}
            for topic, p, partition_error, offset in offsets:
                if partition_error:  # a partition the broker could not answer for is said, never left out
                    error = Errors.for_code(partition_error)
                    attempt.fail(
                        group_id,
                        node_id,
                        f"offset fetch failed for {topic}[{p}]: {error.__name__}",
                        again=error.retriable,
                    )
                elif offset >= 0:
                    committed[self._partition(topic, p)] = offset
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
