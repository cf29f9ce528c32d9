import base64
import json
import random

import pytest

from pettwin_checks.kafka_lag.contexts import RaisedSeries, plan_contexts
from pettwin_checks.kafka_lag.evaluate import advance_rates
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
from pettwin_checks.kafka_lag.status import (
    MAX_OBSERVATIONS,
    WINDOW_SLOTS,
    CommitWindows,
    consume_rate,
    group_status,
    partition_status,
    status_reason,
)
from pettwin_checks.kafka_lag.time_lag import (
    MAX_HISTORY_POINTS,
    PartitionHistory,
    prune_history,
    record_high_watermark,
    time_lag,
)

from .runs import evaluate

pytestmark = pytest.mark.unit


def seconds(committed, high_watermark, history, now, records=None, kind=None):
    """The time lag of partition ("t", 0) from the history (and `records`, the record timestamps read)."""
    value, got_kind, _ = time_lag(committed, high_watermark, history, now, records or {}, ("t", 0))
    if kind is not None:
        assert got_kind is kind
    return value


def history_of(*points) -> PartitionHistory:
    history = PartitionHistory()
    for offset, seen in points:
        record_high_watermark(history, offset, seen)
    return history


def points_of(history: PartitionHistory) -> list[tuple[int, float]]:
    return list(zip(history.offsets, history.times))


def observations_of(windows: CommitWindows, slot: int) -> list[tuple[float, float, float]]:
    """(committed, lag, time), oldest first."""
    v = windows.observed(slot)
    return list(zip(v[0::3], v[1::3], v[2::3]))


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


def window_of(*observations, windows: CommitWindows | None = None, key=("g", "t", 0)) -> tuple[CommitWindows, int]:
    """The table holding the window of `key` (a new table unless given), and its slot, after `observations`."""
    windows = CommitWindows() if windows is None else windows
    slot = windows.slot(key)
    for committed, lag, t in observations:
        windows.observe(slot, committed, lag, t, window=600)
    return windows, slot


@pytest.mark.parametrize(
    "observations, expected",
    [
        ([(10, 0, 0), (20, 0, 10), (30, 0, 20)], LagStatus.OK),
        ([(10, 5, 0), (20, 4, 10), (30, 6, 20)], LagStatus.OK),  # lag moves both ways
        ([(10, 5, 0), (20, 10, 10), (30, 15, 20)], LagStatus.WARN),  # lag grows across the window
        ([(10, 5, 0), (10, 10, 10), (10, 15, 20)], LagStatus.STALL),  # committed stuck, lag > 0
        ([(10, 5, 0), (10, 10, 10)], LagStatus.OK),  # too few observations to call it
        ([(30, 5, 0), (10, 10, 10), (20, 15, 20)], LagStatus.REWIND),
        ([(10, 5, 0), (10, 5, 700)], LagStatus.STOP),  # no commit for longer than the window
        ([(10, 0, 0), (10, 0, 700)], LagStatus.OK),  # idle but caught up
    ],
)
def test_partition_status_rules(observations, expected):
    windows, slot = window_of(*observations)
    now = observations[-1][2]
    status = partition_status(windows, slot, now=now, window_seconds=600)
    assert status is expected
    assert bool(status_reason(windows, slot, status, now)) == (expected is not LagStatus.OK)


@pytest.mark.parametrize(
    "observations, expected",
    [
        ([(10, 5, 0), (10, 5, 15)], LagStatus.STOP),  # gone: two observations of an unmoved offset are enough
        ([(10, 5, 0)], LagStatus.OK),  # one observation cannot tell
        ([(10, 5, 0), (10, 5, 15), (10, 5, 30)], LagStatus.STOP),  # not STALL: there is no consumer to be stuck
        ([(10, 5, 0), (20, 5, 15)], LagStatus.OK),  # assign mode: commits without joining, judged like any other
        ([(10, 5, 0), (20, 10, 15), (30, 15, 30)], LagStatus.WARN),  # ... including WARN, never STOP
        # committed, then left: the latest two observations tell, whatever the window held before
        ([(10, 5, 0), (20, 5, 15), (20, 5, 30)], LagStatus.STOP),
        ([(10, 5, 0), (20, 5, 15), (20, 5, 30), (30, 5, 45)], LagStatus.OK),  # commits again: not STOP
        ([(10, 0, 0), (10, 0, 15)], LagStatus.OK),  # caught up: nothing to consume
    ],
)
def test_a_group_without_members_is_stop_once_its_offsets_do_not_move(observations, expected):
    windows, slot = window_of(*observations)
    now = observations[-1][2]
    assert partition_status(windows, slot, now=now, window_seconds=600, no_consumer=True) is expected
    # the same window with members: STALL needs MIN_OBSERVATIONS, STOP the whole window
    with_members = partition_status(windows, slot, now=now, window_seconds=600)
    assert with_members is not LagStatus.STOP


def test_stop_of_a_group_without_members_says_it_has_no_consumer():
    state = LagState()
    window_of((10, 5, 0), (10, 5, 15), windows=state.windows, key=("g", "t", 0))
    rows = [PartitionLag("g", "t", 0, 10, 15, 5, None, LagStatus.STOP)]
    status, message = group_status(rows, state.windows, 15.0, no_consumer=True)
    assert status is LagStatus.STOP
    assert (
        message
        == "STOP: the group has no consumer (no members), offsets not moving: t[0]: no commit for 15s with lag 5"
    )
    assert "no consumer" not in group_status(rows, state.windows, 15.0)[1]


def test_evaluate_stops_an_empty_group_at_its_second_observation():
    """A described group with no member (state Empty) whose committed offset stays put; a group whose description
    failed (state Unknown) is not called gone."""
    state = LagState()
    empty = GroupSnapshot("gone", state="Empty", members=0, committed={("t", 0): 10}, partitions=[("t", 0)])
    unknown = GroupSnapshot("unknown", committed={("t", 0): 10}, partitions=[("t", 0)])
    alive = GroupSnapshot("alive", state="Stable", members=1, committed={("t", 0): 10}, partitions=[("t", 0)])
    statuses = []
    for now in (0.0, 15.0):
        snapshot = ClusterSnapshot("c", {("t", 0): 20}, {}, [empty, unknown, alive])
        rows, _ = evaluate(snapshot, state, now, 600)
        statuses.append({row.group_id: row.status for row in rows})
    assert statuses[0] == {"gone": LagStatus.OK, "unknown": LagStatus.OK, "alive": LagStatus.OK}
    assert statuses[1] == {"gone": LagStatus.STOP, "unknown": LagStatus.OK, "alive": LagStatus.OK}


def test_status_reasons_say_what_the_window_shows():
    assert status_reason(*window_of((10, 5, 0), (20, 10, 10), (30, 15, 20)), LagStatus.WARN, 20) == (
        "lag growing from 5 to 15"
    )
    assert status_reason(*window_of((10, 5, 0), (10, 10, 10), (10, 15, 20)), LagStatus.STALL, 20) == (
        "committed offset stuck at 10 with lag 15"
    )
    assert status_reason(*window_of((10, 5, 0), (10, 5, 700)), LagStatus.STOP, 750) == "no commit for 750s with lag 5"
    rewound = window_of((30, 5, 0), (10, 10, 10))
    assert status_reason(*rewound, LagStatus.REWIND, 10) == "committed offset moved backwards"


def test_window_drops_old_observations_but_keeps_one_before_the_window():
    w = window_of((1, 1, 0), (2, 1, 100), (3, 1, 700), (4, 1, 800))
    assert [o[0] for o in observations_of(*w)] == [2, 3, 4]


def test_group_status_names_the_worst_partitions():
    state = LagState()
    window_of((1, 1, 0), (2, 2, 10), (3, 3, 20), windows=state.windows, key=("g", "t", 0))
    window_of((1, 6, 0), (1, 7, 10), (1, 8, 20), windows=state.windows, key=("g", "t", 1))
    window_of((5, 0, 20), windows=state.windows, key=("g", "t", 2))
    rows = [
        PartitionLag("g", "t", 0, 3, 6, 3, None, LagStatus.WARN),
        PartitionLag("g", "t", 1, 1, 9, 8, None, LagStatus.STALL),
        PartitionLag("g", "t", 2, 5, 5, 0, 0.0, LagStatus.OK),
    ]
    assert group_status(rows, state.windows, 20.0) == (
        LagStatus.STALL,
        "STALL: t[1]: committed offset stuck at 1 with lag 8",
    )
    assert group_status([rows[2]], state.windows, 20.0) == (LagStatus.OK, "")
    # an unknown high watermark carries the broker's error; more than five culprits are counted, not listed
    errors = [PartitionLag("g", "u", p, 1, None, None, None, LagStatus.ERR, "NOT_LEADER") for p in range(7)]
    status, message = group_status(rows + errors, state.windows, 20.0)
    assert status is LagStatus.ERR and message.startswith("ERR: u[0]: NOT_LEADER, u[1]: NOT_LEADER")
    assert message.endswith("u[4]: NOT_LEADER (+2 more)")


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


def test_evaluate_state_roundtrip_and_retention():
    state = LagState()
    group = GroupSnapshot("g", committed={("t", 0): 5, ("t", 1): 2}, partitions=[("t", 0), ("t", 1), ("t", 2)])
    snapshot = ClusterSnapshot("c", {("t", 0): 10, ("t", 1): 2, ("t", 2): 4}, {}, [group])
    rows, clamped = evaluate(snapshot, state, now=100.0, window_seconds=60)
    by_partition = {r.partition: r for r in rows}
    assert by_partition[0].lag == 5 and by_partition[1].lag == 0 and by_partition[2].committed is None
    assert clamped == 0
    advance_rates(state, snapshot, 100.0)

    restored = LagState.from_shards(state.to_shards())
    snapshot.high_watermarks[("t", 0)] = 30
    group.committed[("t", 0)] = 10
    rows, _ = evaluate(snapshot, restored, now=110.0, window_seconds=60)
    assert {r.partition: r.lag for r in rows}[0] == 20
    # offset 10 was the high watermark at t=100, so the consumer is 10 s behind the producers
    assert {r.partition: r.lag_seconds for r in rows}[0] == pytest.approx(10.0)
    assert advance_rates(restored, snapshot, 110.0)[("t", 0)] == pytest.approx(2.0)
    assert consume_rate(restored.windows, restored.windows.slots[("g", "t", 0)]) == pytest.approx(0.5)

    # the group goes away and the topic is deleted: nothing of them stays in the state
    rows, _ = evaluate(ClusterSnapshot("c", {}, {}, []), restored, now=120.0, window_seconds=60)
    assert rows == [] and not restored.histories and not restored.windows


def test_what_went_away_is_forgotten_when_as_much_came_in_its_place():
    """The state is only scanned for what to forget when it holds more than this run touched; a group and a topic
    replaced by others of the same size in one run must still be forgotten."""
    state = LagState()
    old = GroupSnapshot("old", committed={("a", 0): 1}, partitions=[("a", 0)])
    evaluate(ClusterSnapshot("c", {("a", 0): 5}, {}, [old]), state, now=10.0, window_seconds=60)
    new = GroupSnapshot("new", committed={("b", 0): 1}, partitions=[("b", 0)])
    evaluate(ClusterSnapshot("c", {("b", 0): 5}, {}, [new]), state, now=20.0, window_seconds=60)
    assert set(state.windows.keys()) == {("new", "b", 0)} and set(state.histories) == {("b", 0)}
    # nothing went away: the state stays as it is
    evaluate(ClusterSnapshot("c", {("b", 0): 6}, {}, [new]), state, now=30.0, window_seconds=60)
    assert (
        set(state.windows.keys()) == {("new", "b", 0)}
        and state.windows.counts[state.windows.slots[("new", "b", 0)]] == 2
    )


def test_unreadable_state_starts_afresh():
    assert not LagState.from_json("{not json").histories
    assert not LagState.from_json('{"h": 3}').windows
    assert not LagState.from_json("").windows
    # the list-of-lists layout of earlier releases
    assert not LagState.from_json('{"h": [["t", 0, [[1, 2.0]], null]], "w": []}').histories


def test_state_survives_the_cache_exactly_and_rejects_damage():
    state = LagState()
    state.histories[("t", 0)] = history_of((5, 1.5), (9, 2.25))
    state.histories[("t", 0)].last_seen = (9, 2.25)
    state.histories[("u", 3)] = history_of((2**40, 7.0))
    window = window_of(*((10 + t, 3, 100.0 + t) for t in range(4)), windows=state.windows)
    empty = window_of(windows=state.windows, key=("h", "u", 3))

    restored = LagState.from_shards(state.to_shards())
    assert {k: (points_of(h), h.last_seen) for k, h in restored.histories.items()} == {
        ("t", 0): ([(5, 1.5), (9, 2.25)], (9, 2.25)),
        ("u", 3): ([(2**40, 7.0)], None),
    }
    restored_window = (restored.windows, restored.windows.slots[("g", "t", 0)])
    assert observations_of(*restored_window) == observations_of(*window) and len(observations_of(*window)) == 4
    # the committed offset moved at each observation, the last at 103
    assert restored.windows.since(restored_window[1]) == state.windows.since(window[1]) == 103.0
    assert not observations_of(restored.windows, restored.windows.slots[("h", "u", 3)])
    assert restored.windows.since(restored.windows.slots[("h", "u", 3)]) is None is state.windows.since(empty[1])

    data = json.loads(next(state.to_shards()))
    data["w"][0][3] += 3  # counts that do not match the numbers
    assert not LagState.from_json(json.dumps(data)).windows
    data = json.loads(next(state.to_shards()))
    data["ht"] = data["ht"][:-4]  # truncated
    assert not LagState.from_json(json.dumps(data)).histories


def test_missing_high_watermark_is_err():
    group = GroupSnapshot("g", committed={("t", 0): 5}, partitions=[("t", 0)])
    rows, _ = evaluate(ClusterSnapshot("c", {}, {("t", 0): "NOT_LEADER"}, [group]), LagState(), 1.0, 60)
    assert rows[0].status is LagStatus.ERR and rows[0].reason == "NOT_LEADER"


def test_window_is_bounded_whatever_the_run_interval():
    w = window_of(*((t, 1, float(t)) for t in range(500)))
    assert len(observations_of(*w)) == MAX_OBSERVATIONS
    assert observations_of(*w)[-1][0] == 499


def test_window_keeps_what_the_rule_says_and_never_reallocates():
    """Against the rule written plainly on a list: after each observation, drop the oldest while the second oldest
    is at or before now - window (one older than the window stays), then keep the newest MAX_OBSERVATIONS."""
    rng = random.Random(7)
    windows = CommitWindows()
    for number, window_seconds in enumerate((5.0, 30.0, 600.0)):
        # the window sits between two others, which it must leave as they are
        neighbours = [window_of((7, 7, 0.0), windows=windows, key=(side, "t", number)) for side in ("a", "c")]
        slot, expected, now, committed = windows.slot(("b", "t", number)), [], 0.0, 0
        address = windows.values.buffer_info()[0]
        for _ in range(300):
            now += rng.choice((0.5, 2.0, 7.0, 15.0, 60.0))
            committed += rng.choice((0, 0, 3))
            lag = rng.randrange(50)
            windows.observe(slot, committed, lag, now, window_seconds)
            expected.append((committed, lag, now))
            while len(expected) > 2 and expected[1][2] <= now - window_seconds:
                expected.pop(0)
            expected = expected[-MAX_OBSERVATIONS:]
            assert observations_of(windows, slot) == expected
        assert windows.values.buffer_info()[0] == address
        assert all(observations_of(*neighbour) == [(7, 7, 0.0)] for neighbour in neighbours)
    assert len(windows.values) == WINDOW_SLOTS * len(windows)


def test_a_forgotten_windows_slot_is_reused_empty():
    windows, slot = window_of((1, 5, 0.0), (1, 5, 10.0))
    other = window_of((3, 0, 0.0), windows=windows, key=("h", "t", 0))
    windows.forget([("g", "t", 0)])
    assert ("g", "t", 0) not in windows.slots and len(windows) == 1
    assert windows.slot(("new", "t", 0)) == slot  # the table does not grow for a group that replaced another
    assert not observations_of(windows, slot) and windows.since(slot) is None
    assert observations_of(*other) == [(3, 0, 0.0)] and len(windows.values) == 2 * WINDOW_SLOTS


def test_state_with_a_window_larger_than_the_cap_is_rejected():
    state = LagState()
    window_of((10, 5, 0), (20, 4, 10), windows=state.windows)
    data = json.loads(next(state.to_shards()))
    data["w"][0][3] = 3 * 11
    data["wv"] = base64.b64encode(bytes(8 * 33)).decode()
    assert not LagState.from_json(json.dumps(data)).windows


def filled_state(groups: int, partitions_per_group: int, history_points: int) -> LagState:
    """A state as thousands of groups leave it: full windows, and histories of `history_points` points."""
    state = LagState()
    for g in range(groups):
        for p in range(partitions_per_group):
            window_of(
                *((100 + t, 5, 15.0 * t) for t in range(MAX_OBSERVATIONS)),
                windows=state.windows,
                key=(f"group-{g:05d}", f"topic-{g % 1000:04d}", p),
            )
    for t in range(min(groups, 1000)):
        for p in range(partitions_per_group):
            state.histories[(f"topic-{t:04d}", p)] = history_of(*((o, 15.0 * o) for o in range(history_points)))
            state.histories[(f"topic-{t:04d}", p)].last_seen = (history_points - 1, 15.0 * (history_points - 1))
    return state


def test_state_is_written_in_shards_small_enough_to_stay_out_of_the_heap_for_good():
    """2,000 groups on 10,000 partitions with full histories: 30 MB of numbers in shards each under 128 KiB (glibc's
    default mmap threshold), read back exactly."""
    state = filled_state(2000, 10, MAX_HISTORY_POINTS)
    shards = list(state.to_shards())
    assert len(shards) > 100
    assert max(len(text) for text in shards) < 128 * 1024
    restored = LagState.from_shards(shards)
    assert restored.histories.keys() == state.histories.keys() and restored.windows.keys() == state.windows.keys()
    assert all(points_of(restored.histories[k]) == points_of(h) for k, h in state.histories.items())
    assert all(restored.histories[k].last_seen == h.last_seen for k, h in state.histories.items())
    old, new = state.windows, restored.windows
    assert all(observations_of(new, new.slots[k]) == observations_of(old, s) for k, s in old.slots.items())
    assert all(new.since(new.slots[k]) == old.since(s) for k, s in old.slots.items())


def test_a_damaged_shard_loses_only_its_own_part():
    state = filled_state(200, 10, 5)
    shards = list(state.to_shards(shard_bytes=4096))
    damaged_keys = LagState.from_json(shards[3]).windows.keys() | LagState.from_json(shards[3]).histories.keys()
    assert damaged_keys
    shards[3] = shards[3][:-10]
    restored = LagState.from_shards(shards)
    assert (
        restored.windows.keys() | restored.histories.keys()
        == (state.windows.keys() | state.histories.keys()) - damaged_keys
    )


def test_an_empty_state_is_one_shard():
    assert len(list(LagState().to_shards())) == 1
    restored = LagState.from_shards(LagState().to_shards())
    assert not restored.windows and not restored.histories


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
