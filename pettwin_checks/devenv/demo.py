"""`pettwin-checks demo`: the main job on local defaults.

Starts a real Kafka broker, a PetTwin-like workload that makes real lag, the GCP emulator and a stand-in for the
app container, then runs all three checks and prints, per check and run, what an operator looks at
(demo_summary.py); `--all` adds every metric row, `--json` prints the reports. `--fault` then breaks one thing at a
time (a consumer stops, Vertex AI goes over quota, a rollout fails) and runs the checks it concerns again, so the
change shows. Everything listens on 127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import NamedTuple

from pettwin_checks.cli import create_check, format_report, load_check_class, run_once

from .app_standin import AppStandin
from .demo_summary import SettledFigures, summarize
from .gcp_emulator import GcpEmulator
from .kafka_broker import KafkaBroker
from .workload import PacedConsumer, PacedProducer, ensure_topic, produce

TOPIC = "pet-telemetry"
# group -> messages per second it consumes (0: keeps up); one more group stops after a first batch.
CONSUMERS = {"pettwin-alerts": 0.0, "pettwin-anomaly-scorer": 20.0}
STOPPED_GROUP = "pettwin-archiver"
PRODUCE_RATE = 30.0


class Fault(NamedTuple):
    description: str  # what breaks and what the checks then show
    checks: tuple[str, ...]  # the checks run again after it


# Applied by Demo.apply_fault.
FAULTS = {
    "consumer-behind": Fault(
        description="stop the pettwin-alerts consumer: its group goes Empty, its lag grows, its status turns STOP",
        checks=("pettwin_kafka_lag",),
    ),
    "vertex-quota": Fault(
        description="gemini-2.5-flash at its quota (scenario vertex_quota_exhausted): headroom 0 %, 429s as its minute "
        "settles",
        checks=("pettwin_vertex_ai",),
    ),
    "failed-rollout": Fault(
        description="a revision never ready (scenario cloud_run_failed_rollout), the app answering 503: CRITICAL",
        checks=("pettwin_cloud_run",),
    ),
}


def kafka_instance(bootstrap: str, topic: str, group_prefix: str = "") -> dict:
    instance = {
        "kafka_connect_str": bootstrap,
        "monitor_unlisted_consumer_groups": True,
        "include_topics": [f"^{re.escape(topic)}$"],
        "status_window": 60,
        "tags": ["env_name:demo"],
    }
    if group_prefix:  # a broker shared with other groups (the test suite's): only the demo's own
        instance["include_consumer_groups"] = [f"^{re.escape(group_prefix)}"]
    return instance


def gcp_endpoints(emulator: GcpEmulator, key_path: str) -> dict:
    return {
        "project_id": emulator.project_id,
        "credentials_path": key_path,
        "monitoring_endpoint": emulator.url,
        "metadata_endpoint": emulator.url,
        "oauth_token_endpoint": f"{emulator.url}/token",
    }


def vertex_instance(emulator: GcpEmulator, key_path: str) -> dict:
    return {
        **gcp_endpoints(emulator, key_path),
        "aiplatform_endpoint": emulator.url,
        "locations": [emulator.region],
        "probe": {"enabled": True, "location": emulator.region},
        "tags": ["env_name:demo"],
    }


def cloud_run_instance(emulator: GcpEmulator, key_path: str, app: AppStandin) -> dict:
    return {
        **gcp_endpoints(emulator, key_path),
        "run_endpoint": emulator.url,
        "location": emulator.region,
        "service_name": "pettwin-backend",
        "app_port": app.port,
        "probes": [{"name": "health", "http_get": {"path": "/healthz", "port": app.port}, "timeout_seconds": 1}],
        "tags": ["env_name:demo"],
    }


def try_next(applied: list[str]) -> str:
    """The closing lines: the faults not shown yet, and how to see them."""
    left = [name for name in FAULTS if name not in applied]
    commands = [(f"scripts/demo --fault {name}", FAULTS[name].description) for name in left]
    if len(left) > 1:
        commands.append(("scripts/demo --fault all", "each of them, one after the other"))
    commands.append(("scripts/demo --all  (or --json)", "every metric row the checks submit, as `agent check` does"))
    width = max(len(command) for command, _ in commands)
    lines = ["", "# Try next:", *(f"#   {command:<{width}}  {what}" for command, what in commands)]
    lines.append("# The same checks in your own agent: README.md, 'Setup'.")
    return "\n".join(lines)


@dataclass
class Demo:
    """The running parts and one instance of each check, kept across runs so state (lag history, status windows,
    collection windows) carries over as it does in the agent."""

    broker: KafkaBroker
    emulator: GcpEmulator
    app: AppStandin
    topic: str
    groups: dict[str, str]  # role -> group id
    prefix: str = ""  # of the topic and group names
    stop: threading.Event = field(default_factory=threading.Event)
    stop_alerts: threading.Event = field(default_factory=threading.Event)
    workers: list[threading.Thread] = field(default_factory=list)
    checks: dict = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)

    def start_workload(self) -> None:
        bootstrap = self.broker.bootstrap
        ensure_topic(bootstrap, self.topic, 3)
        produce(bootstrap, self.topic, 300)
        archiver = PacedConsumer(bootstrap, self.topic, self.groups[STOPPED_GROUP], 0.0, threading.Event())
        archiver.start()
        time.sleep(5)
        archiver.stop.set()  # consumed the backlog once and stopped: its lag grows from here on
        archiver.join(15)
        self.workers = [PacedProducer(bootstrap, self.topic, PRODUCE_RATE, self.stop)]
        for role, rate in CONSUMERS.items():
            stop = self.stop_alerts if role == "pettwin-alerts" else self.stop
            self.workers.append(PacedConsumer(bootstrap, self.topic, self.groups[role], rate, stop))
        for worker in self.workers:
            worker.start()

    def make_checks(self, key_path: str) -> None:
        instances = {
            "pettwin_kafka_lag": kafka_instance(self.broker.bootstrap, self.topic, self.prefix),
            "pettwin_vertex_ai": vertex_instance(self.emulator, key_path),
            "pettwin_cloud_run": cloud_run_instance(self.emulator, key_path, self.app),
        }
        self.checks = {
            name: create_check(load_check_class(name), name, {}, instance, 1) for name, instance in instances.items()
        }
        for name, check in self.checks.items():
            # The persistent cache is keyed by check id, as in the agent. Not cli's digest of the configuration: a
            # demo's state is its own, never what an earlier demo in the same process left under the same config.
            check.check_id = f"{name}:demo-{self.topic}-{id(self)}"

    def run(self, name: str) -> dict:
        """One run of one check, reported as `pettwin-checks run` reports it."""
        self.runs[name] = self.runs.get(name, 0) + 1
        return run_once(self.checks[name], name, 0, self.runs[name])

    def apply_fault(self, fault: str) -> None:
        if fault == "consumer-behind":
            self.stop_alerts.set()
        elif fault == "vertex-quota":
            self.emulator.load_scenario("vertex_quota_exhausted")
        elif fault == "failed-rollout":
            self.emulator.load_scenario("cloud_run_failed_rollout")
            self.app.set_mode("failing")

    def close(self) -> None:
        self.stop.set()
        self.stop_alerts.set()
        for check in self.checks.values():
            check.cancel()
        for worker in self.workers:
            worker.join(15)


def run_demo(
    times: int = 3,
    interval: float = 10.0,
    as_json: bool = False,
    every_row: bool = False,
    faults: list[str] | None = None,
    prefix: str = "",
    out=None,
) -> int:
    """Baseline runs of every check, then each fault and `times` runs of the checks it concerns. `prefix` names the
    topic and groups apart (the test suite shares one broker)."""
    out = out or sys.stdout
    faults = list(FAULTS) if faults == ["all"] else faults or []
    log = sys.stderr if as_json else out  # with --json, stdout holds only the JSON document
    reports: list[dict] = []
    settled = SettledFigures()

    def runs(names: list[str]) -> None:
        for run in range(times):
            if run:
                time.sleep(interval)
            for name in names:
                report = demo.run(name)
                reports.append(report)
                if not as_json:
                    summary = summarize(report, settled, time.monotonic())
                    print(format_report(report) if every_row else summary, file=out, flush=True)

    with KafkaBroker() as broker, GcpEmulator() as emulator, AppStandin() as app:
        groups = {role: prefix + role for role in [*CONSUMERS, STOPPED_GROUP]}
        demo = Demo(broker, emulator, app, prefix + TOPIC, groups, prefix)
        print(
            f"# Kafka broker {broker.bootstrap} (Apache Kafka {broker.version}); GCP emulator {emulator.url}; "
            f"app stand-in {app.url}",
            file=log,
            flush=True,
        )
        try:
            demo.start_workload()
            with tempfile.TemporaryDirectory(prefix="pettwin-demo-") as tmp:
                demo.make_checks(emulator.write_service_account_key(os.path.join(tmp, "key.json")))
                print(
                    f"# workload: {PRODUCE_RATE:.0f} messages/s to {demo.topic}; pettwin-alerts keeps up, "
                    f"pettwin-anomaly-scorer reads {CONSUMERS['pettwin-anomaly-scorer']:.0f}/s, pettwin-archiver "
                    "stopped after a first batch. Letting it make some lag ...",
                    file=log,
                    flush=True,
                )
                time.sleep(interval)
                runs(list(demo.checks))
                for fault in faults:
                    print(f"\n# --fault {fault}: {FAULTS[fault].description}", file=log, flush=True)
                    demo.apply_fault(fault)
                    time.sleep(interval)
                    runs(list(FAULTS[fault].checks))
        finally:
            demo.close()
    if as_json:
        print(json.dumps(reports, indent=2, default=str), file=out)
    print(try_next(faults), file=log)
    return 1 if any(report["error"] for report in reports) else 0
