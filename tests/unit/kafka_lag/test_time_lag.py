"""The exact time lag's pure parts: which records to read, the cache of what was read, kinds in the rollups, and a
transactional partition with nothing left to read counting as caught up."""

import pytest

from pettwin_checks.kafka_lag.contexts import intake_collisions, intake_tag_value
from pettwin_checks.kafka_lag.lag import (
    ClusterSnapshot,
    GroupSnapshot,
    LagStatus,
    PartitionLag,
    TimeLagKind,
    rollup,
)
from pettwin_checks.kafka_lag.state import LagState
from pettwin_checks.kafka_lag.time_lag import PartitionRead, RecordTimes, lagging_offsets

from .runs import evaluate

pytestmark = pytest.mark.unit

T0, T1 = ("t", 0), ("t", 1)


def snapshot(high_watermarks, **committed_by_group) -> ClusterSnapshot:
    groups = [
        GroupSnapshot(group, "Stable", 1, set(committed), dict(committed), sorted(high_watermarks))
        for group, committed in committed_by_group.items()
    ]
    return ClusterSnapshot("c", dict(high_watermarks), {}, groups)


def test_only_lagging_partitions_are_read_each_offset_once():
    snap = snapshot({T0: 100, T1: 50}, a={T0: 40, T1: 50}, b={T0: 40}, c={T0: 70})
    snap.groups.append(GroupSnapshot("d", partitions=[T0]))  # nothing committed: nothing to read
    assert lagging_offsets(snap) == [(T0, 40), (T0, 70)]


def test_record_times_are_read_once_and_kept_while_a_group_sits_at_or_below_them():
    cache = RecordTimes()
    high = {T0: 100, T1: 6}
    assert cache.missing([(T0, 40), (T1, 5)], high) == [(T0, 40), (T1, 5)]
    read = {T0: PartitionRead([(40, 41, 1_000), (42, 44, 1_200)]), T1: PartitionRead([], nothing_from=5)}
    answers = cache.update([(T0, 40), (T1, 5)], read, high)
    assert answers == {(T0, 40): 1_000, (T1, 5): None}
    assert cache.missing([(T0, 40), (T1, 5)], high) == []
    # the group moved within what was read: known without a read
    assert cache.missing([(T0, 43)], high) == []
    assert cache.update([(T0, 43)], {}, high) == {(T0, 43): 1_200}
    # past it: asked; and what lies below the lowest committed offset is forgotten
    assert cache.missing([(T0, 45)], high) == [(T0, 45)]
    assert cache.update([(T0, 45)], {T0: PartitionRead([(45, 45, 1_300)])}, high) == {(T0, 45): 1_300}
    assert len(cache) == 1 and cache.missing([(T0, 43)], high) == [(T0, 43)]
    # a partition no group lags on any more is forgotten
    cache.update([], {}, high)
    assert len(cache) == 0


def test_known_spans_are_bounded_per_partition_and_merged():
    cache = RecordTimes(max_spans=3)
    spans = [(o, o, 1_000 + o) for o in range(10, 20)]
    cache.update([(T0, 10)], {T0: PartitionRead(spans)}, {T0: 100})
    assert len(cache) == 3 and cache.missing([(T0, 12), (T0, 13)], {T0: 100}) == [(T0, 13)]
    # a later read overlapping what is kept: one consistent set of spans
    cache.update([(T0, 11)], {T0: PartitionRead([(11, 13, 1_013), (14, 14, 1_014)])}, {T0: 100})
    assert cache.update([(T0, 11), (T0, 13)], {}, {T0: 100}) == {(T0, 11): 1_011, (T0, 13): 1_013}
    assert len(cache) == 3


def test_nothing_to_read_holds_until_the_high_watermark_moves():
    """Only markers or aborted data after the offset: true until something is appended, which moves the high
    watermark (a record, or a transaction's marker)."""
    cache = RecordTimes()
    cache.update([(T1, 5)], {T1: PartitionRead(nothing_from=5)}, {T1: 6})
    assert cache.missing([(T1, 5)], {T1: 6}) == []
    assert cache.update([(T1, 5)], {}, {T1: 6}) == {(T1, 5): None}
    assert cache.missing([(T1, 5)], {T1: 7}) == [(T1, 5)]
    assert cache.update([(T1, 5)], {}, {T1: 7}) == {}  # not read again yet: unknown, not caught up


def test_a_quiet_topic_gets_a_time_lag_from_its_record_else_a_lower_bound():
    """The high watermark never moves: the history has one point, yet every run has a time lag."""
    state = LagState()
    snap = snapshot({T0: 100}, g={T0: 40})
    [row], _ = evaluate(snap, state, 1000.0, 600)
    assert (row.lag_seconds, row.lag_seconds_kind) == (None, None)  # first sight, unread: unknown, not 0
    [row], _ = evaluate(snap, state, 1010.0, 600)
    assert (row.lag_seconds, row.lag_seconds_kind) == (10.0, TimeLagKind.LOWER_BOUND)
    [row], _ = evaluate(snap, state, 1020.0, 600, {(T0, 40): 900_000})
    assert (row.lag_seconds, row.lag_seconds_kind) == (120.0, TimeLagKind.EXACT)
    assert rollup([row]).max_lag_seconds == 120.0


def test_caught_up_on_a_transactional_topic_is_ok_with_kafkas_lag():
    """Committed at the commit marker (lag 1 as Kafka's tool says): nothing to read, so OK and 0 s, never STOP."""
    state = LagState()
    snap = snapshot({T0: 4}, g={T0: 3})
    for now in range(0, 1000, 100):
        [row], _ = evaluate(snap, state, float(now), 300, {(T0, 3): None})
    assert (row.lag, row.lag_seconds, row.lag_seconds_kind, row.caught_up) == (1, 0.0, TimeLagKind.EXACT, True)
    assert row.status is LagStatus.OK
    assert rollup([row]).partitions_behind == 0 and rollup([row]).lag == 1
    # without the read, the same partition is a consumer stopped for 900 s
    stopped = LagState()
    for now in range(0, 1000, 100):
        [row], _ = evaluate(snap, stopped, float(now), 300)
    assert row.status is LagStatus.STOP


def test_a_rollups_kind_is_its_least_precise_partitions():
    def row(partition, seconds, kind):
        return PartitionLag("g", "t", partition, 0, 10, 10, seconds, LagStatus.OK, lag_seconds_kind=kind)

    exact, interpolated = row(0, 30.0, TimeLagKind.EXACT), row(1, 5.0, TimeLagKind.INTERPOLATED)
    bound = row(2, 1.0, TimeLagKind.LOWER_BOUND)
    assert rollup([exact]).lag_seconds_kind is TimeLagKind.EXACT
    total = rollup([exact, interpolated])
    assert (total.max_lag_seconds, total.lag_seconds_kind) == (30.0, TimeLagKind.INTERPOLATED)
    assert rollup([bound, exact, interpolated]).lag_seconds_kind is TimeLagKind.LOWER_BOUND


def test_names_datadogs_intake_would_merge():
    assert intake_tag_value("Grp A,b") == "grp_a_b"
    assert intake_tag_value("x" * 250) == "x" * 200
    names = ["Grp A", "grp_a", "GRP,A", "other", "x" * 200 + "1", "x" * 200 + "2"]
    assert intake_collisions(names) == [("GRP,A", "Grp A", "grp_a"), ("x" * 200 + "1", "x" * 200 + "2")]
    assert intake_collisions(["a", "b"]) == []
