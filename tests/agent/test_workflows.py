"""The GitHub workflows: actionlint (with shellcheck on their `run:` scripts) accepts them, and the agent workflow does
what docs/agent.md says: builds the image, starts docker-compose.e2e.yml, runs and judges `agent check --json` for
each check, validates the assets' Terraform."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.agent.agent_emulation import ROOT

pytestmark = pytest.mark.unit

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONLINT_MODULE = "github.com/rhysd/actionlint/cmd/actionlint@latest"
CHECKS = ("pettwin_kafka_lag", "pettwin_vertex_ai", "pettwin_cloud_run")


def go_bin_dir() -> Path | None:
    go = shutil.which("go")
    if not go:
        return None
    found = subprocess.run([go, "env", "GOBIN", "GOPATH"], capture_output=True, text=True, check=False, timeout=60)
    gobin, gopath = (found.stdout.splitlines() + ["", ""])[:2]
    return Path(gobin) if gobin else Path(gopath.split(os.pathsep)[0]) / "bin"


@pytest.fixture(scope="module")
def actionlint() -> str:
    """actionlint on PATH, else in Go's bin directory, else installed there from the Go module proxy."""
    found = shutil.which("actionlint")
    if found:
        return found
    bin_dir = go_bin_dir()
    if bin_dir is None:
        pytest.skip("Go is not installed: actionlint installs with `go install` (CI installs Go)")
    if not (bin_dir / "actionlint").exists():
        result = subprocess.run(
            ["go", "install", ACTIONLINT_MODULE],
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
            env={**os.environ, "GOFLAGS": "-mod=mod"},
        )
        assert result.returncode == 0, result.stderr
    return str(bin_dir / "actionlint")


def test_actionlint_accepts_every_workflow(actionlint):
    assert WORKFLOWS, "no workflow in .github/workflows"
    # shellcheck of the dev extra, so actionlint also checks the `run:` scripts.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    result = subprocess.run(
        [actionlint, *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "PATH": path},
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_refuses_a_broken_workflow(actionlint, tmp_path):
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    broken = workflows / "agent.yml"
    text = (ROOT / ".github" / "workflows" / "agent.yml").read_text()
    broken.write_text(text.replace("runs-on: ubuntu-24.04", "runs-on: ubuntu-24.04\n    needs: no-such-job", 1))
    result = subprocess.run([actionlint, str(broken)], capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 1 and "no-such-job" in result.stdout


def steps(workflow: str, job: str) -> str:
    jobs = yaml.safe_load((ROOT / ".github" / "workflows" / workflow).read_text())["jobs"]
    return "\n".join(step.get("run", "") for step in jobs[job]["steps"])


def test_the_agent_workflow_checks_each_check_in_the_agent_built_from_the_dockerfile():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "agent.yml").read_text())
    assert workflow["env"]["COMPOSE"] == "docker compose -f docker-compose.e2e.yml --profile agent"
    compose = yaml.safe_load((ROOT / "docker-compose.e2e.yml").read_text())
    assert compose["services"]["datadog-agent"]["build"]["dockerfile"] == "agent/Dockerfile"
    script = steps("agent.yml", "agent-check")
    assert "up --build" in script
    assert f"for check in {' '.join(CHECKS)}; do" in script
    assert 'agent check "${check}" --json' in script and "scripts/assert_agent_check.py" in script
    mounted = {volume.split(":")[1] for volume in compose["services"]["datadog-agent"]["volumes"]}
    assert mounted == {f"/conf.d/{check}.d/conf.yaml" for check in CHECKS}


def test_the_agent_workflow_validates_the_exported_terraform():
    script = steps("agent.yml", "terraform-validate")
    assert 'pettwin-checks assets export --terraform "${RUNNER_TEMP}/datadog-assets"' in script
    assert "init -backend=false" in script and 'terraform -chdir="${RUNNER_TEMP}/datadog-assets" validate' in script


def test_the_test_workflow_runs_the_readme_test_command():
    assert "scripts/test" in steps("test.yml", "test").split()
