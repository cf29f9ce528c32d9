"""Time lag: how old the record a group reads next is, from its timestamp, else from the high-watermark history.

The best answer is exact: the timestamp of the first record at or after the committed offset (the client reads it
once per partition and committed offset; `RecordTimes` keeps it, as the timestamp at an offset never changes).
Where it cannot be read, the history of when each high-watermark level was first seen gives an interpolation, or
at worst a lower bound. `TimeLagKind` says which one a value is.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .lag import ClusterSnapshot, TimeLagKind, TopicPartition

# High-watermark points kept per partition for the time-lag interpolation (thinned, never dropped, past this).
MAX_HISTORY_POINTS = 120

RecordKey = tuple[TopicPartition, int]  # (partition, committed offset)


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


def estimated_time_lag(committed: int, history: PartitionHistory, now: float) -> tuple[float, TimeLagKind]:
    """Seconds since the record at `committed` was produced, from the history alone, for a lagging partition whose
    high watermark this run is the history's last point.

    The record at `committed` appeared after the high watermark was seen at or below it and before it was seen past
    it: the moment is interpolated between those two points. A record older than the whole history was produced
    before its oldest point, so `now - oldest point` is a lower bound (0 on the first sight of a partition).
    """
    offsets, times = history.offsets, history.times
    if not offsets:
        return 0.0, TimeLagKind.LOWER_BOUND
    right = bisect_right(offsets, committed)
    if right == 0:
        return max(0.0, now - times[0]), TimeLagKind.LOWER_BOUND
    if right == len(offsets):  # the history never saw the producers pass `committed`: nothing better than 0
        return 0.0, TimeLagKind.LOWER_BOUND
    left = right - 1
    produced_at = times[left] + (committed - offsets[left]) / (offsets[right] - offsets[left]) * (
        times[right] - times[left]
    )
    return max(0.0, now - produced_at), TimeLagKind.INTERPOLATED


def time_lag(
    committed: int,
    high_watermark: int,
    history: PartitionHistory,
    now: float,
    record_times: Mapping[RecordKey, int | None],
    tp: TopicPartition,
) -> tuple[float, TimeLagKind, bool]:
    """(seconds, kind, caught up). Exact from the record's timestamp when it was read, else estimated.

    `record_times[(tp, committed)]` is the timestamp (ms since the epoch) of the first record a read_committed
    consumer gets from `committed`, or None when there is none before the end (only transaction markers or aborted
    data left: caught up). A key missing means it could not be read. A timestamp ahead of this host's clock (a
    producer's clock, CreateTime) counts as 0.
    """
    if committed >= high_watermark:
        return 0.0, TimeLagKind.EXACT, False
    key = (tp, committed)
    if key in record_times:
        produced_ms = record_times[key]
        if produced_ms is None:
            return 0.0, TimeLagKind.EXACT, True
        return max(0.0, now - produced_ms / 1000), TimeLagKind.EXACT, False
    seconds, kind = estimated_time_lag(committed, history, now)
    return seconds, kind, False


def lagging_offsets(snapshot: ClusterSnapshot) -> list[RecordKey]:
    """Every (partition, committed offset) behind its high watermark, each once: the records whose times to read."""
    wanted: set[RecordKey] = set()
    high_watermarks = snapshot.high_watermarks
    for group in snapshot.groups:
        committed = group.committed
        for tp in group.partitions:
            offset = committed.get(tp)
            high_watermark = high_watermarks.get(tp)
            if offset is not None and high_watermark is not None and offset < high_watermark:
                wanted.add((tp, offset))
    return sorted(wanted)


class RecordTimes:
    """Record timestamps already read, kept while a group still sits at that offset.

    Bounded by what is watched: each run keeps only the keys asked for that run (the lagging partitions' committed
    offsets), so a consumer that moved on drops its old entry. "Nothing to read" (None) is kept only while the high
    watermark stays where it was seen: a new record, or a transaction's marker, moves it.
    """

    def __init__(self) -> None:
        self._known: dict[RecordKey, int] = {}
        self._nothing_until: dict[RecordKey, int] = {}  # nothing to read from the offset, at this high watermark

    def __len__(self) -> int:
        return len(self._known) + len(self._nothing_until)

    def missing(self, wanted: Iterable[RecordKey], high_watermarks: Mapping[TopicPartition, int]) -> list[RecordKey]:
        return [
            key
            for key in wanted
            if key not in self._known and self._nothing_until.get(key, -1) != high_watermarks.get(key[0])
        ]

    def update(
        self,
        wanted: Iterable[RecordKey],
        read: Mapping[RecordKey, int | None],
        high_watermarks: Mapping[TopicPartition, int],
    ) -> dict[RecordKey, int | None]:
        """This run's answers for `wanted`: what was known, plus what was just `read`; forgets the rest."""
        known: dict[RecordKey, int] = {}
        nothing_until: dict[RecordKey, int] = {}
        answers: dict[RecordKey, int | None] = {}
        for key in wanted:
            high_watermark = high_watermarks.get(key[0], -1)
            if key in self._known:
                answers[key] = known[key] = self._known[key]
            elif key in read:
                answers[key] = read[key]
                if read[key] is not None:
                    known[key] = read[key]
                else:
                    nothing_until[key] = high_watermark
            elif self._nothing_until.get(key) == high_watermark:
                answers[key] = None
                nothing_until[key] = high_watermark
        self._known, self._nothing_until = known, nothing_until
        return answers
