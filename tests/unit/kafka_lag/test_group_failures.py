"""Error paths of one group (a slow or failing coordinator): only that group is lost, the others are submitted.

A slow coordinator cannot be made on a one-broker cluster, so the admin client is replaced at the Python level here
(error paths only; the happy paths run against the real broker in tests/integration/kafka_lag)."""

import threading
import time
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
    check = make_check(kafka_timeout=1)
    admin = FakeAdmin(failure)
    check.client._admin = admin
    started = time.monotonic()
    assert check.run() == ""
    assert time.monotonic() - started < 1.5  # a slow group costs at most the run's deadline (1 s)
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


def test_an_unanswered_group_call_gets_a_new_client_and_the_old_one_waits_for_it(aggregator):
    late_answer = Future()
    old = FakeAdmin(lambda: late_answer)
    check = make_check(kafka_timeout=1)
    check.client._admin = old
    check.run()
    assert check.client._admin is None and [admin for admin, _ in check.client._retired] == [old]
    healthy = FakeAdmin(lambda: done(SimpleNamespace(topic_partitions=[])))
    check.client._admin = healthy
    check.run()
    assert [admin for admin, _ in check.client._retired] == [old]  # its call is still running
    late_answer.set_result(SimpleNamespace(topic_partitions=[]))
    check.run()
    assert check.client._retired == [] and check.client._admin is healthy


def test_a_replaced_client_is_kept_until_its_calls_have_ended(aggregator):
    """Dropping a librdkafka client with requests in flight leaks them, so the old client waits for its calls."""
    listing = Future()
    old = FakeAdmin(Future)
    old.list_consumer_groups = lambda request_timeout: listing  # the cluster stops answering
    check = make_check(kafka_timeout=1)
    check.client._admin = old
    check.run()
    aggregator.assert_service_check("pettwin.kafka.can_connect", status=2)
    assert [admin for admin, _ in check.client._retired] == [old] and check.client._admin is None

    healthy = FakeAdmin(lambda: done(SimpleNamespace(topic_partitions=[])))
    check.client._admin = healthy
    check.run()  # the old client's call is still running: it stays
    assert [admin for admin, _ in check.client._retired] == [old]
    listing.set_exception(KafkaException(KafkaError(KafkaError._TRANSPORT)))
    check.run()
    assert check.client._retired == [] and check.client._admin is healthy


def make_check(**instance) -> PettwinKafkaLagCheck:
    config = {"kafka_connect_str": "127.0.0.1:1", "monitor_unlisted_consumer_groups": True, **instance}
    return PettwinKafkaLagCheck("pettwin_kafka_lag", {}, [config])


def test_librdkafka_never_times_out_a_request_itself(aggregator):
    """An answer arriving after librdkafka timed its request out aborts the process (see client.REQUEST_TIMEOUT):
    every admin call gets a timeout longer than the socket timeout, and the run's deadline is kept by waiting."""
    from pettwin_checks.kafka_lag.client import REQUEST_TIMEOUT, SOCKET_TIMEOUT

    timeouts = []

    class RecordingAdmin(FakeAdmin):
        def __getattribute__(self, name):
            call = super().__getattribute__(name)
            if name in (
                "list_consumer_groups",
                "describe_consumer_groups",
                "list_consumer_group_offsets",
                "list_offsets",
            ):

                def recorded(*args, request_timeout, **kwargs):
                    timeouts.append((name, request_timeout))
                    return call(*args, request_timeout=request_timeout, **kwargs)

                return recorded
            return call

    check = make_check(kafka_timeout=1)
    check.client._admin = RecordingAdmin(Future)
    check.run()
    assert {name for name, _ in timeouts} == {
        "list_consumer_groups",
        "describe_consumer_groups",
        "list_consumer_group_offsets",
        "list_offsets",
    }
    assert REQUEST_TIMEOUT > SOCKET_TIMEOUT
    assert all(timeout == REQUEST_TIMEOUT for _, timeout in timeouts)


def test_an_unanswered_batch_costs_only_its_own_groups_and_partitions(aggregator, monkeypatch):
    """Groups and partitions are asked for BATCH at a time. A batch that gets no answer waits for its share of the
    deadline, not the whole of it, so the batches behind it are still asked and submitted."""
    from pettwin_checks.kafka_lag import client

    monkeypatch.setattr(client, "BATCH", 1)
    stuck_partition = Future()

    def soon(value) -> Future:
        """Answered after a few milliseconds, as a broker would: a batch asked with no time left gets nothing."""
        future = Future()
        threading.Timer(0.02, future.set_result, [value]).start()
        return future

    asked_partitions = []

    class StuckFirst(FakeAdmin):
        def list_consumer_groups(self, request_timeout):
            return done(SimpleNamespace(valid=[SimpleNamespace(group_id=g) for g in ("0-stuck", "a", "b")]))

        def list_consumer_group_offsets(self, request, request_timeout):
            if request[0].group_id == "0-stuck":
                return {"0-stuck": Future()}
            partitions = [TopicPartition("pets", 0, 5), TopicPartition("pets", 1, 7)]
            return {request[0].group_id: soon(SimpleNamespace(topic_partitions=partitions))}

        def list_offsets(self, request, isolation_level, request_timeout):
            asked_partitions.append([tp.partition for tp in request])
            return {tp: stuck_partition if tp.partition == 0 else soon(SimpleNamespace(offset=10)) for tp in request}

    check = make_check(kafka_timeout=1.0)
    admin = StuckFirst(Future)
    check.client._admin = admin
    started = time.monotonic()
    assert check.run() == ""
    assert time.monotonic() - started < 1.5
    assert asked_partitions == [[0], [1]]  # one batch at a time, the second asked although the first hung
    for group in ("a", "b"):
        tags = ["consumer_group:" + group, "kafka_cluster_id:c1"]
        aggregator.assert_metric("pettwin.kafka.consumer_group.lag", value=3, tags=tags)  # partition 1: 10 - 7
        # partition 0 has no high watermark
        aggregator.assert_metric("pettwin.kafka.consumer_group.lag_status", value=5, tags=[*tags, "lag_status:ERR"])
    aggregator.assert_service_check(
        "pettwin.kafka.consumer_group.status", status=2, tags=["consumer_group:0-stuck", "kafka_cluster_id:c1"]
    )
    # the unanswered calls are kept for the replaced client; the answered ones are not held past their batch
    assert check.client._admin is None
    assert {id(call) for call in check.client._retired[0][1]} >= {id(stuck_partition)}
    assert all(not call.done() for call in check.client._retired[0][1])
