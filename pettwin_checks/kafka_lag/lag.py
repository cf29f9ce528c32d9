"""Pure consumer-lag maths: lag, time lag, Burrow-style status rules, rollups and the cardinality budget.

Nothing here does I/O, so all of it is tested without a broker. The check feeds it a `ClusterSnapshot` (what the
broker said this run) and a `LagState` (what earlier runs saw, kept in the agent's persistent cache).
"""

from __future__ import annotations

import json
from array import array
from base64 import b64decode, b64encode
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from math import isnan, nan
from operator import gt, le

TopicPartition = tuple[str, int]

# High-watermark points kept per partition for the time-lag interpolation (thinned, never dropped, past this).
MAX_HISTORY_POINTS = 120
# Observations a partition needs in the window before WARN or STALL may be called (Burrow needs a full window too).
MIN_OBSERVATIONS = 3
# Observations kept per group partition whatever the run interval (Burrow keeps 10 too), so state stays bounded.
MAX_OBSERVATIONS = 10


class LagStatus(IntEnum):
    """Partition and group lag status; the value is the severity (the group takes its worst partition's)."""

    OK = 0
    WARN = 1
    REWIND = 2
    STALL = 3
    STOP = 4
    ERR = 5


@dataclass
class GroupSnapshot:
    group_id: str
    state: str = "Unknown"
    members: int = 0
    assigned: set[TopicPartition] = field(default_factory=set)
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    # Partitions the group has to be reported on (committed, assigned, or configured), resolved by the check.
    partitions: list[TopicPartition] = field(default_factory=list)
    error: str | None = None


@dataclass
class ClusterSnapshot:
    cluster_id: str | None
    high_watermarks: dict[TopicPartition, int]
    hw_errors: dict[TopicPartition, str]
    groups: list[GroupSnapshot]


@dataclass(slots=True)
class PartitionLag:
    group_id: str
    topic: str
    partition: int
    committed: int | None  # None: the group has no committed offset for this partition
    high_watermark: int | None  # None: the broker did not answer for this partition
    lag: int | None  # high_watermark - committed, clamped at 0; None when either side is unknown
    lag_seconds: float | None  # None when the history cannot tell yet (first run of a lagging partition)
    status: LagStatus
    reason: str = ""  # why the high watermark is unknown (ERR); other statuses' reasons come from the window


def partition_lag(committed: int, high_watermark: int) -> tuple[int, bool]:
    """Lag in messages, and whether a negative difference had to be clamped to 0.

    The committed offset is fetched before the high watermark, so a negative difference means a stale or
    truncated log (e.g. an unclean leader election), never a consumer ahead of the producers.
    """
    lag = high_watermark - committed
    return (lag, False) if lag >= 0 else (0, True)


# --- time lag from a bounded high-watermark history --------------------------------------------------------------


@dataclass(slots=True)
class PartitionHistory:
    """When each high-watermark level of one partition was first seen, oldest first.

    Two flat arrays rather than a list of pairs: thousands of partitions times `MAX_HISTORY_POINTS` stay 16 bytes a
    point, and `bisect` finds a committed offset's neighbours without a scan.
    """

    offsets: array = field(default_factory=lambda: array("q"))
    times: array = field(default_factory=lambda: array("d"))
    last_seen: tuple[float, float] | None = None  # (high watermark, time) of the previous run, for the produce rate


def record_high_watermark(history: PartitionHistory, offset: int, now: float) -> None:
    """Append (offset, time) when the high watermark moved; points mark when each level was first seen."""
    if not history.offsets or offset != history.offsets[-1]:
        history.offsets.append(offset)
        history.times.append(now)


def prune_history(
    history: PartitionHistory, oldest_committed: int | None, max_points: int = MAX_HISTORY_POINTS
) -> None:
    """Drop points no consumer can need any more, then thin the oldest half past `max_points`.

    Kept: the newest point at or below the oldest committed offset (the interpolation's left edge) and all after.
    """
    offsets, times = history.offsets, history.times
    if oldest_committed is not None:
        keep_from = max(0, bisect_right(offsets, oldest_committed) - 1)
        if keep_from:
            del offsets[:keep_from]
            del times[:keep_from]
    while len(offsets) > max_points:
        # Thin every second point of the older half; the first and the recent half stay exact.
        half = len(offsets) // 2
        del offsets[1:half:2]
        del times[1:half:2]


def time_lag(committed: int, high_watermark: int, history: PartitionHistory, now: float) -> float | None:
    """Seconds since the producers were where this consumer is now; None when the history cannot tell yet.

    Interpolates the moment the high watermark passed `committed` between the two history points around it. For
    an offset older than the whole history the answer is the lower bound `now - oldest point`, once there is one.
    """
    if committed >= high_watermark:
        return 0.0
    offsets, times = history.offsets, history.times
    if not offsets:
        return None
    right = bisect_right(offsets, committed)
    if right == 0:
        return now - times[0] if len(offsets) > 1 else None
    if right == len(offsets):
        return None
    left = right - 1
    produced_at = times[left] + (committed - offsets[left]) / (offsets[right] - offsets[left]) * (
        times[right] - times[left]
    )
    return max(0.0, now - produced_at)


# --- status over a sliding window of observations ----------------------------------------------------------------


WINDOW_SLOTS = 3 * MAX_OBSERVATIONS  # floats of one window: (committed, lag, time) per observation
_EMPTY_WINDOW = array("d", bytes(8 * WINDOW_SLOTS))
GroupPartition = tuple[str, str, int]  # (group, topic, partition)


class CommitWindows:
    """Each group partition's observations of its committed offset, and since when it has not moved, in one table.

    A window is a slot: WINDOW_SLOTS floats of `values` (committed, lag, time, committed, lag, time, ...), oldest
    first in the first `counts[slot]` triples, and `unchanged_since[slot]` (NaN before the first observation). An
    object and an array per window were 40,000 objects at 2,000 groups: spread over Python's memory pools, and walked
    by every full garbage collection (several a run). A window has its full size from the start, so observing never
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


def group_status(rows: list[PartitionLag], state: LagState, now: float) -> tuple[LagStatus, str]:
    """The worst partition status, with a message naming the partitions that carry it (at most five, with why)."""
    if not rows:
        return LagStatus.OK, ""
    worst = max(row.status for row in rows)
    if worst is LagStatus.OK:
        return worst, ""
    culprits = [row for row in rows if row.status is worst]
    shown = ", ".join(f"{r.topic}[{r.partition}]: {_reason(r, state, now)}" for r in culprits[:5])
    more = f" (+{len(culprits) - 5} more)" if len(culprits) > 5 else ""
    return worst, f"{worst.name}: {shown}{more}"


def _reason(row: PartitionLag, state: LagState, now: float) -> str:
    if row.status is LagStatus.ERR:
        return row.reason
    return status_reason(state.windows, state.windows.slots[(row.group_id, row.topic, row.partition)], row.status, now)


# --- rollups ------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Rollup:
    lag: int = 0
    max_lag: int = 0
    partitions_behind: int = 0
    uncommitted: int = 0
    status: LagStatus = LagStatus.OK
    # The worst time lag; None while any lagging partition's is unknown (a max over fewer would understate).
    max_lag_seconds: float | None = None


def rollup(rows: Iterable[PartitionLag]) -> Rollup:
    """Totals over rows in one pass (it runs for every group and topic each run, so no call per row)."""
    lag = max_lag = behind = uncommitted = 0
    status = LagStatus.OK
    worst_seconds: float | None = None
    unknown_seconds = False
    for row in rows:
        if row.committed is None:
            uncommitted += 1
        row_lag = row.lag
        if row_lag is not None:
            lag += row_lag
            max_lag = max(max_lag, row_lag)
            if row_lag > 0:
                behind += 1
            if row.lag_seconds is None:
                unknown_seconds = True
            elif worst_seconds is None or row.lag_seconds > worst_seconds:
                worst_seconds = row.lag_seconds
        status = max(status, row.status)
    return Rollup(lag, max_lag, behind, uncommitted, status, None if unknown_seconds else worst_seconds)


def rate(previous: tuple[float, float] | None, current: tuple[float, float]) -> float | None:
    """Per-second rate between two (value, time) samples; None without a usable previous sample or on a reset."""
    if previous is None or current[1] <= previous[1] or current[0] < previous[0]:
        return None
    return (current[0] - previous[0]) / (current[1] - previous[1])


# --- cardinality budget -------------------------------------------------------------------------------------------

GRANULARITIES = ("group", "topic", "partition")


@dataclass
class ContextPlan:
    """Which groups, group+topics and partitions get their own series; the rest is folded into a coarser rollup."""

    group_detail: set[str]  # group ids with their own group series (the others go into the folded-groups rollup)
    topic_detail: set[str]  # group ids with per-topic series
    partition_detail: set[tuple[str, str]]  # (group, topic) with per-partition series
    folded: int  # contexts the budget folded into a coarser level


def plan_contexts(
    group_ids: list[str],
    partitions_by_group_topic: dict[tuple[str, str], int],
    granularity: str,
    max_contexts: int,
    group_cost: int,
    topic_cost: int,
    partition_cost: int,
) -> ContextPlan:
    """Spend the budget coarse to fine, in name order so the same groups and topics keep detail run to run.

    Costs are metric contexts per group, per group+topic and per partition. What does not fit is counted in
    `folded`: a group's own series fold into the folded-groups rollup, its topics and partitions into its rollups.
    """
    topics: dict[str, list[str]] = {group: [] for group in sorted(group_ids)}
    for group, topic in sorted(partitions_by_group_topic):
        topics.setdefault(group, []).append(topic)
    level = GRANULARITIES.index(granularity)

    def cost_below(group: str) -> tuple[int, list[int]]:
        """Contexts of the group's topics (at topic level and finer) and of each topic's partitions."""
        topic_cost_total = topic_cost * len(topics[group]) if level >= 1 else 0
        partition_costs = [
            partition_cost * partitions_by_group_topic[(group, t)] if level >= 2 else 0 for t in topics[group]
        ]
        return topic_cost_total, partition_costs

    used, folded = 0, 0
    group_detail: set[str] = set()
    for group in topics:
        if used + group_cost <= max_contexts:
            used += group_cost
            group_detail.add(group)
        else:
            topic_total, partition_costs = cost_below(group)
            folded += group_cost + topic_total + sum(partition_costs)
    topic_detail: set[str] = set()
    for group in sorted(group_detail):
        topic_total, partition_costs = cost_below(group)
        if level >= 1 and used + topic_total <= max_contexts:
            used += topic_total
            topic_detail.add(group)
        else:
            folded += topic_total + sum(partition_costs)
    partition_detail: set[tuple[str, str]] = set()
    for group in sorted(topic_detail):
        for topic, cost in zip(topics[group], cost_below(group)[1]):
            if level >= 2 and used + cost <= max_contexts:
                used += cost
                partition_detail.add((group, topic))
            else:
                folded += cost
    return ContextPlan(group_detail, topic_detail, partition_detail, folded)


# --- state kept across runs ---------------------------------------------------------------------------------------

# Bumped when the cached layout changes; a state of another version is dropped (the check starts afresh).
STATE_VERSION = 2
# Bytes of numbers per persisted shard: each shard's text stays well under glibc's default mmap threshold (128 KiB).
SHARD_BYTES = 64 * 1024


def _pack(arrays) -> str:
    return b64encode(b"".join(a.tobytes() for a in arrays)).decode("ascii")


def _unpack(typecode: str, text: str) -> array:
    values = array(typecode)
    values.frombytes(b64decode(text, validate=True))
    return values


def _shard_json(
    histories: list[tuple[TopicPartition, PartitionHistory]],
    table: CommitWindows,
    windows: list[tuple[GroupPartition, int]],
) -> str:
    """Names and counts as JSON, the numbers as the arrays' raw bytes in base64.

    Encoding each float as decimal text cost more than the rest of a run at a few thousand groups; raw bytes are a
    copy. The cache is the agent host's own, so the native byte order is the one that reads it back.
    """
    return json.dumps(
        {
            "version": STATE_VERSION,
            "h": [[t, p, len(h.offsets), h.last_seen] for (t, p), h in histories],
            "ho": _pack(h.offsets for _, h in histories),
            "ht": _pack(h.times for _, h in histories),
            "w": [[g, t, p, 3 * table.counts[slot], table.since(slot)] for (g, t, p), slot in windows],
            "wv": _pack(table.observed(slot) for _, slot in windows),
        },
        separators=(",", ":"),
    )


class LagState:
    """High-watermark history per partition and commit windows per group partition, serialisable as JSON."""

    def __init__(self) -> None:
        self.histories: dict[TopicPartition, PartitionHistory] = {}
        self.windows = CommitWindows()

    def to_shards(self, shard_bytes: int = SHARD_BYTES) -> Iterator[str]:
        """The state as JSON texts of about `shard_bytes` of numbers each, every one readable alone by `from_json`.

        One text for thousands of groups is tens of MB, allocated whole and copied by base64 and JSON at each write.
        Once glibc has freed a block that big it raises its mmap threshold, and later blocks of that size stay in the
        heap: the process grew by tens of MB over its first hundred runs. Small texts reuse the same memory. They are
        made one at a time, as the caller writes them: all of them at once were the run's peak every minute.
        """
        histories: list = []
        windows: list = []
        size = 0
        made = False
        for item in self.histories.items():
            histories.append(item)
            size += 16 * len(item[1].offsets) + 48  # the numbers, and a row of names and counts
            if size >= shard_bytes:
                yield _shard_json(histories, self.windows, windows)
                made = True
                histories, size = [], 0
        for item in self.windows.slots.items():
            windows.append(item)
            size += 24 * self.windows.counts[item[1]] + 64
            if size >= shard_bytes:
                yield _shard_json(histories, self.windows, windows)
                made = True
                histories, windows, size = [], [], 0
        if histories or windows or not made:
            yield _shard_json(histories, self.windows, windows)

    @classmethod
    def from_shards(cls, texts: Iterable[str]) -> LagState:
        """The state from its shards; an unreadable shard loses only its own part (that part starts afresh)."""
        state = cls()
        for text in texts:
            state._read_shard(text)
        return state

    @classmethod
    def from_json(cls, text: str) -> LagState:
        """One shard of the state; anything unreadable starts afresh rather than failing the check."""
        state = cls()
        state._read_shard(text)
        return state

    def _read_shard(self, text: str) -> None:
        """Adds what one shard holds, or nothing when any of it is unreadable."""
        if not text:
            return
        histories: list[tuple[TopicPartition, PartitionHistory]] = []
        windows: list[tuple[GroupPartition, array, float | None]] = []
        try:
            data = json.loads(text)
            if data["version"] != STATE_VERSION:
                return
            offsets, times, values = _unpack("q", data["ho"]), _unpack("d", data["ht"]), _unpack("d", data["wv"])
            if not len(offsets) == len(times) == sum(row[2] for row in data["h"]):
                return
            if len(values) != sum(row[3] for row in data["w"]):
                return
            if any(row[3] % 3 or row[3] > WINDOW_SLOTS for row in data["w"]):
                return
            start = 0
            for topic, partition, count, last_seen in data["h"]:
                history = PartitionHistory(
                    offsets[start : start + count],
                    times[start : start + count],
                    tuple(last_seen) if last_seen else None,
                )
                histories.append(((topic, partition), history))
                start += count
            start = 0
            for group, topic, partition, count, since in data["w"]:
                windows.append(
                    ((group, topic, partition), values[start : start + count], None if since is None else float(since))
                )
                start += count
        except (ValueError, KeyError, TypeError):
            return
        self.histories.update(histories)
        for key, observed, since in windows:
            self.windows.restore(key, observed, since)

    def retain(self, partitions: set[TopicPartition], group_partitions: set[tuple[str, str, int]]) -> None:
        """Forget deleted topics and vanished groups so the state grows with what is watched, not with history."""
        for key in self.histories.keys() - partitions:
            del self.histories[key]
        self.windows.forget(self.windows.keys() - group_partitions)


def evaluate(
    snapshot: ClusterSnapshot, state: LagState, now: float, window_seconds: float
) -> tuple[list[PartitionLag], int]:
    """Every (group, partition) row with lag, time lag and status; updates `state`. Returns rows and clamp count."""
    for tp, high_watermark in snapshot.high_watermarks.items():
        history = state.histories.get(tp)
        if history is None:  # not setdefault: that would build a throwaway history for every known partition
            history = state.histories[tp] = PartitionHistory()
        record_high_watermark(history, high_watermark, now)

    rows: list[PartitionLag] = []
    windows = state.windows
    clamped = observed_windows = 0
    oldest_committed: dict[TopicPartition, int] = {}
    for group in snapshot.groups:
        for tp in group.partitions:
            topic, partition = tp
            committed = group.committed.get(tp)
            high_watermark = snapshot.high_watermarks.get(tp)
            if high_watermark is None:
                reason = snapshot.hw_errors.get(tp, "no high watermark")
                rows.append(
                    PartitionLag(group.group_id, topic, partition, committed, None, None, None, LagStatus.ERR, reason)
                )
                continue
            if committed is None:
                rows.append(
                    PartitionLag(group.group_id, topic, partition, None, high_watermark, None, None, LagStatus.OK)
                )
                continue
            lag, was_clamped = partition_lag(committed, high_watermark)
            clamped += was_clamped
            oldest_committed[tp] = min(committed, oldest_committed.get(tp, committed))
            slot = windows.slot((group.group_id, topic, partition))
            windows.observe(slot, committed, lag, now, window_seconds)
            observed_windows += 1
            status = partition_status(windows, slot, now, window_seconds)
            seconds = time_lag(committed, high_watermark, state.histories[tp], now)
            rows.append(PartitionLag(group.group_id, topic, partition, committed, high_watermark, lag, seconds, status))

    for tp, history in state.histories.items():
        prune_history(history, oldest_committed.get(tp))
    # Every history is of a partition with a high watermark now, and every window was observed this run: nothing to
    # forget, and the sets of tens of thousands of keys are not built (the usual run).
    if len(state.histories) > len(snapshot.high_watermarks) or len(state.windows) > observed_windows:
        state.retain(
            set(snapshot.high_watermarks) | set(snapshot.hw_errors),
            {(r.group_id, r.topic, r.partition) for r in rows if r.committed is not None},
        )
    return rows, clamped


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


def consume_rate(windows: CommitWindows, slot: int) -> float | None:
    """Committed offsets per second between the two latest observations."""
    if windows.counts[slot] < 2:
        return None
    v, end = windows.values, WINDOW_SLOTS * slot + 3 * windows.counts[slot]
    return rate((v[end - 6], v[end - 4]), (v[end - 3], v[end - 1]))
