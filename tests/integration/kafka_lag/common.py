"""Helpers for the Kafka lag integration tests: unique names, commits, and an independent read of lag."""

from __future__ import annotations

import uuid

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from pettwin_checks.kafka_lag.check import PettwinKafkaLagCheck


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)]).values():
        future.result(timeout=30)


def add_partitions(bootstrap: str, topic: str, total: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_partitions([NewPartitions(topic, total)]).values():
        future.result(timeout=30)


def delete_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics([topic]).values():
        future.result(timeout=30)


def delete_group(bootstrap: str, group: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_consumer_groups([group]).values():
        future.result(timeout=30)


def commit(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Commit offsets for a group from outside any running consumer (the group stays Empty)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    finally:
        consumer.close()


def independent_lag(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int | None]:
    """Lag per partition read through the consumer API (not the admin calls the check uses)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        lags = {}
        for tp in committed:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
            lags[tp.partition] = max(0, high - tp.offset) if tp.offset >= 0 else None
        return lags
    finally:
        consumer.close()


def kafka_tool_lags(broker, *groups: str) -> dict[tuple[str, str, int], int | None]:
    """Lag per (group, topic, partition) as Kafka's own kafka-consumer-groups tool reports it ('-' when nothing is
    committed). `broker`: a KafkaBroker or a KafkaCluster (anything with run_tool and bootstrap)."""
    output = broker.run_tool(
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        "--bootstrap-server",
        broker.bootstrap,
        "--describe",
        *(argument for group in groups for argument in ("--group", group)),
    )
    lines = [line.split() for line in output.splitlines() if line.strip()]
    header = next(line for line in lines if line[:2] == ["GROUP", "TOPIC"])
    rows = [dict(zip(header, line)) for line in lines if line[0] in groups]
    return {(r["GROUP"], r["TOPIC"], int(r["PARTITION"])): None if r["LAG"] == "-" else int(r["LAG"]) for r in rows}


def make_check(**instance) -> PettwinKafkaLagCheck:
    return PettwinKafkaLagCheck("pettwin_kafka_lag", {}, [instance])


def values(aggregator, metric: str, **tags) -> list[float]:
    """Values of `metric` submitted with all of `tags` (name:value), in submission order."""
    wanted = {f"{k}:{v}" for k, v in tags.items()}
    return [m.value for m in aggregator.metrics(metric) if wanted <= set(m.tags)]


def last(aggregator, metric: str, **tags) -> float:
    found = values(aggregator, metric, **tags)
    assert found, f"{metric} with {tags} was not submitted"
    return found[-1]


def service_checks(aggregator, name: str, **tags):
    wanted = {f"{k}:{v}" for k, v in tags.items()}
    return [sc for sc in aggregator.service_checks(name) if wanted <= set(sc.tags)]
