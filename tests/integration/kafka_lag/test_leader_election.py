"""Three agents with the same configuration, in separate processes: one collects, the others stand by; kill it and
another takes over within one run interval plus the session timeout, never two at once."""

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from .common import commit, create_topic, unique

pytestmark = pytest.mark.integration

SESSION_TIMEOUT = 6  # the broker's default group.min.session.timeout.ms
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class Fleet:
    def __init__(self, bootstrap, group, leader_group, size=3):
        self.events = []
        self.lock = threading.Lock()
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.integration.kafka_lag.leader_worker", bootstrap, group, leader_group],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            for _ in range(size)
        ]
        for process in self.processes:
            threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process):
        for line in process.stdout:
            with self.lock:
                self.events.append(json.loads(line))

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def wait_for(self, condition, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if condition(self.snapshot()):
                return True
            time.sleep(0.2)
        return False

    def stop(self):
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)


def leaders_since(events, since):
    return {e["pid"] for e in events if e["leader"] and e["start"] >= since}


def test_one_collector_and_failover(kafka_broker, kafka_admin):
    bootstrap = kafka_broker.bootstrap
    topic, group = unique("fleet"), unique("fleet-group")
    create_topic(bootstrap, topic, 2)
    commit(bootstrap, group, topic, {0: 0, 1: 0})
    fleet = Fleet(bootstrap, group, unique("leader-group"))
    try:
        # every member has run a few times and one of them leads
        assert fleet.wait_for(lambda ev: len({e["pid"] for e in ev}) == 3 and any(e["leader"] for e in ev), 60)
        settled = time.time()
        assert fleet.wait_for(
            lambda ev: all(sum(e["pid"] == p.pid and e["start"] > settled for e in ev) >= 3 for p in fleet.processes),
            30,
        )
        events = fleet.snapshot()
        steady = [e for e in events if e["start"] > settled]
        assert len(leaders_since(steady, settled)) == 1
        [leader_pid] = leaders_since(steady, settled)
        assert all(e["cluster_series"] > 0 for e in steady if e["leader"])
        assert all(e["cluster_series"] == 0 for e in steady if not e["leader"])  # standbys submit nothing else
        assert all(not e["error"] for e in events)

        os.kill(leader_pid, signal.SIGKILL)
        killed = time.time()
        assert fleet.wait_for(lambda ev: leaders_since(ev, killed), SESSION_TIMEOUT + 1 + 8)
        taken_over = min(e["start"] for e in fleet.snapshot() if e["leader"] and e["start"] >= killed)
        assert taken_over - killed <= SESSION_TIMEOUT + 1 + 3  # session timeout + one run interval + slack
        new_leaders = leaders_since(fleet.snapshot(), killed)
        assert len(new_leaders) == 1 and leader_pid not in new_leaders

        # never two collectors at once: leader runs of different members do not overlap in time
        leader_runs = sorted((e["start"], e["end"], e["pid"]) for e in fleet.snapshot() if e["leader"])
        for (start_a, end_a, pid_a), (start_b, _, pid_b) in itertools.pairwise(leader_runs):
            assert pid_a == pid_b or end_a <= start_b
    finally:
        fleet.stop()
