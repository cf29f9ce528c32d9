"""One run's evaluation: every group partition's lag, time lag and status from the snapshot and the kept state."""

from __future__ import annotations

from collections.abc import Mapping

from .lag import ClusterSnapshot, GroupSnapshot, LagStatus, PartitionLag, TopicPartition, partition_lag, rate
from .state import LagState
from .status import partition_status
from .time_lag import PartitionHistory, RecordKey, prune_history, record_high_watermark, time_lag


def evaluate(
    snapshot: ClusterSnapshot,
    state: LagState,
    now: float,
    window_seconds: float,
    record_times: Mapping[RecordKey, int | None] | None = None,
) -> tuple[list[PartitionLag], int]:
    """Every (group, partition) row with lag, time lag and status; updates `state`. Returns rows and clamp count.

    `record_times` are the record timestamps read for lagging partitions (see `time_lag.time_lag`). A partition with
    nothing left to read is observed with lag 0, so the status rules see it caught up; its row keeps Kafka's lag.
    """
    record_times = {} if record_times is None else record_times
    _record_high_watermarks(snapshot, state, now)
    rows: list[PartitionLag] = []
    clamped = 0
    oldest_committed: dict[TopicPartition, int] = {}
    for group in snapshot.groups:
        no_consumer = has_no_consumer(group)
        for tp in group.partitions:
            row, was_clamped = _partition_row(
                group, tp, snapshot, state, now, window_seconds, record_times, no_consumer
            )
            rows.append(row)
            clamped += was_clamped
            if row.committed is not None and row.lag is not None:
                oldest_committed[tp] = min(row.committed, oldest_committed.get(tp, row.committed))
    _forget(state, snapshot, rows, oldest_committed)
    return rows, clamped


def has_no_consumer(group: GroupSnapshot) -> bool:
    """The group was described and has no member: nothing consumes for it (unless it commits without joining, as
    assign-mode consumers do: the status rules then see its offsets move)."""
    return group.state != "Unknown" and group.members == 0


def _record_high_watermarks(snapshot: ClusterSnapshot, state: LagState, now: float) -> None:
    for tp, high_watermark in snapshot.high_watermarks.items():
        history = state.histories.get(tp)
        if history is None:  # not setdefault: that would build a throwaway history for every known partition
            history = state.histories[tp] = PartitionHistory()
        record_high_watermark(history, high_watermark, now)


def _partition_row(
    group: GroupSnapshot,
    tp: TopicPartition,
    snapshot: ClusterSnapshot,
    state: LagState,
    now: float,
    window_seconds: float,
    record_times: Mapping[RecordKey, int | None],
    no_consumer: bool,
) -> tuple[PartitionLag, bool]:
    """One group partition's row, and whether its lag was clamped; observes its window when it can be judged."""
    topic, partition = tp
    committed = group.committed.get(tp)
    high_watermark = snapshot.high_watermarks.get(tp)
    if high_watermark is None:
        reason = snapshot.hw_errors.get(tp, "no high watermark")
        return PartitionLag(group.group_id, topic, partition, committed, None, None, None, LagStatus.ERR, reason), False
    if committed is None:
        return PartitionLag(group.group_id, topic, partition, None, high_watermark, None, None, LagStatus.OK), False
    lag, was_clamped = partition_lag(committed, high_watermark)
    windows = state.windows
    slot = windows.slot((group.group_id, topic, partition))
    seconds, kind, caught_up = time_lag(committed, high_watermark, state.histories[tp], now, record_times, tp)
    windows.observe(slot, committed, 0 if caught_up else lag, now, window_seconds)
    status = partition_status(windows, slot, now, window_seconds, no_consumer)
    row = PartitionLag(
        group.group_id,
        topic,
        partition,
        committed,
        high_watermark,
        lag,
        seconds,
        status,
        lag_seconds_kind=kind,
        caught_up=caught_up,
    )
    return row, was_clamped


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
    """Produce rate per partition since the previous run (messages/s); moves each partition's `last_seen` to now."""
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
