"""`pettwin_kafka_lag`: consumer-group lag in messages and seconds, lag status, group state and rates."""

from __future__ import annotations

import time
from collections import defaultdict

from datadog_checks.base import AgentCheck

from pettwin_checks.config_validation import warn_unknown_options
from pettwin_checks.coordination import LeaderElection, collects_here
from pettwin_checks.deadline import Deadline
from pettwin_checks.kafka.connection import connection_secrets

from .client import BrokerUnavailable, KafkaClient
from .config_models import ConfigMixin
from .contexts import RaisedSeries, intake_collisions, plan_contexts
from .evaluate import advance_rates, evaluate, has_no_consumer
from .lag import LagStatus, PartitionLag, rollup
from .selection import Selection
from .state import LagState
from .status import consume_rate, group_status
from .time_lag import RecordTimes, lagging_offsets, unknown_time_lags

STATE_CACHE_KEY = "lag_state"
# The state is megabytes at thousands of groups, so it is written at most once a minute and when the agent
# unschedules the check, not every run: a crash loses at most a minute of it.
STATE_PERSIST_INTERVAL = 60.0
SERVICE_CHECK_STATUS = {
    LagStatus.OK: AgentCheck.OK,
    LagStatus.WARN: AgentCheck.WARNING,
    LagStatus.REWIND: AgentCheck.WARNING,
    LagStatus.STALL: AgentCheck.CRITICAL,
    LagStatus.STOP: AgentCheck.CRITICAL,
    LagStatus.ERR: AgentCheck.CRITICAL,
}
# Characters of a can_connect message listing the brokers that failed (the agent truncates longer ones anyway).
MESSAGE_LIMIT = 1000
# Metric contexts each level can submit, for the cardinality budget (an upper bound: some are skipped when unknown).
GROUP_CONTEXTS = 9
TOPIC_CONTEXTS = 6
PARTITION_CONTEXTS = 6
# groups monitored, contexts folded, offsets clamped, collector leader, time lags unknown, the folded-groups rollup (3)
CHECK_CONTEXTS = 8


class PettwinKafkaLagCheck(AgentCheck, ConfigMixin):
    __NAMESPACE__ = "pettwin.kafka"

    def __init__(self, name, init_config, instances):
        super().__init__(name, init_config, instances)
        # Validate now, so bad config fails at init naming the field (the base class would wait for the first run).
        self.load_configuration_models()
        warn_unknown_options(self)
        for secret in connection_secrets(self.config):
            self.register_secret(secret)
        self.client = KafkaClient(self.config, self.config.collection_timeout, self.log)
        self.selection = Selection(
            self.config.consumer_groups,
            self.config.monitor_unlisted_consumer_groups,
            self.config.include_consumer_groups,
            self.config.exclude_consumer_groups,
            self.config.include_topics,
            self.config.exclude_topics,
        )
        self._state: LagState | None = None
        self._record_times = RecordTimes()
        self._raised = RaisedSeries()
        self._collisions_warned: set[tuple[str, ...]] = set()
        self._state_persisted_at: float | None = None  # time.monotonic() of the last write to the persistent cache
        self._persisted_shards = 0  # shards the persistent cache holds, so the ones no longer used are blanked
        self.leader: LeaderElection | None = None
        election = self.config.leader_election
        if election.enabled:
            self.leader = LeaderElection(
                self.config,
                election.group,
                election.session_timeout,
                name,
                self.config.kafka_connect_str,
                self.config.min_collection_interval,
                self.log,
            )

    def check(self, _):
        base_tags = list(self.config.tags)
        if not collects_here(self, self.leader, base_tags, self.config.collection_timeout):
            return  # another agent with this configuration collects the cluster
        deadline = Deadline(self.config.collection_timeout)
        try:
            snapshot, group_problems = self.client.snapshot(self.selection)
        except BrokerUnavailable as e:
            self.log.error("Kafka unreachable: %s", e)
            self.service_check("can_connect", self.CRITICAL, tags=base_tags, message=str(e))
            return
        self._report_connection(snapshot, base_tags)
        for group in snapshot.groups:
            if self.selection.is_missing(group):
                group.error = (
                    "consumer group not found on the cluster: check the name in consumer_groups (the consumers' "
                    "group.id) and that the consumers have started"
                )
        record_times, unread = self._read_record_times(snapshot, deadline)
        if self._state is None:
            self._state = self._load_state()
        now = time.time()
        rows, clamped = evaluate(snapshot, self._state, now, self.config.status_window, record_times)
        produce_rates = advance_rates(self._state, snapshot, now)
        if self._state_persisted_at is None or time.monotonic() - self._state_persisted_at >= STATE_PERSIST_INTERVAL:
            self._persist_state()

        if snapshot.cluster_id:
            base_tags.append(f"kafka_cluster_id:{snapshot.cluster_id}")
        for group_id, problems in group_problems.items():
            for problem in sorted(problems):
                self.warning("Group %s: %s", group_id, problem)
        self._warn_collisions(snapshot, rows)
        unknown = self._warn_time_lags(rows, unread)
        if clamped:
            self.warning(
                "%d partitions had a committed offset past the high watermark; their lag is reported as 0", clamped
            )
        self._submit(snapshot, rows, base_tags, produce_rates, now)
        self._raised.end_run()
        self.count("offsets.clamped", clamped, tags=base_tags)
        self.gauge("time_lag.unknown", len(unknown), tags=base_tags)

    def _report_connection(self, snapshot, tags: list[str]) -> None:
        """can_connect: OK, or WARNING when some brokers' answers stayed missing after the retries (each named in a
        warning: their partitions or groups are ERR this run, never left out)."""
        if not snapshot.degraded:
            self.service_check("can_connect", self.OK, tags=tags)
            return
        for problem in snapshot.degraded:
            self.warning("%s", problem)
        message = "; ".join(snapshot.degraded)
        self.service_check("can_connect", self.WARNING, tags=tags, message=message[:MESSAGE_LIMIT])

    def _read_record_times(self, snapshot, deadline: Deadline):
        """The exact time lag: the timestamps of the records lagging groups read next, read where not yet known;
        and why some could not be read."""
        wanted = lagging_offsets(snapshot)
        missing = self._record_times.missing(wanted, snapshot.high_watermarks)
        read, unread = self.client.record_times(missing, deadline) if missing else ({}, {})
        return self._record_times.update(wanted, read, snapshot.high_watermarks), unread

    def _warn_time_lags(self, rows: list[PartitionLag], unread: dict) -> list[PartitionLag]:
        """The lagging partitions with no time lag this run, said in one warning; else the records that could not be
        read while the history gave an estimate."""
        unknown = unknown_time_lags(rows)
        if unknown:
            self._warn_unknown_time_lags(unknown, unread)
        elif unread:
            self.warning(
                "The records of %d lagging partitions could not be read (%s): their time lag is estimated "
                "(lag_seconds_kind interpolated or lower_bound) this run",
                len(unread),
                "; ".join(sorted({f"{reason} on {tp[0]}[{tp[1]}]" for tp, reason in unread.items()})[:3]),
            )
        return unknown

    def _submit(self, snapshot, rows: list[PartitionLag], base_tags: list[str], produce_rates, now: float) -> None:
        rows_by_group: dict[str, list[PartitionLag]] = defaultdict(list)
        partitions_by_group_topic: dict[tuple[str, str], int] = defaultdict(int)
        for row in rows:
            rows_by_group[row.group_id].append(row)
            partitions_by_group_topic[(row.group_id, row.topic)] += 1
        plan = plan_contexts(
            [group.group_id for group in snapshot.groups],
            partitions_by_group_topic,
            self.config.granularity,
            self.config.max_contexts - CHECK_CONTEXTS,
            GROUP_CONTEXTS,
            TOPIC_CONTEXTS,
            PARTITION_CONTEXTS,
        )
        folded_rows: list[PartitionLag] = []
        folded_group_count = 0
        for group in snapshot.groups:
            group_rows = rows_by_group.get(group.group_id, [])
            if self._submit_group_status(group, group_rows, base_tags, plan, produce_rates, now):
                folded_group_count += 1
                folded_rows += group_rows
        self._submit_high_watermarks(snapshot, rows, base_tags, plan)
        self.gauge("consumer_groups.monitored", len(snapshot.groups), tags=base_tags)
        self.gauge("contexts.folded", plan.folded, tags=base_tags)
        folded_groups = rollup(folded_rows)
        self.gauge("consumer_groups.folded", folded_group_count, tags=base_tags)
        self.gauge("consumer_groups.folded.lag", folded_groups.lag, tags=base_tags)
        self.gauge("consumer_groups.folded.lag.max", folded_groups.max_lag, tags=base_tags)

    def _submit_group_status(self, group, group_rows, base_tags, plan, produce_rates, now: float) -> bool:
        """The group's service check, and its series when the plan details it; True when the group is folded."""
        group_tags = [*base_tags, f"consumer_group:{group.group_id}"]
        if group.error:
            self.warning("Group %s: %s", group.group_id, group.error)
            status, message = LagStatus.ERR, f"ERR: {group.error}"
        else:
            status, message = group_status(group_rows, self._state.windows, now, has_no_consumer(group))
        # Service checks are not metric contexts: every group keeps its own, folded or not.
        self.service_check(
            "consumer_group.status", SERVICE_CHECK_STATUS[status], tags=group_tags, message=message or None
        )
        if group.group_id not in plan.group_detail:
            return True
        self.gauge("consumer_group.lag_status", int(status), tags=[*group_tags, f"lag_status:{status.name}"])
        if not group.error:
            self._submit_group(group, group_rows, group_tags)
            if group.group_id in plan.topic_detail:
                self._submit_topics(group.group_id, group_rows, group_tags, plan, produce_rates)
        return False

    def _submit_high_watermarks(self, snapshot, rows: list[PartitionLag], base_tags: list[str], plan) -> None:
        """The high watermark is the partition's, not the group's: one series per partition with detail."""
        if not plan.partition_detail:
            return
        detailed = {(r.topic, r.partition) for r in rows if (r.group_id, r.topic) in plan.partition_detail}
        for topic, partition in sorted(detailed):
            if (topic, partition) in snapshot.high_watermarks:
                tags = [*base_tags, f"topic:{topic}", f"partition:{partition}"]
                self.gauge("broker_offset", snapshot.high_watermarks[(topic, partition)], tags=tags)

    def _warn_unknown_time_lags(self, unknown: list[PartitionLag], unread: dict) -> None:
        """One warning a run: how many lagging partitions got no time lag, and why, naming a few."""
        named = sorted({(row.topic, row.partition) for row in unknown})
        reasons = sorted({unread[tp] for tp in named if tp in unread})
        self.warning(
            "%d lagging partitions have no time lag this run (%s): their records could not be read and the "
            "high-watermark history does not reach them yet; their groups' and topics' lag_seconds cover the other "
            "partitions only (lag_seconds_kind:lower_bound), or are absent%s",
            len(unknown),
            ", ".join(f"{topic}[{partition}]" for topic, partition in named[:5]) + (", ..." if len(named) > 5 else ""),
            f"; reads failed: {'; '.join(reasons[:3])}" if reasons else "",
        )

    def _submit_group(self, group, rows: list[PartitionLag], tags: list[str]) -> None:
        total = rollup(rows)
        self.gauge("consumer_group.lag", total.lag, tags=tags)
        self.gauge("consumer_group.lag.max", total.max_lag, tags=tags)
        self.gauge("consumer_group.partitions_behind", total.partitions_behind, tags=tags)
        self.gauge("consumer_group.uncommitted_partitions", total.uncommitted, tags=tags)
        if total.max_lag_seconds is not None:
            kind = f"lag_seconds_kind:{total.lag_seconds_kind.value}"
            self.gauge("consumer_group.lag_seconds", total.max_lag_seconds, tags=[*tags, kind])
        self.gauge("consumer_group.state", 1, tags=[*tags, f"consumer_group_state:{group.state}"])
        self.gauge("consumer_group.members", group.members, tags=tags)
        self.gauge("consumer_group.assigned_partitions", len(group.assigned), tags=tags)

    def _submit_topics(self, group_id, rows, group_tags, plan, produce_rates) -> None:
        by_topic: dict[str, list[PartitionLag]] = defaultdict(list)
        for row in rows:
            by_topic[row.topic].append(row)
        for topic, topic_rows in by_topic.items():
            tags = [*group_tags, f"topic:{topic}"]
            total = rollup(topic_rows)
            self.gauge("topic.lag", total.lag, tags=tags)
            self.gauge("topic.lag.max", total.max_lag, tags=tags)
            self.gauge("topic.partitions_behind", total.partitions_behind, tags=tags)
            if total.max_lag_seconds is not None:
                kind = f"lag_seconds_kind:{total.lag_seconds_kind.value}"
                self.gauge("topic.lag_seconds", total.max_lag_seconds, tags=[*tags, kind])
            windows = self._state.windows
            slots = [windows.slots.get((group_id, topic, r.partition)) for r in topic_rows]
            rates = (consume_rate(windows, slot) for slot in slots if slot is not None)
            consumed = [rate for rate in rates if rate is not None]
            if consumed:
                self.gauge("topic.consume_rate", sum(consumed), tags=tags)
            produced = [
                produce_rates[(topic, r.partition)] for r in topic_rows if (topic, r.partition) in produce_rates
            ]
            if produced:
                self.gauge("topic.produce_rate", sum(produced), tags=tags)
            if (group_id, topic) in plan.partition_detail:
                for row in topic_rows:
                    self._submit_partition(row, tags)

    def _submit_partition(self, row: PartitionLag, topic_tags: list[str]) -> None:
        tags = [*topic_tags, f"partition:{row.partition}"]
        key = (row.group_id, row.topic, row.partition)
        uncommitted = int(row.committed is None)
        if self._raised.wanted(("uncommitted", *key), uncommitted):
            self.gauge("partition.uncommitted", uncommitted, tags=tags)
        if row.committed is not None:
            self.gauge("consumer_offset", row.committed, tags=tags)
        if row.lag is not None:
            self.gauge("consumer_lag", row.lag, tags=tags)
        if row.lag_seconds is not None:
            kind = f"lag_seconds_kind:{row.lag_seconds_kind.value}"
            self.gauge("consumer_lag_seconds", row.lag_seconds, tags=[*tags, kind])
        if self._raised.wanted(("lag_status", *key), row.status):
            self.gauge("partition.lag_status", int(row.status), tags=[*tags, f"lag_status:{row.status.name}"])

    def _warn_collisions(self, snapshot, rows: list[PartitionLag]) -> None:
        """Once per set: group or topic names Datadog's intake would store as one tag value, merging their series."""
        for kind, names in (
            ("consumer groups", [group.group_id for group in snapshot.groups]),
            ("topics", {row.topic for row in rows}),
        ):
            for collision in intake_collisions(names):
                if collision not in self._collisions_warned:
                    self._collisions_warned.add(collision)
                    self.warning(
                        "The %s %s become one tag value in Datadog (tag values are lower-cased, spaces and commas "
                        "become _, 200 characters at most): their series merge",
                        kind,
                        ", ".join(repr(name) for name in collision),
                    )

    def _load_state(self) -> LagState:
        shard_count = self.read_persistent_cache(STATE_CACHE_KEY)
        self._persisted_shards = int(shard_count) if shard_count.isdigit() else 0
        return LagState.from_shards(
            self.read_persistent_cache(f"{STATE_CACHE_KEY}.{i}") for i in range(self._persisted_shards)
        )

    def _persist_state(self) -> None:
        """The shards under numbered keys, then their count under STATE_CACHE_KEY; shards no longer used are blanked."""
        written = 0
        for text in self._state.to_shards():
            self.write_persistent_cache(f"{STATE_CACHE_KEY}.{written}", text)
            written += 1
        for i in range(written, self._persisted_shards):
            self.write_persistent_cache(f"{STATE_CACHE_KEY}.{i}", "")
        self.write_persistent_cache(STATE_CACHE_KEY, str(written))
        self._persisted_shards = written
        self._state_persisted_at = time.monotonic()

    def cancel(self):
        if self._state is not None:
            self._persist_state()
        self.client.close()
        if self.leader is not None:
            self.leader.close()
