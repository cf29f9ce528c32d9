"""Error paths of one group (a slow or failing coordinator): only that group is lost, the others are submitted.

A slow coordinator cannot be made on a one-broker cluster, so the admin client is replaced at the Python level here
(error paths only; the happy paths run against the real broker in tests/integration/kafka_lag)."""

from concurrent.futures import Future
from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from pettwin_checks.kafka_lag.check import PettwinKafkaLagCheck

pytestmark = pytest.mark.unit


def done(value=None, error=None) -> Future:
    future = Future()
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)
    return future


class FakeAdmin:
    """Two healthy groups and one whose coordinator fails or never answers."""

    def __init__(self, failure):
        self.failure = failure

    def list_topics(self, timeout):
        return SimpleNamespace(cluster_id="c1", topics={"pets": SimpleNamespace(error=None, partitions={0: 0, 1: 1})})

    def list_consumer_groups(self, request_timeout):
        return done(SimpleNamespace(valid=[SimpleNamespace(group_id=g) for g in ("a", "b", "slow")], errors=[]))

    def describe_consumer_groups(self, ids, request_timeout):
        state = SimpleNamespace(name="EMPTY")
        return {g: done(SimpleNamespace(state=state, members=[])) for g in ids}

    def list_consumer_group_offsets(self, request, request_timeout):
        group = request[0].group_id
        if group == "slow":
            return {group: self.failure()}
        partitions = [TopicPartition("pets", 0, 5), TopicPartition("pets", 1, 7)]
        return {group: done(SimpleNamespace(topic_partitions=partitions))}

    def list_offsets(self, request, isolation_level, request_timeout):
        assert request_timeout >= 0.15, "a slow group must leave time for the high watermarks"
        return {tp: done(SimpleNamespace(offset=10)) for tp in request}

    def poll(self, timeout):
        return 0


@pytest.mark.parametrize(
    "failure, reconnects",
    [
        # an answer, even an error, means the connection works: keep it
        (lambda: done(error=KafkaException(KafkaError(KafkaError.COORDINATOR_NOT_AVAILABLE))), False),
        (lambda: Future(), True),  # never answers: costs the run's deadline, not more, and a new client next run
    ],
    ids=["coordinator-error", "timeout"],
)
def test_one_failing_group_costs_only_its_metrics(aggregator, failure, reconnects):
    check = PettwinKafkaLagCheck(
        "pettwin_kafka_lag",
        {},
        [
            {
                "kafka_connect_str": "127.0.0.1:1",
                "monitor_unlisted_consumer_groups": True,
                "kafka_timeout": 0.5,
            }
        ],
    )
    admin = FakeAdmin(failure)
    check.client._admin = admin
    assert check.run() == ""
    assert (check.client._admin is not admin) == reconnects
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
    aggregator.assert_service_check("pettwin.kafka.can_connect", status=0)
    assert any("slow" in warning for warning in check.get_warnings())
