"""The benchmark's live mode: between two runs of the check, every high watermark and every group's committed offset
move (one record produced on every partition, every group's offsets committed one further on each of its
partitions), in a process of its own so that its CPU and memory are not the check's.

Both over one kafka-python connection: one Produce request for every partition at once, one OffsetCommit per group.
librdkafka's producer spent seconds of CPU a move on 5,000 partitions and left requests unanswered for a minute."""

from __future__ import annotations

import multiprocessing
import time

from kafka.net.manager import KafkaConnectionManager
from kafka.net.selector import NetworkSelector
from kafka.protocol.consumer import OffsetCommitRequest
from kafka.protocol.metadata import MetadataRequest
from kafka.protocol.producer import ProduceRequest
from kafka.record.default_records import DefaultRecordBatchBuilder

# OffsetCommit requests in flight at once (the broker answers them in order; thousands at once can wedge a connection)
IN_FLIGHT = 100


class Committer:
    """Produces one record on every partition, and commits offsets for groups with no members (generation -1),
    pipelined: one request a group, IN_FLIGHT at a time (librdkafka's admin client took about 2 s for 1,000 groups)."""

    def __init__(self, bootstrap: str) -> None:
        self.net = NetworkSelector()
        self.manager = KafkaConnectionManager(
            self.net,
            bootstrap_servers=[bootstrap],
            max_in_flight_requests_per_connection=IN_FLIGHT + 1,
            request_timeout_ms=300_000,
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

    def produce(self, partitions: list[tuple[str, int]]) -> None:
        Topic = ProduceRequest.TopicProduceData
        by_topic: dict[str, list] = {}
        now_ms = int(time.time() * 1000)
        for topic, partition in partitions:
            builder = DefaultRecordBatchBuilder(2, 0, False, -1, -1, -1, 1024)
            builder.append(0, now_ms, None, b"x", [])
            records = bytes(builder.build())
            by_topic.setdefault(topic, []).append(Topic.PartitionProduceData(index=partition, records=records))
        request = ProduceRequest(
            transactional_id=None,
            acks=1,
            timeout_ms=60_000,
            topic_data=[Topic(name=t, partition_data=p) for t, p in by_topic.items()],
            max_version=9,
        )
        [answer] = self._wait(
            [self.manager.get_connection(self.node, refresh_metadata_on_err=False).send_request(request)]
        )
        errors = [p.error_code for t in answer.responses for p in t.partition_responses if p.error_code]
        if errors:
            raise SystemExit(f"the benchmark's produce was refused: error {errors[0]}")

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
    committer = Committer(bootstrap)
    partitions = sorted({tp for offsets in committed.values() for tp in offsets})
    while conn.recv():
        started = time.monotonic()
        committer.produce(partitions)
        for offsets in committed.values():
            for tp in offsets:
                offsets[tp] += 1
        committer.commit(committed)
        seconds = time.monotonic() - started
        if seconds > 5:
            print(f"  a move took {seconds:.1f}s", flush=True)
        conn.send(seconds)


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
