"""How the check keeps its lag state in the agent's persistent cache (the stub's cache, no broker needed)."""

import pytest

from pettwin_checks.kafka_lag.check import STATE_CACHE_KEY, PettwinKafkaLagCheck
from pettwin_checks.kafka_lag.state import LagState

pytestmark = pytest.mark.unit


def make_check(check_id: str) -> PettwinKafkaLagCheck:
    instance = {"kafka_connect_str": "127.0.0.1:1", "monitor_unlisted_consumer_groups": True}
    check = PettwinKafkaLagCheck("pettwin_kafka_lag", {}, [instance])
    check.check_id = check_id
    return check


def state_of(groups: int) -> LagState:
    state = LagState()
    for g in range(groups):
        state.windows.observe(state.windows.slot((f"group-{g}", "topic", 0)), 10, 5, 100.0, 600)
    return state


def test_a_restarted_check_reads_every_shard_and_a_shrunk_state_blanks_the_unused_ones(datadog_agent):
    check = make_check("state-cache")
    check._state = state_of(3000)
    check._persist_state()
    shards = int(check.read_persistent_cache(STATE_CACHE_KEY))
    assert shards > 1

    restarted = make_check("state-cache")
    assert restarted._load_state().windows.keys() == check._state.windows.keys()

    restarted._state = state_of(2)
    restarted._persist_state()
    assert check.read_persistent_cache(STATE_CACHE_KEY) == "1"
    assert all(check.read_persistent_cache(f"{STATE_CACHE_KEY}.{i}") == "" for i in range(1, shards))
    assert make_check("state-cache")._load_state().windows.keys() == {("group-0", "topic", 0), ("group-1", "topic", 0)}


def test_a_cache_from_before_the_shards_starts_afresh(datadog_agent):
    check = make_check("state-cache-old")
    # the one-text layout of earlier releases
    check.write_persistent_cache(STATE_CACHE_KEY, next(state_of(2).to_shards()))
    assert not check._load_state().windows
