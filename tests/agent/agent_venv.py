"""A clean Python 3.13 virtualenv standing in for the agent's embedded Python, with pettwin-checks installed into
it the way agent/Dockerfile installs it.

The agent ships its own pinned packages; agent/agent-python-packages.txt is that set for the agent generation the
Dockerfile pins. The packages of the set that pettwin-checks and the checks' base class use are installed first,
at the set's versions (what the agent ships); then, like the Dockerfile: build the wheel, and install
`pettwin-checks[deps] @ file://...` under the set as constraints, so pip may only add what is missing, and only at
versions the agent would accept.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.agent.agent_emulation import ROOT

PACKAGE_SET = ROOT / "agent" / "agent-python-packages.txt"
AGENT_PYTHON = "3.13"
# What the agent image ships that pettwin-checks uses. google-auth is deliberately absent: the install must
# add it (and only it and its own dependencies).
AGENT_SHIPPED = ["datadog-checks-base", "confluent-kafka", "psutil", "pydantic", "pyyaml", "requests", "cachetools"]
# The parts of datadog-checks-base's `deps` extra a check needs at import and run time outside the agent.
BASE_RUNTIME_EXTRAS = ["deps"]


def package_set() -> dict[str, str]:
    """Canonical name -> version of the agent's package set."""
    pins = {}
    for line in PACKAGE_SET.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def agent_python() -> str:
    """The agent's Python: python3.13 on PATH (scripts/test puts pyenv's there), else pyenv's newest 3.13."""
    candidates = [shutil.which(f"python{AGENT_PYTHON}")]
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{AGENT_PYTHON}.*/bin/python{AGENT_PYTHON}"), reverse=True)
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "import sys"], capture_output=True, check=False).returncode == 0:
            return candidate
    raise RuntimeError(f"Python {AGENT_PYTHON}, the agent's, is required (on PATH or through pyenv)")


def _closure(names: list[str]) -> list[str]:
    """`names` and everything they require, as the development venv's distributions say (names only)."""
    seen: set[str] = set()
    pending = [(name, tuple(BASE_RUNTIME_EXTRAS) if name == "datadog-checks-base" else ()) for name in names]
    while pending:
        name, extras = pending.pop()
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue  # an optional requirement the development venv does not have either
        key = canonicalize_name(dist.metadata["Name"])
        if key in seen:
            continue
        seen.add(key)
        for raw in dist.requires or []:
            requirement = Requirement(raw)
            environment = {"extra": extras[0]} if extras else {"extra": ""}
            if requirement.marker and not requirement.marker.evaluate(environment):
                continue
            if requirement.name.lower() == "ddtrace":
                continue  # tracing of the checks themselves is off outside the agent; not imported
            pending.append((requirement.name, ()))
    return sorted(seen)


def _run(command: list[str], **kwargs) -> str:
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=900, **kwargs)
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def freeze(python: Path) -> dict[str, str]:
    lines = _run([str(python), "-m", "pip", "list", "--format=freeze"]).splitlines()
    return {canonicalize_name(line.split("==")[0]): line.split("==")[1] for line in lines if "==" in line}


def pip_install(python: Path, *arguments: str, dry_run: bool = False) -> str:
    """pip install under the agent's package set as constraints."""
    command = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    return _run([*command, *(["--dry-run"] if dry_run else []), "--constraint", str(PACKAGE_SET), *arguments])


def build_wheel(python: Path, directory: Path) -> Path:
    """The build stage of agent/Dockerfile."""
    _run([str(python), "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(directory), str(ROOT)])
    (wheel,) = directory.glob("pettwin_checks-*.whl")
    return wheel


def embedded_python(env_dir: Path) -> Path:
    """A venv at `env_dir` holding what the agent ships that pettwin-checks uses, at the agent's versions."""
    _run([agent_python(), "-m", "venv", "--clear", str(env_dir)])
    python = env_dir / "bin" / "python"
    pins = package_set()
    pip_install(python, *[f"{name}=={pins[name]}" for name in _closure(AGENT_SHIPPED) if name in pins])
    return python


def build_agent_venv(workdir: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    """Return (python, packages before the install, packages after)."""
    python = embedded_python(workdir / "embedded")

    wheels = workdir / "pettwin-wheels"
    wheel = build_wheel(python, wheels)
    requirements = wheels / "requirements.txt"
    requirements.write_text(f"pettwin-checks[deps] @ {wheel.as_uri()}\n")

    # Install step of agent/Dockerfile.
    before = freeze(python)
    pip_install(python, "--requirement", str(requirements))
    return python, before, freeze(python)


if __name__ == "__main__":  # manual use: python -m tests.agent.agent_venv /tmp/somewhere
    python, before, after = build_agent_venv(Path(sys.argv[1]))
    print(python, sorted(set(after) - set(before)))
