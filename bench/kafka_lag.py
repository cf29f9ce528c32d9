"""Benchmark of the Kafka lag check against a real local broker: figures, not a pass/fail test.

    python bench/kafka_lag.py [--groups 500] [--partitions 2000] [--runs 500] [--live] [--max-contexts N]

Creates the topics (10 partitions each) and N consumer groups spread over them with committed offsets, then runs
the check repeatedly and prints: the first run (a cold start, with the check's default options unless
--collection-timeout), then over the other runs median, p95 and max wall time, CPU seconds, the requests on the wire per
run by Kafka API (Fetch included, and the most Fetch requests in one run), how many time lags were exact, submitted
metric contexts, and the process RSS after runs 1, 10, 100, 500, 1000, 2000 and the last; the same wall and CPU
figures for the floor (the protocol minimum for the offsets: the batched requests alone, no Fetch, nothing done with
the answers), run between the check's runs in a process of its own, so the RSS figures are the check's alone.
With --live, between two runs every high watermark and every group's committed offset move (kafka_live.py).
Requests are counted in kafka-python's protocol layer (pettwin_checks.devenv.kafka_wire).
Starts a broker with pettwin_checks.devenv.kafka_broker.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import pathlib
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict

import psutil
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from datadog_checks.base.stubs import aggregator, datadog_agent
from kafka.net.manager import KafkaConnectionManager
from kafka.net.selector import NetworkSelector
from kafka.protocol.admin import DescribeGroupsRequest, ListGroupsRequest
from kafka.protocol.consumer import ListOffsetsRequest, OffsetFetchRequest
from kafka.protocol.metadata import MetadataRequest
from kafka_live import Mover

from pettwin_checks.devenv.kafka_broker import KafkaBroker
from pettwin_checks.devenv.kafka_wire import WireCount
from pettwin_checks.kafka_lag.check import PettwinKafkaLagCheck
from pettwin_checks.kafka_lag.wire import batches

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


class DiskCache:
    """The persistent cache in files, as the agent keeps it (under its run directory). The stub keeps it in a dict in
    the check's process, which would count megabytes of cached state in the check's RSS."""

    def __init__(self, directory: str) -> None:
        self.directory = pathlib.Path(directory)

    def write(self, key: str, value: str) -> None:
        (self.directory / key).write_text(value)

    def read(self, key: str) -> str:
        path = self.directory / key
        return path.read_text() if path.exists() else ""


def skip_tag_lint(metric: str, tags: list[str]) -> None:
    """The stub aggregator's generic-tag lint, off."""


def broker_workdir(stack: contextlib.ExitStack) -> str | None:
    """The broker's directory in memory (/dev/shm) where the machine has one, else a temporary one of its own.

    In lockstep every partition's log crosses `log.index.interval.bytes` on the same Produce: 5,000 partitions wrote
    their first offset- and time-index entries at once, each the first write to a sparse memory-mapped file, which on
    this machine's ext4 costs about 13 ms (2,000 such writes: 25 s; on tmpfs 6 ms in all), so the broker answered
    nothing for a minute (bench/README.md). That is the benchmark's disk, not the check."""
    if not os.access("/dev/shm", os.W_OK):
        return None
    return stack.enter_context(tempfile.TemporaryDirectory(prefix="pettwin-bench-kafka-", dir="/dev/shm"))


def timed(owner, method: str, seconds: list[float] | None = None) -> list[float]:
    """Record how long each call of a method takes (the offsets' broker I/O), to tell it apart from computing and
    submitting; into `seconds` when given."""
    seconds = [] if seconds is None else seconds
    call = getattr(owner, method)

    def timed_call(*args):
        started = time.perf_counter()
        try:
            return call(*args)
        finally:
            seconds.append(time.perf_counter() - started)

    setattr(owner, method, timed_call)
    return seconds


def timed_reads(client) -> list[float]:
    """Record, in runs with records to read, how long the check waited for the Fetch answers (and decoded them) after
    submitting what the offsets alone tell: the part of the reads the run's wall time still shows."""
    seconds: list[float] = []
    start_reading = client.start_reading

    def timed_start(wanted):
        reading = start_reading(wanted)
        if wanted:
            timed(reading, "finish", seconds)
        return reading

    client.start_reading = timed_start
    return seconds


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


CHECKPOINTS = (1, 10, 100, 500, 1000, 2000)


def figures(walls: list[float], cpus: list[float], rss: dict[int, float]) -> dict:
    """Over the runs after the first (a cold start, reported on its own) when there are several."""
    steady_walls, steady_cpus = (walls[1:], cpus[1:]) if len(walls) > 1 else (walls, cpus)
    return {
        "first": (walls[0], cpus[0]) if walls else None,
        "wall": statistics.median(steady_walls),
        "p95": sorted(steady_walls)[int(0.95 * (len(steady_walls) - 1))],
        "max": max(steady_walls),
        "cpu": statistics.median(steady_cpus),
        "cpu_max": max(steady_cpus),
        "rss": rss,
        "walls": walls,
    }


def timed_run(run, walls: list[float], cpus: list[float]) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    walls.append(time.perf_counter() - wall)
    cpus.append(time.process_time() - cpu)


def measure(check_run, floor: FloorProcess, runs: int, floor_runs: int, between) -> tuple[dict, dict]:
    """Wall and CPU seconds per run of the check and of the floor, and the process RSS at checkpoints.

    The floor runs are spread evenly between the check's, so both see the broker in the same state (its load
    drifts over a long benchmark). RSS checkpoints are printed as they are reached, so a long run shows progress.
    `between()` runs after each of the check's runs, untimed (reading what the run submitted, the live mode's
    moves). SIGUSR1 ends
    the measuring early, with the figures of the runs done (the benchmark's own processes are left to end cleanly).
    """
    stop: list[bool] = []
    signal.signal(signal.SIGUSR1, lambda *_: stop.append(True))
    process = psutil.Process()
    check_times, floor_times = ([], []), ([], [])
    rss: dict[int, float] = {}
    floor_every = max(1, runs // max(1, floor_runs))
    for number in range(1, runs + 1):
        timed_run(check_run, *check_times)
        between()
        if number % floor_every == 0 or not floor_times[0]:
            floor.timed_run(*floor_times)
        if number in CHECKPOINTS or number == runs or stop:
            rss[number] = process.memory_info().rss / 2**20
            floor_so_far = f"{statistics.median(floor_times[0]):.3f}s" if floor_times[0] else "not run yet"
            print(
                f"  after run {number}: RSS {rss[number]:.1f} MiB; medians so far: check wall "
                f"{statistics.median(check_times[0]):.3f}s, CPU {statistics.median(check_times[1]):.3f}s, "
                f"floor wall {floor_so_far}",
                flush=True,
            )
        if stop:
            print(f"  stopped: figures of the {number} runs done", flush=True)
            break
    return figures(*check_times, rss), figures(*floor_times, {})


def report(name: str, measured: dict) -> None:
    print(
        f"{name}: wall per run median {measured['wall']:.3f}s (p95 {measured['p95']:.3f}s, max "
        f"{measured['max']:.3f}s), CPU per run median {measured['cpu']:.3f}s (max {measured['cpu_max']:.3f}s); "
        f"first run {measured['first'][0]:.3f}s, CPU {measured['first'][1]:.3f}s"
    )
    if measured["rss"]:
        print(f"{name}: RSS " + ", ".join(f"after run {run}: {mib:.1f} MiB" for run, mib in measured["rss"].items()))


def time_lag_kinds(stub) -> dict[str, int]:
    """Of this run's lagging partitions (consumer_lag > 0): how many got a time lag of each kind, how many none, how
    many a time lag of 0."""
    lagging = {tuple(sorted(m.tags)) for m in stub.metrics("pettwin.kafka.consumer_lag") if m.value > 0}
    kinds: Counter[str] = Counter()
    for m in stub.metrics("pettwin.kafka.consumer_lag_seconds"):
        kind = next(t for t in m.tags if t.startswith("lag_seconds_kind:"))
        key = tuple(sorted(t for t in m.tags if t != kind))
        if key in lagging:
            kinds[kind.split(":")[1]] += 1
            kinds["zero"] += m.value == 0
    kinds["none"] = len(lagging) - sum(v for k, v in kinds.items() if k != "zero")
    kinds["lagging"] = len(lagging)
    return kinds


# A move (untimed) this long means the broker stalled: a run right after one may wait on the same stall.
STALLED_MOVE = 5.0


def report_slow_runs(walls: list[float], moves: list[float]) -> None:
    """The runs over 1 s, and how many came right after a move that took over STALLED_MOVE seconds (run k follows
    move k - 1); the maximum of the other runs."""
    after_stall = {number for number, seconds in enumerate(moves, start=2) if seconds > STALLED_MOVE}
    slow = [number for number, wall in enumerate(walls, start=1) if wall > 1.0 and number > 1]
    others = [wall for number, wall in enumerate(walls, start=1) if number > 1 and number not in after_stall]
    print(
        f"runs over 1 s after the first: {len(slow)} ({len(set(slow) & after_stall)} right after a move that took "
        f"over {STALLED_MOVE:g}s, of {len(after_stall)} such moves); max of the runs not after one: "
        f"{max(others, default=0):.3f}s"
    )


def report_time_lags(time_lags: list[dict[str, int]], per_run: list[Counter]) -> None:
    first, steady = time_lags[0], time_lags[1:] or time_lags
    print(f"first run: lagging partitions {first['lagging']}, time lags {dict(first)}")
    lagging = sum(t["lagging"] for t in steady)
    exact = sum(t.get("exact", 0) for t in steady)
    print(
        f"other runs: {exact} of {lagging} lagging partitions' time lags exact ({100 * exact / max(1, lagging):.2f}%), "
        f"none {sum(t['none'] for t in steady)}, zero {sum(t['zero'] for t in steady)}; runs with every one exact: "
        f"{sum(t.get('exact', 0) == t['lagging'] for t in steady)} of {len(steady)}"
    )
    fetches = [run.get("Fetch", 0) for run in per_run]
    totals = [sum(run.values()) for run in per_run[1:] or per_run]
    print(
        f"Fetch requests per run: first {fetches[0]}, then median {statistics.median(fetches[1:] or fetches)}, max "
        f"{max(fetches[1:] or fetches)}; all requests per run after the first: median {statistics.median(totals)}, "
        f"max {max(totals)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--partitions", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--floor-runs", type=int, default=50, help="runs of the batched requests alone (the floor)")
    parser.add_argument("--max-contexts", type=int, help="cardinality budget for the check (default: the check's 5000)")
    parser.add_argument(
        "--collection-timeout", type=float, help="the check's collection_timeout (default: the check's)"
    )
    parser.add_argument(
        "--live", action="store_true", help="move every high watermark and committed offset between runs"
    )
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(KafkaBroker(broker_workdir(stack)))
        started = time.monotonic()
        committed = seed(broker.bootstrap, args.groups, args.partitions)
        print(
            f"seeded {args.groups} groups over {args.partitions} partitions in {time.monotonic() - started:.1f}s "
            f"(Kafka {broker.version}, {broker.bootstrap}, data in {broker.workdir})"
        )

        floor = FloorProcess(broker.bootstrap)
        mover = Mover(broker.bootstrap, committed) if args.live else None
        cache = DiskCache(stack.enter_context(tempfile.TemporaryDirectory(prefix="pettwin-bench-cache-")))
        datadog_agent.write_persistent_cache, datadog_agent.read_persistent_cache = cache.write, cache.read
        # The stub aggregator checks every tag of every submission against Datadog's generic tag names: a lint for
        # tests (the suite runs it), not something the agent does, so the benchmark turns it off. Its own switch
        # (DDEV_SKIP_GENERIC_TAGS_CHECK) still reads os.environ once a submission, about 0.05 s a run at 68,000
        # series (bench/README.md), so the lint is replaced outright.
        sys.modules["datadog_checks.base.stubs.aggregator"].check_tag_names = skip_tag_lint

        instance = {
            "kafka_connect_str": broker.bootstrap,
            "monitor_unlisted_consumer_groups": True,
            "include_consumer_groups": ["^bench-group-"],
        }
        if args.collection_timeout:
            instance["collection_timeout"] = args.collection_timeout
        if args.max_contexts:
            instance["max_contexts"] = args.max_contexts
        check = PettwinKafkaLagCheck("pettwin_kafka_lag", {}, [instance])
        broker_seconds = timed(check.client, "snapshot")
        read_seconds = timed_reads(check.client)
        contexts, folded, unanswered, time_lags, per_run = [], [], [], [], []
        counted = WireCount()
        warned: set[str] = set()

        sent_before: list[Counter] = []

        def check_run():
            sent_before.append(Counter(counted.sent))
            error = check.run()
            if error:
                raise SystemExit(f"check run failed: {error}")

        def after_run():
            """Untimed: reading what the run submitted is the benchmark's work, not the check's."""
            per_run.append(counted.sent - sent_before.pop())
            time_lags.append(time_lag_kinds(aggregator))
            for warning in check.get_warnings():
                if warning not in warned:
                    warned.add(warning)
                    print(f"  run {len(per_run)} warned: {warning[:300]}", flush=True)
            contexts.append(sum(len({tuple(m.tags) for m in ms}) for ms in aggregator._metrics.values()))
            # absent when the run could not reach the broker at all (the check then reports can_connect CRITICAL)
            folded.extend(m.value for m in aggregator.metrics("pettwin.kafka.contexts.folded"))
            unanswered.append(check.client._wire._manager is None)  # closed after a run with no answer
            # The agent keeps nothing of a submission in the check's process; the stub keeps every one until reset.
            aggregator.reset()
            if mover is not None:
                mover.move()

        with counted as wire:
            measured, floor_figures = measure(check_run, floor, args.runs, args.floor_runs, after_run)
        floor_runs, floor_unanswered, floor_wire = floor.close()
        if mover is not None:
            mover.close()

    runs = max(measured["rss"])  # the runs done (fewer than asked when interrupted)
    print(f"runs: check {runs}, floor {floor_runs}, live {args.live}, instance {instance}")
    if mover is not None:
        print(f"moves between runs (untimed): median {statistics.median(mover.seconds):.2f}s")
        report_slow_runs(measured["walls"], mover.seconds)
    report_time_lags(time_lags, per_run)
    report("floor (the batched requests alone)", floor_figures)
    report("check", measured)
    print("floor RSS (its own process): " + ", ".join(f"after run {n}: {mib:.1f} MiB" for n, mib in floor.rss.items()))
    print(
        f"check / floor wall time: {measured['wall'] / floor_figures['wall']:.2f}x; the check's broker I/O alone: "
        f"median {statistics.median(broker_seconds):.3f}s "
        f"({statistics.median(broker_seconds) / floor_figures['wall']:.2f}x the floor)"
    )
    if read_seconds:
        print(
            f"record reads left after the offsets' series (the wait for the Fetch answers, decoding them; in runs "
            f"with something to read: {len(read_seconds)}): first "
            f"{read_seconds[0]:.3f}s, then median {statistics.median(read_seconds[1:] or read_seconds):.3f}s"
        )
    print(
        f"runs with a request left unanswered within collection_timeout (fresh connections next run): "
        f"check {sum(unanswered)} of {runs}, floor {floor_unanswered} of {floor_runs}"
    )
    for name, sent, count in (("check", wire.sent, runs), ("floor", floor_wire, floor_runs)):
        print(
            f"{name} requests on the wire per run (kafka-python's protocol layer; the first run also connects): "
            f"{sum(sent.values()) / count:.2f}: "
            + ", ".join(f"{api} {n / count:.2f}" for api, n in sorted(sent.items()))
        )
    print(
        f"metric contexts per run: max {max(contexts)} (budget {instance.get('max_contexts', 5000)}), "
        f"folded contexts reported: {folded[-1]:g}"
    )
    rss = measured["rss"]
    print(
        f"check RSS growth: run 1 -> {runs}: {rss[runs] - rss[1]:+.1f} MiB; "
        f"run 10 -> {runs} (after the status windows fill): {rss[runs] - rss[min(10, runs)]:+.1f} MiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
