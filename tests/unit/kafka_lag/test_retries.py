"""Retriable broker errors are asked again within the run, as Kafka's own clients do; what still fails is said.

A leader or coordinator that moves between two requests of one run cannot be timed on a real cluster, so the fake
two-broker cluster of test_group_failures answers here (the real three-broker faults are in
tests/integration/kafka_lag/test_broker_faults.py)."""

from types import SimpleNamespace as Answer

import pytest
from kafka.future import Future

from pettwin_checks.deadline import Deadline
from pettwin_checks.kafka_lag.retries import Backoff, coordinator_moved, failure_lines, leader_moved

from .test_group_failures import FakeCluster, done, install, make_check, run_within

pytestmark = pytest.mark.unit

NOT_LEADER_OR_FOLLOWER = 6
NOT_COORDINATOR = 16
COORDINATOR_LOAD_IN_PROGRESS = 14


def offsets_of_slow():
    return done(Answer(API_VERSION=8, groups=[FakeCluster.offsets("slow")]))


class LeaderMoves(FakeCluster):
    """pets/0 moves from broker 1 to broker 2 between the run's metadata and its ListOffsets."""

    def __init__(self):
        super().__init__(offsets_of_slow)
        self.leader_of_0 = 1
        self.asked = []

    def MetadataRequest(self, node_id, request):
        self.asked.append(("Metadata", node_id))
        answer = super().MetadataRequest(node_id, request).value
        answer.topics[0].partitions[0].leader_id = self.leader_of_0
        self.leader_of_0 = 2  # moved once the first metadata is out
        return done(answer)

    def ListOffsetsRequest(self, node_id, request):
        self.asked.append(("ListOffsets", node_id))
        topics = [
            Answer(
                name=t.name,
                partitions=[
                    Answer(
                        partition_index=p.partition_index,
                        error_code=NOT_LEADER_OR_FOLLOWER if p.partition_index == 0 and node_id == 1 else 0,
                        offset=10,
                    )
                    for p in t.partitions
                ],
            )
            for t in request.topics
        ]
        return done(Answer(topics=topics))


def test_a_moved_leader_is_asked_again_in_fresh_metadata(aggregator):
    check = make_check(collection_timeout=2)
    cluster = LeaderMoves()
    install(check, cluster)
    assert check.run() == ""
    for group in ("a", "b", "slow"):
        aggregator.assert_metric(
            "pettwin.kafka.consumer_group.lag", value=8, tags=["consumer_group:" + group, "kafka_cluster_id:c1"]
        )
    aggregator.assert_service_check("pettwin.kafka.can_connect", status=0)
    # only the moved partition was asked again, of its new leader, after one more metadata request
    assert cluster.asked[-2:] == [("Metadata", 1), ("ListOffsets", 2)]
    assert check.get_warnings() == []


class CoordinatorMoves(FakeCluster):
    """Group `slow` was listed by broker 2, which answers NOT_COORDINATOR: it moved to broker 1, loading at first."""

    def __init__(self):
        super().__init__(
            lambda: done(Answer(API_VERSION=8, groups=[Answer(group_id="slow", error_code=NOT_COORDINATOR, topics=[])]))
        )
        self.found = []
        self.loading = True

    def FindCoordinatorRequest(self, node_id, request):
        self.found.append(list(request.coordinator_keys))
        found = [Answer(key=g, error_code=0, node_id=1) for g in request.coordinator_keys]
        return done(Answer(API_VERSION=4, coordinators=found))

    def OffsetFetchRequest(self, node_id, request):
        if node_id == 1 and any(g.group_id == "slow" for g in request.groups) and self.loading:
            self.loading = False
            error = [Answer(group_id="slow", error_code=COORDINATOR_LOAD_IN_PROGRESS, topics=[])]
            return done(Answer(API_VERSION=8, groups=error))
        return super().OffsetFetchRequest(node_id, request)


def test_a_moved_or_loading_coordinator_is_found_again(aggregator):
    check = make_check(collection_timeout=2)
    cluster = CoordinatorMoves()
    install(check, cluster)
    run_within(check, 1.5)
    assert cluster.found == [["slow"], ["slow"]]  # after NOT_COORDINATOR, then after the load
    for group in ("a", "b", "slow"):
        aggregator.assert_metric(
            "pettwin.kafka.consumer_group.lag", value=8, tags=["consumer_group:" + group, "kafka_cluster_id:c1"]
        )
    aggregator.assert_service_check("pettwin.kafka.can_connect", status=0)


def test_a_failure_that_outlasts_the_retries_is_said_naming_the_broker(aggregator):
    class NeverLeads(LeaderMoves):
        def MetadataRequest(self, node_id, request):
            self.leader_of_0 = 1  # the metadata keeps naming broker 1, which keeps refusing
            return super().MetadataRequest(node_id, request)

    check = make_check(collection_timeout=1)
    install(check, NeverLeads())
    run_within(check, 1.5)
    [can_connect] = aggregator.service_checks("pettwin.kafka.can_connect")
    assert can_connect.status == 1
    assert can_connect.message == (
        "broker 1 (127.0.0.1:9091): ListOffsets failed for 1 (pets[0]): NotLeaderForPartitionError"
    )
    tags = ["consumer_group:a", "kafka_cluster_id:c1"]
    aggregator.assert_metric("pettwin.kafka.consumer_group.lag_status", value=5, tags=[*tags, "lag_status:ERR"])


class ListsNothingOnce(FakeCluster):
    """Broker 2 lists no group in the second run (its groups' new coordinator has not loaded them yet), and group
    `b` is deleted before the second run."""

    def __init__(self):
        super().__init__(offsets_of_slow)
        self.run = 1

    def ListGroupsRequest(self, node_id, request):
        if self.run == 2 and node_id == 2:
            return done(Answer(error_code=0, groups=[]))
        answer = super().ListGroupsRequest(node_id, request).value
        if self.run == 2:
            answer.groups = [g for g in answer.groups if g.group_id != "b"]
        return done(answer)

    def DescribeGroupsRequest(self, node_id, request):
        answer = super().DescribeGroupsRequest(node_id, request).value
        for group in answer.groups:
            if group.group_id == "b" and self.run == 2:
                group.group_state = "Dead"
        return done(answer)

    def OffsetFetchRequest(self, node_id, request):
        answer = super().OffsetFetchRequest(node_id, request).value
        for group in answer.groups:
            if group.group_id == "b" and self.run == 2:
                group.topics = []
        return done(answer)

    def FindCoordinatorRequest(self, node_id, request):
        found = [Answer(key=g, error_code=0, node_id=self.coordinators[g]) for g in request.coordinator_keys]
        return done(Answer(API_VERSION=4, coordinators=found))


def test_a_group_listed_before_is_never_missing_silently_and_a_deleted_one_is_dropped(aggregator):
    check = make_check(collection_timeout=2)
    cluster = ListsNothingOnce()
    install(check, cluster)
    check.run()
    aggregator.reset()
    cluster.run = 2
    check.run()
    aggregator.assert_metric(
        "pettwin.kafka.consumer_group.lag", value=8, tags=["consumer_group:slow", "kafka_cluster_id:c1"]
    )
    aggregator.assert_metric("pettwin.kafka.consumer_groups.monitored", value=2)  # a and slow; b was deleted
    aggregator.assert_metric(
        "pettwin.kafka.consumer_group.lag", count=0, tags=["consumer_group:b", "kafka_cluster_id:c1"]
    )


def test_a_broker_that_cannot_list_its_groups_is_named(aggregator):
    class Broker2Down(FakeCluster):
        def ListGroupsRequest(self, node_id, request):
            if node_id == 2:
                return Future().failure(ConnectionRefusedError("111 ECONNREFUSED"))
            return super().ListGroupsRequest(node_id, request)

    check = make_check(collection_timeout=1)
    install(check, Broker2Down(offsets_of_slow))
    assert check.run() == ""
    [can_connect] = aggregator.service_checks("pettwin.kafka.can_connect")
    assert can_connect.status == 1
    assert can_connect.message == (
        "broker 2 (127.0.0.1:9092): ListGroups failed: 111 ECONNREFUSED "
        "(groups it lists for the first time are missing this run)"
    )
    for group in ("a", "b"):  # broker 1's groups are all there
        aggregator.assert_metric(
            "pettwin.kafka.consumer_group.lag", value=8, tags=["consumer_group:" + group, "kafka_cluster_id:c1"]
        )


@pytest.mark.parametrize(
    "code, leader, coordinator",
    [
        (3, True, False),  # UNKNOWN_TOPIC_OR_PARTITION: metadata stale during a move
        (5, True, False),  # LEADER_NOT_AVAILABLE
        (6, True, False),  # NOT_LEADER_OR_FOLLOWER
        (74, True, False),  # FENCED_LEADER_EPOCH
        (78, True, False),  # OFFSET_NOT_AVAILABLE: a new leader without its high watermark yet
        (14, False, True),  # COORDINATOR_LOAD_IN_PROGRESS
        (15, False, True),  # COORDINATOR_NOT_AVAILABLE
        (16, False, True),  # NOT_COORDINATOR
        (29, False, False),  # TOPIC_AUTHORIZATION_FAILED: asking again changes nothing
        (30, False, False),  # GROUP_AUTHORIZATION_FAILED
    ],
)
def test_which_errors_are_asked_again(code, leader, coordinator):
    assert (leader_moved(code), coordinator_moved(code)) == (leader, coordinator)


def test_failure_lines_name_the_broker_and_count_what_they_do_not_list():
    failed = [(("t", p), 2, "NotLeaderForPartitionError") for p in range(7)] + [(("u", 0), 1, "timed out")]
    lines = failure_lines("ListOffsets", failed, lambda b: f"broker {b}", lambda tp: f"{tp[0]}[{tp[1]}]")
    assert lines == [
        "broker 1: ListOffsets failed for 1 (u[0]): timed out",
        "broker 2: ListOffsets failed for 7 (t[0], t[1], t[2], t[3], t[4] (+2 more)): NotLeaderForPartitionError",
    ]


def test_backoff_doubles_up_to_a_second():
    backoff = Backoff()
    assert [backoff.next() for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_records_of_partitions_with_no_leader_are_said_unread_without_a_request():
    """Right after a run that closed its connections, every partition to read has no leader (an election): nothing
    is sent, nothing is put on the wire, and each partition says why."""
    check = make_check()
    check.client._leaders = {"t": [-1, -1]}
    reading = check.client.start_reading([(("t", 0), 5), (("t", 1), 7)])
    assert reading.finish(Deadline(1))[1] == {("t", 0): "no leader", ("t", 1): "no leader"}
    assert check.client.requests["Fetch"] == 0
