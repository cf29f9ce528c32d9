"""Cloud Run config: the example's commented probes parse, the default probe, probes' own checks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pettwin_checks.cloud_run.check import build_probe_specs
from pettwin_checks.cloud_run.config_models import InstanceConfig

pytestmark = pytest.mark.unit

EXAMPLE = Path(__file__).resolve().parents[3] / "conf.d" / "pettwin_cloud_run.d" / "conf.yaml.example"


def load(instance: dict) -> InstanceConfig:
    """As the base class loads a model: the configured option names go in the validation context."""
    return InstanceConfig.model_validate(instance, context={"configured_fields": frozenset(instance)})


def test_example_is_valid_yaml_and_the_commented_probes_parse():
    config = yaml.safe_load(EXAMPLE.read_text())
    assert config["instances"] == [{"tags": ["team:pettwin"]}]  # every other option at its default
    block = re.search(r"    # probes:\n((?:    #   .*\n)+)", EXAMPLE.read_text()).group(0)
    probes = yaml.safe_load("\n".join(line.replace("    # ", "", 1) for line in block.splitlines()))
    specs = build_probe_specs(load(probes), {"PORT": "8081"})
    assert [(s.name, s.kind, s.port, s.failure_threshold) for s in specs] == [
        ("liveness", "http", 8081, 3),
        ("startup", "tcp", 8081, 1),
    ]
    assert specs[0].expected_status == ((200, 299),)
    assert specs[0].headers == (("X-Health-Check", "datadog"),)
    assert (specs[1].timeout, specs[1].startup_grace_period) == (1.0, 0.0)  # Cloud Run's defaults


def test_default_probe_is_tcp_on_port_and_empty_list_turns_probing_off():
    (default,) = build_probe_specs(load({}), {"PORT": "9090"})
    assert (default.name, default.kind, default.host, default.port) == ("default", "tcp", "127.0.0.1", 9090)
    assert build_probe_specs(load({"probes": []}), {}) == []


@pytest.mark.parametrize(
    "probe, words",
    [
        ({"name": "both", "http_get": {}, "tcp_socket": {}}, "exactly one of http_get and tcp_socket"),
        ({"name": "none"}, "exactly one of http_get and tcp_socket"),
        ({"name": "p", "http_get": {"path": "healthz"}}, "http_get.path must start with /"),
        ({"name": "p", "http_get": {"expected_status": "200-1000"}}, "http_get.expected_status"),
        ({"name": "bad name", "tcp_socket": {}}, "probes"),
    ],
)
def test_bad_probes_fail_naming_the_field(probe, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        load({"probes": [probe]})


def test_an_integer_expected_status_is_taken_as_text():
    (spec,) = build_probe_specs(load({"probes": [{"name": "p", "http_get": {"expected_status": 204}}]}), {})
    assert spec.expected_status == ((204, 204),)
