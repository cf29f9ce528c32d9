"""The agent's secret resolution, replayed: ENC[...] handles of a check configuration answered by the image's
secret_backend_command (agent/secrets/readsecret) as the agent runs it, with the bundled helper's argument pointing
at its stand-in (bundled_secret_helper.py), and the answers put in place of the handles."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import yaml

from tests.agent.agent_emulation import ROOT

SECRET_HELPER = ROOT / "agent" / "secrets" / "readsecret"
BUNDLED_HELPER_STANDIN = ROOT / "tests" / "agent" / "bundled_secret_helper.py"
ENC = re.compile(r"ENC\[([^\].][^\]]*)\]")  # not the `ENC[...]` of prose


def secret_backend() -> tuple[str, list[str]]:
    settings = yaml.safe_load((ROOT / "agent" / "datadog.yaml").read_text())
    return settings["secret_backend_command"], settings["secret_backend_arguments"]


def resolve_secrets(python: Path | str, handles: list[str], workdir: Path, environment: dict) -> dict:
    """What the agent does at start: the request to secret_backend_command, run by `python` (the agent's), with the
    bundled helper's path argument pointing at its stand-in."""
    bundled = workdir / "readsecret_multiple_providers.sh"
    bundled.write_text(f'#!/bin/sh\nexec "{python}" "{BUNDLED_HELPER_STANDIN}"\n')
    bundled.chmod(0o700)
    result = subprocess.run(
        [str(python), str(SECRET_HELPER), str(bundled)],
        input=json.dumps({"version": "1.0", "secrets": handles}),
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
        env={"PATH": os.environ["PATH"], **environment},
    )
    assert result.returncode == 0 and not result.stderr, result.stderr
    return json.loads(result.stdout)


def handles_in(value) -> list[str]:
    """Every ENC[...] handle that makes up a whole string value, at any depth (the agent's rule)."""
    if isinstance(value, dict):
        return [handle for item in value.values() for handle in handles_in(item)]
    if isinstance(value, list):
        return [handle for item in value for handle in handles_in(item)]
    match = ENC.fullmatch(value) if isinstance(value, str) else None
    return [match.group(1)] if match else []


def with_secrets(value, answers: dict):
    """`value` with each handle replaced by its answer; a handle that failed fails here, naming its error."""
    if isinstance(value, dict):
        return {key: with_secrets(item, answers) for key, item in value.items()}
    if isinstance(value, list):
        return [with_secrets(item, answers) for item in value]
    match = ENC.fullmatch(value) if isinstance(value, str) else None
    if not match:
        return value
    answer = answers[match.group(1)]
    assert answer["error"] is None, f"ENC[{match.group(1)}]: {answer['error']}"
    return answer["value"]
