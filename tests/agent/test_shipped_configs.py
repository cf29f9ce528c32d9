"""Every check configuration the project ships, as the agent loads it: the conf.d examples of the image, the Cloud
Run sidecar's, the compose ones (local broker, Confluent Cloud, the real-agent workflow's). Its ENC[...] handles are
answered by the image's secret helper (agent/secrets/readsecret), the result goes through the check's config model,
and each Kafka configuration runs against the devenv broker's listener of its security_protocol: SASL_SSL (PLAIN
over TLS, as Confluent Cloud) for the Confluent ones.

The one substitution besides the secrets' values: a SASL_SSL configuration gets the devenv broker's CA as
tls_ca_cert, because Confluent Cloud's certificates chain to the public CAs the system trusts and the devenv
broker's do not.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import yaml

from pettwin_checks.cloud_run.check import PettwinCloudRunCheck
from pettwin_checks.kafka_lag.check import PettwinKafkaLagCheck
from pettwin_checks.vertex_ai.check import PettwinVertexAiCheck
from tests.agent.agent_emulation import ROOT
from tests.agent.kafka_seed import SEEDED_TOPIC, seed_kafka
from tests.agent.secret_backend import handles_in, resolve_secrets, with_secrets

pytestmark = pytest.mark.integration

SOURCES = sorted([*ROOT.glob("conf.d/*/conf.yaml.example"), *ROOT.glob("agent/*/conf.d/*/conf.yaml")])
CHECK_CLASSES = {
    "pettwin_kafka_lag": PettwinKafkaLagCheck,
    "pettwin_vertex_ai": PettwinVertexAiCheck,
    "pettwin_cloud_run": PettwinCloudRunCheck,
}
# Where the agent's container has a mounted secret (compose `secrets:`), moved under the test's directory.
MOUNTED_SECRETS = "/run/secrets/"
# The example's placeholders for what an operator writes in: the devenv broker's own.
EXAMPLE_PLACEHOLDERS = ("<CONFLUENT_API_KEY>", "pkc-xxxxx.europe-west1.gcp.confluent.cloud:9092")


def check_name(source: Path) -> str:
    return source.parent.name.removesuffix(".d")


def test_every_deploy_path_ships_a_confluent_cloud_configuration():
    confluent = {}
    for source in SOURCES:
        if check_name(source) != "pettwin_kafka_lag":
            continue
        for instance in yaml.safe_load(source.read_text())["instances"]:
            if instance.get("security_protocol") == "SASL_SSL":
                confluent[source.relative_to(ROOT).parts[1]] = instance
    assert set(confluent) >= {"pettwin_kafka_lag.d", "cloudrun", "confluent"}, confluent
    assert confluent["cloudrun"]["leader_election"]["enabled"] is True  # one sidecar of the service collects
    for instance in confluent.values():
        assert handles_in(instance["sasl_plain_password"]), "the API secret is in the file itself"


def secrets_for(instance: dict, broker, workdir: Path) -> tuple[dict, dict]:
    """The instance with its mounted-file handles moved under `workdir`, and the environment the agent has."""
    user, password = broker.plain_user
    secrets = workdir / "run-secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "confluent_api_secret").write_text(password)
    environment = {
        "CONFLUENT_BOOTSTRAP_SERVERS": broker.sasl_ssl_bootstrap,
        "CONFLUENT_API_KEY": user,
        "CONFLUENT_API_SECRET": password,
    }
    moved = yaml.safe_load(yaml.safe_dump(instance).replace(f"file@{MOUNTED_SECRETS}", f"file@{secrets}/"))
    return moved, environment


def local_kafka(instance: dict, broker) -> dict:
    """The address of the devenv broker's listener that speaks the instance's protocol."""
    local = dict(instance)
    protocol = local.get("security_protocol", "PLAINTEXT")
    if protocol == "SASL_SSL":
        if local["kafka_connect_str"] in EXAMPLE_PLACEHOLDERS:
            local["kafka_connect_str"] = broker.sasl_ssl_bootstrap
        if local["sasl_plain_username"] in EXAMPLE_PLACEHOLDERS:
            local["sasl_plain_username"] = broker.plain_user[0]
        local["tls_ca_cert"] = broker.ca_cert
    else:
        assert protocol == "PLAINTEXT", f"no devenv listener chosen for {protocol}"
        local["kafka_connect_str"] = broker.bootstrap
    return local


def groups_of(instance: dict) -> dict[str, list[str]]:
    groups = instance.get("consumer_groups") or {}
    return {group: list(topics or {SEEDED_TOPIC: None}) for group, topics in groups.items()}


def run_until_it_collects(check, aggregator, seconds: float = 40.0) -> None:
    """One run; with leader election, runs until this member is elected (its first runs only join the group)."""
    ends = time.monotonic() + seconds
    while True:
        aggregator.reset()
        check.run()
        elected = [metric.value for metric in aggregator.metrics("pettwin.kafka.collector.leader")]
        if elected in ([], [1]) or time.monotonic() > ends:
            return
        time.sleep(1)


@pytest.mark.parametrize("source", SOURCES, ids=[str(source.relative_to(ROOT)) for source in SOURCES])
def test_shipped_configuration_loads_with_its_secrets_and_kafka_connects(source, kafka_broker, aggregator, tmp_path):
    name = check_name(source)
    config = yaml.safe_load(source.read_text())
    broker = kafka_broker.start()
    for raw in config["instances"]:
        instance, environment = secrets_for(raw or {}, broker, tmp_path)
        answers = resolve_secrets(sys.executable, sorted(set(handles_in(instance))), tmp_path, environment)
        resolved = with_secrets(instance, answers)
        if name != "pettwin_kafka_lag":
            # The config model validates at init: a wrong name or value raises ConfigurationError naming it.
            assert CHECK_CLASSES[name](name, config.get("init_config") or {}, [resolved]).config is not None
            continue
        local = local_kafka(resolved, broker)
        seed_kafka(broker.bootstrap, groups_of(local) or {"pettwin-alerts": [SEEDED_TOPIC]})
        check = PettwinKafkaLagCheck(name, config.get("init_config") or {}, [local])
        try:
            run_until_it_collects(check, aggregator)
        finally:
            check.cancel()
        (connect,) = aggregator.service_checks("pettwin.kafka.can_connect")
        assert connect.status == PettwinKafkaLagCheck.OK, connect.message
        assert aggregator.metrics("pettwin.kafka.consumer_lag") or not groups_of(local)
