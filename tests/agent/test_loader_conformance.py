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
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.agent.agent_emulation import ROOT
from tests.agent.agent_venv import AGENT_PYTHON, AGENT_SHIPPED, package_set, pip_install
from tests.agent.kafka_seed import SEEDED_GROUP, SEEDED_TOPIC, seed_kafka
from tests.agent.secret_backend import ENC, SECRET_HELPER, resolve_secrets, secret_backend

pytestmark = pytest.mark.integration

SHIMS = sorted((ROOT / "checks.d").glob("*.py"))
SHIPPED_CONFIG_DIRS = sorted(ROOT.glob("agent/*/conf.d"))
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


def config_sources() -> list[tuple[Path, Path]]:
    pairs = []
    for shim in SHIMS:
        pairs.append((shim, ROOT / "conf.d" / f"{shim.stem}.d" / "conf.yaml.example"))
        for directory in SHIPPED_CONFIG_DIRS:
            shipped = directory / f"{shim.stem}.d" / "conf.yaml"
            if shipped.exists():
                pairs.append((shim, shipped))
    return pairs


def test_the_stand_in_is_the_agents_python_with_the_agents_packages(agent_python):
    python, before, _ = agent_python
    version = subprocess.run(
        [str(python), "-c", "import sys; print(sys.version)"], capture_output=True, check=False, text=True
    )
    assert version.stdout.startswith(AGENT_PYTHON + ".")
    pins = package_set()
    for name in ("datadog-checks-base", "confluent-kafka", "pydantic", "cachetools", "requests"):
        assert before[name] == pins[name], name


def test_install_adds_packages_and_replaces_none(agent_python):
    _, before, after = agent_python
    changed = {name: (version, after.get(name)) for name, version in before.items() if after.get(name) != version}
    assert not changed, f"the install changed packages the agent ships: {changed}"
    added = set(after) - set(before)
    assert "pettwin-checks" in added and "google-auth" in added
    assert not added & {canonicalize_name(name) for name in AGENT_SHIPPED}
    pins = package_set()
    assert {name: after[name] for name in added if name in pins} == {name: pins[name] for name in added if name in pins}


def dependency_floors() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(raw) for raw in [*project["dependencies"], *project["optional-dependencies"]["deps"]]]


def test_every_dependency_floor_installs_under_the_agents_packages(agent_python):
    """The lowest version pyproject.toml allows must install beside the agent's packages, not only the newest."""
    python, _, _ = agent_python
    pins = package_set()
    for requirement in dependency_floors():
        name = canonicalize_name(requirement.name)
        (floor,) = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        if name in pins:
            assert requirement.specifier.contains(pins[name]), f"{requirement}: the agent ships {pins[name]}"
        else:
            pip_install(python, f"{name}=={floor}", dry_run=True)  # raises with pip's explanation


def test_the_wheel_the_image_installs_holds_the_checks_without_devenv(agent_python, agent_workdir):
    (wheel,) = (agent_workdir / "pettwin-wheels").glob("pettwin_checks-*.whl")
    files = zipfile.ZipFile(wheel).namelist()
    assert (
        "pettwin_checks/kafka_lag/check.py" in files and "pettwin_checks/cloud_run/config_models/instance.py" in files
    )
    assert not [name for name in files if name.startswith("pettwin_checks/devenv/")]
    assert not [name for name in files if "/assets/" in name or name.endswith("manifest.json")]


def test_every_shim_imports_only_its_check_class():
    assert SHIMS, "checks.d holds no shim"
    for shim in SHIMS:
        lines = [line for line in shim.read_text().splitlines() if line.strip() and not line.startswith("#")]
        assert len(lines) == 1 and lines[0].startswith("from pettwin_checks."), f"{shim.name}: {lines}"


# --- local stand-ins for the addresses in the examples -------------------------------------------------


def localize_kafka(instance: dict, context: dict) -> dict:
    local = {key: value for key, value in (instance or {}).items() if not key.startswith(("sasl_", "tls_"))}
    local["kafka_connect_str"] = context["kafka"].bootstrap
    local["security_protocol"] = "PLAINTEXT"
    # Loading and running is what this test holds; an elected collector takes a few runs to join its group
    # (test_shipped_configs.py runs the election on the SASL_SSL listener).
    local.pop("leader_election", None)
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


# --- secrets: ENC[...] through the image's secret_backend_command -------------------------------------------


def test_the_image_runs_its_secret_helper_in_front_of_the_bundled_one():
    command, arguments = secret_backend()
    assert arguments == ["/readsecret_multiple_providers.sh"]  # the helper every agent image ships
    dockerfile = (ROOT / "agent" / "Dockerfile").read_text()
    # The agent runs only a helper owned by its user without rights for group or others.
    assert f"COPY --chmod=0700 agent/secrets/readsecret {command}\n" in dockerfile
    assert SECRET_HELPER.read_text().startswith("#!/opt/datadog-agent/embedded/bin/python3\n")


def test_every_enc_handle_the_project_ships_resolves_from_a_file_or_the_environment(agent_python, tmp_path):
    python, _, _ = agent_python
    sources = [
        *ROOT.glob("conf.d/*/conf.yaml.example"),
        *ROOT.glob("agent/*/conf.d/*/conf.yaml"),
        *ROOT.glob("docker-compose*.yml"),
        ROOT / "agent" / "cloudrun" / "service.yaml",
    ]
    handles = sorted({handle for source in sources for handle in ENC.findall(source.read_text())})
    assert "file@/run/secrets/confluent_api_secret" in handles and "env@CONFLUENT_API_SECRET" in handles
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    local, expected, environment = {}, {}, {}
    for handle in handles:
        provider, _, where = handle.partition("@")
        assert provider in ("file", "env"), f"ENC[{handle}] names no provider the image resolves (file@ or env@)"
        value = f"value of {handle}"
        if provider == "file":
            (secrets / Path(where).name).write_text(value)
            handle = f"file@{secrets / Path(where).name}"  # where the agent's container would have it mounted
        else:
            environment[where] = value
        local[handle], expected[handle] = value, value
    answers = resolve_secrets(python, list(local), tmp_path, environment)
    assert answers == {handle: {"value": value, "error": None} for handle, value in expected.items()}


def test_missing_secrets_are_errors_that_never_show_a_value(agent_python, tmp_path):
    python, _, _ = agent_python
    answers = resolve_secrets(
        python, ["env@PETTWIN_UNSET", f"file@{tmp_path}/absent", "confluent_api_secret"], tmp_path, {"OTHER": "s3cr3t"}
    )
    assert {handle: answer["value"] for handle, answer in answers.items()} == dict.fromkeys(answers)
    assert "PETTWIN_UNSET is not set" in answers["env@PETTWIN_UNSET"]["error"]
    assert "s3cr3t" not in json.dumps(answers)


def test_a_sasl_secret_from_a_file_and_the_environment_authenticates_to_the_broker(
    agent_python, kafka_broker, tmp_path
):
    """An ENC[] conf, resolved through the image's configuration, runs the check on the agent's Python against
    the real broker's SASL listener (SCRAM-SHA-512)."""
    python, _, _ = agent_python
    broker = kafka_broker.start()
    name, password = broker.scram_user
    (tmp_path / "kafka_password").write_text(password)
    instance = {
        "kafka_connect_str": broker.sasl_bootstrap,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "ENC[env@KAFKA_USER]",
        "sasl_plain_password": f"ENC[file@{tmp_path}/kafka_password]",
        "consumer_groups": {SEEDED_GROUP: {SEEDED_TOPIC: []}},
    }
    seed_kafka(broker.bootstrap, {SEEDED_GROUP: [SEEDED_TOPIC]})
    handles = [
        ENC.fullmatch(value).group(1) for value in instance.values() if isinstance(value, str) and ENC.fullmatch(value)
    ]
    answers = resolve_secrets(python, handles, tmp_path, {"KAFKA_USER": name})
    resolved = {
        key: answers[ENC.fullmatch(value).group(1)]["value"]
        if isinstance(value, str) and ENC.fullmatch(value)
        else value
        for key, value in instance.items()
    }
    assert (resolved["sasl_plain_username"], resolved["sasl_plain_password"]) == (name, password)
    conf = tmp_path / "conf.yaml"
    conf.write_text(yaml.safe_dump({"init_config": {}, "instances": [resolved]}))
    shim = ROOT / "checks.d" / "pettwin_kafka_lag.py"
    result = subprocess.run(
        [str(python), str(ROOT / "tests" / "agent" / "agent_loader.py"), str(shim), str(conf)],
        capture_output=True,
        check=False,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["errors"] == []
    assert report["service_checks"]["pettwin.kafka.can_connect"] == [0]  # OK
    assert "pettwin.kafka.consumer_lag" in report["metrics"]
