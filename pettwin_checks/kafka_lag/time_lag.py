"""Time lag: how old the record a group reads next is, from its timestamp, else from the high-watermark history.

The best answer is exact: the timestamp of the first record a read_committed consumer gets from the committed offset
(the client reads it with Fetch; `RecordTimes` keeps what the reads told, as the record after an offset and its
timestamp never change). Where it cannot be read, the history of when each high-watermark level was first seen gives
an interpolation, or a lower bound; where the history says nothing either, the time lag is unknown (None), never 0.
`TimeLagKind` says which one a value is.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .lag import ClusterSnapshot, PartitionLag, TimeLagKind, TopicPartition
from .record_batch import Span

# High-watermark points kept per partition for the time-lag interpolation (thinned, never dropped, past this).
MAX_HISTORY_POINTS = 120
# Spans of known record times kept per partition (the ones nearest above its lowest committed offset): a committed
# offset that moves within them needs no read. 16 spans are 384 bytes a partition.
MAX_SPANS = 16

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


def estimated_time_lag(
    committed: int, history: PartitionHistory, now: float
) -> tuple[float, TimeLagKind] | tuple[None, None]:
    """Seconds since the record at `committed` was produced, from the history alone, for a lagging partition whose
    high watermark this run is the history's last point; (None, None) when the history cannot tell.

    The record at `committed` appeared after the high watermark was seen at or below it and before it was seen past
    it: the moment is interpolated between those two points. A record older than the whole history was produced
    before its oldest point, so `now - oldest point` is a lower bound; on the first sight of a partition that bound
    is 0, which says nothing, so the time lag is unknown.
    """
    offsets, times = history.offsets, history.times
    if not offsets:
        return None, None
    right = bisect_right(offsets, committed)
    if right == 0:
        bound = now - times[0]
        return (bound, TimeLagKind.LOWER_BOUND) if bound > 0 else (None, None)
    if right == len(offsets):  # the history never saw the producers pass `committed`
        return None, None
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
) -> tuple[float | None, TimeLagKind | None, bool]:
    """(seconds, kind, caught up). Exact from the record's timestamp when it was read, else estimated; (None, None)
    when neither tells.

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


def unknown_time_lags(rows: Iterable[PartitionLag]) -> list[PartitionLag]:
    """The rows of lagging partitions whose time lag is not known this run."""
    return [row for row in rows if row.lag and row.lag_seconds is None and not row.caught_up]


class RecordTimes:
    """What the reads told about record times, kept while a group still sits below it: per partition up to
    MAX_SPANS spans of offsets whose next readable record's timestamp is known (flat arrays of first, last, time), and
    where nothing is readable up to the high watermark (only markers or aborted data).

    Bounded by what is watched: each run keeps only the partitions asked about that run, and of each only the spans
    at or past its lowest committed offset, the lowest MAX_SPANS of them. "Nothing to read" holds only while the high
    watermark stays where it was seen: a new record, or a transaction's marker, moves it.
    """

    def __init__(self, max_spans: int = MAX_SPANS) -> None:
        self._max_spans = max_spans
        self._spans: dict[TopicPartition, array] = {}
        self._nothing: dict[TopicPartition, tuple[int, int]] = {}  # (nothing readable from, at this high watermark)

    def __len__(self) -> int:
        return sum(len(spans) // 3 for spans in self._spans.values()) + len(self._nothing)

    def lookup(self, key: RecordKey, high_watermark: int | None) -> tuple[bool, int | None]:
        """(known, timestamp in ms or None for nothing to read) of the next record from the key's offset."""
        tp, offset = key
        spans = self._spans.get(tp)
        if spans is not None:
            for i in range(0, len(spans), 3):
                if spans[i] <= offset <= spans[i + 1]:
                    return True, spans[i + 2]
        nothing = self._nothing.get(tp)
        if nothing is not None and nothing[1] == high_watermark and offset >= nothing[0]:
            return True, None
        return False, None

    def missing(self, wanted: Iterable[RecordKey], high_watermarks: Mapping[TopicPartition, int]) -> list[RecordKey]:
        return [key for key in wanted if not self.lookup(key, high_watermarks.get(key[0]))[0]]

    def update(
        self,
        wanted: Iterable[RecordKey],
        read: Mapping[TopicPartition, PartitionRead],
        high_watermarks: Mapping[TopicPartition, int],
    ) -> dict[RecordKey, int | None]:
        """Adds what was just `read`, forgets what no group can need any more; this run's answers for `wanted`."""
        lowest: dict[TopicPartition, int] = {}
        for tp, offset in wanted:
            if offset < lowest.get(tp, offset + 1):
                lowest[tp] = offset
        spans_kept: dict[TopicPartition, array] = {}
        nothing_kept: dict[TopicPartition, tuple[int, int]] = {}
        for tp, low in lowest.items():
            fresh = read.get(tp)
            spans = _merged(self._spans.get(tp), fresh.spans if fresh is not None else [], low, self._max_spans)
            if spans:
                spans_kept[tp] = spans
            high_watermark = high_watermarks.get(tp, -1)
            if fresh is not None and fresh.nothing_from is not None:
                nothing_kept[tp] = (fresh.nothing_from, high_watermark)
            elif tp in self._nothing and self._nothing[tp][1] == high_watermark:
                nothing_kept[tp] = self._nothing[tp]
        self._spans, self._nothing = spans_kept, nothing_kept
        answers: dict[RecordKey, int | None] = {}
        for key in wanted:
            known, timestamp = self.lookup(key, high_watermarks.get(key[0]))
            if known:
                answers[key] = timestamp
        return answers


@dataclass(slots=True)
class PartitionRead:
    """What reading one partition's records told: spans of offsets with the time of their next readable record
    (contiguous from the offset read), and the offset from which nothing is readable up to the high watermark."""

    spans: list[Span] = field(default_factory=list)
    nothing_from: int | None = None


def _merged(kept: array | None, fresh: list[Span], low: int, most: int) -> array | None:
    """Known spans and fresh ones as one flat array (first, last, time...), those ending below `low` dropped, at most
    `most` kept (the lowest). Spans come from the same records, so where they overlap they agree."""
    if not fresh and kept is not None and kept[1] >= low:
        return kept  # nothing read and nothing below `low`: already merged (the usual partition of a quiet run)
    spans = [(kept[i], kept[i + 1], kept[i + 2]) for i in range(0, len(kept), 3)] if kept is not None else []
    spans += fresh
    spans.sort()
    merged: list[Span] = []
    for first, last, timestamp in spans:
        if last < low:
            continue
        if merged and first <= merged[-1][1] + 1:
            previous = merged[-1]
            if last <= previous[1]:
                continue
            if timestamp == previous[2]:
                merged[-1] = (previous[0], last, timestamp)
                continue
            first = previous[1] + 1
        merged.append((first, last, timestamp))
        if len(merged) == most:
            break
    if not merged:
        return None
    return array("q", [number for span in merged for number in span])
