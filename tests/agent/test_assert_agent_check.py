"""scripts/assert_agent_check.py, the agent workflow's judge (.github/workflows/agent.yml), on real runs.

Each check runs with its agent/e2e/conf.d configuration (the one the workflow's agent runs), addresses moved to the
devenv broker, GCP emulator and app stand-in, through `pettwin-checks run`'s reporting (cli.run_check). The script
must accept that report, and the same run written the way `agent check --json` prints it: a list of collectors,
each with the aggregator's `metrics` (`metric`, `points` [[timestamp, value]], `tags`, `host`, `type`) and
`service_checks` (`check`, `status` 0-3, `message`, `tags`, `host_name`), the `runner`'s state (`CheckName`,
`CheckID`, `LastError`), after the log lines the agent prints first. It must refuse what is wrong.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from pettwin_checks.cli import run_check
from tests.agent.agent_emulation import ROOT
from tests.agent.kafka_seed import seed_kafka

pytestmark = pytest.mark.integration

SCRIPT = ROOT / "scripts" / "assert_agent_check.py"
E2E_CONF_D = ROOT / "agent" / "e2e" / "conf.d"
E2E_EMULATOR, E2E_APP_PORT, E2E_BROKER = "http://localhost:8085", 8080, "localhost:29092"
STATUS_CODES = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}
AGENT_LOG_LINES = (
    "2026-12-06 17:40:00 UTC | CORE | INFO | (pkg/collector/python/init.go:342 in initPython) | Initializing rtloader\n"
    "=== Series ===\n"
)


def as_agent_output(reports: list[dict]) -> str:
    """The runs as `agent check --json` prints them."""
    collectors = []
    for report in reports:
        aggregator = {
            "metrics": [
                {
                    "metric": metric["name"],
                    "points": [[1765042800, metric["value"]]],
                    "tags": metric["tags"],
                    "host": "pettwin-e2e",
                    "type": metric["type"],
                    "interval": 0,
                    "source_type_name": "System",
                }
                for metric in report["metrics"]
            ],
            "service_checks": [
                {
                    "check": sc["name"],
                    "host_name": "pettwin-e2e",
                    "timestamp": 1765042800,
                    "status": STATUS_CODES[sc["status"]],
                    "message": sc["message"] or "",
                    "tags": sc["tags"],
                }
                for sc in report["service_checks"]
            ],
            "events": [],
        }
        runner = {
            "CheckName": report["check"],
            "CheckID": f"{report['check']}:0123456789abcdef",
            "LastError": json.dumps([report["error"]]) if report["error"] else "",
            "LastWarnings": report["warnings"],
            "TotalRuns": report["run"],
        }
        collectors.append({"aggregator": aggregator, "runner": runner, "inventories": {}})
    return AGENT_LOG_LINES + json.dumps(collectors, indent=2) + "\n"


def judge(check: str, output: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), check], input=output, capture_output=True, text=True, timeout=60, check=False
    )


def e2e_config(check: str, replacements: dict) -> tuple[dict, list[dict]]:
    text = (E2E_CONF_D / f"{check}.d" / "conf.yaml").read_text()
    for old, new in replacements.items():
        text = text.replace(old, new)
    config = yaml.safe_load(text)
    return config.get("init_config") or {}, config["instances"]


@pytest.fixture
def e2e_runs(kafka_broker, gcp_env, monkeypatch):
    """A run of each check, on its e2e configuration, against the devenv parts."""
    from pettwin_checks.devenv.app_standin import AppStandin

    for name, value in {"K_SERVICE": "pettwin-backend", "K_REVISION": "pettwin-backend-00002-def"}.items():
        monkeypatch.setenv(name, value)
    broker = kafka_broker.start()
    seed_kafka(broker.bootstrap, {"pettwin-alerts": ["pet-telemetry"]})
    with AppStandin() as app:
        replacements = {
            E2E_EMULATOR: gcp_env.url,
            E2E_BROKER: broker.bootstrap,
            f"app_port: {E2E_APP_PORT}": f"app_port: {app.port}",
        }
        yield {
            check: run_check(check, *e2e_config(check, replacements))
            for check in ("pettwin_kafka_lag", "pettwin_vertex_ai", "pettwin_cloud_run")
        }


def test_what_each_check_submits_in_the_e2e_environment_passes_in_both_shapes(e2e_runs):
    for check, reports in e2e_runs.items():
        for output in (json.dumps(reports, indent=2, default=str), as_agent_output(reports)):
            result = judge(check, output)
            assert result.returncode == 0, f"{check}: {result.stderr}"
            assert result.stdout.startswith(f"{check}: OK ("), result.stdout


def test_a_failed_service_check_an_unknown_metric_and_a_run_error_fail_naming_each(e2e_runs):
    (report,) = e2e_runs["pettwin_kafka_lag"]
    broken = json.loads(json.dumps(report, default=str))
    for sc in broken["service_checks"]:
        if sc["name"] == "pettwin.kafka.can_connect":
            sc["status"], sc["message"] = "CRITICAL", "cannot connect to localhost:29092"
    broken["metrics"].append({"name": "pettwin.kafka.made_up", "value": 1, "type": "gauge", "tags": []})
    broken["error"] = {"message": "boom", "traceback": ""}
    result = judge("pettwin_kafka_lag", as_agent_output([broken]))
    assert result.returncode == 1
    assert "pettwin.kafka.can_connect is CRITICAL, not OK: cannot connect to localhost:29092" in result.stderr
    assert "metric pettwin.kafka.made_up is not in metadata.csv" in result.stderr
    assert "the run failed:" in result.stderr and "boom" in result.stderr


def test_a_check_that_submitted_nothing_fails():
    result = judge("pettwin_cloud_run", as_agent_output([]))
    assert result.returncode == 1
    assert "service check pettwin.cloud_run.app.health was not submitted" in result.stderr
    assert judge("pettwin_vertex_ai", "agent: error: no such check\n").returncode == 1
