"""The exact time lag's pure parts: which records to read, the cache of what was read, kinds in the rollups, and a
transactional partition with nothing left to read counting as caught up."""

import pytest

from pettwin_checks.kafka_lag.contexts import intake_collisions, intake_tag_value
from pettwin_checks.kafka_lag.evaluate import evaluate
from pettwin_checks.kafka_lag.lag import (
    ClusterSnapshot,
    GroupSnapshot,
    LagStatus,
    PartitionLag,
    TimeLagKind,
    rollup,
)
from pettwin_checks.kafka_lag.state import LagState
from pettwin_checks.kafka_lag.time_lag import RecordTimes, lagging_offsets

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


def test_record_times_are_read_once_and_forgotten_when_no_group_sits_there():
    cache = RecordTimes()
    high = {T0: 100, T1: 6}
    assert cache.missing([(T0, 40), (T1, 5)], high) == [(T0, 40), (T1, 5)]
    answers = cache.update([(T0, 40), (T1, 5)], {(T0, 40): 1_000, (T1, 5): None}, high)
    assert answers == {(T0, 40): 1_000, (T1, 5): None}
    assert cache.missing([(T0, 40), (T1, 5)], high) == []
    # unread this run (a timeout): absent, and asked again next run
    assert cache.update([(T0, 40), (T0, 50)], {}, high) == {(T0, 40): 1_000}
    assert cache.missing([(T0, 50)], high) == [(T0, 50)]
    # the group moved on: the old offset is dropped, the cache holds only what is still wanted
    assert cache.update([(T0, 60)], {(T0, 60): 2_000}, high) == {(T0, 60): 2_000}
    assert len(cache) == 1 and cache.missing([(T0, 40)], high) == [(T0, 40)]


def test_nothing_to_read_holds_until_the_high_watermark_moves():
    """Only markers or aborted data after the offset: true until something is appended, which moves the high
    watermark (a record, or a transaction's marker)."""
    cache = RecordTimes()
    cache.update([(T1, 5)], {(T1, 5): None}, {T1: 6})
    assert cache.missing([(T1, 5)], {T1: 6}) == []
    assert cache.update([(T1, 5)], {}, {T1: 6}) == {(T1, 5): None}
    assert cache.missing([(T1, 5)], {T1: 7}) == [(T1, 5)]
    assert cache.update([(T1, 5)], {}, {T1: 7}) == {}  # not read again yet: unknown, not caught up


def test_a_quiet_topic_gets_a_time_lag_from_its_record_else_a_lower_bound():
    """The high watermark never moves: the history has one point, yet every run has a time lag."""
    state = LagState()
    snap = snapshot({T0: 100}, g={T0: 40})
    for now in (1000.0, 1010.0):
        [row], _ = evaluate(snap, state, now, 600)
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
