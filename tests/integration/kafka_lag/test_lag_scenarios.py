"""Real lag made by a real producer and consumers, checked against what the broker says through another API."""

import os
import threading
import time

import pytest
from confluent_kafka import Consumer

from pettwin_checks.devenv.workload import produce
from pettwin_checks.kafka_lag import wire
from pettwin_checks.kafka_lag.check import STATE_PERSIST_INTERVAL
from tests.contract import assert_contract

from .common import (
    commit,
    create_topic,
    independent_lag,
    kafka_tool_lags,
    last,
    make_check,
    service_checks,
    unique,
    values,
)

pytestmark = pytest.mark.integration

PARTITIONS = 4
PHASE_SECONDS = 2.2
STOP_WINDOW = 4.0


class LiveMember(threading.Thread):
    """A subscribed consumer that polls but never commits: a Stable group with 1 member on 4 partitions."""

    def __init__(self, bootstrap, group, topic):
        super().__init__(daemon=True)
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self.consumer.subscribe([topic])
        self.assigned = threading.Event()
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.consumer.poll(0.2)
            if self.consumer.assignment():
                self.assigned.set()
        self.consumer.close()


@pytest.fixture(scope="module")
def scenario(kafka_broker):
    """Three phases of production; groups that keep up, stop, slow down, rewind, or have a live member."""
    bootstrap = kafka_broker.start().bootstrap
    topic = unique("pets")
    groups = {name: unique(name) for name in ("healthy", "stopped", "slow", "rewound", "member", "empty")}
    create_topic(bootstrap, topic, PARTITIONS)

    def produce_phase():
        for partition in range(PARTITIONS):
            produce(bootstrap, topic, 50, partition=partition)

    # an empty group: it joined and left without committing anything
    empty = Consumer({"bootstrap.servers": bootstrap, "group.id": groups["empty"], "enable.auto.commit": False})
    empty.subscribe([topic])
    empty.poll(3)
    empty.close()

    commit(bootstrap, groups["member"], topic, {p: 0 for p in range(PARTITIONS)})
    member = LiveMember(bootstrap, groups["member"], topic)
    member.start()
    assert member.assigned.wait(30)

    checks = {
        "window": make_check(
            kafka_connect_str=bootstrap,
            monitor_unlisted_consumer_groups=True,
            include_consumer_groups=[f"^({'|'.join(groups.values())})$"],
            include_topics=[f"^{topic}$"],
        ),
        "stop": make_check(
            kafka_connect_str=bootstrap,
            consumer_groups={g: {topic: None} for g in groups.values()},
            status_window=STOP_WINDOW,
        ),
    }
    from datadog_checks.base.stubs import aggregator as stub

    phases, submitted = [], {}
    for phase, offsets in enumerate(
        [
            {"healthy": 50, "stopped": 50, "slow": 10, "rewound": 40},
            {"healthy": 100, "slow": 15, "rewound": 10},
            {"healthy": 150, "slow": 20, "rewound": 20},
        ]
    ):
        if phase:
            time.sleep(PHASE_SECONDS)
        produce_phase()
        for name, offset in offsets.items():
            # the stopped group never committed partition 3: it must show as uncommitted, not vanish
            partitions = range(3) if name == "stopped" else range(PARTITIONS)
            commit(bootstrap, groups[name], topic, {p: offset for p in partitions})
        phases.append(time.time())
        for name, check in checks.items():
            stub.reset()
            assert check.run() == ""
            # what each check said after the last phase, for the status tests
            submitted[name] = (dict(stub._metrics), dict(stub._service_checks))
    reads = {name: independent_lag(bootstrap, group, topic, PARTITIONS) for name, group in groups.items()}
    yield {
        "topic": topic,
        "groups": groups,
        "phases": phases,
        "reads": reads,
        "checks": checks,
        "bootstrap": bootstrap,
        "submitted": submitted,
    }
    member.stop.set()
    member.join(10)


def run_once(check, aggregator):
    aggregator.reset()
    assert check.run() == ""
    return aggregator


@pytest.fixture
def third_run(scenario, aggregator):
    """The aggregator as filled by a fourth run of the window check, with nothing changed since the third."""
    run_once(scenario["checks"]["window"], aggregator)
    return aggregator


def test_partition_lag_equals_the_brokers_own_figures(scenario, third_run):
    topic, groups = scenario["topic"], scenario["groups"]
    for name, group in groups.items():
        if name == "empty":
            continue
        for partition, expected in scenario["reads"][name].items():
            tags = {"consumer_group": group, "topic": topic, "partition": partition}
            if expected is None:
                assert last(third_run, "pettwin.kafka.partition.uncommitted", **tags) == 1
                assert not values(third_run, "pettwin.kafka.consumer_lag", **tags)
            else:
                assert last(third_run, "pettwin.kafka.consumer_lag", **tags) == expected, (name, partition)
                # 0 is sent on a check's first run and when a partition gets its first commit, not every run
                assert not values(third_run, "pettwin.kafka.partition.uncommitted", **tags)
    for partition in range(PARTITIONS):
        assert last(third_run, "pettwin.kafka.broker_offset", topic=topic, partition=partition) == 150
    assert scenario["reads"]["slow"] == {p: 130 for p in range(PARTITIONS)}  # the scenario did what it meant to


def test_rollups(scenario, third_run):
    topic, groups = scenario["topic"], scenario["groups"]
    stopped = {"consumer_group": groups["stopped"]}
    assert last(third_run, "pettwin.kafka.consumer_group.lag", **stopped) == 300
    assert last(third_run, "pettwin.kafka.consumer_group.lag.max", **stopped) == 100
    assert last(third_run, "pettwin.kafka.consumer_group.partitions_behind", **stopped) == 3
    assert last(third_run, "pettwin.kafka.consumer_group.uncommitted_partitions", **stopped) == 1
    assert last(third_run, "pettwin.kafka.topic.lag", topic=topic, **stopped) == 300
    healthy = {"consumer_group": groups["healthy"]}
    assert last(third_run, "pettwin.kafka.consumer_group.lag", **healthy) == 0
    assert last(third_run, "pettwin.kafka.consumer_group.partitions_behind", **healthy) == 0
    empty = {"consumer_group": groups["empty"]}
    assert last(third_run, "pettwin.kafka.consumer_group.lag", **empty) == 0
    assert values(third_run, "pettwin.kafka.consumer_group.state", consumer_group_state="Empty", **empty) == [1]
    assert last(third_run, "pettwin.kafka.consumer_group.members", **empty) == 0


def test_group_state_members_and_assignment(scenario, third_run):
    member = {"consumer_group": scenario["groups"]["member"]}
    assert values(third_run, "pettwin.kafka.consumer_group.state", consumer_group_state="Stable", **member) == [1]
    assert last(third_run, "pettwin.kafka.consumer_group.members", **member) == 1
    assert last(third_run, "pettwin.kafka.consumer_group.assigned_partitions", **member) == PARTITIONS
    assert last(third_run, "pettwin.kafka.consumer_group.lag", **member) == 150 * PARTITIONS


def test_time_lag(scenario, third_run):
    """The stopped group sits at offset 50: the first record of the second phase, produced just before it ended."""
    second_phase = scenario["phases"][1]
    tags = {"consumer_group": scenario["groups"]["stopped"], "topic": scenario["topic"], "partition": 0}
    seconds = last(third_run, "pettwin.kafka.consumer_lag_seconds", lag_seconds_kind="exact", **tags)
    expected = time.time() - second_phase
    assert expected <= seconds <= expected + 1.0
    stopped = {"consumer_group": scenario["groups"]["stopped"], "lag_seconds_kind": "exact"}
    assert last(third_run, "pettwin.kafka.consumer_group.lag_seconds", **stopped) == pytest.approx(seconds, abs=0.5)
    healthy = {"consumer_group": scenario["groups"]["healthy"]}
    assert last(third_run, "pettwin.kafka.consumer_group.lag_seconds", **healthy) == 0


@pytest.mark.parametrize(
    "name, check, status, service_status",
    [
        ("healthy", "window", "OK", 0),
        ("stopped", "window", "STOP", 2),  # no member and no commit: gone, not stalled (a member is STALL below)
        ("slow", "window", "WARN", 1),
        ("rewound", "window", "REWIND", 1),
        ("member", "window", "STALL", 2),
        ("stopped", "stop", "STOP", 2),
        ("healthy", "stop", "OK", 0),
    ],
)
def test_status(scenario, aggregator, name, check, status, service_status):
    """The statuses after the third phase (a REWIND lasts while the rewind is in the 10-observation window)."""
    metrics, service_checks_submitted = scenario["submitted"][check]
    aggregator._metrics.update(metrics)
    aggregator._service_checks.update(service_checks_submitted)
    tags = {"consumer_group": scenario["groups"][name]}
    assert values(aggregator, "pettwin.kafka.consumer_group.lag_status", lag_status=status, **tags), status
    checks = service_checks(aggregator, "pettwin.kafka.consumer_group.status", **tags)
    assert [sc.status for sc in checks] == [service_status]
    if status != "OK":
        assert status in checks[0].message and f"{scenario['topic']}[0]" in checks[0].message
    assert ("the group has no consumer" in (checks[0].message or "")) == (name == "stopped")


def test_rates(scenario, aggregator):
    """Between the last two runs nothing moved; over a new phase the healthy group consumed what was produced."""
    check = scenario["checks"]["stop"]
    bootstrap, topic, group = scenario["bootstrap"], scenario["topic"], scenario["groups"]["healthy"]
    run_once(check, aggregator)
    started = time.time()
    time.sleep(1.0)
    for partition in range(PARTITIONS):
        produce(bootstrap, topic, 100, partition=partition)
    commit(bootstrap, group, topic, {p: 250 for p in range(PARTITIONS)})
    run_once(check, aggregator)
    elapsed = time.time() - started
    tags = {"consumer_group": group, "topic": topic}
    expected = 400 / elapsed
    assert last(aggregator, "pettwin.kafka.topic.produce_rate", **tags) == pytest.approx(expected, rel=0.35)
    assert last(aggregator, "pettwin.kafka.topic.consume_rate", **tags) == pytest.approx(expected, rel=0.35)


@pytest.mark.parametrize("batch", [1, 4])
def test_batches_of_admin_calls_give_what_one_batch_gives(scenario, aggregator, monkeypatch, batch):
    """Groups and partitions are asked for BATCH (500) at a time; in batches of a few, every figure is the same."""
    check = scenario["checks"]["window"]

    def figures():
        run_once(check, aggregator)
        return {
            (name, tuple(sorted(m.tags))): m.value
            for name, submitted in aggregator._metrics.items()
            if not name.endswith(("_seconds", "_rate"))  # these move with the clock between runs
            for m in submitted
        }

    figures()  # nothing changes from here on, so the rates of the next runs are all 0
    whole = figures()
    asked = dict(check.client.requests)
    monkeypatch.setattr(wire, "BATCH", batch)
    assert figures() == whole
    groups, partitions = len(scenario["groups"]), PARTITIONS
    assert check.client.requests["DescribeGroups"] - asked["DescribeGroups"] == -(-groups // batch)
    assert check.client.requests["ListOffsets"] - asked["ListOffsets"] == -(-partitions // batch)
    assert len(whole) > 50


def test_runs_key_every_partition_by_the_same_tuple(scenario):
    """Committed offsets, assignments and high watermarks of a listed partition are keyed by one shared tuple, run
    after run, not by new ones each run (they were most of what a run allocated at thousands of groups)."""
    check = scenario["checks"]["window"]
    first, _ = check.client.snapshot(check.selection)
    second, _ = check.client.snapshot(check.selection)
    shared = {id(tp) for tp in first.high_watermarks}
    assert len(shared) == PARTITIONS and {id(tp) for tp in second.high_watermarks} == shared
    keys = [tp for group in second.groups for tp in (*group.partitions, *group.committed, *group.assigned)]
    assert len(keys) > 3 * PARTITIONS and all(id(tp) in shared for tp in keys)


def test_every_metric_is_in_the_contract(scenario, aggregator):
    for _ in range(2):
        scenario["checks"]["window"].run()
    assert_contract(aggregator, "pettwin.kafka.", every_row=True)


def test_state_survives_an_agent_restart(scenario, aggregator):
    """A new check instance (same config) reads the histories and windows from the persistent cache."""
    old = scenario["checks"]["stop"]
    run_once(old, aggregator)
    old._persist_state()
    restarted = make_check(**old.instance)
    restarted.run_check_initializations()  # what the first run does first: among others, the cache's key
    restored = restarted._load_state()
    assert restored.histories.keys() == old._state.histories.keys()
    for tp, history in old._state.histories.items():
        assert list(restored.histories[tp].offsets) == list(history.offsets)
        assert list(restored.histories[tp].times) == list(history.times)
    key = (scenario["groups"]["stopped"], scenario["topic"], 0)
    assert restored.windows.observed(restored.windows.slots[key]) == old._state.windows.observed(
        old._state.windows.slots[key]
    )
    # so the stopped group is still STOP on the restarted check's first run, not a fresh OK
    run_once(restarted, aggregator)
    tags = {"consumer_group": scenario["groups"]["stopped"], "lag_status": "STOP"}
    assert values(aggregator, "pettwin.kafka.consumer_group.lag_status", **tags)


def test_state_is_persisted_once_a_minute_and_when_unscheduled(scenario, aggregator):
    """At thousands of groups the state is megabytes: it is written on the first run, then once a minute, and when
    the agent cancels the check; the runs between only keep it in memory."""
    group, topic = scenario["groups"]["stopped"], scenario["topic"]
    check = make_check(kafka_connect_str=scenario["bootstrap"], consumer_groups={group: {topic: None}})
    check.check_id = unique("persist-cadence")  # its own cache key, apart from the scenario's checks

    def persisted_observations() -> int:
        windows = check._load_state().windows  # what a restart would read
        return windows.counts[windows.slots[(group, topic, 0)]]

    run_once(check, aggregator)
    assert persisted_observations() == 1
    run_once(check, aggregator)
    assert persisted_observations() == 1
    check._state_persisted_at -= STATE_PERSIST_INTERVAL  # as if a minute had passed since the last write
    run_once(check, aggregator)
    assert persisted_observations() == 3
    run_once(check, aggregator)
    assert persisted_observations() == 3
    check.cancel()
    assert persisted_observations() == 4


@pytest.mark.skipif(bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS")), reason="needs the jars of a local broker")
@pytest.mark.parametrize("name", ["stopped", "slow", "rewound", "member"])
def test_lag_equals_kafka_consumer_groups_tool(kafka_broker, scenario, third_run, name):
    group, topic = scenario["groups"][name], scenario["topic"]
    reference = kafka_tool_lags(kafka_broker, group)
    assert reference, "the tool reported no partition"
    for (_, tool_topic, partition), lag in reference.items():
        tags = {"consumer_group": group, "topic": tool_topic, "partition": partition}
        if lag is None:
            assert last(third_run, "pettwin.kafka.partition.uncommitted", **tags) == 1
        else:
            assert tool_topic == topic
            assert last(third_run, "pettwin.kafka.consumer_lag", **tags) == lag
