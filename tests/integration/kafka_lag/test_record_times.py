"""The exact time lag read with Fetch against the real broker: aborted transactions, compressed batches, LogAppendTime,
a cold start with many lagging partitions, committed offsets moving within records already read (no Fetch), and the
budget. Records are produced with explicit timestamps, so the expected time lag is known to the millisecond."""

import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from pettwin_checks.devenv.kafka_wire import WireCount

from .common import commit, create_topic, last, make_check, unique, values

pytestmark = pytest.mark.integration

LAG_SECONDS = "pettwin.kafka.consumer_lag_seconds"


def produce_at(bootstrap: str, topic: str, partition: int, timestamps_ms: list[int], **config) -> None:
    """One record a timestamp (CreateTime), in as few batches as the producer makes (linger: one, mostly)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, **config})
    for sequence, timestamp in enumerate(timestamps_ms):
        producer.produce(topic, b"reading %d " % sequence * 20, partition=partition, timestamp=timestamp)
    assert producer.flush(30) == 0


def run(check, aggregator):
    aggregator.reset()
    with WireCount() as wire:
        assert check.run() == ""
    return wire.sent


def exact_seconds(aggregator, **tags) -> float:
    return last(aggregator, LAG_SECONDS, lag_seconds_kind="exact", **tags)


def test_an_aborted_transaction_is_skipped_as_a_read_committed_consumer_skips_it(kafka_broker, aggregator):
    """The group sits at the first record of an aborted transaction: the next record it will read is the committed
    one after the abort marker, so that is the record whose age is the time lag, not the aborted one's."""
    bootstrap = kafka_broker.start().bootstrap
    topic, group = unique("aborted"), unique("aborted-group")
    create_topic(bootstrap, topic, 1)
    now_ms = int(time.time() * 1000)
    produce_at(bootstrap, topic, 0, [now_ms - 900_000])  # offset 0, read already
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": unique("txn")})
    producer.init_transactions(30)
    producer.begin_transaction()
    for _ in range(3):
        producer.produce(topic, b"discarded", partition=0, timestamp=now_ms - 800_000)  # offsets 1-3
    producer.flush(30)
    producer.abort_transaction(30)  # the abort marker at 4
    producer.begin_transaction()
    producer.produce(topic, b"kept", partition=0, timestamp=now_ms - 300_000)  # offset 5
    producer.commit_transaction(30)  # the commit marker at 6
    commit(bootstrap, group, topic, {0: 1})
    check = make_check(kafka_connect_str=bootstrap, consumer_groups={group: None})
    sent = run(check, aggregator)
    assert exact_seconds(aggregator, partition=0) == pytest.approx(time.time() - (now_ms - 300_000) / 1000, abs=1)
    assert last(aggregator, "pettwin.kafka.consumer_lag", partition=0) == 6
    assert sent["Fetch"] <= 2


@pytest.mark.parametrize("codec", ["gzip", "lz4", "zstd"])
def test_compressed_batches(kafka_broker, aggregator, codec):
    """The group sits in the middle of a compressed batch: the batch is read whole (round two when round one got
    only part of it) and the record at the committed offset found in it."""
    bootstrap = kafka_broker.start().bootstrap
    topic, group = unique(f"compressed-{codec}"), unique("compressed-group")
    create_topic(bootstrap, topic, 1)
    now_ms = int(time.time() * 1000)
    timestamps = [now_ms - 600_000 + 1_000 * i for i in range(200)]  # about 20 KB before compression
    produce_at(bootstrap, topic, 0, timestamps, **{"compression.type": codec, "batch.size": 1 << 20})
    commit(bootstrap, group, topic, {0: 150})
    check = make_check(kafka_connect_str=bootstrap, consumer_groups={group: None})
    before = time.time()
    sent = run(check, aggregator)
    assert exact_seconds(aggregator, partition=0) == pytest.approx(before - timestamps[150] / 1000, abs=1)
    assert 1 <= sent["Fetch"] <= 2


def test_log_append_time_is_the_brokers_time(kafka_broker, aggregator):
    """On a LogAppendTime topic the broker's time replaces the producer's: the time lag follows it."""
    bootstrap = kafka_broker.start().bootstrap
    topic, group = unique("append-time"), unique("append-time-group")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    config = {"message.timestamp.type": "LogAppendTime"}
    for future in admin.create_topics([NewTopic(topic, 1, 1, config=config)]).values():
        future.result(timeout=30)
    appended = time.time()
    produce_at(bootstrap, topic, 0, [int(appended * 1000) - 3_600_000] * 5)  # an hour old by the producer's clock
    commit(bootstrap, group, topic, {0: 2})
    time.sleep(1.0)
    check = make_check(kafka_connect_str=bootstrap, consumer_groups={group: None})
    run(check, aggregator)
    assert exact_seconds(aggregator, partition=0) == pytest.approx(time.time() - appended, abs=1)


def test_a_cold_start_with_many_lagging_partitions_is_exact_within_the_budget(kafka_broker, aggregator):
    """The agent restarts while 600 partitions lag by minutes: the first run reads every record time (never 0,
    never unknown), within collection_timeout, with at most two Fetch requests to the one broker. The Fetch answer is over
    1 MB (2 KiB a partition), kafka-python's default limit for a frame."""
    bootstrap = kafka_broker.start().bootstrap
    topics = [unique("cold") for _ in range(6)]
    group = unique("cold-group")
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50})
    now_ms = int(time.time() * 1000)
    for topic in topics:
        create_topic(bootstrap, topic, 100)
    for topic in topics:
        for partition in range(100):
            for offset in range(4):
                value = b"x" * 700
                producer.produce(topic, value, partition=partition, timestamp=now_ms - 240_000 + 1_000 * offset)
    assert producer.flush(60) == 0
    for topic in topics:
        commit(bootstrap, group, topic, dict.fromkeys(range(100), 1))
    check = make_check(kafka_connect_str=bootstrap, consumer_groups={group: None}, collection_timeout=5)
    started = time.monotonic()
    sent = run(check, aggregator)
    took = time.monotonic() - started
    seconds = values(aggregator, LAG_SECONDS, consumer_group=group)
    exact = values(aggregator, LAG_SECONDS, consumer_group=group, lag_seconds_kind="exact")
    assert len(seconds) == len(exact) == 600
    assert all(s == pytest.approx(time.time() - (now_ms - 239_000) / 1000, abs=3) for s in exact)
    assert last(aggregator, "pettwin.kafka.time_lag.unknown") == 0
    assert took < 5 and sent["Fetch"] <= 2


def test_a_committed_offset_moving_within_records_read_needs_no_fetch(kafka_broker, aggregator):
    bootstrap = kafka_broker.start().bootstrap
    topic, group = unique("moving"), unique("moving-group")
    create_topic(bootstrap, topic, 1)
    now_ms = int(time.time() * 1000)
    timestamps = [now_ms - 100_000 + 1_000 * i for i in range(20)]
    produce_at(bootstrap, topic, 0, timestamps)
    check = make_check(kafka_connect_str=bootstrap, consumer_groups={group: None})
    fetches = []
    for committed in (2, 5, 9):
        commit(bootstrap, group, topic, {0: committed})
        before = time.time()
        fetches.append(run(check, aggregator)["Fetch"])
        assert exact_seconds(aggregator, partition=0) == pytest.approx(before - timestamps[committed] / 1000, abs=1)
    assert fetches == [1, 0, 0]
    # past the records read, and with new records produced: read again
    produce_at(bootstrap, topic, 0, [now_ms - 1_000])
    commit(bootstrap, group, topic, {0: 20})
    assert run(check, aggregator)["Fetch"] == 1
    assert exact_seconds(aggregator, partition=0) == pytest.approx(time.time() - (now_ms - 1_000) / 1000, abs=1)


def test_records_of_an_open_transaction_are_not_read_until_it_commits(kafka_broker, aggregator):
    """A read_committed consumer cannot read past the last stable offset: neither can the check. The time lag of
    the first run is unknown (not 0), and said; once the transaction commits, it is exact."""
    bootstrap = kafka_broker.start().bootstrap
    topic, group = unique("open-txn"), unique("open-txn-group")
    create_topic(bootstrap, topic, 1)
    now_ms = int(time.time() * 1000)
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": unique("txn")})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, b"pending", partition=0, timestamp=now_ms - 120_000)
    producer.flush(30)
    commit(bootstrap, group, topic, {0: 0})
    check = make_check(kafka_connect_str=bootstrap, consumer_groups={group: None})
    run(check, aggregator)
    assert not values(aggregator, LAG_SECONDS, partition=0)
    assert last(aggregator, "pettwin.kafka.time_lag.unknown") == 1
    assert any("transaction still open" in warning for warning in check.get_warnings())
    producer.commit_transaction(30)
    run(check, aggregator)
    assert exact_seconds(aggregator, partition=0) == pytest.approx(time.time() - (now_ms - 120_000) / 1000, abs=1)
