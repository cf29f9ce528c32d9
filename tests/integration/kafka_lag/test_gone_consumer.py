"""A consumer that is gone is STOP by the check's second observation; one that commits without joining its group
(assign mode, as Flink or Spark do) is never STOP while its offsets move; one alive but stuck stays STALL. A
partition's status and uncommitted series are sent while raised and once more when they fall back."""

import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from pettwin_checks.devenv.workload import produce

from .common import commit, create_topic, make_check, service_checks, unique, values

pytestmark = pytest.mark.integration

CRITICAL = 2


def status_of(check, aggregator, group: str):
    aggregator.reset()
    assert check.run() == ""
    [status] = service_checks(aggregator, "pettwin.kafka.consumer_group.status", consumer_group=group)
    return status.status, status.message or ""


def test_a_gone_consumer_is_stop_at_the_second_observation(kafka_broker, aggregator):
    bootstrap = kafka_broker.start().bootstrap
    topic, group = unique("gone"), unique("gone-group")
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, 20, partition=0)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    consumer.subscribe([topic])
    deadline = time.monotonic() + 30
    while not consumer.assignment():
        assert time.monotonic() < deadline
        consumer.poll(0.2)
    consumer.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
    consumer.close()  # the consumer is gone: its group is Empty, its lag stays
    produce(bootstrap, topic, 10, partition=0)
    check = make_check(kafka_connect_str=bootstrap, consumer_groups={group: None})  # status_window: 600 s

    assert status_of(check, aggregator, group) == (0, "")  # one observation cannot tell
    time.sleep(1)
    status, message = status_of(check, aggregator, group)
    assert status == CRITICAL
    assert message == (
        f"STOP: the group has no consumer (no members), offsets not moving: {topic}[0]: no commit for 1s with lag 25"
    )


def test_an_assign_mode_committer_without_members_is_never_stop_while_it_commits(kafka_broker, aggregator):
    bootstrap = kafka_broker.start().bootstrap
    topic, group = unique("assign"), unique("assign-group")
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, 100, partition=0)
    check = make_check(kafka_connect_str=bootstrap, consumer_groups={group: None})
    for committed in (10, 20, 30, 40):  # commits without joining the group: it has no members, and it lags
        commit(bootstrap, group, topic, {0: committed})
        produce(bootstrap, topic, 15, partition=0)
        status, message = status_of(check, aggregator, group)
        assert "STOP" not in message and status != CRITICAL, message
    # once it stops committing it is gone: the next observation of the unmoved offset (its second) says so
    status, message = status_of(check, aggregator, group)
    assert status == CRITICAL and message.startswith("STOP: the group has no consumer"), message


def partition_series(check, aggregator, group: str, topic: str) -> dict[tuple[str, int], list[float]]:
    """What one run sent of each partition's lag_status and uncommitted series, by (series, partition)."""
    aggregator.reset()
    assert check.run() == ""
    return {
        (name, partition): values(
            aggregator, f"pettwin.kafka.partition.{name}", consumer_group=group, topic=topic, partition=partition
        )
        for name in ("lag_status", "uncommitted")
        for partition in (0, 1)
    }


def test_partition_status_and_uncommitted_are_sent_while_raised_and_once_when_they_fall_back(kafka_broker, aggregator):
    bootstrap = kafka_broker.start().bootstrap
    topic, group = unique("raised"), unique("raised-group")
    create_topic(bootstrap, topic, 2)
    produce(bootstrap, topic, 20, partition=0)
    commit(bootstrap, group, topic, {0: 5})  # no members: a consumer that is gone; partition 1 never committed
    check = make_check(kafka_connect_str=bootstrap, consumer_groups={group: None})

    first = partition_series(check, aggregator, group, topic)  # the first run sends every partition's
    assert first == {
        ("lag_status", 0): [0],
        ("lag_status", 1): [0],
        ("uncommitted", 0): [0],
        ("uncommitted", 1): [1],
    }
    time.sleep(1)
    raised = partition_series(check, aggregator, group, topic)  # then only what is not 0
    assert raised == {("lag_status", 0): [4], ("lag_status", 1): [], ("uncommitted", 0): [], ("uncommitted", 1): [1]}

    commit(bootstrap, group, topic, {0: 20, 1: 0})  # caught up on both
    fallen = partition_series(check, aggregator, group, topic)  # the 0 of each recovery, once
    assert fallen == {("lag_status", 0): [0], ("lag_status", 1): [], ("uncommitted", 0): [], ("uncommitted", 1): [0]}
    quiet = partition_series(check, aggregator, group, topic)
    assert all(sent == [] for sent in quiet.values()), quiet
    assert values(aggregator, "pettwin.kafka.consumer_lag", consumer_group=group, topic=topic) == [0, 0]
