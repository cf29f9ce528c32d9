"""Error paths of one coordinator (failing or silent): only its groups are lost, the others are submitted.

A slow coordinator cannot be made on a one-broker cluster, so the client's requests are answered at the Python level
here, by a fake two-broker cluster (error paths only; the happy paths and a paused broker run against the real broker
in tests/integration/kafka_lag)."""

import threading
import time
from collections import defaultdict
from types import SimpleNamespace as Answer

import pytest
from kafka.future import Future

from pettwin_checks.kafka_lag.check import PettwinKafkaLagCheck
from pettwin_checks.kafka_lag.time_lag import PartitionRead

pytestmark = pytest.mark.unit

COORDINATOR_NOT_AVAILABLE = 15


def done(value) -> Future:
    return Future().success(value)


def soon(value) -> Future:
    """Answered after a few milliseconds, as a broker would: a batch asked with no time left gets nothing."""
    future = Future()
    threading.Timer(0.02, future.success, [value]).start()
    return future


class FakeCluster:
    """Stands in for the client's connections (manager and I/O loop) and answers its requests: broker 1 coordinates
    groups a and b and leads pets/0 and pets/1; broker 2 coordinates group `slow`, whose offset fetch gets
    `slow_answer()`. Subclasses change what one request gets."""

    def __init__(self, slow_answer) -> None:
        self.slow_answer = slow_answer
        self.closed = False
        self.cluster = self
        self.broker_version_data = Answer(api_version=lambda request_class: 8)
        self.coordinators = {"a": 1, "b": 1, "slow": 2}

    # what the client asks of kafka-python's connection manager and I/O loop
    def brokers(self):
        return [Answer(node_id=1), Answer(node_id=2)]

    def bootstrap_brokers(self):
        return [Answer(node_id="bootstrap-0")]

    def least_loaded_node(self):
        return 1

    def broker_metadata(self, node_id):
        return Answer(host="127.0.0.1", port=9090 + node_id) if node_id in (1, 2) else None

    def update_metadata(self, response):
        pass

    def poll(self, timeout_ms=None, future=None):
        ends = time.monotonic() + (timeout_ms or 0) / 1000
        while not (future is not None and future.is_done) and time.monotonic() < ends:
            time.sleep(0.002)

    def close(self):
        self.closed = True

    # the requests
    def send(self, node_id, request) -> Future:
        return getattr(self, type(request).__name__)(node_id, request)

    def MetadataRequest(self, node_id, request):
        partitions = [Answer(partition_index=p, error_code=0, leader_id=1) for p in (0, 1)]
        topics = [Answer(name="pets", error_code=0, partitions=partitions)]
        return done(Answer(API_VERSION=12, brokers=[], cluster_id="c1", controller_id=1, topics=topics))

    def FindCoordinatorRequest(self, node_id, request):
        found = [Answer(key=g, error_code=0, node_id=self.coordinators[g]) for g in request.coordinator_keys]
        return done(Answer(API_VERSION=4, coordinators=found))

    def ListGroupsRequest(self, node_id, request):
        listed = [Answer(group_id=g) for g, coordinator in self.coordinators.items() if coordinator == node_id]
        return done(Answer(error_code=0, groups=listed))

    def DescribeGroupsRequest(self, node_id, request):
        described = [
            Answer(
                group_id=g, error_code=0, error_message=None, group_state="Empty", protocol_type="consumer", members=[]
            )
            for g in request.groups
        ]
        return done(Answer(groups=described))

    def OffsetFetchRequest(self, node_id, request):
        if node_id == 2:
            return self.slow_answer()
        return done(Answer(API_VERSION=8, groups=[self.offsets(g.group_id) for g in request.groups]))

    @staticmethod
    def offsets(group_id):
        partitions = [Answer(partition_index=0, committed_offset=5, error_code=0)]
        partitions.append(Answer(partition_index=1, committed_offset=7, error_code=0))
        return Answer(group_id=group_id, error_code=0, topics=[Answer(name="pets", partitions=partitions)])

    def ListOffsetsRequest(self, node_id, request):
        topics = [
            Answer(name=t.name, partitions=[Answer(partition_index=p.partition_index, error_code=0, offset=10)])
            for t in request.topics
            for p in t.partitions
        ]
        return done(Answer(topics=topics))


class RecordsReadNow:
    """Every record asked for read at once, each produced now: these tests are about the offsets, and their time lags
    are known whatever state earlier tests left in the persistent cache."""

    def __init__(self, wanted):
        self.read = defaultdict(PartitionRead)
        for tp, offset in wanted:
            self.read[tp].spans.append((offset, offset, int(time.time() * 1000)))

    def finish(self, deadline):
        return dict(self.read), {}


def install(check, cluster: FakeCluster) -> None:
    check.client._wire._manager = check.client._wire._net = cluster
    check.client._wire.send = cluster.send
    check.client._records.start = RecordsReadNow


def run_within(check, seconds: float) -> None:
    """One run that ends cleanly within `seconds` (the run's deadline and a margin)."""
    started = time.monotonic()
    assert check.run() == ""
    assert time.monotonic() - started < seconds


def make_check(**instance) -> PettwinKafkaLagCheck:
    config = {"kafka_connect_str": "127.0.0.1:1", "monitor_unlisted_consumer_groups": True, **instance}
    return PettwinKafkaLagCheck("pettwin_kafka_lag", {}, [config])


@pytest.mark.parametrize(
    "slow_answer, reconnects",
    [
        # an answer, even an error, means the connection works: keep it
        (
            lambda: done(
                Answer(API_VERSION=8, groups=[Answer(group_id="slow", error_code=COORDINATOR_NOT_AVAILABLE, topics=[])])
            ),
            False,
        ),
        (Future, True),  # never answers: costs the run's deadline, not more, and fresh connections next run
    ],
    ids=["coordinator-error", "timeout"],
)
def test_one_failing_coordinator_costs_only_its_groups(aggregator, slow_answer, reconnects):
    check = make_check(collection_timeout=1)
    cluster = FakeCluster(slow_answer)
    install(check, cluster)
    run_within(check, 1.5)  # a slow coordinator costs at most the run's deadline (1 s)
    assert cluster.closed == reconnects and (check.client._wire._manager is None) == reconnects
    for group in ("a", "b"):
        aggregator.assert_metric(
            "pettwin.kafka.consumer_group.lag", value=8, tags=["consumer_group:" + group, "kafka_cluster_id:c1"]
        )
    aggregator.assert_metric(
        "pettwin.kafka.consumer_group.lag", count=0, tags=["consumer_group:slow", "kafka_cluster_id:c1"]
    )
    aggregator.assert_metric(
        "pettwin.kafka.consumer_group.lag_status",
        value=5,
        tags=["consumer_group:slow", "kafka_cluster_id:c1", "lag_status:ERR"],
    )
    aggregator.assert_service_check(
        "pettwin.kafka.consumer_group.status", status=2, tags=["consumer_group:slow", "kafka_cluster_id:c1"]
    )
    # what failed is said: can_connect WARNING and a warning naming the broker and its group
    [can_connect] = aggregator.service_checks("pettwin.kafka.can_connect")
    assert can_connect.status == 1 and can_connect.message.startswith("broker 2 (127.0.0.1:9092): ")
    assert "failed for 1 (slow)" in can_connect.message
    warnings = check.get_warnings()
    assert any(warning.startswith("broker 2 (127.0.0.1:9092)") for warning in warnings)
    assert any(warning.startswith("Group slow: offset fetch failed") for warning in warnings)


def test_after_an_unanswered_request_the_next_run_starts_on_fresh_connections(aggregator):
    check = make_check(collection_timeout=1)
    silent = FakeCluster(Future)
    install(check, silent)
    check.run()
    assert silent.closed and check.client._wire._manager is None  # closing fails what it held: no answer outlives it
    aggregator.reset()
    install(check, FakeCluster(lambda: done(Answer(API_VERSION=8, groups=[FakeCluster.offsets("slow")]))))
    check.run()
    for group in ("a", "b", "slow"):
        tags = ["consumer_group:" + group, "kafka_cluster_id:c1"]
        aggregator.assert_metric("pettwin.kafka.consumer_group.lag", value=8, tags=tags)


def test_a_cluster_that_does_not_answer_at_all_costs_the_deadline_and_its_connections(aggregator):
    class Silent(FakeCluster):
        def MetadataRequest(self, node_id, request):
            return Future()

    check = make_check(collection_timeout=1)
    cluster = Silent(Future)
    install(check, cluster)
    run_within(check, 1.5)
    [sc] = aggregator.service_checks("pettwin.kafka.can_connect")
    assert sc.status == 2 and "no answer" in sc.message and "collection_timeout" in sc.message
    assert cluster.closed and check.client._wire._manager is None


def test_an_unanswered_batch_costs_only_its_own_groups_and_partitions(aggregator, monkeypatch):
    """Groups and partitions are asked for BATCH at a time. A batch that gets no answer waits for its share of the
    deadline, not the whole of it, so the batches behind it are still asked and submitted."""
    from pettwin_checks.kafka_lag import wire

    monkeypatch.setattr(wire, "BATCH", 1)
    stuck_partition = Future()
    asked_partitions = []

    class StuckFirst(FakeCluster):
        def __init__(self):
            super().__init__(Future)
            self.coordinators = {"0-stuck": 1, "a": 1, "b": 1}

        def OffsetFetchRequest(self, node_id, request):
            [group] = request.groups
            if group.group_id == "0-stuck":
                return Future()
            return soon(Answer(API_VERSION=8, groups=[self.offsets(group.group_id)]))

        def ListOffsetsRequest(self, node_id, request):
            [topic] = request.topics
            [partition] = topic.partitions
            asked_partitions.append([partition.partition_index])
            if partition.partition_index == 0:
                return stuck_partition
            return soon(
                Answer(topics=[Answer(name="pets", partitions=[Answer(partition_index=1, error_code=0, offset=10)])])
            )

    check = make_check(collection_timeout=1.0)
    cluster = StuckFirst()
    install(check, cluster)
    run_within(check, 1.5)
    assert asked_partitions == [[0], [1]]  # one batch at a time, the second asked although the first hung
    for group in ("a", "b"):
        tags = ["consumer_group:" + group, "kafka_cluster_id:c1"]
        aggregator.assert_metric("pettwin.kafka.consumer_group.lag", value=3, tags=tags)  # partition 1: 10 - 7
        # partition 0 has no high watermark
        aggregator.assert_metric("pettwin.kafka.consumer_group.lag_status", value=5, tags=[*tags, "lag_status:ERR"])
    aggregator.assert_service_check(
        "pettwin.kafka.consumer_group.status", status=2, tags=["consumer_group:0-stuck", "kafka_cluster_id:c1"]
    )
    assert (
        cluster.closed and check.client._wire._manager is None
    )  # what went unanswered is dropped with the connections


def test_a_silent_known_broker_leaves_the_metadata_to_the_bootstrap_servers(aggregator):
    """The metadata is asked of a known broker first; silent, it waits only its share, then a bootstrap server answers."""

    class SilentKnownBroker(FakeCluster):
        def MetadataRequest(self, node_id, request):
            return Future() if node_id == 1 else super().MetadataRequest(node_id, request)

    check = make_check(collection_timeout=1)
    cluster = SilentKnownBroker(lambda: done(Answer(API_VERSION=8, groups=[FakeCluster.offsets("slow")])))
    install(check, cluster)
    run_within(check, 1.5)
    aggregator.assert_service_check("pettwin.kafka.can_connect", status=0)
    aggregator.assert_metric(
        "pettwin.kafka.consumer_group.lag", value=8, tags=["consumer_group:a", "kafka_cluster_id:c1"]
    )
    assert cluster.closed  # the silent broker's connection is not kept
