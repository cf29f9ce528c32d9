"""The benchmark's floor: the protocol minimum for the offsets (the check's batched requests, no Fetch, nothing done
with the answers), in a process of its own so that the check's RSS is the check's alone."""

from __future__ import annotations

import multiprocessing
import time
from collections import defaultdict

import psutil
from kafka.net.manager import KafkaConnectionManager
from kafka.net.selector import NetworkSelector
from kafka.protocol.admin import DescribeGroupsRequest, ListGroupsRequest
from kafka.protocol.consumer import ListOffsetsRequest, OffsetFetchRequest
from kafka.protocol.metadata import MetadataRequest

from pettwin_checks.devenv.kafka_wire import WireCount
from pettwin_checks.kafka_lag.wire import batches


def timed_run(run, walls: list[float], cpus: list[float]) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    walls.append(time.perf_counter() - wall)
    cpus.append(time.process_time() - cpu)


class Floor:
    """The protocol minimum: the requests the check needs, batched as the check batches them (Metadata, ListGroups
    per broker, DescribeGroups and OffsetFetch v8 per coordinator for BATCH groups, ListOffsets per leader for BATCH
    partitions), over kafka-python's connections, with nothing done with the answers but finding the partitions to
    ask for. A run with an unanswered request gets fresh connections next, as the check does."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.net: NetworkSelector | None = None
        self.manager: KafkaConnectionManager | None = None
        self.runs = self.unanswered_runs = 0

    def _ask(self, node_id, request):
        return self.manager.get_connection(node_id, refresh_metadata_on_err=False).send_request(request)

    def _wait(self, futures: list) -> bool:
        """Whether every future was answered within 30 s."""
        ends = time.monotonic() + 30
        for future in futures:
            self.net.poll(timeout_ms=max(0.0, ends - time.monotonic()) * 1000, future=future)
        return all(future.succeeded() for future in futures)

    def run(self) -> None:
        self.runs += 1
        if self.manager is None:
            self.net = NetworkSelector(slow_task_threshold_secs=0)
            self.manager = KafkaConnectionManager(self.net, bootstrap_servers=[self.bootstrap])
        brokers = [broker.node_id for broker in self.manager.cluster.brokers()] or ["bootstrap-0"]
        metadata = self._ask(brokers[0], MetadataRequest(topics=MetadataRequest.ALL_TOPICS))
        answered = self._wait([metadata])
        if answered:
            self.manager.cluster.update_metadata(metadata.value)
            leaders = {
                (topic.name, p.partition_index): p.leader_id
                for topic in metadata.value.topics
                for p in topic.partitions
            }
            del metadata
            listings = {b.node_id: self._ask(b.node_id, ListGroupsRequest()) for b in self.manager.cluster.brokers()}
            answered = self._wait(list(listings.values()))
        if answered:
            by_coordinator = defaultdict(list)
            for node_id, listing in listings.items():
                for group in listing.value.groups:
                    if group.group_id.startswith("bench-group-"):
                        by_coordinator[node_id].append(group.group_id)
            partitions: set[tuple[str, int]] = set()
            Group = OffsetFetchRequest.OffsetFetchRequestGroup
            for node_id, ids in by_coordinator.items():
                for batch in batches(sorted(ids)):
                    described = self._ask(node_id, DescribeGroupsRequest(groups=batch))
                    fetched = self._ask(
                        node_id,
                        OffsetFetchRequest(groups=[Group(group_id=g, topics=None) for g in batch], min_version=8),
                    )
                    answered = self._wait([described, fetched]) and answered
                    if fetched.succeeded():
                        partitions.update(
                            (t.name, p.partition_index)
                            for group in fetched.value.groups
                            for t in group.topics
                            for p in t.partitions
                        )
            by_leader = defaultdict(list)
            for tp in sorted(partitions):
                by_leader[leaders.get(tp, -1)].append(tp)
            Topic = ListOffsetsRequest.ListOffsetsTopic
            for leader, leader_partitions in by_leader.items():
                for batch in batches(leader_partitions):
                    by_topic = defaultdict(list)
                    for topic, p in batch:
                        by_topic[topic].append(Topic.ListOffsetsPartition(partition_index=p, timestamp=-1))
                    topics = [Topic(name=topic, partitions=asked) for topic, asked in by_topic.items()]
                    answered = (
                        self._wait([self._ask(leader, ListOffsetsRequest(topics=topics, min_version=1))]) and answered
                    )
        if not answered:
            self.unanswered_runs += 1
            self.manager.close()
            self.net.close()
            self.manager = None


def serve_floor(bootstrap: str, conn) -> None:
    """The floor in a process of its own, so the check's RSS is the check's alone. One floor run per True received,
    answered with its wall and CPU seconds and the process RSS in MiB; on False, answers (runs, unanswered runs,
    requests on the wire by Kafka API)."""
    floor = Floor(bootstrap)
    process = psutil.Process()
    with WireCount() as wire:
        while conn.recv():
            walls: list[float] = []
            cpus: list[float] = []
            timed_run(floor.run, walls, cpus)
            conn.send((walls[0], cpus[0], process.memory_info().rss / 2**20))
    conn.send((floor.runs, floor.unanswered_runs, dict(wire.sent)))


class FloorProcess:
    def __init__(self, bootstrap: str) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process that has librdkafka threads
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=serve_floor, args=(bootstrap, child_conn), daemon=True)
        self.process.start()
        self.rss: dict[int, float] = {}  # after the floor's first and latest run, by run number

    def timed_run(self, walls: list[float], cpus: list[float]) -> None:
        self.conn.send(True)
        wall, cpu, rss = self.conn.recv()
        walls.append(wall)
        cpus.append(cpu)
        self.rss = {1: self.rss.get(1, rss), len(walls): rss}

    def close(self) -> tuple[int, int, dict[str, int]]:
        self.conn.send(False)
        runs_unanswered_wire = self.conn.recv()
        self.process.join(30)
        return runs_unanswered_wire
