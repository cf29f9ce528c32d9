"""The lag status rules over commit windows, and the windows themselves."""

import random

import pytest

from pettwin_checks.kafka_lag.lag import (
    ClusterSnapshot,
    GroupSnapshot,
    LagStatus,
    PartitionLag,
)
from pettwin_checks.kafka_lag.state import LagState
from pettwin_checks.kafka_lag.status import (
    MAX_OBSERVATIONS,
    WINDOW_SLOTS,
    CommitWindows,
    group_status,
    partition_status,
    status_reason,
)

from .builders import observations_of, window_of
from .runs import evaluate

pytestmark = pytest.mark.unit


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
