"""Config models: every option documented in conf.yaml.example, and the example's defaults are the model's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pettwin_checks.cloud_run.check import build_probe_specs
from pettwin_checks.cloud_run.config_models import InstanceConfig

pytestmark = pytest.mark.unit

EXAMPLE = Path(__file__).resolve().parents[3] / "conf.d" / "pettwin_cloud_run.d" / "conf.yaml.example"


def documented() -> dict[str, str]:
    """{option: default text} from the `## @param name - type - optional - default: x` lines of instances."""
    text = EXAMPLE.read_text().split("\ninstances:", 1)[1]
    return {m.group(1): (m.group(2) or "").strip()
            for m in re.finditer(r"^\s*## @param (\w+) - [^\n]*?(?:default: ([^\n]*))?$", text, re.M)}


def test_every_option_is_documented_and_exists():
    assert set(documented()) == set(InstanceConfig.model_fields)


def test_documented_defaults_match_the_model():
    defaults = InstanceConfig.model_validate({})
    for name, text in documented().items():
        value = getattr(defaults, name)
        if text in {"true", "false"}:
            assert value is (text == "true"), name
        elif re.fullmatch(r"\d+(\.\d+)?", text):
            assert value == float(text), name


def test_example_is_valid_yaml_and_the_commented_probes_parse():
    config = yaml.safe_load(EXAMPLE.read_text())
    assert config["instances"] == [None]
    block = re.search(r"    # probes:\n((?:    #   .*\n)+)", EXAMPLE.read_text()).group(0)
    probes = yaml.safe_load("\n".join(line.replace("    # ", "", 1) for line in block.splitlines()))
    specs = build_probe_specs(InstanceConfig.model_validate(probes), {"PORT": "8081"})
    assert [(s.name, s.kind, s.port, s.failure_threshold) for s in specs] == [
        ("liveness", "http", 8081, 3), ("startup", "tcp", 8081, 1)]
    assert specs[0].expected_status == ((200, 299),)
    assert specs[0].headers == (("X-Health-Check", "datadog"),)


def test_default_probe_is_tcp_on_port_and_empty_list_turns_probing_off():
    (default,) = build_probe_specs(InstanceConfig.model_validate({}), {"PORT": "9090"})
    assert (default.name, default.kind, default.host, default.port) == ("default", "tcp", "127.0.0.1", 9090)
    assert build_probe_specs(InstanceConfig.model_validate({"probes": []}), {}) == []
