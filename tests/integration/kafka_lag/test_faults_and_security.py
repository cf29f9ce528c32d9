"""Connection options against the real broker's listeners, and what happens when the broker or the data go wrong."""

import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from pettwin_checks.devenv.workload import produce
from tests.fixtures.tls import write_self_signed_ca

from .common import (
    add_partitions,
    commit,
    create_topic,
    delete_group,
    delete_topic,
    last,
    make_check,
    service_checks,
    unique,
    values,
)

pytestmark = pytest.mark.integration

CRITICAL, OK = 2, 0


@pytest.fixture
def lagging_group(kafka_broker, kafka_admin):
    topic, group = unique("sec"), unique("sec-group")
    create_topic(kafka_broker.bootstrap, topic, 2)
    produce(kafka_broker.bootstrap, topic, 10, partition=0)
    commit(kafka_broker.bootstrap, group, topic, {0: 4})
    return topic, group


def listener_configs(broker):
    plain_user, plain_password = broker.plain_user
    scram_user, scram_password = broker.scram_user
    return {
        "sasl_plain": {
            "kafka_connect_str": broker.sasl_bootstrap,
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "PLAIN",
            "sasl_plain_username": plain_user,
            "sasl_plain_password": plain_password,
        },
        "sasl_scram": {
            "kafka_connect_str": broker.sasl_bootstrap,
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": scram_user,
            "sasl_plain_password": scram_password,
        },
        "mtls": {
            "kafka_connect_str": broker.ssl_bootstrap,
            "security_protocol": "SSL",
            "tls_ca_cert": broker.ca_cert,
            "tls_cert": broker.client_cert,
            "tls_private_key": broker.client_key,
        },
        "confluent_like": {
            "kafka_connect_str": broker.sasl_ssl_bootstrap,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "PLAIN",
            "sasl_plain_username": plain_user,
            "sasl_plain_password": plain_password,
            "tls_ca_cert": broker.ca_cert,
        },
    }


@pytest.mark.parametrize("listener", ["sasl_plain", "sasl_scram", "mtls", "confluent_like"])
def test_secured_listeners(kafka_broker, lagging_group, aggregator, listener):
    topic, group = lagging_group
    check = make_check(consumer_groups={group: {topic: [0]}}, **listener_configs(kafka_broker)[listener])
    assert check.run() == ""
    aggregator.assert_service_check("pettwin.kafka.can_connect", OK)
    assert last(aggregator, "pettwin.kafka.consumer_lag", consumer_group=group, topic=topic, partition=0) == 6


def test_wrong_password_is_named_and_never_leaks(kafka_broker, lagging_group, aggregator, caplog):
    _topic, group = lagging_group
    secret = "not-the-password-5f2c9"
    config = {**listener_configs(kafka_broker)["sasl_scram"], "sasl_plain_password": secret, "collection_timeout": 4}
    caplog.set_level(logging.DEBUG)
    check = make_check(consumer_groups={group: None}, **config)
    check.run()
    [sc] = aggregator.service_checks("pettwin.kafka.can_connect")
    assert sc.status == CRITICAL and "authentication failed" in sc.message and "sasl_plain_password" in sc.message
    everything = caplog.text + sc.message + " ".join(sc.tags) + " ".join(check.get_warnings())
    everything += " ".join(t for m in aggregator._metrics.values() for s in m for t in s.tags)
    assert secret not in everything


def test_tls_mismatch_is_named(kafka_broker, lagging_group, aggregator, tmp_path):
    _topic, group = lagging_group
    other_ca = write_self_signed_ca(tmp_path / "other-ca.pem", "other-ca")  # it did not sign the broker's cert
    check = make_check(
        kafka_connect_str=kafka_broker.ssl_bootstrap,
        security_protocol="SSL",
        tls_ca_cert=str(other_ca),
        consumer_groups={group: None},
        collection_timeout=4,
    )
    check.run()
    [sc] = aggregator.service_checks("pettwin.kafka.can_connect")
    assert sc.status == CRITICAL and "TLS" in sc.message and "tls_ca_cert" in sc.message


def test_broker_stopped_while_the_check_lives_then_back(kafka_broker, lagging_group, aggregator, caplog):
    topic, group = lagging_group
    timeout = 3.0
    check = make_check(
        kafka_connect_str=kafka_broker.bootstrap, consumer_groups={group: None}, collection_timeout=timeout
    )
    assert check.run() == ""
    aggregator.assert_service_check("pettwin.kafka.can_connect", OK)
    kafka_broker.stop()
    try:
        caplog.clear()
        caplog.set_level(logging.INFO)
        for _ in range(2):
            aggregator.reset()
            started = time.monotonic()
            assert check.run() == ""  # reported through the service check, not raised
            assert time.monotonic() - started < timeout + 1.5
            [sc] = aggregator.service_checks("pettwin.kafka.can_connect")
            assert sc.status == CRITICAL and "kafka_connect_str" in sc.message
        errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(errors) == 2 and all(r.exc_info is None for r in errors)  # one line per run, no traceback
    finally:
        kafka_broker.start()
    # Same check object, no restart: it recovers as soon as the broker's group coordinator has loaded again.
    deadline = time.monotonic() + 30
    while True:
        aggregator.reset()
        check.run()
        lag = values(aggregator, "pettwin.kafka.consumer_lag", consumer_group=group, topic=topic, partition=0)
        if lag or time.monotonic() > deadline:
            break
        time.sleep(1)
    aggregator.assert_service_check("pettwin.kafka.can_connect", OK)
    assert last(aggregator, "pettwin.kafka.consumer_lag", consumer_group=group, topic=topic, partition=0) == 6


def test_broker_down_when_the_check_is_created(aggregator, kafka_broker):
    from pettwin_checks.devenv.kafka_runtime import free_port

    check = make_check(
        kafka_connect_str=f"127.0.0.1:{free_port()}", monitor_unlisted_consumer_groups=True, collection_timeout=2
    )
    started = time.monotonic()
    assert check.run() == ""
    assert time.monotonic() - started < 3.5
    [sc] = aggregator.service_checks("pettwin.kafka.can_connect")
    assert sc.status == CRITICAL and "cannot connect" in sc.message or "no answer" in sc.message


def test_topic_deleted_group_deleted_and_partitions_added(kafka_broker, kafka_admin, aggregator):
    bootstrap = kafka_broker.bootstrap
    kept, doomed = unique("kept"), unique("doomed")
    group, other = unique("churn"), unique("churn-gone")
    for topic in (kept, doomed):
        create_topic(bootstrap, topic, 1)
        produce(bootstrap, topic, 20, partition=0)
        commit(bootstrap, group, topic, {0: 5})
    commit(bootstrap, other, kept, {0: 1})
    check = make_check(
        kafka_connect_str=bootstrap,
        monitor_unlisted_consumer_groups=True,
        include_consumer_groups=[f"^({group}|{other})$"],
    )
    assert check.run() == ""
    assert last(aggregator, "pettwin.kafka.consumer_group.lag", consumer_group=group) == 30

    delete_topic(bootstrap, doomed)
    delete_group(bootstrap, other)
    add_partitions(bootstrap, kept, 3)
    produce(bootstrap, kept, 7, partition=2)
    time.sleep(1)
    aggregator.reset()
    assert check.run() == ""
    assert last(aggregator, "pettwin.kafka.consumer_group.lag", consumer_group=group) == 15
    assert not values(aggregator, "pettwin.kafka.topic.lag", consumer_group=group, topic=doomed)
    assert any(doomed in w for w in check.get_warnings()) or not values(
        aggregator, "pettwin.kafka.consumer_lag", topic=doomed
    )
    # the new partitions show up as uncommitted, not missing
    assert last(aggregator, "pettwin.kafka.partition.uncommitted", consumer_group=group, topic=kept, partition=2) == 1
    assert last(aggregator, "pettwin.kafka.consumer_group.uncommitted_partitions", consumer_group=group) == 2
    assert not values(aggregator, "pettwin.kafka.consumer_group.lag", consumer_group=other)
    # the group has no member and its committed offsets did not move between the two runs while lagging: gone
    [status] = service_checks(aggregator, "pettwin.kafka.consumer_group.status", consumer_group=group)
    assert status.status == CRITICAL and status.message.startswith("STOP: the group has no consumer (no members)")


def test_budget_folds_partitions_into_rollups(kafka_broker, kafka_admin, aggregator):
    bootstrap = kafka_broker.bootstrap
    topic = unique("wide")
    create_topic(bootstrap, topic, 6)
    groups = [unique("budget") for _ in range(4)]
    for group in groups:
        commit(bootstrap, group, topic, {p: 0 for p in range(6)})
    pattern = f"^({'|'.join(groups)})$"
    check = make_check(
        kafka_connect_str=bootstrap,
        monitor_unlisted_consumer_groups=True,
        include_consumer_groups=[pattern],
        max_contexts=120,
    )
    assert check.run() == ""
    contexts = {(m.name, tuple(sorted(m.tags))) for ms in aggregator._metrics.values() for m in ms}
    assert len(contexts) <= 120
    folded = last(aggregator, "pettwin.kafka.contexts.folded")
    assert folded > 0
    # every group still has its rollup; only some have per-partition series
    for group in groups:
        assert values(aggregator, "pettwin.kafka.consumer_group.lag", consumer_group=group) == [0]
    detailed = {g for g in groups if values(aggregator, "pettwin.kafka.consumer_lag", consumer_group=g)}
    assert 0 < len(detailed) < len(groups)


def test_budget_below_group_level_folds_whole_groups(kafka_broker, kafka_admin, aggregator):
    bootstrap = kafka_broker.bootstrap
    topic = unique("narrow")
    create_topic(bootstrap, topic, 2)
    produce(bootstrap, topic, 10, partition=0)
    groups = sorted(unique("fold") for _ in range(4))
    for lag, group in enumerate(groups):
        commit(bootstrap, group, topic, {0: 10 - lag})  # lags 0, 1, 2, 3
    check = make_check(
        kafka_connect_str=bootstrap,
        monitor_unlisted_consumer_groups=True,
        include_consumer_groups=[f"^({'|'.join(groups)})$"],
        max_contexts=30,
    )
    assert check.run() == ""
    contexts = {(m.name, tuple(sorted(m.tags))) for ms in aggregator._metrics.values() for m in ms}
    assert len(contexts) <= 30
    # 30 - 7 check-level contexts leave room for 2 groups' own series (9 each); the last two in name order fold
    for group in groups[:2]:
        assert values(aggregator, "pettwin.kafka.consumer_group.lag", consumer_group=group)
    for group in groups[2:]:
        assert not values(aggregator, "pettwin.kafka.consumer_group.lag", consumer_group=group)
    assert last(aggregator, "pettwin.kafka.consumer_groups.folded") == 2
    assert last(aggregator, "pettwin.kafka.consumer_groups.folded.lag") == 2 + 3
    assert last(aggregator, "pettwin.kafka.consumer_groups.folded.lag.max") == 3
    assert last(aggregator, "pettwin.kafka.contexts.folded") > 0
    # every group still has its status service check
    for group in groups:
        assert service_checks(aggregator, "pettwin.kafka.consumer_group.status", consumer_group=group)


def test_answers_arriving_after_the_deadline_do_not_kill_the_agent(kafka_broker, lagging_group, tmp_path):
    """The broker is paused for longer than collection_timeout, several times, while the check runs, so answers land
    after the runs gave up on them (librdkafka aborts the process when such an answer meets a request it has timed
    out itself, hence the long REQUEST_TIMEOUT in the client). The runs go on and the last one has every group.

    The check runs in a child process, so an abort shows as its exit status instead of taking pytest down."""
    topic, group = lagging_group
    others = [unique("paused-group") for _ in range(20)]
    for other in others:
        commit(kafka_broker.bootstrap, other, topic, {0: 2, 1: 0})
    conf = tmp_path / "conf.yaml"
    conf.write_text(
        json.dumps(
            {
                "instances": [
                    {
                        "kafka_connect_str": kafka_broker.bootstrap,
                        "consumer_groups": {g: None for g in [group, *others]},
                        "collection_timeout": 1,
                    }
                ]
            }
        )
    )
    command = [sys.executable, "-m", "pettwin_checks.cli", "run", "pettwin_kafka_lag", "-c", str(conf)]
    child = subprocess.Popen(
        [*command, "--json", "--times", "20", "--interval", "0.5"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(3):
            time.sleep(0.7)
            os.kill(kafka_broker.pid, signal.SIGSTOP)
            time.sleep(2.5)
            os.kill(kafka_broker.pid, signal.SIGCONT)
        out, _ = child.communicate(timeout=120)
    finally:
        os.kill(kafka_broker.pid, signal.SIGCONT)
        child.kill()
    assert child.returncode == 0, f"the check process died with status {child.returncode}"
    last_run = json.loads(out)[-1]
    lagging = {
        tag.split(":", 1)[1]
        for m in last_run["metrics"]
        if m["name"] == "pettwin.kafka.consumer_group.lag"
        for tag in m["tags"]
        if tag.startswith("consumer_group:")
    }
    assert lagging == {group, *others}
