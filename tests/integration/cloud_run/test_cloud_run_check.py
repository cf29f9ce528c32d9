"""The whole check: a real app stand-in on loopback, cgroup trees in temp dirs, the GCP emulator over real HTTP."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from datadog_checks.base import AgentCheck
from datadog_checks.base.errors import ConfigurationError

from pettwin_checks.cloud_run.check import PettwinCloudRunCheck
from pettwin_checks.devenv.app_standin import AppStandin
from pettwin_checks.gcp.timeseries import parse_rfc3339
from tests.contract import assert_contract

pytestmark = pytest.mark.integration

NS = "pettwin.cloud_run."
MiB = 1024 * 1024
SERVICE = ["project_id:pettwin-demo", "location:us-central1", "service_name:pettwin-backend"]
REVISION_2 = [*SERVICE, "revision_name:pettwin-backend-00002-def"]
CLOUD_RUN_ENV = {
    "K_SERVICE": "pettwin-backend",
    "K_REVISION": "pettwin-backend-00002-def",
    "K_CONFIGURATION": "pettwin-backend",
}
INSTANCE_TAGS = [
    "project_id:pettwin-demo",
    "location:us-central1",
    "service_name:pettwin-backend",
    "revision_name:pettwin-backend-00002-def",
    "configuration_name:pettwin-backend",
    "team:pets",
]


def write_tree(root: Path, usage_usec: int = 7_250_000, memory_current: int = 200 * MiB) -> Path:
    """A cgroup v2 mount with the app container at /app: 2 cores, 512 MiB, 2 OOM kills, 23 of 128 pids."""
    (root / "app").mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    files = {
        "cpu.stat": f"usage_usec {usage_usec}\nnr_periods 1200\nnr_throttled 37\nthrottled_usec 4125000\n",
        "cpu.max": "200000 100000\n",
        "memory.current": f"{memory_current}\n",
        "memory.max": f"{512 * MiB}\n",
        "memory.events": "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\n",
        "pids.current": "23\n",
        "pids.max": "128\n",
    }
    for name, text in files.items():
        (root / "app" / name).write_text(text)
    return root


@pytest.fixture
def app():
    with AppStandin(slow_seconds=3.0) as standin:
        yield standin


@pytest.fixture
def app_process():
    """A process standing in for the app container's main process, with a unique name to match."""
    marker = f"pettwin-app-{uuid.uuid4().hex[:8]}"
    processes = []

    def start():
        process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", marker])
        processes.append(process)
        time.sleep(1.1)  # start times have a clock-tick resolution: keep two starts clearly apart
        return process

    start()
    yield marker, start, processes
    for process in processes:
        process.kill()
        process.wait()


@pytest.fixture
def cloud_run_env(monkeypatch):
    for name, value in CLOUD_RUN_ENV.items():
        monkeypatch.setenv(name, value)


def emulator_options(emulator) -> dict:
    return {"metadata_endpoint": emulator.url, "run_endpoint": emulator.url, "monitoring_endpoint": emulator.url}


def make_check(instance: dict) -> PettwinCloudRunCheck:
    return PettwinCloudRunCheck("pettwin_cloud_run", {}, [instance])


def service_check(aggregator, name: str, tags_subset: list[str] | None = None):
    checks = [sc for sc in aggregator.service_checks(NS + name) if set(tags_subset or []) <= set(sc.tags)]
    assert checks, f"no {name} service check with tags {tags_subset}"
    return checks[-1]


def monitoring_window(emulator, metric_type: str) -> tuple[float, float]:
    """The (start, end] interval the check asked Cloud Monitoring for, from the emulator's request log."""
    for request in emulator.requests():
        params = request["params"]
        if request["path"].endswith("/timeSeries") and metric_type in params.get("filter", [""])[0]:
            return parse_rfc3339(params["interval.startTime"][0]), parse_rfc3339(params["interval.endTime"][0])
    raise AssertionError(f"no timeSeries.list for {metric_type}")


def expected_count(emulator, metric_type: str, labels: dict, start: float, end: float) -> int:
    """Sum of the scenario's per-minute values for minutes whose point ends in (start, end]."""
    (spec,) = emulator.series(metric_type, labels)
    return sum(spec.value_at_minute(minute) or 0 for minute in range(int(start // 60), int(end // 60)))


def test_every_metric_and_service_check(aggregator, datadog_agent, gcp_env, cloud_run_env, app, app_process, tmp_path):
    marker, _, _ = app_process
    tree = write_tree(tmp_path / "cgroup")
    instance = {
        **emulator_options(gcp_env),
        "tags": ["team:pets"],
        "probes": [
            {"name": "liveness", "http_get": {"path": "/healthz", "port": app.port, "body_contains": "ok"}},
            {"name": "startup", "tcp_socket": {"port": app.port}},
        ],
        "cgroup_root": str(tree),
        "cgroup_path": "/app",
        "app_process": marker,
    }
    check = make_check(instance)
    check.run()
    SVC, REV = [*SERVICE, "team:pets"], [*REVISION_2, "team:pets"]

    # Instance identity: K_* variables plus project and region from the metadata server.
    liveness = [*INSTANCE_TAGS, "probe:liveness", "probe_type:http"]
    aggregator.assert_metric(NS + "app.probe.success", 1, tags=liveness, count=1)
    aggregator.assert_metric(NS + "app.probe.consecutive_failures", 0, tags=liveness, count=1)
    aggregator.assert_metric(NS + "app.probe.success", 1, tags=[*INSTANCE_TAGS, "probe:startup", "probe_type:tcp"])
    assert service_check(aggregator, "app.health", ["probe:liveness"]).status == AgentCheck.OK
    # cgroup v2 values from the tree; the app's process is in the agent's cgroup: they share the app's container.
    for name, value in {
        "container.cpu.limit": 2.0,
        "container.cpu.periods": 1200,
        "container.cpu.throttled_periods": 37,
        "container.cpu.throttled_time": 4.125,
        "container.memory.usage": 200 * MiB,
        "container.memory.limit": 512 * MiB,
        "container.memory.usage_pct": 39.0625,
        "container.memory.oom_kills": 2,
        "container.pids.current": 23,
        "container.pids.limit": 128,
        "container.restarts": 0,
    }.items():
        aggregator.assert_metric(NS + name, value, tags=[*INSTANCE_TAGS, "container:app"], count=1)
    assert service_check(aggregator, "container.memory").status == AgentCheck.OK
    (uptime,) = aggregator.metrics(NS + "container.uptime")
    assert 1.0 <= uptime.value < 60

    # Admin API v2: one healthy service, all traffic on 00002.
    aggregator.assert_metric(NS + "service.ready", 1, tags=SVC)
    aggregator.assert_metric(NS + "service.latest_revision_ready", 1, tags=SVC)
    aggregator.assert_metric(NS + "service.traffic.percent", 100, tags=REV)
    assert service_check(aggregator, "revision.ready", SVC).status == AgentCheck.OK
    assert service_check(aggregator, "api.can_connect", ["api:run"]).status == AgentCheck.OK
    assert service_check(aggregator, "api.can_connect", ["api:monitoring"]).status == AgentCheck.OK

    # Monitoring, over the 5 settled minutes. 2xx cycles every 5 minutes: 300+310+290+320+305 whatever the minute.
    start, end = monitoring_window(gcp_env, "run.googleapis.com/request_count")
    assert end - start == 300
    aggregator.assert_metric(NS + "request.count", 1525, tags=[*REV, "response_code_class:2xx"])
    for code_class, code in (("4xx", "429"), ("5xx", "500")):
        expected = expected_count(gcp_env, "run.googleapis.com/request_count", {"response_code": code}, start, end)
        aggregator.assert_metric(NS + "request.count", expected, tags=[*REV, f"response_code_class:{code_class}"])
    # Per minute: 100 in [64,128) ms, 150 in [128,256), 40 in [256,512), 10 in [512,1024); five minutes of it.
    # p50: rank 750 -> 250th of 750 in [128,256) = 128 + 128/3; p95: rank 1425 -> 175th of 200 in [256,512) = 480;
    # p99: rank 1485 -> 35th of 50 in [512,1024) = 870.4.
    for q, value in (("p50", 128 + 128 / 3), ("p95", 480.0), ("p99", 870.4)):
        aggregator.assert_metric(NS + f"request.latency.{q}", pytest.approx(value), tags=REV)
    # The default scenario's startup latencies and utilizations carry no container_name (the shape public evidence
    # shows for a multi-container revision): the whole revision's figures, tagged container_name:all.
    whole = [*REV, "container_name:all"]
    # One start per 5 minutes in [1024, 2048).
    for q, value in (("p50", 1536.0), ("p95", 1996.8), ("p99", 2037.76)):
        aggregator.assert_metric(NS + f"container.startup_latency.{q}", pytest.approx(value), tags=whole)
    # CPU: 10 samples in [0.20,0.25) and 10 in [0.35,0.40); memory: 20 in [0.55,0.60); percent.
    for q, value in (("p50", 25.0), ("p95", 39.5), ("p99", 39.9)):
        aggregator.assert_metric(NS + f"container.cpu.utilization.{q}", pytest.approx(value), tags=whole)
    for q, value in (("p50", 57.5), ("p95", 59.75), ("p99", 59.95)):
        aggregator.assert_metric(NS + f"container.memory.utilization.{q}", pytest.approx(value), tags=whole)
    minute = int(end // 60) - 1  # the newest point in the window
    active = gcp_env.series("run.googleapis.com/container/instance_count", {"state": "active"})[0]
    aggregator.assert_metric(NS + "instance.count", active.value_at_minute(minute), tags=[*REV, "state:active"])
    aggregator.assert_metric(NS + "instance.count", 1, tags=[*REV, "state:idle"])
    # Per container: the app's probes, and the agent sidecar's own startup probe apart from them.
    app, agent = [*REV, "container_name:app"], [*REV, "container_name:datadog-agent"]
    failures = expected_count(
        gcp_env,
        "run.googleapis.com/container/completed_probe_count",
        {"probe_type": "Liveness", "is_healthy": "false", "container_name": "app"},
        start,
        end,
    )
    aggregator.assert_metric(NS + "container.probe.failures", failures, tags=[*app, "probe_type:Liveness"])
    aggregator.assert_metric(NS + "container.probe.failures", 0, tags=[*app, "probe_type:Startup"])
    agent_failures = expected_count(
        gcp_env,
        "run.googleapis.com/container/completed_probe_count",
        {"is_healthy": "false", "container_name": "datadog-agent"},
        start,
        end,
    )
    aggregator.assert_metric(NS + "container.probe.failures", agent_failures, tags=[*agent, "probe_type:Startup"])
    # One timeSeries.list per family, one Admin API call for all services.
    paths = [r["path"] for r in gcp_env.requests()]
    assert paths.count("/v3/projects/pettwin-demo/timeSeries") == 7
    assert paths.count("/v2/projects/pettwin-demo/locations/us-central1/services") == 1
    assert_contract(aggregator, NS)

    # Second run: CPU usage needs two readings of the counter (exact maths in the next test).
    write_tree(tree, usage_usec=7_750_000)
    check.run()
    (usage,) = aggregator.metrics(NS + "container.cpu.usage")
    assert usage.value > 0
    assert_contract(aggregator, NS, every_row=True)


def test_cpu_usage_is_the_counter_delta_over_time(aggregator, datadog_agent, tmp_path):
    tree = write_tree(tmp_path / "cgroup")
    check = make_check(
        {
            "probes": [],
            "cgroup_root": str(tree),
            "cgroup_path": "/app",
            "collect_revision_health": False,
            "collect_cloud_run_metrics": False,
        }
    )
    before_first = time.monotonic()
    check.run()
    after_first = time.monotonic()
    time.sleep(0.5)
    write_tree(tree, usage_usec=7_250_000 + 400_000)
    before_second = time.monotonic()
    check.run()
    after_second = time.monotonic()
    (usage,) = aggregator.metrics(NS + "container.cpu.usage")
    # 0.4 s of CPU over the time between the two readings, which lies within these bounds.
    assert 0.4 / (after_second - before_first) <= usage.value <= 0.4 / (before_second - after_first)


def test_failed_rollout(aggregator, datadog_agent, gcp_env, tmp_path):
    gcp_env.load_scenario("cloud_run_failed_rollout")
    check = make_check(
        {
            **emulator_options(gcp_env),
            "probes": [],
            "collect_container_resources": False,
            "services": ["pettwin-backend"],
        }
    )
    check.run()
    aggregator.assert_metric(NS + "service.ready", 0, tags=SERVICE)
    aggregator.assert_metric(NS + "service.latest_revision_ready", 0, tags=SERVICE)
    aggregator.assert_metric(NS + "service.traffic.percent", 100, tags=REVISION_2)
    ready = service_check(aggregator, "revision.ready", SERVICE)
    assert ready.status == AgentCheck.CRITICAL
    assert ready.message == (
        "Service pettwin-backend: revision pettwin-backend-00003-ghi is not ready (HEALTH_CHECK_CONTAINER_ERROR): "
        "The user-provided container failed to start and listen on the port defined provided by the PORT=8080 "
        "environment variable within the allocated timeout. This can happen when the container port is "
        "misconfigured or if the timeout is too short. Logs for this revision might contain more information. "
        "Rollout failed; traffic stays on pettwin-backend-00002-def (100%)"
    )
    # The failed revision's startup probes show in Cloud Run's own metrics.
    start, end = monitoring_window(gcp_env, "completed_probe_count")
    expected = expected_count(
        gcp_env,
        "run.googleapis.com/container/completed_probe_count",
        {"probe_type": "Startup", "is_healthy": "false", "container_name": "app"},
        start,
        end,
    )
    aggregator.assert_metric(
        NS + "container.probe.failures",
        expected,
        tags=[*SERVICE, "revision_name:pettwin-backend-00003-ghi", "container_name:app", "probe_type:Startup"],
    )
    assert_contract(aggregator, NS)


def test_admin_api_403_names_the_role_and_next_run_recovers(aggregator, datadog_agent, gcp_env):
    gcp_env.inject_fault(r"^/v2/", status=403)
    check = make_check(
        {**emulator_options(gcp_env), "services": ["pettwin-backend"], "probes": [], "collect_cloud_run_metrics": False}
    )
    check.run()
    api = service_check(aggregator, "api.can_connect", ["api:run"])
    assert api.status == AgentCheck.CRITICAL
    assert "Cloud Run Admin API denied access on project pettwin-demo" in api.message
    assert "grant roles/run.viewer to the agent's identity" in api.message
    ready = service_check(aggregator, "revision.ready", SERVICE)
    assert (ready.status, ready.message) == (AgentCheck.UNKNOWN, api.message)
    aggregator.assert_metric(NS + "container.memory.usage")  # the host scope still reports
    assert not aggregator.metrics(NS + "service.ready")
    assert_contract(aggregator, NS)

    gcp_env.clear_faults()
    aggregator.reset()
    check.run()
    assert service_check(aggregator, "api.can_connect", ["api:run"]).status == AgentCheck.OK
    assert service_check(aggregator, "revision.ready", SERVICE).status == AgentCheck.OK


def test_dead_monitoring_costs_at_most_the_budget(aggregator, datadog_agent, gcp_env):
    gcp_env.inject_fault(r"/timeSeries$", latency=10.0)
    check = make_check(
        {
            **emulator_options(gcp_env),
            "project_id": "pettwin-demo",
            "location": "us-central1",
            "probes": [],
            "collection_timeout": 2.0,
            "collect_revision_health": False,
        }
    )
    started = time.monotonic()
    check.run()
    assert time.monotonic() - started < 3.0
    api = service_check(aggregator, "api.can_connect", ["api:monitoring"])
    assert api.status == AgentCheck.CRITICAL
    assert api.message.startswith("Cloud Monitoring API did not answer within the run budget of 2 s")
    assert api.message.endswith("the next run retries")
    aggregator.assert_metric(NS + "container.memory.usage")

    gcp_env.clear_faults()
    aggregator.reset()
    check.run()
    assert service_check(aggregator, "api.can_connect", ["api:monitoring"]).status == AgentCheck.OK
    aggregator.assert_metric(NS + "request.latency.p95", pytest.approx(480.0))


def test_app_faults_are_critical_with_the_reason_and_resources_still_report(aggregator, datadog_agent, app):
    check = make_check(
        {
            "probes": [
                {"name": "liveness", "timeout_seconds": 0.5, "http_get": {"path": "/healthz", "port": app.port}}
            ],
            "collect_revision_health": False,
            "collect_cloud_run_metrics": False,
        }
    )
    expected = {
        "failing": "liveness probe GET http://127.0.0.1:{port}/healthz failed: HTTP 503 Service Unavailable "
        "(expected 200-399) (1 consecutive failure)",
        "slow": "liveness probe GET http://127.0.0.1:{port}/healthz failed: no answer within the 0.5 s timeout "
        "(2 consecutive failures)",
        "closed": "liveness probe GET http://127.0.0.1:{port}/healthz failed: connection refused (nothing "
        "listening on the port) (3 consecutive failures)",
    }
    for mode, message in expected.items():
        aggregator.reset()
        if mode == "closed":
            app.close()
        else:
            app.set_mode(mode)
        check.run()
        health = service_check(aggregator, "app.health", ["probe:liveness"])
        assert (health.status, health.message) == (AgentCheck.CRITICAL, message.format(port=app.port))
        aggregator.assert_metric(NS + "app.probe.success", 0)
        aggregator.assert_metric(NS + "container.memory.usage", count=1)
        assert_contract(aggregator, NS)

    app.set_mode("healthy")
    app.reopen()
    aggregator.reset()
    check.run()
    assert service_check(aggregator, "app.health", ["probe:liveness"]).status == AgentCheck.OK
    aggregator.assert_metric(NS + "app.probe.consecutive_failures", 0)


def test_memory_threshold_service_check(aggregator, datadog_agent, tmp_path):
    tree = tmp_path / "cgroup"
    options = {
        "probes": [],
        "cgroup_root": str(tree),
        "cgroup_path": "/app",
        "collect_revision_health": False,
        "collect_cloud_run_metrics": False,
    }
    check = make_check(options)
    for usage, status, message in (
        (409 * MiB, AgentCheck.OK, None),
        (
            420 * MiB,
            AgentCheck.WARNING,
            "memory at 82.0% of the limit (420 MiB of 512 MiB), at or above the warning threshold of 80%",
        ),
        (
            500 * MiB,
            AgentCheck.CRITICAL,
            "memory at 97.7% of the limit (500 MiB of 512 MiB), at or above the critical threshold of 95%",
        ),
    ):
        aggregator.reset()
        write_tree(tree, memory_current=usage)
        check.run()
        memory = service_check(aggregator, "container.memory")
        assert (memory.status, memory.message or None) == (status, message)


def test_unreadable_cgroup_file_warns_once_and_falls_back_to_psutil(aggregator, datadog_agent, tmp_path):
    tree = write_tree(tmp_path / "cgroup")
    (tree / "app" / "memory.current").unlink()
    (tree / "app" / "memory.current").mkdir()  # exists but cannot be read as a file
    check = make_check(
        {
            "probes": [],
            "cgroup_root": str(tree),
            "cgroup_path": "/app",
            "collect_revision_health": False,
            "collect_cloud_run_metrics": False,
        }
    )
    check.run()
    check.run()
    warnings = [w for w in check.warnings if "Cannot read cgroup files" in w]
    assert len(warnings) == 1 and "memory.current" in warnings[0]
    usage = aggregator.metrics(NS + "container.memory.usage")
    assert len(usage) == 2 and all(0 < m.value for m in usage)
    aggregator.assert_metric(NS + "container.memory.limit", 512 * MiB)  # still from cgroup
    aggregator.assert_metric(NS + "container.memory.oom_kills", 2)


def test_no_cgroup_filesystem_warns_once_and_uses_psutil(aggregator, datadog_agent, tmp_path):
    check = make_check(
        {
            "probes": [],
            "cgroup_root": str(tmp_path),
            "collect_revision_health": False,
            "collect_cloud_run_metrics": False,
        }
    )
    check.run()
    check.run()
    assert [w for w in check.warnings if "No cgroup filesystem" in w] == [
        f"No cgroup filesystem under {tmp_path}: container resources come from psutil (the whole machine)"
    ]
    aggregator.assert_metric(NS + "container.memory.usage", count=2)
    aggregator.assert_metric(NS + "container.pids.current", count=2)
    assert not aggregator.metrics(NS + "container.cpu.throttled_periods")
    assert_contract(aggregator, NS)


def test_live_cgroup_of_this_machine(aggregator, datadog_agent):
    check = make_check({"probes": [], "collect_revision_health": False, "collect_cloud_run_metrics": False})
    check.run()
    (usage,) = aggregator.metrics(NS + "container.memory.usage")
    (limit,) = aggregator.metrics(NS + "container.memory.limit")
    assert 0 < usage.value <= limit.value
    assert not [w for w in check.warnings if "cgroup" in w]
    assert_contract(aggregator, NS)


def test_outside_cloud_run_runs_with_config_tags_and_says_so_once(aggregator, datadog_agent, caplog, monkeypatch, app):
    for name in CLOUD_RUN_ENV:
        monkeypatch.delenv(name, raising=False)
    caplog.set_level(logging.INFO)
    # A metadata endpoint with nothing listening: outside Google.
    check = make_check(
        {
            "probes": [{"name": "tcp", "tcp_socket": {"port": app.port}}],
            "tags": ["team:pets"],
            "metadata_endpoint": "http://127.0.0.1:9",
            "collect_revision_health": False,
            "collect_cloud_run_metrics": False,
        }
    )
    check.run()
    check.run()
    aggregator.assert_metric(NS + "app.probe.success", 1, tags=["team:pets", "probe:tcp", "probe_type:tcp"], count=2)
    said = [r for r in caplog.records if "Not on Cloud Run" in r.getMessage()]
    assert len(said) == 1
    assert check.warnings == []


def test_instance_id_only_when_asked(aggregator, datadog_agent, gcp_env, cloud_run_env):
    base = {
        **emulator_options(gcp_env),
        "probes": [],
        "collect_revision_health": False,
        "collect_cloud_run_metrics": False,
    }
    make_check(base).run()
    assert not [t for m in aggregator.metrics(NS + "instance.uptime") for t in m.tags if t.startswith("instance_id")]
    aggregator.reset()
    make_check({**base, "tag_instance_id": True}).run()
    (uptime,) = aggregator.metrics(NS + "instance.uptime")
    assert f"instance_id:{gcp_env.scenario.instance_id}" in uptime.tags


def test_restart_detected_across_an_agent_restart(aggregator, datadog_agent, app_process):
    marker, start, processes = app_process
    options = {
        "probes": [],
        "app_process": marker,
        "collect_revision_health": False,
        "collect_cloud_run_metrics": False,
    }
    make_check(options).run()
    aggregator.assert_metric(NS + "container.restarts", 0)
    processes[0].kill()
    processes[0].wait()
    time.sleep(1.5)  # process start times have a one-second slack
    start()
    aggregator.reset()
    # A new check object stands for a restarted agent: only the persistent cache remembers the old app.
    make_check(options).run()
    aggregator.assert_metric(NS + "container.restarts", 1)
    (uptime,) = aggregator.metrics(NS + "container.uptime")
    assert uptime.value < 10
    aggregator.reset()
    make_check(options).run()
    aggregator.assert_metric(NS + "container.restarts", 0)


@pytest.mark.parametrize(
    ("instance", "field"),
    [
        ({"probes": [{"name": "x"}]}, "probes -> 1"),
        ({"probes": [{"name": "x", "http_get": {"expected_status": "abc"}}]}, "expected_status"),
        ({"probes": [{"name": "x", "tcp_socket": {"port": 70000}}]}, "port"),
        ({"memory_warning_threshold": 90, "memory_critical_threshold": 85}, "memory_warning_threshold"),
        ({"app_process": "("}, "app_process"),
        (
            {
                "collection_timeout": 2,
                "probes": [
                    {"name": "a", "tcp_socket": {}, "timeout_seconds": 1.5},
                    {"name": "b", "tcp_socket": {}, "timeout_seconds": 1},
                ],
            },
            "collection_timeout",
        ),
    ],
)
def test_bad_config_fails_at_init_naming_the_field(instance, field):
    with pytest.raises(ConfigurationError, match=field):
        make_check(instance)


def test_metadata_server_down_on_cloud_run_warns_and_next_run_recovers(
    aggregator, datadog_agent, gcp_env, cloud_run_env
):
    gcp_env.inject_fault(r"^/computeMetadata/", status=503)
    check = make_check(
        {
            **emulator_options(gcp_env),
            "probes": [],
            "collect_revision_health": False,
            "collect_cloud_run_metrics": False,
        }
    )
    check.run()
    (uptime,) = aggregator.metrics(NS + "instance.uptime")
    assert sorted(uptime.tags) == sorted(
        [
            "service_name:pettwin-backend",
            "revision_name:pettwin-backend-00002-def",
            "configuration_name:pettwin-backend",
        ]
    )
    assert [w for w in check.warnings if w.startswith("Cloud Run metadata server unavailable")]
    gcp_env.clear_faults()
    aggregator.reset()
    check.run()
    (uptime,) = aggregator.metrics(NS + "instance.uptime")
    assert sorted(uptime.tags) == sorted(INSTANCE_TAGS[:-1])
