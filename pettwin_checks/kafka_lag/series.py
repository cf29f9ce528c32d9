"""One run's series and group service checks, in two passes: what the offsets alone tell per partition, submitted
while the brokers read the records for the time lag, then what needs those reads and the status windows (the
rollups too, each computed once).

Submitting tens of thousands of series is most of a run's CPU at thousands of groups (bench/README.md); done while
the brokers prepare the Fetch answers, most of it costs the run no wall time."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from datadog_checks.base import AgentCheck

from .contexts import ContextPlan, RaisedSeries
from .evaluate import has_no_consumer
from .gauges import BulkGauge
from .lag import ClusterSnapshot, GroupSnapshot, LagStatus, PartitionLag, Rollup, TimeLagKind, rollup
from .state import LagState
from .status import group_status

SERVICE_CHECK_STATUS = {
    LagStatus.OK: AgentCheck.OK,
    LagStatus.WARN: AgentCheck.WARNING,
    LagStatus.REWIND: AgentCheck.WARNING,
    LagStatus.STALL: AgentCheck.CRITICAL,
    LagStatus.STOP: AgentCheck.CRITICAL,
    LagStatus.ERR: AgentCheck.CRITICAL,
}
# Each status's and kind's tag, built once (tens of thousands of partitions a run carry one).
STATUS_TAG = {status: f"lag_status:{status.name}" for status in LagStatus}
KIND_TAG = {kind: f"lag_seconds_kind:{kind.value}" for kind in TimeLagKind}


@dataclass
class TopicSeries:
    topic: str
    tags: list[str]
    rows: list[PartitionLag]
    # each row's tags when the plan gives the topic per-partition series, else empty
    partition_tags: list[list[str]]


@dataclass
class GroupSeries:
    group: GroupSnapshot
    tags: list[str]
    rows: list[PartitionLag]
    topics: list[TopicSeries]  # empty when the plan gives the group no per-topic series


class RunSeries:
    """`check` submits (its gauges in bulk, its service_check and warning); `plan` says which groups, topics and
    partitions get series of their own; `rows` are lag_rows' and are judged in place between the two passes.
    `uncommitted` and `lag_status` say which partitions' series of those names are wanted this run."""

    def __init__(
        self,
        check: AgentCheck,
        snapshot: ClusterSnapshot,
        rows: list[PartitionLag],
        base_tags: list[str],
        plan: ContextPlan,
        uncommitted: RaisedSeries,
        lag_status: RaisedSeries,
    ) -> None:
        self._check = check
        self._gauge = BulkGauge(check)
        self._snapshot = snapshot
        self._base_tags = base_tags
        self._plan = plan
        self._uncommitted = uncommitted
        self._lag_status = lag_status
        self._rows_by_group: dict[str, list[PartitionLag]] = defaultdict(list)
        for row in rows:
            self._rows_by_group[row.group_id].append(row)
        self._folded_rows = [row for row in rows if row.group_id not in plan.group_detail]
        self._partition_rows = [row for row in rows if (row.group_id, row.topic) in plan.partition_detail]
        # the groups with series of their own (one with an error has its status only)
        self._detailed = [self._group_series(group) for group in snapshot.groups if group.group_id in plan.group_detail]

    def _group_series(self, group: GroupSnapshot) -> GroupSeries:
        tags = [*self._base_tags, f"consumer_group:{group.group_id}"]
        rows = self._rows_by_group[group.group_id]
        if group.error or group.group_id not in self._plan.topic_detail:
            return GroupSeries(group, tags, rows, [])
        by_topic: dict[str, list[PartitionLag]] = defaultdict(list)
        for row in rows:
            by_topic[row.topic].append(row)
        topics = []
        for topic, topic_rows in by_topic.items():
            topic_tags = [*tags, f"topic:{topic}"]
            partition_tags = (
                [[*topic_tags, f"partition:{row.partition}"] for row in topic_rows]
                if (group.group_id, topic) in self._plan.partition_detail
                else []
            )
            topics.append(TopicSeries(topic, topic_tags, topic_rows, partition_tags))
        return GroupSeries(group, tags, rows, topics)

    def submit_offsets(self, produce_rates: dict[tuple[str, int], float]) -> None:
        """What the committed offsets and high watermarks tell per partition, each group's state and members, the
        produce rates, and the check's own counts."""
        gauge = self._gauge
        for detailed in self._detailed:
            group, tags = detailed.group, detailed.tags
            if group.error:
                continue
            gauge("consumer_group.state", 1, tags=[*tags, f"consumer_group_state:{group.state}"])
            gauge("consumer_group.members", group.members, tags=tags)
            gauge("consumer_group.assigned_partitions", len(group.assigned), tags=tags)
            for topic in detailed.topics:
                produced = [produce_rates.get((row.topic, row.partition)) for row in topic.rows]
                if any(rate is not None for rate in produced):
                    gauge("topic.produce_rate", sum(rate for rate in produced if rate is not None), tags=topic.tags)
                if topic.partition_tags:
                    self._submit_partition_offsets(topic)
        self._submit_high_watermarks()
        base_tags, folded = self._base_tags, rollup(self._folded_rows)
        gauge("consumer_groups.monitored", len(self._snapshot.groups), tags=base_tags)
        gauge("contexts.folded", self._plan.folded, tags=base_tags)
        gauge("consumer_groups.folded", len(self._snapshot.groups) - len(self._detailed), tags=base_tags)
        gauge("consumer_groups.folded.lag", folded.lag, tags=base_tags)
        gauge("consumer_groups.folded.lag.max", folded.max_lag, tags=base_tags)

    def _submit_partition_offsets(self, topic: TopicSeries) -> None:
        uncommitted_wanted = self._uncommitted.wanted
        send_uncommitted, send_offset, send_lag = (
            self._gauge.sender(name) for name in ("partition.uncommitted", "consumer_offset", "consumer_lag")
        )
        for row, tags in zip(topic.rows, topic.partition_tags):
            uncommitted = int(row.committed is None)
            if uncommitted_wanted((row.group_id, row.topic, row.partition), uncommitted):
                send_uncommitted(uncommitted, tags)
            if row.committed is not None:
                send_offset(row.committed, tags)
            if row.lag is not None:
                send_lag(row.lag, tags)

    def _submit_high_watermarks(self) -> None:
        """The high watermark is the partition's, not the group's: one series per partition with detail."""
        high_watermarks, send = self._snapshot.high_watermarks, self._gauge.sender("broker_offset")
        for topic, partition in sorted({(row.topic, row.partition) for row in self._partition_rows}):
            if (topic, partition) in high_watermarks:
                send(
                    high_watermarks[(topic, partition)], [*self._base_tags, f"topic:{topic}", f"partition:{partition}"]
                )

    def submit_judged(self, state: LagState, now: float) -> None:
        """The rollups (lag, partitions behind, lag in seconds, consume rates), the statuses, and every group's
        service check, folded or not (service checks are not metric contexts)."""
        for group in self._snapshot.groups:
            self._submit_group_status(group, state, now)
        for detailed in self._detailed:
            if not detailed.group.error:
                total = self._submit_rollup("consumer_group", detailed.rows, detailed.tags)
                self._gauge("consumer_group.uncommitted_partitions", total.uncommitted, tags=detailed.tags)
            for topic in detailed.topics:
                self._submit_topic_judged(topic)

    def _submit_rollup(self, level: str, rows: list[PartitionLag], tags: list[str]) -> Rollup:
        """The totals a group and a topic share, under `level`; the rollup, for the rest."""
        gauge, total = self._gauge, rollup(rows)
        gauge(f"{level}.lag", total.lag, tags=tags)
        gauge(f"{level}.lag.max", total.max_lag, tags=tags)
        gauge(f"{level}.partitions_behind", total.partitions_behind, tags=tags)
        if total.max_lag_seconds is not None:
            gauge(f"{level}.lag_seconds", total.max_lag_seconds, tags=[*tags, KIND_TAG[total.lag_seconds_kind]])
        return total

    def _submit_group_status(self, group: GroupSnapshot, state: LagState, now: float) -> None:
        tags = [*self._base_tags, f"consumer_group:{group.group_id}"]
        if group.error:
            self._check.warning("Group %s: %s", group.group_id, group.error)
            status, message = LagStatus.ERR, f"ERR: {group.error}"
        else:
            rows = self._rows_by_group.get(group.group_id, [])
            status, message = group_status(rows, state.windows, now, has_no_consumer(group))
        self._check.service_check(
            "consumer_group.status", SERVICE_CHECK_STATUS[status], tags=tags, message=message or None
        )
        if group.group_id in self._plan.group_detail:
            self._gauge("consumer_group.lag_status", int(status), tags=[*tags, STATUS_TAG[status]])

    def _submit_topic_judged(self, topic: TopicSeries) -> None:
        self._submit_rollup("topic", topic.rows, topic.tags)
        consumed = [row.consume_rate for row in topic.rows if row.consume_rate is not None]
        if consumed:
            self._gauge("topic.consume_rate", sum(consumed), tags=topic.tags)
        status_wanted = self._lag_status.wanted
        send_seconds, send_status = (
            self._gauge.sender("consumer_lag_seconds"),
            self._gauge.sender("partition.lag_status"),
        )
        for row, tags in zip(topic.rows, topic.partition_tags):
            if row.lag_seconds is not None:
                send_seconds(row.lag_seconds, [*tags, KIND_TAG[row.lag_seconds_kind]])
            if status_wanted((row.group_id, row.topic, row.partition), row.status):
                send_status(row.status, [*tags, STATUS_TAG[row.status]])
