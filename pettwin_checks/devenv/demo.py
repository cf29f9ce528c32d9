"""`pettwin-checks demo`: the main job on local defaults.

Starts a real Kafka broker, a PetTwin-like workload that makes real lag, the GCP emulator and a stand-in for the
app container, then runs all three checks through the same runner as `pettwin-checks run` and prints what they
submit. Everything listens on 127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time

from pettwin_checks.cli import format_report, run_check

from .app_standin import AppStandin
from .gcp_emulator import GcpEmulator
from .kafka_broker import KafkaBroker
from .workload import PacedConsumer, PacedProducer, ensure_topic, produce

TOPIC = "pet-telemetry"
# group -> messages per second it consumes (0: keeps up); one more group stops after a first batch.
CONSUMERS = {"pettwin-alerts": 0.0, "pettwin-anomaly-scorer": 20.0}
STOPPED_GROUP = "pettwin-archiver"


def kafka_instance(broker: KafkaBroker) -> dict:
    return {
        "kafka_connect_str": broker.bootstrap,
        "monitor_unlisted_consumer_groups": True,
        "include_topics": [f"^{TOPIC}$"],
        "status_window": 60,
        "tags": ["env_name:demo"],
    }


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


def run_demo(times: int = 3, interval: float = 10.0, as_json: bool = False) -> int:
    stop = threading.Event()
    with KafkaBroker() as broker, GcpEmulator() as emulator, AppStandin() as app:
        print(
            f"# Kafka broker {broker.bootstrap} (Apache Kafka {broker.version}); GCP emulator {emulator.url}; "
            f"app stand-in {app.url}",
            flush=True,
        )
        ensure_topic(broker.bootstrap, TOPIC, 3)
        produce(broker.bootstrap, TOPIC, 300)
        archiver = PacedConsumer(broker.bootstrap, TOPIC, STOPPED_GROUP, 0.0, threading.Event())
        archiver.start()
        time.sleep(5)
        archiver.stop.set()  # consumed the backlog once and stopped: its lag grows from here on
        archiver.join(15)
        workers = [PacedProducer(broker.bootstrap, TOPIC, 30.0, stop)]
        workers += [PacedConsumer(broker.bootstrap, TOPIC, group, rate, stop) for group, rate in CONSUMERS.items()]
        for worker in workers:
            worker.start()

        with tempfile.TemporaryDirectory(prefix="pettwin-demo-") as tmp:
            key_path = emulator.write_service_account_key(os.path.join(tmp, "key.json"))
            instances = {
                "pettwin_kafka_lag": kafka_instance(broker),
                "pettwin_vertex_ai": vertex_instance(emulator, key_path),
                "pettwin_cloud_run": cloud_run_instance(emulator, key_path, app),
            }
            print("# letting the workload make some lag ...", flush=True)
            time.sleep(interval)
            # One check after the other: the stub aggregator is process-global.
            reports = [r for name, inst in instances.items() for r in run_check(name, {}, [inst], times, interval)]
            stop.set()
            for worker in workers:
                worker.join(15)
            failed = any(report["error"] for report in reports)
            if as_json:
                print(json.dumps(reports, indent=2, default=str))
            else:
                print("\n\n".join(format_report(report) for report in reports))
    return 1 if failed else 0
