"""What the config specs document is what the models do: nested defaults (the generator fills only top-level
ones; validators.py fills these), and an unknown option is a warning naming the closest known one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pettwin_checks.cloud_run.check import PettwinCloudRunCheck
from pettwin_checks.cloud_run.config_models import InstanceConfig as CloudRunConfig
from pettwin_checks.cloud_run.config_models import validators as cloud_run_validators
from pettwin_checks.config_validation import unknown_options
from pettwin_checks.kafka_lag.check import PettwinKafkaLagCheck
from pettwin_checks.kafka_lag.config_models import InstanceConfig as KafkaLagConfig
from pettwin_checks.vertex_ai.config_models import InstanceConfig as VertexAiConfig
from pettwin_checks.vertex_ai.config_models import validators as vertex_validators

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def spec_options(package: str) -> dict:
    spec = yaml.safe_load((ROOT / "pettwin_checks" / package / "assets" / "configuration" / "spec.yaml").read_text())
    (instances,) = [section for section in spec["files"][0]["options"] if section["template"] == "instances"]
    return {option["name"]: option for option in instances["options"] if "name" in option}


def load(model, instance: dict):
    return model.model_validate(instance, context={"configured_fields": frozenset(instance)})


@pytest.mark.parametrize("option", ["probe", "collect"])
def test_vertex_nested_defaults_are_the_documented_example(option):
    assert spec_options("vertex_ai")[option]["value"]["example"] == vertex_validators.NESTED_DEFAULTS[option]
    assert load(VertexAiConfig, {}).model_dump()[option] == vertex_validators.NESTED_DEFAULTS[option]


def test_cloud_run_probe_defaults_are_the_documented_ones():
    text = spec_options("cloud_run")["probes"]["description"]
    documented = dict(re.findall(r"^\s+([\w.]+)\s+- default ([^;\s]+)", text, re.MULTILINE))
    assert documented["timeout_seconds"] == "1" and documented["http_get.path"] == "/"
    for name, value in documented.items():
        field = name.removeprefix("http_get.")
        defaults = (
            cloud_run_validators.HTTP_GET_DEFAULTS
            if name.startswith("http_get.")
            else cloud_run_validators.PROBE_DEFAULTS
        )
        if field in defaults:
            assert str(defaults[field]).removesuffix(".0") == value.strip('"()'), name
    (probe,) = load(CloudRunConfig, {"probes": [{"name": "p", "http_get": {}}]}).probes
    assert (probe.timeout_seconds, probe.failure_threshold, probe.http_get.path) == (1.0, 1, "/")
    assert probe.http_get.expected_status == "200-399"


def test_an_unknown_option_names_the_closest_known_one_at_any_depth():
    instance = {
        "probes": [{"name": "p", "tcp_socket": {"prot": 8080}, "timeoutSeconds": 5}],
        "colect_cloud_run_metrics": False,
        "name": "agent-instance-name",  # read by the agent itself
        "tags": ["team:pets"],
    }
    assert unknown_options(instance, CloudRunConfig) == [
        "unknown option `probes[0].tcp_socket.prot` is ignored; did you mean `port`?",
        "unknown option `probes[0].timeoutSeconds` is ignored; did you mean `timeout_seconds`?",
        "unknown option `colect_cloud_run_metrics` is ignored; did you mean `collect_cloud_run_metrics`?",
    ]
    far = unknown_options({"kafka_connect_str": "k:9092", "zzz": 1}, KafkaLagConfig)
    assert far[0].startswith("unknown option `zzz` is ignored; known options: collection_timeout, consumer_groups, ")


def test_the_checks_warn_at_init():
    kafka = PettwinKafkaLagCheck(
        "pettwin_kafka_lag",
        {},
        [{"kafka_connect_str": "127.0.0.1:1", "monitor_unlisted_consumer_groups": True, "collection_timout": 3}],
    )
    assert kafka.warnings == ["unknown option `collection_timout` is ignored; did you mean `collection_timeout`?"]
    cloud_run = PettwinCloudRunCheck(
        "pettwin_cloud_run", {"sevice": "x"}, [{"probes": [{"name": "p", "tcp_socket": {}, "timeoutSeconds": 5}]}]
    )
    assert cloud_run.warnings == [
        "unknown option `probes[0].timeoutSeconds` is ignored; did you mean `timeout_seconds`?",
        "unknown option `init_config.sevice` is ignored; did you mean `service`?",
    ]
