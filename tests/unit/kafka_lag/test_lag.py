"""The lag logic without I/O: lag and time lag, rollups, rates, the cardinality budget, the sparse series."""

import pytest

from pettwin_checks.kafka_lag.contexts import RaisedSeries, plan_contexts
from pettwin_checks.kafka_lag.lag import (
    ClusterSnapshot,
    GroupSnapshot,
    LagStatus,
    PartitionLag,
    TimeLagKind,
    partition_lag,
    rate,
    rollup,
)
from pettwin_checks.kafka_lag.state import LagState
from pettwin_checks.kafka_lag.time_lag import (
    PartitionHistory,
    prune_history,
    record_high_watermark,
    time_lag,
)

from .builders import history_of, points_of
from .runs import evaluate

pytestmark = pytest.mark.unit


def seconds(committed, high_watermark, history, now, records=None, kind=None):
    """The time lag of partition ("t", 0) from the history (and `records`, the record timestamps read)."""
    value, got_kind, _ = time_lag(committed, high_watermark, history, now, records or {}, ("t", 0))
    if kind is not None:
        assert got_kind is kind
    return value


def test_partition_lag_and_clamp():
    assert partition_lag(90, 100) == (10, False)
    assert partition_lag(100, 100) == (0, False)
    assert partition_lag(120, 100) == (0, True)


def test_time_lag_interpolates_between_history_points():
    history = history_of((100, 1000.0), (200, 1010.0), (400, 1030.0))
    # offset 150 is halfway between t=1000 and t=1010
    assert seconds(150, 400, history, now=1040.0, kind=TimeLagKind.INTERPOLATED) == pytest.approx(35.0)
    # offset 300: halfway between t=1010 and t=1030
    assert seconds(300, 400, history, now=1040.0) == pytest.approx(20.0)
    assert seconds(100, 400, history, now=1040.0) == pytest.approx(40.0)


def test_time_lag_edges():
    history = history_of((100, 1000.0), (200, 1010.0))
    assert seconds(200, 200, history, now=2000.0, kind=TimeLagKind.EXACT) == 0.0  # caught up
    assert seconds(250, 200, history, now=2000.0, kind=TimeLagKind.EXACT) == 0.0  # ahead (clamped case)
    # older than the whole history: the lower bound now - oldest point
    assert seconds(50, 200, history, now=1020.0, kind=TimeLagKind.LOWER_BOUND) == pytest.approx(20.0)
    # one point only (a quiet topic: its high watermark never moves): still a lower bound, growing with time
    assert seconds(50, 100, history_of((100, 1000.0)), now=1020.0, kind=TimeLagKind.LOWER_BOUND) == 20.0
    # a bound of 0 says nothing: unknown (None), never 0 while lagging
    unknown = (None, None, False)
    assert time_lag(50, 100, history_of((100, 1000.0)), 1000.0, {}, ("t", 0)) == unknown  # first sight
    assert time_lag(50, 100, history_of(), 1020.0, {}, ("t", 0)) == unknown
    # past the newest point (the high watermark moved since it was recorded): the history cannot tell
    assert time_lag(250, 300, history, 1020.0, {}, ("t", 0)) == unknown


def test_time_lag_from_the_record_read_is_exact():
    history = history_of((100, 1000.0), (200, 1010.0))
    # the record at 150 was produced at t=1003.5: exact, whatever the history would interpolate
    assert seconds(150, 200, history, 1020.0, {(("t", 0), 150): 1003500}, TimeLagKind.EXACT) == pytest.approx(16.5)
    # a producer clock ahead of this host's: 0, not negative
    assert seconds(150, 200, history, 1020.0, {(("t", 0), 150): 1030000}, TimeLagKind.EXACT) == 0.0
    # another offset or partition read does not count for this one
    assert seconds(150, 200, history, 1020.0, {(("t", 0), 151): 1003500}, TimeLagKind.INTERPOLATED) == 15.0
    # nothing left to read but markers or aborted data: caught up
    assert time_lag(199, 200, history, 1020.0, {(("t", 0), 199): None}, ("t", 0)) == (0.0, TimeLagKind.EXACT, True)


def test_record_only_when_high_watermark_moves():
    history = PartitionHistory()
    record_high_watermark(history, 10, 1.0)
    record_high_watermark(history, 10, 2.0)
    record_high_watermark(history, 12, 3.0)
    assert points_of(history) == [(10, 1.0), (12, 3.0)]


def test_prune_keeps_left_edge_of_oldest_commit():
    history = history_of((0, 0.0), (10, 1.0), (20, 2.0), (30, 3.0))
    prune_history(history, oldest_committed=25)
    assert points_of(history) == [(20, 2.0), (30, 3.0)]
    prune_history(history, oldest_committed=20)  # exactly on a point: that point is the left edge
    assert points_of(history) == [(20, 2.0), (30, 3.0)]
    # the interpolation for the oldest committed offset still works after pruning
    assert seconds(25, 30, history, now=3.0) == pytest.approx(0.5)


def test_prune_thins_past_max_points_but_keeps_ends():
    history = history_of(*((i, float(i)) for i in range(300)))
    prune_history(history, oldest_committed=None, max_points=100)
    points = points_of(history)
    assert len(points) <= 100
    assert points[0] == (0, 0.0) and points[-1] == (299, 299.0)
    assert all(offset == seen for offset, seen in points)  # offsets and times thinned together
    offsets = [p[0] for p in points]
    assert offsets == sorted(offsets)
    assert offsets[-50:] == list(range(250, 300))  # the recent half stays exact


def test_rollup_and_unknown_time_lag():
    rows = [
        PartitionLag("g", "t", 0, 10, 15, 5, 3.0, LagStatus.OK),
        PartitionLag("g", "t", 1, 10, 40, 30, 9.0, LagStatus.WARN),
        PartitionLag("g", "t", 2, None, 7, None, None, LagStatus.OK),
        PartitionLag("g", "t", 3, 7, 7, 0, 0.0, LagStatus.OK),
    ]
    total = rollup(rows)
    assert (total.lag, total.max_lag, total.partitions_behind, total.uncommitted) == (35, 30, 2, 1)
    assert total.max_lag_seconds == 9.0
    assert total.status is LagStatus.WARN
    # one lagging partition's time lag unknown: the max over the others is only a lower bound, and says so
    rows[1].lag_seconds = None
    rows[0].lag_seconds_kind = TimeLagKind.EXACT
    assert (rollup(rows).max_lag_seconds, rollup(rows).lag_seconds_kind) == (3.0, TimeLagKind.LOWER_BOUND)
    # none known but a caught-up partition's 0: no value at all, never 0 while partitions lag
    rows[0].lag_seconds = None
    assert (rollup(rows).max_lag_seconds, rollup(rows).lag_seconds_kind) == (None, None)


def test_rate():
    assert rate((100, 10.0), (160, 40.0)) == pytest.approx(2.0)
    assert rate(None, (1, 1.0)) is None
    assert rate((100, 10.0), (50, 20.0)) is None  # reset or rewind
    assert rate((100, 10.0), (120, 10.0)) is None


def test_plan_contexts_rolls_up_instead_of_dropping():
    partitions = {("a", "t1"): 3, ("a", "t2"): 2, ("b", "t1"): 4}
    groups = ["a", "b"]
    full = plan_contexts(groups, partitions, "partition", 10_000, 9, 6, 6)
    assert full.folded == 0 and full.partition_detail == set(partitions) and full.group_detail == {"a", "b"}
    # groups 2*9=18, topics 3*6=18 -> 36, then partitions of a/t1 (18) fit, a/t2 (12) fits at 66, b/t1 (24) does not
    tight = plan_contexts(groups, partitions, "partition", 70, 9, 6, 6)
    assert tight.topic_detail == {"a", "b"}
    assert tight.partition_detail == {("a", "t1"), ("a", "t2")}
    assert tight.folded == 24
    by_group = plan_contexts(groups, partitions, "group", 10_000, 9, 6, 6)
    assert by_group.topic_detail == set() and by_group.partition_detail == set()
    assert by_group.folded == 0  # the user asked for group level: nothing was folded by the budget


def test_plan_contexts_folds_whole_groups_when_even_group_level_does_not_fit():
    partitions = {("a", "t1"): 3, ("b", "t1"): 4, ("c", "t1"): 1}
    plan = plan_contexts(["a", "b", "c", "empty"], partitions, "topic", 20, 9, 6, 6)
    # a and b fit at group level (18); c and the empty group fold; no room left for topic detail
    assert plan.group_detail == {"a", "b"} and plan.topic_detail == set()
    assert plan.folded == (9 + 6) + 9 + 6 + 6  # c and empty whole, a's and b's topics


def test_missing_high_watermark_is_err():
    group = GroupSnapshot("g", committed={("t", 0): 5}, partitions=[("t", 0)])
    rows, _ = evaluate(ClusterSnapshot("c", {}, {("t", 0): "NOT_LEADER"}, [group]), LagState(), 1.0, 60)
    assert rows[0].status is LagStatus.ERR and rows[0].reason == "NOT_LEADER"


def test_raised_series_are_sent_while_not_0_once_when_they_fall_back_and_all_on_the_first_run():
    series = RaisedSeries()
    assert [series.wanted(("status", p), value) for p, value in enumerate((0, 3, 0))] == [True, True, True]
    series.end_run()
    assert [series.wanted(("status", p), value) for p, value in enumerate((0, 4, 0))] == [False, True, False]
    series.end_run()
    assert [series.wanted(("status", p), value) for p, value in enumerate((2, 0, 0))] == [True, True, False]
    series.end_run()
    assert [series.wanted(("status", p), value) for p, value in enumerate((0, 0, 0))] == [True, False, False]
    series.end_run()
    assert not any(series.wanted(("status", p), 0) for p in range(3))
