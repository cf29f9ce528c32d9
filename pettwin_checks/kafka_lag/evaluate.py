"""One run's evaluation, in two steps: every group partition's lag in messages from the snapshot alone (`lag_rows`,
ready while the records are being read), then its time lag and status from the reads and the kept state (`judge`)."""

from __future__ import annotations

from collections.abc import Mapping

from .lag import ClusterSnapshot, GroupSnapshot, LagStatus, PartitionLag, TopicPartition, partition_lag, rate
from .state import LagState
from .status import consume_rate, partition_status
from .time_lag import PartitionHistory, RecordKey, prune_history, record_high_watermark, time_lag


def lag_rows(snapshot: ClusterSnapshot) -> tuple[list[PartitionLag], int]:
    """Every (group, partition) row with its lag in messages (status ERR without a high watermark, OK without a
    committed offset; the others are judged later), and how many lags were clamped at 0."""
    rows: list[PartitionLag] = []
    clamped = 0
    high_watermarks, hw_errors = snapshot.high_watermarks, snapshot.hw_errors
    for group in snapshot.groups:
        group_id, committed_offsets = group.group_id, group.committed
        for tp in group.partitions:  # the client's shared tuples, not a new one a row
            topic, partition = tp
            committed = committed_offsets.get(tp)
            high_watermark = high_watermarks.get(tp)
            if high_watermark is None:
                reason = hw_errors.get(tp, "no high watermark")
                rows.append(
                    PartitionLag(group_id, topic, partition, committed, None, None, None, LagStatus.ERR, reason)
                )
                continue
            lag = None
            if committed is not None:
                lag, was_clamped = partition_lag(committed, high_watermark)
                clamped += was_clamped
            rows.append(PartitionLag(group_id, topic, partition, committed, high_watermark, lag, None, LagStatus.OK))
    return rows, clamped


def observe_high_watermarks(snapshot: ClusterSnapshot, state: LagState, now: float) -> None:
    """Adds this run's high watermarks to each partition's history (the time-lag estimates read it)."""
    for tp, high_watermark in snapshot.high_watermarks.items():
        history = state.histories.get(tp)
        if history is None:  # not setdefault: that would build a throwaway history for every known partition
            history = state.histories[tp] = PartitionHistory()
        record_high_watermark(history, high_watermark, now)


def judge(
    rows: list[PartitionLag],
    snapshot: ClusterSnapshot,
    state: LagState,
    now: float,
    window_seconds: float,
    record_times: Mapping[RecordKey, int | None],
) -> None:
    """Each row's time lag, status and consume rate (in place), its window observed; then the state pruned to what
    is watched.

    `record_times` are the record timestamps read for lagging partitions (see `time_lag.time_lag`); call after
    `observe_high_watermarks`. A partition with nothing left to read is observed with lag 0, so the status rules see
    it caught up; its row keeps Kafka's lag.
    """
    no_consumer = {group.group_id for group in snapshot.groups if has_no_consumer(group)}
    windows, histories = state.windows, state.histories
    oldest_committed: dict[TopicPartition, int] = {}
    for row in rows:
        committed, lag = row.committed, row.lag
        if lag is None:  # no committed offset, or no high watermark: nothing to judge
            continue
        tp = (row.topic, row.partition)
        slot = windows.slot((row.group_id, row.topic, row.partition))
        seconds, kind, caught_up = time_lag(committed, row.high_watermark, histories[tp], now, record_times, tp)
        windows.observe(slot, committed, 0 if caught_up else lag, now, window_seconds)
        row.lag_seconds, row.lag_seconds_kind, row.caught_up = seconds, kind, caught_up
        row.status = partition_status(windows, slot, now, window_seconds, row.group_id in no_consumer)
        row.consume_rate = consume_rate(windows, slot)
        if committed < oldest_committed.get(tp, committed + 1):
            oldest_committed[tp] = committed
    _forget(state, snapshot, rows, oldest_committed)


def has_no_consumer(group: GroupSnapshot) -> bool:
    """The group was described and has no member: nothing consumes for it (unless it commits without joining, as
    assign-mode consumers do: the status rules then see its offsets move)."""
    return group.state != "Unknown" and group.members == 0


def _forget(
    state: LagState, snapshot: ClusterSnapshot, rows: list[PartitionLag], oldest_committed: dict[TopicPartition, int]
) -> None:
    """Prune each history to what the groups still need; forget deleted partitions and vanished group partitions."""
    for tp, history in state.histories.items():
        prune_history(history, oldest_committed.get(tp))
    # Every history is of a partition with a high watermark now, and every window was observed this run: nothing to
    # forget, and the sets of tens of thousands of keys are not built (the usual run).
    observed_windows = sum(1 for row in rows if row.lag is not None)
    if len(state.histories) > len(snapshot.high_watermarks) or len(state.windows) > observed_windows:
        state.retain(
            set(snapshot.high_watermarks) | set(snapshot.hw_errors),
            {(r.group_id, r.topic, r.partition) for r in rows if r.committed is not None},
        )


def advance_rates(state: LagState, snapshot: ClusterSnapshot, now: float) -> dict[TopicPartition, float]:
    """Produce rate per partition since the previous run (messages/s); moves each partition's `last_seen` to now.
    Call after `observe_high_watermarks` (a partition's history starts there)."""
    rates: dict[TopicPartition, float] = {}
    for tp, high_watermark in snapshot.high_watermarks.items():
        history = state.histories.get(tp)
        if history is None:
            continue
        produce_rate = rate(history.last_seen, (high_watermark, now))
        if produce_rate is not None:
            rates[tp] = produce_rate
        history.last_seen = (high_watermark, now)
    return rates
