"""Agent loader conformance, without Docker: what the agent does with the image, reproduced.

1. Build the pettwin-checks wheel and install it into a clean interpreter that already holds the agent's own
   packages, the way agent/Dockerfile does (constraints from the frozen environment; only missing packages
   are added). Once per session.
2. For every shim in checks.d: import it by file name, pick the class like the agent's loader, create one
   check per instance of its conf.d example (and of the configurations the image ships for docker-compose
   and Cloud Run), with the addresses swapped for the local Kafka broker, GCP emulator and app stand-in.
3. Run each check under that interpreter and assert it submitted metrics that are in metadata.csv with their
   types, and only service checks listed in service_checks.json.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.agent.agent_emulation import ROOT
from tests.agent.agent_venv import AGENT_SHIPPED, build_agent_venv

pytestmark = pytest.mark.integration

SHIMS = sorted((ROOT / "checks.d").glob("*.py"))
SHIPPED_CONFIG_DIRS = [ROOT / "agent" / "compose" / "conf.d", ROOT / "agent" / "cloudrun" / "conf.d"]
GCP_ENDPOINT_OPTIONS = (
    "metadata_endpoint",
    "monitoring_endpoint",
    "run_endpoint",
    "aiplatform_endpoint",
    "iam_credentials_endpoint",
)
CLOUD_RUN_ENV = {
    "K_SERVICE": "pettwin-backend",
    "K_REVISION": "pettwin-backend-00002-def",
    "K_CONFIGURATION": "pettwin-backend",
}
SEEDED_GROUP, SEEDED_TOPIC = "pettwin-alerts", "pet-telemetry"


def config_sources() -> list[tuple[Path, Path]]:
    pairs = []
    for shim in SHIMS:
        pairs.append((shim, ROOT / "conf.d" / f"{shim.stem}.d" / "conf.yaml.example"))
        for directory in SHIPPED_CONFIG_DIRS:
            shipped = directory / f"{shim.stem}.d" / "conf.yaml"
            if shipped.exists():
                pairs.append((shim, shipped))
    return pairs


@pytest.fixture(scope="session")
def agent_python(tmp_path_factory):
    python, before, after = build_agent_venv(tmp_path_factory.mktemp("agent-embedded"))
    return python, before, after


def test_install_adds_packages_and_replaces_none(agent_python):
    _, before, after = agent_python
    changed = {name: (version, after.get(name)) for name, version in before.items() if after.get(name) != version}
    assert not changed, f"the install changed packages the agent ships: {changed}"
    added = set(after) - set(before)
    assert "pettwin-checks" in added
    assert not added & {name.lower() for name in AGENT_SHIPPED}


def test_every_shim_imports_only_its_check_class():
    assert SHIMS, "checks.d holds no shim"
    for shim in SHIMS:
        lines = [line for line in shim.read_text().splitlines() if line.strip() and not line.startswith("#")]
        assert len(lines) == 1 and lines[0].startswith("from pettwin_checks."), f"{shim.name}: {lines}"


# --- local stand-ins for the addresses in the examples -------------------------------------------------


def seed_kafka(bootstrap: str, groups: dict[str, list[str]]) -> None:
    """Each topic gets 20 messages per partition; each group commits 5 per partition, so lag is 15."""
    from confluent_kafka import Consumer, TopicPartition

    from pettwin_checks.devenv.workload import ensure_topic, produce

    for group, topics in groups.items():
        for topic in topics:
            ensure_topic(bootstrap, topic, partitions=3)
            for partition in range(3):
                produce(bootstrap, topic, 20, partition=partition)
            consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
            try:
                consumer.commit(offsets=[TopicPartition(topic, p, 5) for p in range(3)], asynchronous=False)
            finally:
                consumer.close()


def localize_kafka(instance: dict, context: dict) -> dict:
    local = {key: value for key, value in (instance or {}).items() if not key.startswith(("sasl_", "tls_"))}
    local["kafka_connect_str"] = context["kafka"].bootstrap
    local["security_protocol"] = "PLAINTEXT"
    groups = {
        group: list(topics or {SEEDED_TOPIC: None}) for group, topics in (local.get("consumer_groups") or {}).items()
    }
    seed_kafka(context["kafka"].bootstrap, groups or {SEEDED_GROUP: [SEEDED_TOPIC]})
    return local


def localize_gcp(instance: dict, context: dict) -> dict:
    emulator = context["gcp"]
    local = dict(instance or {})  # a bare `-` instance is YAML null: every option at its default
    for option in GCP_ENDPOINT_OPTIONS:
        local[option] = emulator.url
    if "project_id" in local:
        local["project_id"] = emulator.project_id
    if "credentials_path" in local:
        local["credentials_path"] = context["gcp_key_file"]
    return local


def localize_cloud_run(instance: dict, context: dict) -> dict:
    local = localize_gcp(instance, context)
    app = context["app"]
    local["probe_host"] = app.host
    local["app_port"] = app.port
    for probe in local.get("probes") or []:
        for action in ("http_get", "tcp_socket"):
            if probe.get(action) and "port" in probe[action]:
                probe[action]["port"] = app.port
    return local


LOCALIZERS = {
    "pettwin_kafka_lag": localize_kafka,
    "pettwin_vertex_ai": localize_gcp,
    "pettwin_cloud_run": localize_cloud_run,
}


@pytest.fixture
def app_standin():
    from pettwin_checks.devenv.app_standin import AppStandin

    with AppStandin() as standin:
        yield standin


@pytest.mark.parametrize(
    "shim, source",
    config_sources(),
    ids=[f"{shim.stem}:{source.relative_to(ROOT)}" for shim, source in config_sources()],
)
def test_agent_loads_and_runs_the_check(shim, source, agent_python, kafka_broker, gcp_emulator, app_standin, tmp_path):
    python, _, _ = agent_python
    assert source.exists(), f"{source.relative_to(ROOT)} is missing: every check ships a documented example"
    assert shim.stem in LOCALIZERS, f"no local substitution for {shim.stem}: add one to LOCALIZERS"

    config = yaml.safe_load(source.read_text()) or {}
    assert config.get("instances"), f"{source.relative_to(ROOT)} configures no instance"
    context = {
        "kafka": kafka_broker.start(),
        "gcp": gcp_emulator,
        "gcp_key_file": gcp_emulator.write_service_account_key(tmp_path / "service-account.json"),
        "app": app_standin,
    }
    local = {
        "init_config": config.get("init_config") or {},
        "instances": [LOCALIZERS[shim.stem](instance, context) for instance in config["instances"]],
    }
    local_conf = tmp_path / "conf.yaml"
    local_conf.write_text(yaml.safe_dump(local))

    environment = {key: value for key, value in os.environ.items() if not key.startswith(("GOOGLE_", "GCE_", "K_"))}
    environment.update(
        {
            # Where google-auth and the checks find the metadata server: the emulator, never Google.
            "GCE_METADATA_HOST": gcp_emulator.metadata_host,
            "GCE_METADATA_ROOT": gcp_emulator.metadata_host,
            "GCE_METADATA_IP": gcp_emulator.metadata_host,
            "NO_PROXY": "127.0.0.1,localhost",
            **CLOUD_RUN_ENV,
        }
    )
    result = subprocess.run(
        [
            str(python),
            str(ROOT / "tests" / "agent" / "agent_loader.py"),
            str(shim),
            str(local_conf),
            "--runs",
            "2",
            "--interval",
            "1",
            "--metadata",
            str(ROOT / "metadata.csv"),
            "--service-checks",
            str(ROOT / "service_checks.json"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.splitlines()[-1])

    # The agent-like interpreter ran the installed wheel, not this checkout.
    assert Path(report["package_file"]).is_relative_to(python.parent.parent), report["package_file"]
    assert report["instances"] == len(local["instances"])
    assert report["errors"] == [], report["errors"]
    namespace = report["namespace"] + "."
    submitted = [name for name in report["metrics"] if name.startswith(namespace)]
    assert submitted, f"{shim.stem} submitted no {namespace}* metric: {report['metrics']}"
    assert report["contract_errors"] == [], report["contract_errors"]
    assert report["service_checks"], f"{shim.stem} submitted no service check"
