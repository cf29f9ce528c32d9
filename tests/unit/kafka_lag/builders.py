"""Histories and commit windows built from points, for the unit tests of the lag logic."""

from pettwin_checks.kafka_lag.status import (
    CommitWindows,
)
from pettwin_checks.kafka_lag.time_lag import (
    PartitionHistory,
    record_high_watermark,
)


def history_of(*points) -> PartitionHistory:
    history = PartitionHistory()
    for offset, seen in points:
        record_high_watermark(history, offset, seen)
    return history


def observations_of(windows: CommitWindows, slot: int) -> list[tuple[float, float, float]]:
    """(committed, lag, time), oldest first."""
    v = windows.observed(slot)
    return list(zip(v[0::3], v[1::3], v[2::3]))


def window_of(*observations, windows: CommitWindows | None = None, key=("g", "t", 0)) -> tuple[CommitWindows, int]:
    """The table holding the window of `key` (a new table unless given), and its slot, after `observations`."""
    windows = CommitWindows() if windows is None else windows
    slot = windows.slot(key)
    for committed, lag, t in observations:
        windows.observe(slot, committed, lag, t, window=600)
    return windows, slot


def points_of(history: PartitionHistory) -> list[tuple[int, float]]:
    return list(zip(history.offsets, history.times))
