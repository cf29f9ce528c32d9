"""The benchmark's live mode: between two runs of the check, every high watermark and every group's committed offset
move (one record produced on every partition, every group's offsets committed one further on each of its
partitions), in a process of its own so that its CPU and memory are not the check's."""

from __future__ import annotations

import multiprocessing
import time

from confluent_kafka import Producer
from kafka.net.manager import KafkaConnectionManager
from kafka.net.selector import NetworkSelector
from kafka.protocol.consumer import OffsetCommitRequest
from kafka.protocol.metadata import MetadataRequest

# OffsetCommit requests in flight at once (the broker answers them in order; thousands at once can wedge a connection)
IN_FLIGHT = 100


class Committer:
    """Commits offsets for groups with no members (generation -1), pipelined over one kafka-python connection: one
    request a group, IN_FLIGHT at a time (librdkafka's admin client took about 2 s for 1,000 groups)."""

    def __init__(self, bootstrap: str) -> None:
        self.net = NetworkSelector()
        self.manager = KafkaConnectionManager(
            self.net, bootstrap_servers=[bootstrap], max_in_flight_requests_per_connection=IN_FLIGHT + 1
        )
        metadata = self._ask("bootstrap-0", MetadataRequest(topics=[]))
        self.manager.cluster.update_metadata(metadata)
        self.node = self.manager.cluster.brokers().pop().node_id  # the benchmark's one broker coordinates every group

    def _wait(self, futures: list) -> list:
        for future in futures:
            self.net.poll(timeout_ms=60_000, future=future)
            if not future.succeeded():
                raise SystemExit(f"the benchmark's commit failed: {future.exception}")
        return [future.value for future in futures]

    def _ask(self, node, request):
        return self._wait([self.manager.get_connection(node, refresh_metadata_on_err=False).send_request(request)])[0]

    def commit(self, committed: dict[str, dict[tuple[str, int], int]]) -> None:
        Topic = OffsetCommitRequest.OffsetCommitRequestTopic
        groups = list(committed.items())
        for i in range(0, len(groups), IN_FLIGHT):
            futures = []
            for group, offsets in groups[i : i + IN_FLIGHT]:
                by_topic: dict[str, list] = {}
                for (topic, partition), offset in offsets.items():
                    by_topic.setdefault(topic, []).append(
                        Topic.OffsetCommitRequestPartition(partition_index=partition, committed_offset=offset)
                    )
                request = OffsetCommitRequest(
                    group_id=group,
                    generation_id_or_member_epoch=-1,
                    member_id="",
                    group_instance_id=None,
                    retention_time_ms=-1,
                    topics=[Topic(name=t, partitions=p) for t, p in by_topic.items()],
                    max_version=8,
                )
                connection = self.manager.get_connection(self.node, refresh_metadata_on_err=False)
                futures.append(connection.send_request(request))
            for answer in self._wait(futures):
                errors = [p.error_code for t in answer.topics for p in t.partitions if p.error_code]
                if errors:
                    raise SystemExit(f"the benchmark's commit was refused: error {errors[0]}")


def serve_mover(bootstrap: str, committed: dict[str, dict[tuple[str, int], int]], conn) -> None:
    """One move per True received, answered with its seconds; stops on False."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.num.messages": 100_000})
    committer = Committer(bootstrap)
    partitions = sorted({tp for offsets in committed.values() for tp in offsets})
    while conn.recv():
        started = time.monotonic()
        for topic, partition in partitions:
            producer.produce(topic, b"x", partition=partition)
        producer.flush(60)
        for offsets in committed.values():
            for tp in offsets:
                offsets[tp] += 1
        committer.commit(committed)
        conn.send(time.monotonic() - started)


class Mover:
    def __init__(self, bootstrap: str, committed: dict[str, dict[tuple[str, int], int]]) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process that has librdkafka threads
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=serve_mover, args=(bootstrap, committed, child_conn), daemon=True)
        self.process.start()
        self.seconds: list[float] = []

    def move(self) -> None:
        self.conn.send(True)
        self.seconds.append(self.conn.recv())

    def close(self) -> None:
        self.conn.send(False)
        self.process.join(30)
