"""A clean virtualenv standing in for the agent's embedded Python, with pettwin-checks installed into it the
way agent/Dockerfile installs it.

The agent image ships its own pinned packages (datadog-checks-base and its dependencies, confluent-kafka,
psutil, pydantic, pyyaml, requests...). Here they are the versions of the development venv, installed first;
then, like the Dockerfile: build the wheel, freeze what is installed into a constraints file, and install
`pettwin-checks[deps] @ file://...` under those constraints so pip may only add what is missing.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement

from tests.agent.agent_emulation import ROOT

# What the agent image ships that pettwin-checks uses. google-auth is deliberately absent: the install must
# add it (and only it and its own dependencies).
AGENT_SHIPPED = ["datadog-checks-base", "confluent-kafka", "psutil", "pydantic", "pyyaml", "requests"]
# The parts of datadog-checks-base's `deps` extra a check needs at import and run time outside the agent.
BASE_RUNTIME_EXTRAS = ["deps"]


def _closure(names: list[str]) -> dict[str, str]:
    """name -> version of the development venv's distributions for `names` and everything they require."""
    pinned: dict[str, str] = {}
    pending = [(name, tuple(BASE_RUNTIME_EXTRAS) if name == "datadog-checks-base" else ()) for name in names]
    while pending:
        name, extras = pending.pop()
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue  # an optional requirement the development venv does not have either
        key = dist.metadata["Name"].lower()
        if key in pinned:
            continue
        pinned[key] = dist.version
        for raw in dist.requires or []:
            requirement = Requirement(raw)
            environment = {"extra": extras[0]} if extras else {"extra": ""}
            if requirement.marker and not requirement.marker.evaluate(environment):
                continue
            if requirement.name.lower() == "ddtrace":
                continue  # tracing of the checks themselves is off outside the agent; not imported
            pending.append((requirement.name, ()))
    return pinned


def _run(command: list[str], **kwargs) -> str:
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=900, **kwargs)
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def freeze(python: Path) -> dict[str, str]:
    lines = _run([str(python), "-m", "pip", "list", "--format=freeze"]).splitlines()
    return {line.split("==")[0].lower(): line.split("==")[1] for line in lines if "==" in line}


def build_agent_venv(workdir: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    """Return (python, packages before the install, packages after)."""
    env_dir = workdir / "embedded"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"

    shipped = _closure(AGENT_SHIPPED)
    _run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            *[f"{name}=={version}" for name, version in sorted(shipped.items())],
        ]
    )

    # Build stage of agent/Dockerfile.
    wheels = workdir / "pettwin-wheels"
    _run([str(python), "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(ROOT)])
    (wheel,) = wheels.glob("pettwin_checks-*.whl")
    requirements = wheels / "requirements.txt"
    requirements.write_text(f"pettwin-checks[deps] @ {wheel.as_uri()}\n")

    # Install step of agent/Dockerfile.
    before = freeze(python)
    constraints = workdir / "agent-packages.txt"
    constraints.write_text(_run([str(python), "-m", "pip", "list", "--format=freeze"]))
    _run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--constraint",
            str(constraints),
            "--requirement",
            str(requirements),
        ]
    )
    return python, before, freeze(python)


if __name__ == "__main__":  # manual use: python -m tests.agent.agent_venv /tmp/somewhere
    python, before, after = build_agent_venv(Path(sys.argv[1]))
    print(python, sorted(set(after) - set(before)))
