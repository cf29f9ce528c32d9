"""Error paths of the leader election that a real broker does not produce on demand."""

import logging
from concurrent.futures import Future
from types import SimpleNamespace
from typing import ClassVar

from pettwin_checks import coordination
from pettwin_checks.coordination import LeaderElection
from pettwin_checks.kafka_lag.connection import KafkaConnection


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
