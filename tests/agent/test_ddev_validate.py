"""Datadog's own validators pass: `ddev validate config`, `models`, `metadata` and `service-checks` (the
generated conf.yaml.example and config_models equal what each check's spec generates), and they catch drift."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.agent.agent_emulation import ROOT

TOOLS_PYTHON = ROOT / ".tools-venv" / "bin" / "python"
SCRIPT = ROOT / "scripts" / "ddev_validate.py"


def ddev_validate(root: Path = ROOT) -> subprocess.CompletedProcess:
    assert TOOLS_PYTHON.exists(), ".tools-venv is missing: scripts/test (or scripts/tools-venv) creates it"
    return subprocess.run(
        [str(TOOLS_PYTHON), str(SCRIPT), "--root", str(root)], capture_output=True, check=False, text=True, timeout=600
    )


def test_ddev_validators_pass_and_generated_files_match_their_specs():
    result = ddev_validate()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    for validation in ("config", "models", "metadata", "service-checks"):
        assert f"$ ddev validate {validation}\n" in result.stdout


def copy_of_the_inputs(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "pettwin_checks", copy / "pettwin_checks", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "conf.d", copy / "conf.d")
    for name in ("metadata.csv", "service_checks.json"):
        shutil.copy(ROOT / name, copy / name)
    return copy


def test_drift_and_invalid_rows_fail(tmp_path):
    copy = copy_of_the_inputs(tmp_path)
    example = copy / "conf.d" / "pettwin_kafka_lag.d" / "conf.yaml.example"
    example.write_text(example.read_text().replace("# collection_timeout: 5", "# collection_timeout: 7"))
    defaults = copy / "pettwin_checks" / "vertex_ai" / "config_models" / "defaults.py"
    defaults.write_text(defaults.read_text() + "\n\ndef instance_hand_written():\n    return 1\n")
    metadata = copy / "metadata.csv"
    metadata.write_text(metadata.read_text().replace(",message,,", ",partition,,", 1))
    result = ddev_validate(copy)
    assert result.returncode == 1
    assert "`conf.yaml.example` is not in sync" in result.stdout
    assert "File `defaults.py` is not in sync" in result.stdout
    assert "`partition` is an invalid unit_name" in result.stdout
    assert "ddev validate failed: config, models, metadata" in result.stderr


@pytest.mark.parametrize("check", ["pettwin_kafka_lag", "pettwin_vertex_ai", "pettwin_cloud_run"])
def test_every_metadata_row_and_service_check_belongs_to_its_check(check):
    """The validators see one check's rows at a time: a row of another integration would go unchecked."""
    rows = list(csv.DictReader((ROOT / "metadata.csv").open(newline="")))
    checks = {
        "pettwin_kafka_lag": "pettwin.kafka.",
        "pettwin_vertex_ai": "pettwin.vertex_ai.",
        "pettwin_cloud_run": "pettwin.cloud_run.",
    }
    assert {row["integration"] for row in rows} == set(checks)
    for row in rows:
        if row["integration"] == check:
            assert row["metric_name"].startswith(checks[check]), row["metric_name"]
    entries = json.loads((ROOT / "service_checks.json").read_text())
    assert all(any(entry["check"].startswith(prefix) for prefix in checks.values()) for entry in entries)
