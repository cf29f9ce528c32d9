from pathlib import Path

import pytest
import yaml

from tests.fixtures.gcp import *
from tests.fixtures.kafka import *

ROOT = Path(__file__).resolve().parent.parent
E2E_COMPOSE = ROOT / "docker-compose.e2e.yml"
E2E_CONF_D = ROOT / "agent" / "e2e" / "conf.d"
# What Cloud Run sets in every container of a revision (docker-compose.e2e.yml sets the same for its agent).
E2E_AGENT_ENV = {
    "GCE_METADATA_HOST": "localhost:8085",
    "GCE_METADATA_IP": "localhost:8085",
    "K_SERVICE": "pettwin-backend",
    "K_REVISION": "pettwin-backend-00002-def",
    "K_CONFIGURATION": "pettwin-backend",
}


@pytest.fixture(scope="session")
def dd_environment():
    """`ddev env start`: the broker, workload, GCP emulator and app stand-in of docker-compose.e2e.yml, published on
    localhost, where the agent ddev starts (host network) finds them. The configuration handed to ddev is the Kafka
    check's; the GCP checks' are mounted next to it, all three from agent/e2e/conf.d."""
    from datadog_checks.dev import docker_run
    from datadog_checks.dev.conditions import CheckEndpoints

    conditions = [CheckEndpoints(["http://localhost:8080/healthz"], attempts=120)]
    with docker_run(str(E2E_COMPOSE), build=True, conditions=conditions, sleep=15):
        config = yaml.safe_load((E2E_CONF_D / "pettwin_kafka_lag.d" / "conf.yaml").read_text())
        volumes = [
            f"{E2E_CONF_D / f'{check}.d' / 'conf.yaml'}:/etc/datadog-agent/conf.d/{check}.d/conf.yaml:ro"
            for check in ("pettwin_vertex_ai", "pettwin_cloud_run")
        ]
        yield config, {"docker_volumes": volumes, "env_vars": E2E_AGENT_ENV}
