"""Pure consumer-lag maths: what a run saw, the lag of each group partition, and the rollups over them.

Nothing in this package's pure modules does I/O, so all of it is tested without a broker. The check feeds
`evaluate.evaluate` a `ClusterSnapshot` (what the broker said this run) and a `LagState` (what earlier runs saw, kept
in the agent's persistent cache); the time lag is in `time_lag`, the status rules in `status`, the cardinality budget
in `contexts`, the persisted state in `state`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum, IntEnum

TopicPartition = tuple[str, int]


class LagStatus(IntEnum):
    """Partition and group lag status; the value is the severity (the group takes its worst partition's)."""

    OK = 0
    WARN = 1
    REWIND = 2
    STALL = 3
    STOP = 4
    ERR = 5


class TimeLagKind(Enum):
    """How a time lag was obtained, most precise first (the value is the `lag_seconds_kind` tag)."""

    EXACT = "exact"  # from the timestamp of the record at the committed offset, or 0 with nothing left to read
    INTERPOLATED = "interpolated"  # between two points of the high-watermark history
    # the record is older than the history: at least this old; or, for a group or topic, the maximum over the
    # partitions whose time lag is known while some are not
    LOWER_BOUND = "lower_bound"

    # Members are singletons, so identity hashes them as Enum's equality compares them, in C: Enum's own __hash__ is
    # a Python call, paid tens of thousands of times a run by the dicts keyed by kind.
    __hash__ = object.__hash__


# A rollup's kind is its least precise partition's: a maximum over lower bounds is itself only a lower bound.
_PRECISION = {TimeLagKind.EXACT: 2, TimeLagKind.INTERPOLATED: 1, TimeLagKind.LOWER_BOUND: 0}


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
    # What still failed after the retries, one line per broker naming it and its partitions or groups (a warning
    # each, and can_connect WARNING): those partitions and groups are ERR this run.
    degraded: list[str] = field(default_factory=list)


@dataclass(slots=True)
class PartitionLag:
    group_id: str
    topic: str
    partition: int
    committed: int | None  # None: the group has no committed offset for this partition
    high_watermark: int | None  # None: the broker did not answer for this partition
    lag: int | None  # high_watermark - committed, clamped at 0; None when either side is unknown
    lag_seconds: float | None  # None when lag is None, or when the time lag is not known (never 0 for unknown)
    status: LagStatus
    reason: str = ""  # why the high watermark is unknown (ERR); other statuses' reasons come from the window
    lag_seconds_kind: TimeLagKind | None = None
    # Every offset from the committed one to the end is a transaction marker or aborted data: nothing to read, so
    # caught up even though `lag` (Kafka's figure, as its own tool says) is above 0.
    caught_up: bool = False
    consume_rate: float | None = None  # committed offsets a second between the two latest observations


def partition_lag(committed: int, high_watermark: int) -> tuple[int, bool]:
    """Lag in messages, and whether a negative difference had to be clamped to 0.

    The committed offset is fetched before the high watermark, so a negative difference means a stale or
    truncated log (e.g. an unclean leader election), never a consumer ahead of the producers.
    """
    lag = high_watermark - committed
    return (lag, False) if lag >= 0 else (0, True)


@dataclass(slots=True)
class Rollup:
    lag: int = 0
    max_lag: int = 0
    partitions_behind: int = 0
    uncommitted: int = 0
    status: LagStatus = LagStatus.OK
    # The worst known time lag; None when no partition's is known. With some partitions' unknown it is a maximum
    # over fewer, so only a lower bound of the true one, and its kind says so.
    max_lag_seconds: float | None = None
    lag_seconds_kind: TimeLagKind | None = None  # the least precise kind among the partitions with a lag


def rollup(rows: Iterable[PartitionLag]) -> Rollup:
    """Totals over rows in one pass (it runs for every group and topic each run, so no call per row)."""
    lag = max_lag = behind = uncommitted = 0
    status = LagStatus.OK
    worst_seconds: float | None = None
    kind: TimeLagKind | None = None
    unknown_seconds = False
    for row in rows:
        if row.committed is None:
            uncommitted += 1
        row_lag = row.lag
        if row_lag is not None:
            lag += row_lag
            max_lag = max(max_lag, row_lag)
            if row_lag > 0 and not row.caught_up:
                behind += 1
            if row.lag_seconds is None:
                unknown_seconds = True
            else:
                if worst_seconds is None or row.lag_seconds > worst_seconds:
                    worst_seconds = row.lag_seconds
                row_kind = row.lag_seconds_kind
                if row_kind is not None and (kind is None or _PRECISION[row_kind] < _PRECISION[kind]):
                    kind = row_kind
        status = max(status, row.status)
    if unknown_seconds and worst_seconds:
        kind = TimeLagKind.LOWER_BOUND
    elif unknown_seconds:  # a bound of 0 over the caught-up partitions says nothing about the lagging ones
        worst_seconds = kind = None
    return Rollup(lag, max_lag, behind, uncommitted, status, worst_seconds, kind)


def rate(previous: tuple[float, float] | None, current: tuple[float, float]) -> float | None:
    """Per-second rate between two (value, time) samples; None without a usable previous sample or on a reset."""
    if previous is None or current[1] <= previous[1] or current[0] < previous[0]:
        return None
    return (current[0] - previous[0]) / (current[1] - previous[1])
