"""A group on the new consumer protocol (KIP-848, Kafka 4): DescribeGroups answers "not a classic group", so the
check has librdkafka describe it; its state, members and assignment are reported like a classic group's."""

import time

import pytest
from confluent_kafka import Consumer

from pettwin_checks.devenv.kafka_runtime import major_version
from pettwin_checks.devenv.workload import produce

from .common import create_topic, last, make_check, unique

pytestmark = pytest.mark.integration


def test_a_kip_848_group_is_described(kafka_broker, aggregator):
    if kafka_broker.external or major_version(kafka_broker.version) < 4:
        pytest.skip("the new consumer protocol is served by Kafka 4 brokers (run with KAFKA_VERSION=4.x)")
    bootstrap = kafka_broker.start().bootstrap
    topic, group = unique("kip848"), unique("kip848-group")
    create_topic(bootstrap, topic, 2)
    produce(bootstrap, topic, 10, partition=0)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "group.protocol": "consumer",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        while len(consumer.assignment()) < 2 and time.monotonic() < deadline:
            consumer.poll(0.2)
        message = None
        while message is None and time.monotonic() < deadline:
            message = consumer.poll(0.5)
        assert message is not None and message.error() is None and message.partition() == 0
        consumer.commit(message=message, asynchronous=False)  # committed offset 1 of 10 on partition 0

        check = make_check(kafka_connect_str=bootstrap, consumer_groups={group: None})
        assert check.run() == ""
        tags = {"consumer_group": group}
        assert last(aggregator, "pettwin.kafka.consumer_group.state", consumer_group_state="Stable", **tags) == 1
        assert last(aggregator, "pettwin.kafka.consumer_group.members", **tags) == 1
        assert last(aggregator, "pettwin.kafka.consumer_group.assigned_partitions", **tags) == 2
        assert last(aggregator, "pettwin.kafka.consumer_lag", topic=topic, partition=0, **tags) == 9
    finally:
        consumer.close()
