"""Project scope collected once per fleet: two agents' Vertex AI / Cloud Run checks elect one collector through the
real broker; only it queries Google (the emulator's request log says so); when it goes, the other takes over."""

import time

import pytest
from datadog_checks.base.stubs import aggregator as stub

from pettwin_checks.cloud_run.check import PettwinCloudRunCheck
from pettwin_checks.devenv.app_standin import AppStandin
from pettwin_checks.devenv.demo import cloud_run_instance, vertex_instance
from pettwin_checks.vertex_ai.check import PettwinVertexAiCheck
from tests.contract import assert_contract
from tests.integration.kafka_lag.common import unique

pytestmark = pytest.mark.integration

SESSION_TIMEOUT = 6


@pytest.fixture
def app():
    with AppStandin() as standin:
        yield standin


def project_calls(emulator):
    return [r for r in emulator.requests() if "/timeSeries" in r["path"] or "/v2/projects/" in r["path"]]


def run_round(checks, emulator):
    """Run each agent's check once; per agent: (its collector.leader value, project-scope API calls it made)."""
    outcome = {}
    for name, check in checks.items():
        stub.reset()
        emulator.wait_idle()
        emulator.reset_requests()
        assert check.run() == ""
        leader = [m.value for m in stub.metrics(f"{check.__NAMESPACE__}.collector.leader")]
        assert len(leader) == 1
        outcome[name] = (leader[0], len(project_calls(emulator)))
    return outcome


@pytest.mark.parametrize("kind", ["vertex_ai", "cloud_run"])
def test_one_project_collector_and_takeover(kind, kafka_broker, kafka_admin, gcp_emulator, gcp_env, tmp_path, app):
    key = gcp_emulator.write_service_account_key(str(tmp_path / "key.json"))
    election = {
        "enabled": True,
        "kafka_connect_str": kafka_broker.bootstrap,
        "group": unique(f"election-{kind}"),
        "session_timeout": SESSION_TIMEOUT,
    }
    if kind == "vertex_ai":
        instance = {**vertex_instance(gcp_emulator, key), "probe": {"enabled": False}, "leader_election": election}
        make = lambda: PettwinVertexAiCheck("pettwin_vertex_ai", {}, [instance])
    else:
        instance = {**cloud_run_instance(gcp_emulator, key, app), "leader_election": election}
        make = lambda: PettwinCloudRunCheck("pettwin_cloud_run", {}, [instance])
    checks = {"agent-a": make(), "agent-b": make()}

    deadline = time.time() + 30
    while time.time() < deadline:
        outcome = run_round(checks, gcp_emulator)
        if sorted(value for value, _ in outcome.values()) == [0, 1]:
            break
        time.sleep(1)
    for _ in range(3):  # steady: one leader, and only the leader asks Google
        outcome = run_round(checks, gcp_emulator)
        assert sorted(value for value, _ in outcome.values()) == [0, 1], outcome
        for value, calls in outcome.values():
            assert (calls > 0) == (value == 1), outcome
        time.sleep(0.5)
    assert_contract(stub, f"pettwin.{kind}.")

    leader = next(name for name, (value, _) in outcome.items() if value == 1)
    standby = next(name for name in checks if name != leader)
    checks.pop(leader).cancel()  # its agent stops: the consumer leaves the group
    stopped = time.time()
    while True:
        outcome = run_round(checks, gcp_emulator)
        if outcome[standby][0] == 1 or time.time() - stopped > SESSION_TIMEOUT + 5:
            break
        time.sleep(1)
    assert outcome[standby][0] == 1 and outcome[standby][1] > 0
    checks[standby].cancel()
