"""What a sidecar sees: agent and app as two real processes in separate (fake) cgroup trees; the app's resources
from Cloud Run's per-container series (the GCP emulator over real HTTP), the agent's cgroup figures tagged as the
agent's, and no figure of one labelled as the other's; and the shipped sidecar configuration against both shapes
Google may send the utilizations in (per container, or one series for the whole revision)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from datadog_checks.base import AgentCheck

from pettwin_checks.cloud_run.check import PettwinCloudRunCheck
from tests.contract import assert_contract

pytestmark = pytest.mark.integration

NS = "pettwin.cloud_run."
MiB = 1024 * 1024
REVISION = [
    "project_id:pettwin-demo",
    "location:us-central1",
    "service_name:pettwin-backend",
    "revision_name:pettwin-backend-00002-def",
]
SHIPPED_SIDECAR = Path(__file__).parents[3] / "agent" / "cloudrun" / "conf.d" / "pettwin_cloud_run.d" / "conf.yaml"


def cgroup_tree(directory: Path, pid: int, usage_usec: int, memory: int) -> None:
    """One container's cgroup v2 directory, with its member process in cgroup.procs."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "cgroup.procs": f"{pid}\n",
        "cpu.stat": f"usage_usec {usage_usec}\nnr_periods 10\nnr_throttled 0\n",
        "cpu.max": "100000 100000\n",
        "memory.current": f"{memory}\n",
        "memory.max": f"{256 * MiB}\n",
        "memory.events": "oom_kill 0\n",
        "pids.current": "40\n",
        "pids.max": "max\n",
    }
    for name, text in files.items():
        (directory / name).write_text(text)


@pytest.fixture
def app_container(tmp_path):
    """The app: a real HTTP server process of its own."""
    with socket.socket() as probe_port:
        probe_port.bind(("127.0.0.1", 0))
        port = probe_port.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "pettwin_checks.devenv.app_standin", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield process, port
    process.kill()
    process.wait()


def test_sidecar_figures_describe_the_container_they_name(
    aggregator, datadog_agent, gcp_env, app_container, tmp_path, monkeypatch
):
    gcp_env.load_scenario("cloud_run_per_container")
    app, port = app_container
    root = tmp_path / "cgroup"
    (root / "cgroup.controllers").parent.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    cgroup_tree(root / "agent", os.getpid(), usage_usec=1_000_000, memory=60 * MiB)  # this process: the agent
    cgroup_tree(root / "app", app.pid, usage_usec=90_000_000, memory=200 * MiB)  # never the agent's to read
    for name, value in {"K_SERVICE": "pettwin-backend", "K_REVISION": "pettwin-backend-00002-def"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PORT", raising=False)  # Cloud Run sets PORT in the ingress container only
    check = PettwinCloudRunCheck(
        "pettwin_cloud_run",
        {},
        [
            {
                "metadata_endpoint": gcp_env.url,
                "run_endpoint": gcp_env.url,
                "monitoring_endpoint": gcp_env.url,
                "app_port": port,
                "cgroup_root": str(root),
                "cgroup_path": "/agent",
                # The app's process is visible here (one PID namespace), but it is not in the agent's cgroup.
                "app_process": f"app_standin --port {port}",
                "collect_revision_health": False,
            }
        ],
    )
    check.run()

    # The agent's own container, from its cgroup, tagged so.
    agent = [*REVISION, "container:agent"]
    aggregator.assert_metric(NS + "container.memory.usage", 60 * MiB, tags=agent, count=1)
    aggregator.assert_metric(NS + "container.memory.limit", 256 * MiB, tags=agent, count=1)
    aggregator.assert_metric(NS + "container.cpu.limit", 1.0, tags=agent, count=1)
    memory = aggregator.service_checks(NS + "container.memory")
    assert [sc.tags for sc in memory] == [agent]
    # Nothing from a cgroup is said to be the app's, and no 200 MiB (the app's cgroup) was read at all.
    cgroup_metrics = [
        m
        for name in aggregator.metric_names
        if name.startswith(NS + "container.") and ".utilization." not in name and ".probe." not in name
        for m in aggregator.metrics(name)
    ]
    assert cgroup_metrics and all("container:agent" in m.tags for m in cgroup_metrics)
    assert not [m for m in aggregator.metrics(NS + "container.memory.usage") if m.value == 200 * MiB]
    # The app's restarts and uptime cannot be seen from here: not reported rather than the agent's.
    assert not aggregator.metrics(NS + "container.restarts") and not aggregator.metrics(NS + "container.uptime")

    # The app, probed over localhost on the port given (no PORT in a sidecar).
    (health,) = aggregator.service_checks(NS + "app.health")
    assert health.status == AgentCheck.OK
    # The app's CPU and memory from Cloud Run's per-container series: app [0.70, 0.75) CPU and [0.80, 0.85)
    # memory; the agent's [0.05, 0.10) and [0.15, 0.20) stay tagged as the agent container's.
    app_tags, agent_tags = [*REVISION, "container_name:app"], [*REVISION, "container_name:datadog-agent"]
    aggregator.assert_metric(NS + "container.cpu.utilization.p50", pytest.approx(72.5), tags=app_tags)
    aggregator.assert_metric(NS + "container.memory.utilization.p50", pytest.approx(82.5), tags=app_tags)
    aggregator.assert_metric(NS + "container.cpu.utilization.p50", pytest.approx(7.5), tags=agent_tags)
    aggregator.assert_metric(NS + "container.memory.utilization.p50", pytest.approx(17.5), tags=agent_tags)
    # Probe failures per container: the agent's own startup probe is never the app's.
    aggregator.assert_metric(NS + "container.probe.failures", 5, tags=[*app_tags, "probe_type:Liveness"])
    aggregator.assert_metric(NS + "container.probe.failures", 15, tags=[*agent_tags, "probe_type:Startup"])
    assert_contract(aggregator, NS)


def test_app_container_name_reads_only_the_apps_series(aggregator, datadog_agent, gcp_env):
    gcp_env.load_scenario("cloud_run_per_container")
    PettwinCloudRunCheck(
        "pettwin_cloud_run",
        {},
        [
            {
                "metadata_endpoint": gcp_env.url,
                "run_endpoint": gcp_env.url,
                "monitoring_endpoint": gcp_env.url,
                "project_id": "pettwin-demo",
                "location": "us-central1",
                "services": ["pettwin-backend"],
                "probes": [],
                "collect_container_resources": False,
                "collect_revision_health": False,
                "app_container_name": "app",
            }
        ],
    ).run()
    for name in ("container.probe.failures", "container.cpu.utilization.p50", "container.memory.utilization.p50"):
        tags = {t for m in aggregator.metrics(NS + name) for t in m.tags if t.startswith("container_name:")}
        assert tags == {"container_name:app"}, name
    # Chosen after reading: a filter on a label some series lack would drop them on Google's side.
    filters = [r["params"]["filter"][0] for r in gcp_env.requests() if r["path"].endswith("/timeSeries")]
    assert filters and not [f for f in filters if "container_name" in f]


# (scenario, the container_name tag the app's figures carry, their CPU p50 and memory p50 in percent)
SHAPES = [
    ("cloud_run_per_container", "app", 72.5, 82.5),  # per container: the app's own series
    ("default", "all", 25.0, 57.5),  # one series for the revision: its figure, tagged as the whole revision's
]


@pytest.mark.parametrize("scenario, container, cpu, memory", SHAPES, ids=[shape[0] for shape in SHAPES])
def test_shipped_sidecar_config_reports_the_apps_cpu_and_memory_in_both_shapes(
    aggregator, datadog_agent, gcp_env, app_container, monkeypatch, caplog, scenario, container, cpu, memory
):
    gcp_env.load_scenario(scenario)
    _, port = app_container
    for name, value in {"K_SERVICE": "pettwin-backend", "K_REVISION": "pettwin-backend-00002-def"}.items():
        monkeypatch.setenv(name, value)
    (instance,) = yaml.safe_load(SHIPPED_SIDECAR.read_text())["instances"]
    assert instance["app_container_name"] == "app"
    endpoints = {f"{api}_endpoint": gcp_env.url for api in ("metadata", "run", "monitoring")}
    caplog.set_level("INFO")
    check = PettwinCloudRunCheck("pettwin_cloud_run", {}, [{**instance, **endpoints, "app_port": port}])
    check.run()
    check.run()  # the shape is said once, not every run

    for name, value in (("container.cpu.utilization.p50", cpu), ("container.memory.utilization.p50", memory)):
        found = [m for m in aggregator.metrics(NS + name) if set(REVISION) <= set(m.tags)]
        assert found, f"{name}: the app's figure disappeared with the shipped configuration ({scenario})"
        assert {t for m in found for t in m.tags if t.startswith("container_name:")} == {f"container_name:{container}"}
        assert found[0].value == pytest.approx(value)
    said = [r.getMessage() for r in caplog.records if "cannot be applied" in r.getMessage()]
    if container == "all":
        assert len(said) == 3  # startup latencies, CPU and memory utilizations, once each
        assert all(r.levelname == "INFO" for r in caplog.records if "cannot be applied" in r.getMessage())
    else:
        assert said == []
    assert_contract(aggregator, NS)
