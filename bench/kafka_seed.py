"""The benchmark's cluster: topics of PARTITIONS_PER_TOPIC partitions with MESSAGES_PER_PARTITION records each, and
groups with committed offsets below the end (group g at g mod MESSAGES_PER_PARTITION on every partition of its topic).
"""

from __future__ import annotations

import time

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS_PER_TOPIC = 10
MESSAGES_PER_PARTITION = 5


def wait_for_leaders(admin: AdminClient, topics: list[str]) -> None:
    """Until every partition has a leader: a producer refuses a topic its metadata does not have yet."""
    for _ in range(120):
        listed = admin.list_topics(timeout=30).topics
        if all(
            t in listed
            and len(listed[t].partitions) == PARTITIONS_PER_TOPIC
            and all(p.leader >= 0 for p in listed[t].partitions.values())
            for t in topics
        ):
            return
        time.sleep(1)
    raise SystemExit("the benchmark topics got no leaders within 2 minutes")


def produce(bootstrap: str, partitions: list[tuple[str, int]]) -> None:
    """MESSAGES_PER_PARTITION messages on every partition, retrying partitions whose delivery failed (a broker busy
    creating thousands of partitions times requests out), so each group's committed offsets are below the end."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50})
    failed: set[tuple[str, int]] = set()

    def delivered(error, message):
        if error is not None:
            failed.add((message.topic(), message.partition()))

    for _ in range(5):
        failed.clear()
        for topic, partition in partitions:
            for _ in range(MESSAGES_PER_PARTITION):
                producer.produce(topic, b"x", partition=partition, on_delivery=delivered)
            producer.poll(0)
        producer.flush(300)
        if not failed:
            return
        partitions = sorted(failed)  # a partition partly written gets more than enough messages, never fewer
        time.sleep(1)
    raise SystemExit(f"{len(partitions)} partitions could not be written")


def seed(bootstrap: str, groups: int, partitions: int) -> dict[str, dict[tuple[str, int], int]]:
    """The groups and their committed offsets, by group."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [f"bench-{i:04d}" for i in range(max(1, partitions // PARTITIONS_PER_TOPIC))]
    existing = admin.list_topics(timeout=30).topics
    new = [NewTopic(t, num_partitions=PARTITIONS_PER_TOPIC, replication_factor=1) for t in topics if t not in existing]
    for i in range(0, len(new), 200):
        for future in admin.create_topics(new[i : i + 200], operation_timeout=60).values():
            try:
                future.result(timeout=120)
            except KafkaException as e:  # a topic the listing did not show yet: a rerun after a partial seed
                if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
    wait_for_leaders(admin, topics)
    produce(bootstrap, [(t, p) for t in topics for p in range(PARTITIONS_PER_TOPIC)])
    committed = {
        f"bench-group-{g:05d}": {
            (topics[g % len(topics)], p): g % MESSAGES_PER_PARTITION for p in range(PARTITIONS_PER_TOPIC)
        }
        for g in range(groups)
    }
    pending = list(range(groups))
    for _ in range(5):  # a just-created topic can refuse commits for a moment: retry those groups
        failed = []
        for i in range(0, len(pending), 200):
            futures = {}
            for g in pending[i : i + 200]:
                topic = topics[g % len(topics)]
                offsets = [TopicPartition(topic, p, g % MESSAGES_PER_PARTITION) for p in range(PARTITIONS_PER_TOPIC)]
                request = [ConsumerGroupTopicPartitions(f"bench-group-{g:05d}", offsets)]
                futures[g] = next(iter(admin.alter_consumer_group_offsets(request).values()))
            for g, future in futures.items():
                try:
                    result = future.result(timeout=120)
                    if any(tp.error for tp in result.topic_partitions):
                        failed.append(g)
                except KafkaException:
                    failed.append(g)
        pending = failed
        if not pending:
            return committed
        time.sleep(1)
    raise SystemExit(f"{len(pending)} groups could not be seeded")
