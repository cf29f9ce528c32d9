"""The collection interval and run budget the config model and the example give are what the agent will use."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from datadog_checks.base import ConfigurationError

from pettwin_checks.cloud_run.check import PettwinCloudRunCheck
from pettwin_checks.vertex_ai.check import PettwinVertexAiCheck
from pettwin_checks.vertex_ai.config_models import InstanceConfig
from pettwin_checks.vertex_ai.config_models.validators import collection_timeout

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "conf.d" / "pettwin_vertex_ai.d" / "conf.yaml.example"
SIDECAR = ROOT / "agent" / "cloudrun" / "conf.d" / "pettwin_vertex_ai.d" / "conf.yaml"

# The agent runs a check every 15 s unless the instance sets min_collection_interval.
AGENT_DEFAULT_INTERVAL = 15.0


def model(instance: dict) -> InstanceConfig:
    return InstanceConfig.model_validate(instance, context={"configured_fields": frozenset(instance)})


def test_without_an_interval_the_model_says_what_the_agent_does_and_the_budget_fits_in_it():
    config = model({"project_id": "p"})
    assert config.min_collection_interval == AGENT_DEFAULT_INTERVAL
    assert collection_timeout(config) == 12.0
    assert "min_collection_interval ... default: 15" in EXAMPLE.read_text().replace(" - number - optional - ", " ... ")


@pytest.mark.parametrize("path", [EXAMPLE, SIDECAR])
def test_the_shipped_instances_set_the_interval_the_agent_will_use(path):
    for instance in yaml.safe_load(path.read_text())["instances"]:
        assert instance["min_collection_interval"] == 60
        assert collection_timeout(model(instance)) == 40.0


def test_a_budget_longer_than_the_interval_is_refused_naming_the_field():
    with pytest.raises(ValueError, match="collection_timeout"):
        model({"collection_timeout": 20})


def test_an_interval_that_is_not_positive_is_refused_naming_the_field():
    # The run's budget is a share of the interval: zero or less would leave no time for any call.
    with pytest.raises(ValueError, match="min_collection_interval"):
        model({"min_collection_interval": 0})


def test_the_elections_kafka_secrets_are_scrubbed_from_what_the_check_logs():
    from pettwin_checks.cloud_run.check import PettwinCloudRunCheck
    from pettwin_checks.vertex_ai.check import PettwinVertexAiCheck

    election = {
        "enabled": True,
        "kafka_connect_str": "broker:9092",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "key",
        "sasl_plain_password": "s3cr3t-sasl",
        "tls_private_key_password": "s3cr3t-key",
    }
    for check in (
        PettwinVertexAiCheck("pettwin_vertex_ai", {}, [{"project_id": "p", "leader_election": election}]),
        PettwinCloudRunCheck(
            "pettwin_cloud_run", {}, [{"project_id": "p", "tags": ["a:b"], "leader_election": election}]
        ),
    ):
        text = check.sanitize("Leader election unavailable (s3cr3t-sasl, s3cr3t-key)")
        assert "s3cr3t" not in text, (check.name, text)


@pytest.mark.parametrize("kind", ["vertex_ai", "cloud_run"])
def test_leader_election_is_off_unless_enabled_and_on_it_needs_its_connection(kind):
    make = {
        "vertex_ai": lambda election: PettwinVertexAiCheck("v", {}, [{"project_id": "p", "leader_election": election}]),
        "cloud_run": lambda election: PettwinCloudRunCheck("c", {}, [{"project_id": "p", "leader_election": election}]),
    }[kind]
    # The block may stay in place, switched off, without its connection keys: no election.
    assert make({"enabled": False, "group": "g"}).leader is None
    assert make({"kafka_connect_str": "broker:9092"}).leader is None  # enabled defaults to false
    assert make({"enabled": True, "kafka_connect_str": "broker:9092"}).leader is not None
    with pytest.raises(ConfigurationError, match=r"leader_election\.kafka_connect_str"):
        make({"enabled": True, "group": "g"})
