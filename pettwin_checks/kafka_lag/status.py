"""Lag status over a sliding window of each group partition's committed offsets (Burrow's rules), and the rates
read from the same observations."""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from math import isnan, nan
from operator import gt, le

from .lag import LagStatus, PartitionLag, rate

# Observations a partition needs in the window before WARN or STALL may be called (Burrow needs a full window too).
MIN_OBSERVATIONS = 3
# Observations kept per group partition whatever the run interval (Burrow keeps 10 too), so state stays bounded.
MAX_OBSERVATIONS = 10


WINDOW_SLOTS = 3 * MAX_OBSERVATIONS  # floats of one window: (committed, lag, time) per observation
_EMPTY_WINDOW = array("d", bytes(8 * WINDOW_SLOTS))
GroupPartition = tuple[str, str, int]  # (group, topic, partition)


class CommitWindows:
    """Each group partition's observations of its committed offset, and since when it has not moved, in one table.

    A window is a slot: WINDOW_SLOTS floats of `values` (committed, lag, time, committed, lag, time, ...), oldest
    first in the first `counts[slot]` triples, and `unchanged_since[slot]` (NaN before the first observation). An
    object and an array per window would be tens of thousands of objects, spread over Python's memory pools and
    walked by every full garbage collection. A window has its full size from the start, so observing never
    reallocates; the slots of forgotten windows are reused, so the table holds at most what was watched at once.
    """

    def __init__(self) -> None:
        self.slots: dict[GroupPartition, int] = {}
        self.values = array("d")
        self.counts = array("B")
        self.unchanged_since = array("d")
        self._free: list[int] = []

    def __len__(self) -> int:
        return len(self.slots)

    def keys(self):
        return self.slots.keys()

    def slot(self, key: GroupPartition) -> int:
        """The window of `key`, empty when new."""
        slot = self.slots.get(key)
        if slot is None:
            if self._free:
                slot = self._free.pop()
                self.counts[slot] = 0
                self.unchanged_since[slot] = nan
            else:
                slot = len(self.counts)
                self.values.extend(_EMPTY_WINDOW)
                self.counts.append(0)
                self.unchanged_since.append(nan)
            self.slots[key] = slot
        return slot

    def forget(self, keys: Iterable[GroupPartition]) -> None:
        for key in keys:
            self._free.append(self.slots.pop(key))

    def observed(self, slot: int) -> array:
        """The observations held, oldest first, as a new array."""
        start = WINDOW_SLOTS * slot
        return self.values[start : start + 3 * self.counts[slot]]

    def since(self, slot: int) -> float | None:
        """Since when the committed offset has not moved; None before the first observation."""
        since = self.unchanged_since[slot]
        return None if isnan(since) else since

    def restore(self, key: GroupPartition, observed: array, since: float | None) -> None:
        """A window as `observed` and `since` gave it (read back from the cache)."""
        slot = self.slot(key)
        start = WINDOW_SLOTS * slot
        self.values[start : start + len(observed)] = observed
        self.counts[slot] = len(observed) // 3
        self.unchanged_since[slot] = nan if since is None else since

    def observe(self, slot: int, committed: int, lag: int, now: float, window: float) -> None:
        v, held, base = self.values, self.counts[slot], WINDOW_SLOTS * slot
        if not held or v[base + 3 * held - 3] != committed:
            self.unchanged_since[slot] = now
        # With the new observation there are held + 1. Drop the oldest while the next one is itself outside the
        # window (one older than the window is kept, so a full window is always covered), and past the cap.
        drop = 0
        while held - drop >= 2 and v[base + 3 * drop + 5] <= now - window:
            drop += 1
        drop = max(drop, held + 1 - MAX_OBSERVATIONS)
        if drop:
            v[base : base + 3 * (held - drop)] = v[base + 3 * drop : base + 3 * held]
        held -= drop
        end = base + 3 * held
        v[end], v[end + 1], v[end + 2] = committed, lag, now
        self.counts[slot] = held + 1


def partition_status(windows: CommitWindows, slot: int, now: float, window_seconds: float) -> LagStatus:
    """Burrow's rules, evaluated in order on the latest window of observations."""
    held = windows.counts[slot]
    if not held:
        return LagStatus.OK
    start = WINDOW_SLOTS * slot
    end = start + 3 * held
    committed_values = windows.values[start:end:3]
    lags = windows.values[start + 1 : end : 3]
    if any(map(gt, committed_values, committed_values[1:])):
        return LagStatus.REWIND
    if lags[-1] == 0:
        return LagStatus.OK
    if now - windows.unchanged_since[slot] > window_seconds:
        return LagStatus.STOP
    if held < MIN_OBSERVATIONS:
        return LagStatus.OK
    if committed_values[0] == committed_values[-1]:  # never moved backwards, so it never moved at all
        return LagStatus.STALL
    if lags[-1] > lags[0] and all(map(le, lags, lags[1:])):
        return LagStatus.WARN
    return LagStatus.OK


def status_reason(windows: CommitWindows, slot: int, status: LagStatus, now: float) -> str:
    """What in the window gave `status`, for the messages. Made only for the partitions a message names: a text
    for every lagging partition each run was most of what a run allocated beyond the broker's answers."""
    v, start = windows.values, WINDOW_SLOTS * slot
    end = start + 3 * windows.counts[slot]
    if status is LagStatus.REWIND:
        return "committed offset moved backwards"
    if status is LagStatus.STOP:
        return f"no commit for {int(now - windows.unchanged_since[slot])}s with lag {int(v[end - 2])}"
    if status is LagStatus.STALL:
        return f"committed offset stuck at {int(v[end - 3])} with lag {int(v[end - 2])}"
    if status is LagStatus.WARN:
        return f"lag growing from {int(v[start + 1])} to {int(v[end - 2])}"
    return ""


def group_status(rows: list[PartitionLag], windows: CommitWindows, now: float) -> tuple[LagStatus, str]:
    """The worst partition status, with a message naming the partitions that carry it (at most five, with why)."""
    if not rows:
        return LagStatus.OK, ""
    worst = max(row.status for row in rows)
    if worst is LagStatus.OK:
        return worst, ""
    culprits = [row for row in rows if row.status is worst]
    shown = ", ".join(f"{r.topic}[{r.partition}]: {_reason(r, windows, now)}" for r in culprits[:5])
    more = f" (+{len(culprits) - 5} more)" if len(culprits) > 5 else ""
    return worst, f"{worst.name}: {shown}{more}"


def _reason(row: PartitionLag, windows: CommitWindows, now: float) -> str:
    if row.status is LagStatus.ERR:
        return row.reason
    return status_reason(windows, windows.slots[(row.group_id, row.topic, row.partition)], row.status, now)


def consume_rate(windows: CommitWindows, slot: int) -> float | None:
    """Committed offsets per second between the two latest observations."""
    if windows.counts[slot] < 2:
        return None
    v, end = windows.values, WINDOW_SLOTS * slot + 3 * windows.counts[slot]
    return rate((v[end - 6], v[end - 4]), (v[end - 3], v[end - 1]))
