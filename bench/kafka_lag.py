"""Benchmark of the Kafka lag check against a real local broker: figures, not a pass/fail test.

    python bench/kafka_lag.py [--groups 500] [--partitions 2000] [--runs 500]

Creates the topics (10 partitions each) and N consumer groups spread over them with committed offsets, then runs
the check repeatedly and prints: median and p95 wall time per run, CPU seconds per run, admin calls per run by
Kafka API, submitted metric contexts, and the process RSS after runs 1, 10, 100, 500, 1000, 2000 and the last; the
same wall and CPU figures for the floor (only the admin calls the check needs), run between the check's runs in a
process of its own, so the RSS figures are the check's alone.
Uses $KAFKA_BOOTSTRAP_SERVERS when set, else starts a broker with pettwin_checks.devenv.kafka_broker.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import pathlib
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait

import psutil
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec
from datadog_checks.base.stubs import aggregator, datadog_agent

from pettwin_checks.devenv.kafka_broker import KafkaBroker
from pettwin_checks.kafka_lag.check import PettwinKafkaLagCheck
from pettwin_checks.kafka_lag.client import MAX_IN_FLIGHT, REQUEST_TIMEOUT, SOCKET_TIMEOUT, batches

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


def seed(bootstrap: str, groups: int, partitions: int) -> None:
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
                except Exception:
                    failed.append(g)
        pending = failed
        if not pending:
            return
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


def timed(client) -> list[float]:
    """Record how long each run's broker I/O takes, to tell it apart from computing and submitting."""
    seconds: list[float] = []
    snapshot = client.snapshot

    def timed_snapshot(selection):
        started = time.perf_counter()
        try:
            return snapshot(selection)
        finally:
            seconds.append(time.perf_counter() - started)

    client.snapshot = timed_snapshot
    return seconds


class WireRequests:
    """The requests librdkafka really sent, by Kafka API, per check run (one admin call can take several: a
    coordinator lookup first, and a description tries ConsumerGroupDescribe before DescribeGroups). Read from
    librdkafka's statistics, which are cumulative per client and come every 30 s: the figure is the rise between
    the first and the last reading of one client over the runs between them. librdkafka leaves OffsetFetch out of
    an admin client's statistics; it is one request per group (see the admin calls)."""

    def __init__(self, client, runs_done: Callable[[], int]) -> None:
        client._config.update({"stats_cb": self._read, "statistics.interval.ms": 30_000})
        self._runs_done = runs_done
        # (runs done, requests by API) at the first and the latest reading, by librdkafka client name
        self.first: dict[str, tuple[int, Counter[str]]] = {}
        self.latest: dict[str, tuple[int, Counter[str]]] = {}

    def _read(self, stats_json: str) -> None:
        stats = json.loads(stats_json)
        counts: Counter[str] = Counter()
        for broker in stats["brokers"].values():
            counts.update({api: n for api, n in broker["req"].items() if n})
        self.first.setdefault(stats["name"], (self._runs_done(), counts))
        self.latest[stats["name"]] = (self._runs_done(), counts)

    def per_run(self) -> dict[str, float]:
        runs, name = max(((self.latest[n][0] - self.first[n][0], n) for n in self.latest), default=(0, None))
        if runs <= 0:
            return {}
        first, latest = self.first[name][1], self.latest[name][1]
        return {api: (latest[api] - first[api]) / runs for api in sorted(latest) if latest[api] > first[api]}


class Floor:
    """Only the admin calls the check needs, in the same batches, with nothing done with the answers; like the
    check, librdkafka never times a request out itself, keeps at most MAX_IN_FLIGHT requests in flight per connection,
    and a run with an unanswered call gets a fresh client next."""

    def __init__(self, bootstrap: str) -> None:
        self.config = {
            "bootstrap.servers": bootstrap,
            "socket.timeout.ms": int(SOCKET_TIMEOUT * 1000),
            "max.in.flight.requests.per.connection": MAX_IN_FLIGHT,
        }
        self.admin = AdminClient(self.config)
        self.retired: list[tuple[AdminClient, list]] = []
        self.runs = self.unanswered_runs = 0

    def run(self) -> None:
        self.runs += 1
        self.retired = [(admin, calls) for admin, calls in self.retired if not all(c.done() for c in calls)]
        admin, unanswered, asked = self.admin, [], False
        try:
            admin.list_topics(timeout=30)
            listing = admin.list_consumer_groups(request_timeout=REQUEST_TIMEOUT)
            unanswered.append(listing)
            ids = sorted(g.group_id for g in listing.result(timeout=30).valid if g.group_id.startswith("bench-group-"))
            asked = True
            partitions = set()
            for batch in batches(ids):
                calls = list(admin.describe_consumer_groups(batch, request_timeout=REQUEST_TIMEOUT).values())
                fetched = [
                    f
                    for g in batch
                    for f in admin.list_consumer_group_offsets(
                        [ConsumerGroupTopicPartitions(g)], request_timeout=REQUEST_TIMEOUT
                    ).values()
                ]
                wait([*calls, *fetched], timeout=30)
                partitions.update(
                    (tp.topic, tp.partition)
                    for f in fetched
                    if f.done() and not f.exception()
                    for tp in f.result().topic_partitions
                )
                unanswered += [call for call in [*calls, *fetched] if not call.done()]
            latest = OffsetSpec.latest()
            for batch in batches(sorted(partitions)):
                calls = list(
                    admin.list_offsets(
                        {TopicPartition(t, p): latest for t, p in batch}, request_timeout=REQUEST_TIMEOUT
                    ).values()
                )
                wait(calls, timeout=30)
                unanswered += [call for call in calls if not call.done()]
        except (KafkaException, FutureTimeout):
            pass
        unanswered = [call for call in unanswered if not call.done()]
        if unanswered or not asked:
            self.unanswered_runs += 1
            self.retired.append((admin, unanswered))
            self.admin = AdminClient(self.config)


def serve_floor(bootstrap: str, conn) -> None:
    """The floor in a process of its own, so the check's RSS is the check's alone. One floor run per True received,
    answered with its wall and CPU seconds and the process RSS in MiB; on False, answers (runs, unanswered runs)."""
    floor = Floor(bootstrap)
    process = psutil.Process()
    while conn.recv():
        walls: list[float] = []
        cpus: list[float] = []
        timed_run(floor.run, walls, cpus)
        conn.send((walls[0], cpus[0], process.memory_info().rss / 2**20))
    conn.send((floor.runs, floor.unanswered_runs))


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

    def close(self) -> tuple[int, int]:
        self.conn.send(False)
        runs_unanswered = self.conn.recv()
        self.process.join(30)
        return runs_unanswered


CHECKPOINTS = (1, 10, 100, 500, 1000, 2000)


def figures(walls: list[float], cpus: list[float], rss: dict[int, float]) -> dict:
    return {
        "wall": statistics.median(walls),
        "p95": sorted(walls)[int(0.95 * (len(walls) - 1))],
        "cpu": statistics.median(cpus),
        "rss": rss,
    }


def timed_run(run, walls: list[float], cpus: list[float]) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    walls.append(time.perf_counter() - wall)
    cpus.append(time.process_time() - cpu)


def measure(check_run, floor: FloorProcess, runs: int, floor_runs: int) -> tuple[dict, dict]:
    """Wall and CPU seconds per run of the check and of the floor, and the process RSS at checkpoints.

    The floor runs are spread evenly between the check's, so both see the broker in the same state (its load
    drifts over a long benchmark). RSS checkpoints are printed as they are reached, so a long run shows progress.
    """
    process = psutil.Process()
    check_times, floor_times = ([], []), ([], [])
    rss: dict[int, float] = {}
    floor_every = max(1, runs // max(1, floor_runs))
    for number in range(1, runs + 1):
        timed_run(check_run, *check_times)
        if number % floor_every == 0:
            floor.timed_run(*floor_times)
        if number in CHECKPOINTS or number == runs:
            rss[number] = process.memory_info().rss / 2**20
            floor_so_far = f"{statistics.median(floor_times[0]):.3f}s" if floor_times[0] else "not run yet"
            print(
                f"  after run {number}: RSS {rss[number]:.1f} MiB; medians so far: check wall "
                f"{statistics.median(check_times[0]):.3f}s, CPU {statistics.median(check_times[1]):.3f}s, "
                f"floor wall {floor_so_far}",
                flush=True,
            )
    return figures(*check_times, rss), figures(*floor_times, {})


def report(name: str, measured: dict) -> None:
    print(
        f"{name}: wall per run median {measured['wall']:.3f}s (p95 {measured['p95']:.3f}s), "
        f"CPU per run median {measured['cpu']:.3f}s"
    )
    if measured["rss"]:
        print(f"{name}: RSS " + ", ".join(f"after run {run}: {mib:.1f} MiB" for run, mib in measured["rss"].items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--partitions", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--floor-runs", type=int, default=50, help="runs of the bare admin calls (the floor)")
    parser.add_argument("--max-contexts", type=int, help="cardinality budget for the check (default: the check's 5000)")
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(KafkaBroker())
        started = time.monotonic()
        seed(broker.bootstrap, args.groups, args.partitions)
        print(
            f"seeded {args.groups} groups over {args.partitions} partitions in {time.monotonic() - started:.1f}s "
            f"(Kafka {broker.version}, {broker.bootstrap})"
        )

        floor = FloorProcess(broker.bootstrap)
        cache = DiskCache(stack.enter_context(tempfile.TemporaryDirectory(prefix="pettwin-bench-cache-")))
        datadog_agent.write_persistent_cache, datadog_agent.read_persistent_cache = cache.write, cache.read
        # The stub aggregator looks up os.environ and checks every tag of every submission against Datadog's generic
        # tag names: a lint for tests (the suite runs it), not something the agent does. About 15 ms a run at 500
        # groups, so the benchmark skips it with the stub's own switch.
        os.environ["DDEV_SKIP_GENERIC_TAGS_CHECK"] = "1"

        instance = {
            "kafka_connect_str": broker.bootstrap,
            "monitor_unlisted_consumer_groups": True,
            "include_consumer_groups": ["^bench-group-"],
            "kafka_timeout": 30,
        }
        if args.max_contexts:
            instance["max_contexts"] = args.max_contexts
        check = PettwinKafkaLagCheck("pettwin_kafka_lag", {}, [instance])
        broker_seconds = timed(check.client)
        contexts, folded, unanswered = [], [], []
        wire = WireRequests(check.client, runs_done=lambda: len(contexts))

        def check_run():
            error = check.run()
            if error:
                raise SystemExit(f"check run failed: {error}")
            contexts.append(sum(len({tuple(m.tags) for m in ms}) for ms in aggregator._metrics.values()))
            # absent when the run could not reach the broker at all (the check then reports can_connect CRITICAL)
            folded.extend(m.value for m in aggregator.metrics("pettwin.kafka.contexts.folded"))
            unanswered.append(check.client._admin is None)  # the client is replaced after a run with no answer
            # The agent keeps nothing of a submission in the check's process; the stub keeps every one until reset.
            aggregator.reset()

        measured, floor_figures = measure(check_run, floor, args.runs, args.floor_runs)
        floor_runs, floor_unanswered = floor.close()
        requests = {api: count / args.runs for api, count in sorted(check.client.requests.items())}

    print(f"runs: check {args.runs}, floor {args.floor_runs}")
    report("floor (bare admin calls)", floor_figures)
    report("check", measured)
    print("floor RSS (its own process): " + ", ".join(f"after run {n}: {mib:.1f} MiB" for n, mib in floor.rss.items()))
    print(
        f"check / floor wall time: {measured['wall'] / floor_figures['wall']:.2f}x; the check's broker I/O alone: "
        f"median {statistics.median(broker_seconds):.3f}s "
        f"({statistics.median(broker_seconds) / floor_figures['wall']:.2f}x the floor)"
    )
    print(
        f"runs with a call left unanswered within kafka_timeout (a wedged connection; a fresh client next run): "
        f"check {sum(unanswered)} of {args.runs}, floor {floor_unanswered} of {floor_runs}"
    )
    print("check admin calls per run: " + ", ".join(f"{api} {count:g}" for api, count in requests.items()))
    wire_requests = wire.per_run()
    print(
        "check requests on the wire per run (librdkafka statistics, OffsetFetch not included): "
        + (", ".join(f"{api} {count:.0f}" for api, count in wire_requests.items()) or "too few runs to tell")
    )
    print(
        f"metric contexts per run: max {max(contexts)} (budget {instance.get('max_contexts', 5000)}), "
        f"folded contexts reported: {folded[-1]:g}"
    )
    rss = measured["rss"]
    print(
        f"check RSS growth: run 1 -> {args.runs}: {rss[args.runs] - rss[1]:+.1f} MiB; "
        f"run 10 -> {args.runs} (after the status windows fill): {rss[args.runs] - rss[min(10, args.runs)]:+.1f} MiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
