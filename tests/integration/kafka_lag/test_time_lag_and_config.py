"""A time lag on every lagging partition, transactional topics, and what the check says about its configuration, all
against the real broker."""

import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from pettwin_checks.cli import check_ids, run_check
from pettwin_checks.devenv.kafka_wire import WireCount
from pettwin_checks.devenv.workload import produce

from .common import commit, create_topic, last, make_check, service_checks, unique, values
from .test_faults_and_security import listener_configs

pytestmark = pytest.mark.integration

CRITICAL, OK = 2, 0


def record_time(bootstrap: str, topic: str, partition: int, offset: int) -> float:
    """The timestamp (s) of the record at `offset`, read by a plain consumer: what the exact time lag is measured from."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("reader"), "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, partition, offset)])
        message = consumer.poll(15)
        assert message is not None and message.error() is None and message.offset() == offset
        return message.timestamp()[1] / 1000
    finally:
        consumer.close()


def stopped_group(bootstrap: str, name: str, produced: int, committed: int) -> tuple[str, str, float]:
    """A one-partition topic with `produced` records and a group stopped at `committed`: the topic, the group, and
    when the record at the committed offset was produced."""
    topic, group = unique(name), unique(f"{name}-group")
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, produced, partition=0)
    commit(bootstrap, group, topic, {0: committed})
    return topic, group, record_time(bootstrap, topic, 0, committed)


def run(check, aggregator):
    aggregator.reset()
    assert check.run() == ""
    return aggregator


def test_a_quiet_topic_gets_the_exact_time_lag_on_the_first_run(kafka_broker, aggregator):
    """Nothing is produced after the consumer stopped: the high watermark never moves, and the time lag is still
    there from the first run, exact, and growing with the clock."""
    bootstrap = kafka_broker.start().bootstrap
    topic, group, produced_at = stopped_group(bootstrap, "quiet", 10, 4)
    time.sleep(1.5)
    check = make_check(kafka_connect_str=bootstrap, consumer_groups={group: None})
    tags = {"consumer_group": group, "topic": topic, "partition": 0, "lag_seconds_kind": "exact"}
    fetches = []
    for _ in range(2):
        before = time.time()
        with WireCount() as wire:
            run(check, aggregator)
        fetches.append(wire.sent["Fetch"])
        seconds = last(aggregator, "pettwin.kafka.consumer_lag_seconds", **tags)
        assert before - produced_at - 0.05 <= seconds <= time.time() - produced_at + 0.05
        assert seconds >= 1.5
        group_tags = {"consumer_group": group, "lag_seconds_kind": "exact"}
        assert last(aggregator, "pettwin.kafka.consumer_group.lag_seconds", **group_tags) == seconds
        assert last(aggregator, "pettwin.kafka.topic.lag_seconds", topic=topic, **group_tags) == seconds
        time.sleep(0.5)
    assert fetches == [1, 0]  # read once, then kept: the record after an offset and its time never change


@pytest.mark.parametrize("listener", ["sasl_scram", "mtls", "confluent_like"])
def test_records_are_read_over_the_secured_listeners(kafka_broker, aggregator, listener):
    """The record reader connects with the check's own connection options."""
    topic, group, produced_at = stopped_group(kafka_broker.start().bootstrap, "secured", 6, 2)
    check = make_check(consumer_groups={group: None}, **listener_configs(kafka_broker)[listener])
    run(check, aggregator)
    tags = {"consumer_group": group, "topic": topic, "partition": 0, "lag_seconds_kind": "exact"}
    assert last(aggregator, "pettwin.kafka.consumer_lag_seconds", **tags) == pytest.approx(
        time.time() - produced_at, abs=0.5
    )
    check.cancel()


def test_an_idle_partition_beside_a_busy_one(kafka_broker, aggregator):
    """Partition 1 got a few records long ago and its consumer stopped; partition 0 is busy. The topic's time lag is
    partition 1's, exact, not lost to the busy partition's moving history."""
    bootstrap = kafka_broker.start().bootstrap
    topic, group = unique("mixed"), unique("mixed-group")
    create_topic(bootstrap, topic, 2)
    produce(bootstrap, topic, 5, partition=1)
    commit(bootstrap, group, topic, {1: 2})
    idle_since = record_time(bootstrap, topic, 1, 2)
    stop = threading.Event()

    def busy():
        while not stop.is_set():
            produce(bootstrap, topic, 20, partition=0)
            time.sleep(0.1)

    producer = threading.Thread(target=busy, daemon=True)
    producer.start()
    try:
        check = make_check(kafka_connect_str=bootstrap, consumer_groups={group: None})
        for _ in range(3):
            time.sleep(0.6)
            commit(bootstrap, group, topic, {0: 1})  # the busy partition's consumer is far behind too
            run(check, aggregator)
    finally:
        stop.set()
        producer.join(10)
    idle = last(aggregator, "pettwin.kafka.consumer_lag_seconds", topic=topic, partition=1, lag_seconds_kind="exact")
    assert idle == pytest.approx(time.time() - idle_since, abs=0.5) and idle >= 1.8
    busy_seconds = last(aggregator, "pettwin.kafka.consumer_lag_seconds", topic=topic, partition=0)
    topic_seconds = last(aggregator, "pettwin.kafka.topic.lag_seconds", consumer_group=group, topic=topic)
    assert topic_seconds == max(idle, busy_seconds)


def test_unreadable_records_fall_back_to_the_history(kafka_broker, aggregator):
    """Records deleted under the committed offset (retention) cannot be read (the Fetch answers OFFSET_OUT_OF_RANGE
    for that partition only): on the first run nothing tells the time lag, so none is sent (never 0) and the run says
    so; then the high-watermark history gives a real lower bound. The other partition's stays exact."""
    bootstrap = kafka_broker.start().bootstrap
    topic, group = unique("trimmed"), unique("trimmed-group")
    create_topic(bootstrap, topic, 2)
    for partition in (0, 1):
        produce(bootstrap, topic, 10, partition=partition)
    commit(bootstrap, group, topic, {0: 2, 1: 3})
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_records([TopicPartition(topic, 0, 6)]).values():
        future.result(timeout=30)
    readable_since = record_time(bootstrap, topic, 1, 3)
    check = make_check(kafka_connect_str=bootstrap, consumer_groups={group: None})
    tags = {"consumer_group": group, "topic": topic, "partition": 0}
    run(check, aggregator)
    assert not values(aggregator, "pettwin.kafka.consumer_lag_seconds", **tags)  # unknown: not sent, never 0
    assert last(aggregator, "pettwin.kafka.consumer_lag", **tags) == 8
    assert last(aggregator, "pettwin.kafka.time_lag.unknown") == 1
    [warning] = [w for w in check.get_warnings() if "no time lag" in w]
    assert f"{topic}[0]" in warning and "OffsetOutOfRangeError" in warning and f"{topic}[1]" not in warning
    exact = last(aggregator, "pettwin.kafka.consumer_lag_seconds", partition=1, lag_seconds_kind="exact")
    assert exact == pytest.approx(time.time() - readable_since, abs=0.5)
    # the group's maximum covers partition 1 only: a lower bound, and tagged so
    group_seconds = last(aggregator, "pettwin.kafka.consumer_group.lag_seconds", lag_seconds_kind="lower_bound")
    assert group_seconds == exact
    time.sleep(1.0)
    run(check, aggregator)
    bound = last(aggregator, "pettwin.kafka.consumer_lag_seconds", lag_seconds_kind="lower_bound", **tags)
    assert bound >= 1.0
    assert last(aggregator, "pettwin.kafka.time_lag.unknown") == 0


def test_a_caught_up_read_committed_consumer_on_a_transactional_topic_is_ok(kafka_broker, aggregator):
    """A committed transaction leaves its marker after the last record, an aborted one its records and a marker:
    the group's committed offset stays below the high watermark for good, yet there is nothing left to read."""
    bootstrap = kafka_broker.start().bootstrap
    topic, group = unique("txn"), unique("txn-group")
    create_topic(bootstrap, topic, 2)
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": unique("txn-producer")})
    producer.init_transactions(30)
    producer.begin_transaction()
    for partition in (0, 1):
        for sequence in range(5):
            producer.produce(topic, b"reading %d" % sequence, partition=partition)
    producer.commit_transaction(30)  # records 0-4, the commit marker at 5
    producer.begin_transaction()
    for sequence in range(3):
        producer.produce(topic, b"discarded %d" % sequence, partition=1)
    producer.flush(30)
    producer.abort_transaction(30)  # partition 1: aborted records 6-8, the abort marker at 9

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in (0, 1)])
        last_read: dict[int, int] = {}
        deadline = time.monotonic() + 20
        while sum(last_read.values()) < 8 and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                last_read[message.partition()] = message.offset()
        assert last_read == {0: 4, 1: 4}  # the aborted records were never delivered
        # each processed record committed as consumers do (its offset + 1): the markers stay ahead
        offsets = [TopicPartition(topic, p, offset + 1) for p, offset in last_read.items()]
        consumer.commit(offsets=offsets, asynchronous=False)
        committed = {tp.partition: tp.offset for tp in consumer.committed([TopicPartition(topic, p) for p in (0, 1)])}
    finally:
        consumer.close()
    assert committed == {0: 5, 1: 5}

    window = 2.0
    check = make_check(kafka_connect_str=bootstrap, consumer_groups={group: None}, status_window=window)
    started = time.monotonic()
    while time.monotonic() - started < 2 * window:  # past the window: a stopped consumer would be STOP by now
        run(check, aggregator)
        time.sleep(0.5)
    tags = {"consumer_group": group, "topic": topic}
    # the lag figure stays what Kafka's own tool says (the marker; the aborted records and their marker)
    assert last(aggregator, "pettwin.kafka.consumer_lag", partition=0, **tags) == 1
    assert last(aggregator, "pettwin.kafka.consumer_lag", partition=1, **tags) == 5
    for partition in (0, 1):
        seconds = values(aggregator, "pettwin.kafka.consumer_lag_seconds", partition=partition, **tags)
        assert seconds == [0.0]
        # OK: after the first run a partition's status is sent only while it is not OK
        assert not values(aggregator, "pettwin.kafka.partition.lag_status", partition=partition, **tags)
    assert last(aggregator, "pettwin.kafka.consumer_group.partitions_behind", consumer_group=group) == 0
    checks = service_checks(aggregator, "pettwin.kafka.consumer_group.status", consumer_group=group)
    assert [sc.status for sc in checks] == [OK]
    # read once: nothing to read stays true until the high watermark moves
    high_watermarks = {(topic, 0): 6, (topic, 1): 10}
    assert check._record_times.missing([((topic, 0), 5), ((topic, 1), 5)], high_watermarks) == []

    # a new record behind the marker: now there is something to read, and the time lag is its age
    produce(bootstrap, topic, 1, partition=0)
    time.sleep(1.0)
    run(check, aggregator)
    assert last(aggregator, "pettwin.kafka.consumer_lag_seconds", partition=0, **tags) >= 1.0


def test_a_configured_group_that_does_not_exist_is_not_ok(kafka_broker, aggregator):
    ghost = unique("ghost-group")
    check = make_check(kafka_connect_str=kafka_broker.start().bootstrap, consumer_groups={ghost: None})
    run(check, aggregator)
    [sc] = service_checks(aggregator, "pettwin.kafka.consumer_group.status", consumer_group=ghost)
    assert sc.status == CRITICAL and "not found" in sc.message and "consumer_groups" in sc.message
    assert values(aggregator, "pettwin.kafka.consumer_group.lag_status", consumer_group=ghost, lag_status="ERR")
    assert not values(aggregator, "pettwin.kafka.consumer_group.lag", consumer_group=ghost)
    assert any(ghost in warning and "not found" in warning for warning in check.get_warnings())


def test_configured_topics_and_partitions_that_do_not_exist_are_named(kafka_broker, aggregator):
    bootstrap = kafka_broker.start().bootstrap
    topic, group, typo = unique("cfg"), unique("cfg-group"), unique("no-such-topic")
    create_topic(bootstrap, topic, 2)
    produce(bootstrap, topic, 4, partition=0)
    commit(bootstrap, group, topic, {0: 1})
    check = make_check(kafka_connect_str=bootstrap, consumer_groups={group: {topic: [0, 7], typo: None}})
    run(check, aggregator)
    warnings = check.get_warnings()
    assert any(f"configured topic {typo} does not exist" in w and "consumer_groups" in w for w in warnings), warnings
    assert any(f"configured partitions [7] of topic {topic} do not exist" in w for w in warnings), warnings
    assert not any("deleted" in w for w in warnings)
    assert last(aggregator, "pettwin.kafka.consumer_lag", consumer_group=group, topic=topic, partition=0) == 3


def test_names_datadog_would_merge_are_warned_once(kafka_broker, aggregator):
    bootstrap = kafka_broker.start().bootstrap
    topic, suffix = unique("merge"), unique("x")
    create_topic(bootstrap, topic, 1)
    upper, lower = f"Grp {suffix}", f"grp_{suffix}"
    for group in (upper, lower):
        commit(bootstrap, group, topic, {0: 0})
    check = make_check(kafka_connect_str=bootstrap, consumer_groups={upper: None, lower: None})
    run(check, aggregator)
    [warning] = [w for w in check.get_warnings() if "one tag value" in w]
    assert repr(upper) in warning and repr(lower) in warning
    run(check, aggregator)
    assert not [w for w in check.get_warnings() if "one tag value" in w]


@pytest.mark.parametrize(
    "listener, protocol, expected",
    [
        ("ssl_bootstrap", "PLAINTEXT", "likely expects TLS or SASL"),  # a plaintext client on the TLS port
        ("bootstrap", "SASL_PLAINTEXT", "does not take SASL"),  # a SASL client on the plaintext port
        ("bootstrap", "SSL", "does not speak TLS"),  # a TLS client on the plaintext port
    ],
)
def test_a_protocol_mismatch_is_named_with_the_option(kafka_broker, aggregator, listener, protocol, expected):
    kafka_broker.start()
    credentials = {"sasl_plain_username": "user", "sasl_plain_password": "secret"} if "SASL" in protocol else {}
    check = make_check(
        kafka_connect_str=getattr(kafka_broker, listener),
        security_protocol=protocol,
        consumer_groups={unique("g"): None},
        collection_timeout=3,
        **credentials,
    )
    check.run()
    [sc] = aggregator.service_checks("pettwin.kafka.can_connect")
    assert sc.status == CRITICAL and expected in sc.message and "security_protocol" in sc.message, sc.message
    assert "cannot connect" not in sc.message and "authentication failed" not in sc.message
    check.cancel()


def test_each_cli_instance_keeps_its_own_state(kafka_broker):
    """Two instances in one CLI configuration: each has its own check id, so neither starts from the other's state."""
    from datadog_checks.base.stubs import datadog_agent

    bootstrap = kafka_broker.start().bootstrap
    topic = unique("cli")
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, 3, partition=0)
    groups = [unique("cli-a"), unique("cli-b")]
    for group in groups:
        commit(bootstrap, group, topic, {0: 1})
    instances = [{"kafka_connect_str": bootstrap, "consumer_groups": {group: None}} for group in groups]
    ids = check_ids("pettwin_kafka_lag", {}, instances)
    assert len(set(ids)) == 2 and ids == check_ids("pettwin_kafka_lag", {}, instances)  # stable, like the agent's
    reports = run_check("pettwin_kafka_lag", {}, instances)
    assert [report["error"] for report in reports] == [None, None]
    for check_id, group, other in zip(ids, groups, reversed(groups)):
        shards = int(datadog_agent.read_persistent_cache(f"{check_id}_lag_state"))
        state = "".join(datadog_agent.read_persistent_cache(f"{check_id}_lag_state.{i}") for i in range(shards))
        assert group in state and other not in state
