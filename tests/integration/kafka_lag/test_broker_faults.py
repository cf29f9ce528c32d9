"""Several brokers failing over while the check runs every few seconds, consumers commit and a producer produces, on a
real 3-broker KRaft cluster (replication factor 3): a rolling restart; kill -9 of the broker that coordinates most
groups and leads partitions, restarted after 20 s; leaders moved by a preferred-leader election and by a
reassignment. The leader election among agents runs through the same faults.

Every run either reports exact lag (the check's own high watermark minus the committed offset, for every partition
of every group) or fails visibly (can_connect not OK with a warning naming a broker, or the group ERR): never a
partition missing without a word, no REWIND, no STALL or STOP while a group's commits land, can_connect OK by the
second run after a fault ends, every run within collection_timeout + 1 s, never two collectors at once.

One cluster per interpreter (Kafka 3.9.2 on Python 3.11, 4.1.1 on 3.13; see tests/fixtures/kafka.py); the whole
sequence takes about two minutes."""

from __future__ import annotations

import bisect
import logging
import threading
import time
from dataclasses import dataclass, field

import pytest
from confluent_kafka import Consumer, Producer

from pettwin_checks.coordination import LeaderElection
from pettwin_checks.kafka.connection import KafkaConnection

from .common import independent_lag, kafka_tool_lags, make_check, unique

pytestmark = pytest.mark.integration

PARTITIONS = 6
GROUPS = 6
BUDGET = 5.0  # collection_timeout
RUN_INTERVAL = 2.0
SETTLE = 8.0  # seconds of runs after each fault before the next one
KILLED_FOR = 20.0
OK, WARNING, CRITICAL = 0, 1, 2


class Workload:
    """A producer on every partition and one committing consumer per group, each on its own thread."""

    def __init__(self, bootstrap: str, topic: str, groups: list[str]) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._produce, daemon=True)]
        self.threads += [threading.Thread(target=self._consume, args=(group,), daemon=True) for group in groups]
        # each group's acknowledged commits that moved an offset forward: (when the last record it covers was read,
        # when it was acknowledged), monotonic times
        self.progress: dict[str, list[tuple[float, float]]] = {group: [] for group in groups}

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def _produce(self) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5})
        sent = 0
        while not self.stop.is_set():
            producer.produce(self.topic, b"x" * 64, partition=sent % PARTITIONS)
            sent += 1
            producer.poll(0)
            time.sleep(0.01)
        producer.flush(30)

    def _consume(self, group: str) -> None:
        read: dict[int, list[tuple[int, float]]] = {}  # partition: (offset, when it was read), in order
        committed: dict[int, int] = {}

        def on_commit(error, partitions):
            # A commit acknowledged now may have landed long ago (its answer lost with a killed coordinator, then
            # retried): what dates it is when the last record it covers was read, after which it was made.
            if error is not None:
                return
            for tp in partitions:
                if tp.error is None and tp.offset > committed.get(tp.partition, -1):
                    committed[tp.partition] = tp.offset
                    offsets = read.get(tp.partition, [])
                    at = bisect.bisect_left(offsets, (tp.offset - 1, 0.0))
                    if at < len(offsets) and offsets[at][0] == tp.offset - 1:
                        self.progress[group].append((offsets[at][1], time.monotonic()))

        consumer = Consumer(
            {
                "on_commit": on_commit,
                "bootstrap.servers": self.bootstrap,
                "group.id": group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": True,
                "auto.commit.interval.ms": 500,
                "session.timeout.ms": 10000,
            }
        )
        consumer.subscribe([self.topic])
        try:
            while not self.stop.is_set():
                message = consumer.poll(0.1)
                if message is not None and message.error() is None:
                    read.setdefault(message.partition(), []).append((message.offset(), time.monotonic()))
        finally:
            consumer.close()  # commits what it consumed


@dataclass
class Run:
    started: float
    seconds: float
    can_connect: tuple[int, str]
    lags: dict[tuple[str, int], float]  # (group, partition): consumer_lag
    committed: dict[tuple[str, int], float]
    high_watermarks: dict[int, float]
    statuses: dict[str, tuple[int, str]]  # group: (service check status, message)
    warnings: list[str]
    collectors: int = 0


@dataclass
class Faults:
    """What the fault thread did, with monotonic times."""

    events: list[tuple[str, float, float]] = field(default_factory=list)  # (name, started, ended)
    error: Exception | None = None
    done: threading.Event = field(default_factory=threading.Event)


def tag(tags: list[str], name: str) -> str:
    return next(t.split(":", 1)[1] for t in tags if t.startswith(name + ":"))


def run_check(check, aggregator, groups: list[str], topic: str) -> Run:
    aggregator.reset()
    started = time.monotonic()
    assert check.run() == ""
    seconds = time.monotonic() - started
    [can_connect] = aggregator.service_checks("pettwin.kafka.can_connect")
    by_partition = {}
    for name in ("pettwin.kafka.consumer_lag", "pettwin.kafka.consumer_offset"):
        by_partition[name] = {
            (tag(m.tags, "consumer_group"), int(tag(m.tags, "partition"))): m.value
            for m in aggregator.metrics(name)
            if tag(m.tags, "topic") == topic
        }
    high_watermarks = {
        int(tag(m.tags, "partition")): m.value
        for m in aggregator.metrics("pettwin.kafka.broker_offset")
        if tag(m.tags, "topic") == topic
    }
    statuses = {
        tag(sc.tags, "consumer_group"): (sc.status, sc.message or "")
        for sc in aggregator.service_checks("pettwin.kafka.consumer_group.status")
        if tag(sc.tags, "consumer_group") in groups
    }
    return Run(
        started,
        seconds,
        (can_connect.status, can_connect.message or ""),
        by_partition["pettwin.kafka.consumer_lag"],
        by_partition["pettwin.kafka.consumer_offset"],
        high_watermarks,
        statuses,
        check.get_warnings(),
    )


def coordinator_of_most(cluster, groups: list[str], topic: str) -> int:
    """Of the brokers leading partitions of `topic`, the one coordinating most of `groups`."""
    leading = {leader for (t, _), leader in cluster.leaders().items() if t == topic}
    counts = dict.fromkeys(leading, 0)
    admin = cluster.admin()  # kept until the answers: a destroyed client fails its calls
    for future in admin.describe_consumer_groups(groups).values():
        coordinator = future.result(timeout=30).coordinator.id
        if coordinator in counts:
            counts[coordinator] += 1
    victim = max(counts, key=counts.get)
    assert counts[victim] > 0, f"no broker both leads {topic} partitions and coordinates a group: {counts}"
    return victim


def inflict(cluster, topic: str, groups: list[str], faults: Faults) -> None:
    """The faults, one after the other, each followed by SETTLE seconds of calm."""

    def fault(name, action):
        started = time.monotonic()
        action()
        faults.events.append((name, started, time.monotonic()))
        time.sleep(SETTLE)

    def rolling_restart():
        for node in cluster.nodes:
            node.stop()
            cluster.restart(node.node_id)

    def kill_coordinator():
        victim = coordinator_of_most(cluster, groups, topic)
        cluster.node(victim).kill()
        time.sleep(KILLED_FOR)
        cluster.restart(victim)

    def preferred_election():  # the partitions and group coordinators the restart moved go back where preferred
        offsets_partitions = [tp for tp in cluster.leaders() if tp[0] == "__consumer_offsets"]
        cluster.elect_preferred_leaders([(topic, p) for p in range(PARTITIONS)] + offsets_partitions)

    def reassignment():  # every partition's preferred leader becomes its next replica, then leads
        current = cluster.leaders()
        replicas = {}
        for p in range(PARTITIONS):
            first = current[(topic, p)] % len(cluster.nodes) + 1
            replicas[(topic, p)] = [first] + [n.node_id for n in cluster.nodes if n.node_id != first]
        cluster.reassign(replicas)
        cluster.elect_preferred_leaders(list(replicas))

    try:
        time.sleep(RUN_INTERVAL * 2)
        fault("rolling restart", rolling_restart)
        fault("preferred-leader election", preferred_election)  # also spreads leaders and coordinators again
        fault("kill -9 of the coordinator", kill_coordinator)
        fault("reassignment", reassignment)
    except Exception as e:  # noqa: BLE001  (raised again in the test's thread)
        faults.error = e
    finally:
        faults.done.set()


def test_the_check_reports_exact_lag_or_fails_visibly_through_broker_faults(kafka_cluster, aggregator):
    bootstrap = kafka_cluster.bootstrap
    topic = unique("pets")
    prefix = unique("faults")
    groups = [f"{prefix}-{i}" for i in range(GROUPS)]
    kafka_cluster.create_topic(topic, PARTITIONS)
    workload = Workload(bootstrap, topic, groups)
    workload.start()
    check = make_check(
        kafka_connect_str=bootstrap,
        monitor_unlisted_consumer_groups=True,
        include_consumer_groups=[f"^{prefix}-"],
        granularity="partition",
        collection_timeout=BUDGET,
    )
    log = logging.getLogger("test.faults")
    connection = KafkaConnection(kafka_connect_str=bootstrap)
    election_group = unique("faults-election")
    elections = [LeaderElection(connection, election_group, 6, "faults", bootstrap, 30, log) for _ in range(2)]
    faults = Faults()
    driver = threading.Thread(target=inflict, args=(kafka_cluster, topic, groups, faults), daemon=True)
    runs: list[Run] = []
    try:
        # every group has committed on every partition before the faults begin
        deadline = time.monotonic() + 60
        while len(run_check(check, aggregator, groups, topic).lags) < GROUPS * PARTITIONS:
            assert time.monotonic() < deadline, "the consumers did not commit on every partition within 60 s"
            time.sleep(1)
        driver.start()
        while not faults.done.is_set():
            run = run_check(check, aggregator, groups, topic)
            run.collectors = sum(election.is_leader(2.0) for election in elections)
            runs.append(run)
            time.sleep(max(0.0, RUN_INTERVAL - (time.monotonic() - run.started - run.seconds)))
    finally:
        workload.close()
        driver.join(120)
        for election in elections:
            election.close()
    if faults.error is not None:
        raise faults.error
    timeline = ", ".join(f"{name} {a - runs[0].started:.0f}-{b - runs[0].started:.0f}s" for name, a, b in faults.events)
    calm = sorted(run.seconds for run in runs if all(not a <= run.started <= b for _, a, b in faults.events))
    slow = "; ".join(
        f"{run.started - runs[0].started:.0f}s took {run.seconds:.1f}s ({run.can_connect[1][:160] or 'OK'})"
        for run in runs
        if run.seconds > 2
    )
    logging.getLogger(__name__).info(
        "faults: %s; %d runs, max %.1fs; outside the faults median %.2fs, max %.2fs; slow runs: %s",
        timeline,
        len(runs),
        max(run.seconds for run in runs),
        calm[len(calm) // 2],
        calm[-1],
        slow,
    )
    assert [name for name, _, _ in faults.events] == [
        "rolling restart",
        "preferred-leader election",
        "kill -9 of the coordinator",
        "reassignment",
    ]

    assert all(len(workload.progress[group]) > len(runs) for group in groups)  # they kept committing
    for number, run in enumerate(runs):
        where = f"run {number} at {run.started - runs[0].started:.1f}s"
        assert run.seconds <= BUDGET + 1, f"{where} took {run.seconds:.1f}s"
        failed_visibly = run.can_connect[0] != OK and any(w.startswith("broker ") for w in run.warnings)
        failed_visibly |= run.can_connect[0] == CRITICAL
        for group in groups:
            status, message = run.statuses[group]
            assert not message.startswith("REWIND"), f"{where}: {group} {message}"
            if message.startswith(("STALL", "STOP")) and number >= 2:
                # false if a commit made after run n-2 ended was acknowledged before this run: the committed offset
                # then moved between two of the window's observations
                since = runs[number - 2].started + runs[number - 2].seconds
                moved = [acked for made, acked in workload.progress[group] if made > since and acked < run.started]
                assert not moved, f"{where}: {group} committed {len(moved)} times since run {number - 2}: {message}"
            for partition in range(PARTITIONS):
                key = (group, partition)
                if key in run.lags:  # exact: the check's own high watermark minus the committed offset
                    expected = max(0, run.high_watermarks[partition] - run.committed[key])
                    assert run.lags[key] == expected, f"{where}: {key}"
                else:  # missing, then said: the run failed visibly, or the group is ERR naming the failure
                    group_err = status == CRITICAL and message.startswith("ERR")
                    assert failed_visibly or group_err, f"{where}: {key} missing without a word ({run.can_connect})"
        assert run.collectors <= 1, f"{where}: two collectors"

    next_starts = [started for _, started, _ in faults.events[1:]] + [float("inf")]
    for (name, _, ended), next_start in zip(faults.events, next_starts):
        after = [run for run in runs if ended <= run.started < next_start]
        assert len(after) >= 2, f"too few runs after {name}"
        assert after[1].can_connect[0] == OK, f"can_connect not OK by the second run after {name}: {after[1]}"
        assert any(run.collectors == 1 for run in after), f"no collector elected after {name}"
    assert runs[-1].collectors == 1

    # quiet now: the check's lag equals what the consumer API reads and what Kafka's own tool reports
    run = run_check(check, aggregator, groups, topic)
    assert run.can_connect[0] == OK
    for group in groups:
        for partition, lag in independent_lag(bootstrap, group, topic, PARTITIONS).items():
            assert run.lags[(group, partition)] == lag, (group, partition)
    reference = kafka_tool_lags(kafka_cluster, *groups)
    assert len(reference) == GROUPS * PARTITIONS
    for (group, _, partition), lag in reference.items():
        assert run.lags[(group, partition)] == lag, (group, partition)
