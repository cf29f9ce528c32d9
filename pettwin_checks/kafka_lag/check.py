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
from .evaluate import advance_rates, judge, lag_rows, observe_high_watermarks
from .lag import PartitionLag
from .selection import Selection
from .series import RunSeries
from .state import LagState
from .time_lag import RecordTimes, lagging_offsets, unknown_time_lags

STATE_CACHE_KEY = "lag_state"
# The state is megabytes at thousands of groups, so it is written at most once a minute and when the agent
# unschedules the check, not every run: a crash loses at most a minute of it.
STATE_PERSIST_INTERVAL = 60.0
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
        self._uncommitted = RaisedSeries()  # which partitions' partition.uncommitted to send
        self._lag_status = RaisedSeries()  # which partitions' partition.lag_status to send
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
        if self._state is None:
            self._state = self._load_state()
        state, now = self._state, time.time()
        rows, clamped = lag_rows(snapshot)
        wanted = lagging_offsets(snapshot)
        reading = self.client.start_reading(self._record_times.missing(wanted, snapshot.high_watermarks))
        # While the brokers read those records: everything the offsets alone tell.
        observe_high_watermarks(snapshot, state, now)
        produce_rates = advance_rates(state, snapshot, now)
        if snapshot.cluster_id:
            base_tags.append(f"kafka_cluster_id:{snapshot.cluster_id}")
        plan = self._plan(snapshot, rows)
        series = RunSeries(self, snapshot, rows, base_tags, plan, self._uncommitted, self._lag_status)
        series.submit_offsets(produce_rates)
        read, unread = reading.finish(deadline)
        record_times = self._record_times.update(wanted, read, snapshot.high_watermarks)
        judge(rows, snapshot, state, now, self.config.status_window, record_times)
        if self._state_persisted_at is None or time.monotonic() - self._state_persisted_at >= STATE_PERSIST_INTERVAL:
            self._persist_state()

        for group_id, problems in group_problems.items():
            for problem in sorted(problems):
                self.warning("Group %s: %s", group_id, problem)
        self._warn_collisions(snapshot, rows)
        unknown = self._warn_time_lags(rows, unread)
        if clamped:
            self.warning(
                "%d partitions had a committed offset past the high watermark; their lag is reported as 0", clamped
            )
        series.submit_judged(state, now)
        self._uncommitted.end_run()
        self._lag_status.end_run()
        self.count("offsets.clamped", clamped, tags=base_tags)
        self.gauge("time_lag.unknown", len(unknown), tags=base_tags)

    def _plan(self, snapshot, rows: list[PartitionLag]):
        """Which groups, topics and partitions get series of their own within max_contexts."""
        partitions_by_group_topic: dict[tuple[str, str], int] = defaultdict(int)
        for row in rows:
            partitions_by_group_topic[(row.group_id, row.topic)] += 1
        return plan_contexts(
            [group.group_id for group in snapshot.groups],
            partitions_by_group_topic,
            self.config.granularity,
            self.config.max_contexts - CHECK_CONTEXTS,
            GROUP_CONTEXTS,
            TOPIC_CONTEXTS,
            PARTITION_CONTEXTS,
        )

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
