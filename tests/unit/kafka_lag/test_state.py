"""The lag state kept across runs: what it retains, and how it survives the persistent cache."""

import base64
import json

import pytest

from pettwin_checks.kafka_lag.evaluate import advance_rates
from pettwin_checks.kafka_lag.lag import (
    ClusterSnapshot,
    GroupSnapshot,
)
from pettwin_checks.kafka_lag.state import LagState
from pettwin_checks.kafka_lag.status import (
    MAX_OBSERVATIONS,
    consume_rate,
)
from pettwin_checks.kafka_lag.time_lag import (
    MAX_HISTORY_POINTS,
)

from .builders import history_of, observations_of, points_of, window_of
from .runs import evaluate

pytestmark = pytest.mark.unit


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
