"""Error paths of the leader election that a real broker does not produce on demand."""

import logging
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from types import SimpleNamespace
from typing import ClassVar

from pettwin_checks import coordination
from pettwin_checks.coordination import LeaderElection
from pettwin_checks.kafka.connection import KafkaConnection


class SlowCreateAdmin:
    """A cluster without the leader topic whose controller never finishes creating it."""

    created: ClassVar[list[str]] = []

    def __init__(self, config):
        pass

    def list_topics(self, timeout):
        return SimpleNamespace(topics={})

    def create_topics(self, topics):
        self.created.extend(topic.topic for topic in topics)
        return {topic.topic: Future() for topic in topics}


def test_a_topic_creation_that_times_out_costs_the_run_not_the_check(monkeypatch, caplog):
    monkeypatch.setattr(coordination, "AdminClient", SlowCreateAdmin)
    monkeypatch.setattr(coordination, "TOPIC_TIMEOUT", 0.05)
    SlowCreateAdmin.created = []
    log = logging.getLogger("test.coordination")
    election = LeaderElection(KafkaConnection(kafka_connect_str="127.0.0.1:9"), None, 10.0, "check", "scope", 15.0, log)

    with caplog.at_level(logging.WARNING, logger="test.coordination"):
        assert election.is_leader() is False
        assert election.is_leader() is False  # the next run tries again instead of giving up

    assert SlowCreateAdmin.created == [coordination.LEADER_TOPIC] * 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert f"creating topic {coordination.LEADER_TOPIC} took over 0.05s" in warnings[0]
    assert "not collecting cluster-scope metrics this run" in warnings[0]


class StuckConsumer:
    """A consumer whose close never returns, as librdkafka's has been seen to do mid-rebalance."""

    def __init__(self):
        self.release = threading.Event()
        self.close_called = threading.Event()

    def close(self):
        self.close_called.set()
        self.release.wait()


def test_a_close_that_never_returns_costs_at_most_the_close_timeout(monkeypatch, caplog):
    monkeypatch.setattr(coordination, "CLOSE_TIMEOUT", 0.2)
    log = logging.getLogger("test.coordination")
    election = LeaderElection(KafkaConnection(kafka_connect_str="127.0.0.1:9"), None, 10.0, "check", "scope", 15.0, log)
    stuck = StuckConsumer()
    election._consumer = stuck

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="test.coordination"):
        election.close()
    elapsed = time.monotonic() - started

    assert stuck.close_called.is_set()
    assert 0.2 <= elapsed < 2
    assert election._consumer is None  # the next run joins afresh
    assert any("took over 0.2s" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    stuck.release.set()


def test_a_scoped_election_has_a_group_per_scope_and_rejoins_when_the_scope_changes():
    # GCP checks learn their project (and location, services) at run time: agents of other projects on the same
    # Kafka cluster must not share one collector, and a project learned late joins that project's group.
    log = logging.getLogger("test.coordination")
    config = coordination.LeaderElectionConfig(kafka_connect_str="127.0.0.1:9")
    scoped = coordination.ScopedElection(config, "pettwin_cloud_run", 15.0, log)

    first = scoped.for_scope("proj-a/europe-west1/backend")
    assert scoped.for_scope("proj-a/europe-west1/backend") is first
    closed = []
    first.close = lambda: closed.append(True)
    other = scoped.for_scope("proj-b/europe-west1/backend")

    assert other is not first and closed == [True]
    group = {e: e._config["group.id"] for e in (first, other)}
    assert group[first] == coordination.default_group("pettwin_cloud_run", "proj-a/europe-west1/backend")
    assert group[first] != group[other]


def test_the_topic_lookup_before_joining_waits_what_the_run_has_left_not_the_full_topic_timeout(monkeypatch, caplog):
    monkeypatch.setattr(coordination, "AdminClient", SlowCreateAdmin)
    log = logging.getLogger("test.coordination")
    election = LeaderElection(KafkaConnection(kafka_connect_str="127.0.0.1:9"), None, 10.0, "check", "scope", 15.0, log)

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="test.coordination"):
        assert election.is_leader(0.01) is False  # the run has almost nothing left: MIN_WAIT, not TOPIC_TIMEOUT
    assert time.monotonic() - started < 2
    assert any(f"took over {coordination.MIN_WAIT:g}s" in r.getMessage() for r in caplog.records)


def test_the_election_does_not_import_the_lag_check():
    """The election and the lag check share pettwin_checks.kafka; neither imports the other's package."""
    code = (
        "import sys, pettwin_checks.coordination, pettwin_checks.kafka.connection;"
        "print(sorted(m for m in sys.modules if m.startswith('pettwin_checks.kafka_lag')))"
    )
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert imported.strip() == "[]"
