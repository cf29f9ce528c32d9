"""Known lag on the test broker for the groups a shipped configuration names."""

from __future__ import annotations

SEEDED_GROUP, SEEDED_TOPIC = "pettwin-alerts", "pet-telemetry"


def seed_kafka(bootstrap: str, groups: dict[str, list[str]]) -> None:
    """Each topic gets 20 messages per partition; each group commits 5 per partition, so lag is 15."""
    from confluent_kafka import Consumer, TopicPartition

    from pettwin_checks.devenv.workload import ensure_topic, produce

    for group, topics in groups.items():
        for topic in topics:
            ensure_topic(bootstrap, topic, partitions=3)
            for partition in range(3):
                produce(bootstrap, topic, 20, partition=partition)
            consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
            try:
                consumer.commit(offsets=[TopicPartition(topic, p, 5) for p in range(3)], asynchronous=False)
            finally:
                consumer.close()
