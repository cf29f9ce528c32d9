"""The README's "An agent you already run" block, run as written against a fake host agent.

The block is read from README.md (so the page and the test cannot drift) and run by bash from a copy of the checkout,
with DD_AGENT_ROOT pointing at a temporary root laid out like the Linux package: /opt/datadog-agent/embedded a Python
3.13 holding the agent's package set (agent/agent-python-packages.txt), /etc/datadog-agent with its checks.d, conf.d
and datadog.yaml. What only a real host has is stood in for on PATH, and recorded: `sudo` runs the command as this
user; `install` records the owner it is asked for (there is no dd-agent user here) and installs with the mode asked;
`systemctl` and `datadog-agent` record their arguments. The result is then used the way the agent uses it: the
secret_backend_command it configured, run by the embedded Python, resolves the configuration's handles, and the
configuration so resolved runs the check on the devenv broker's SASL_SSL listener.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pettwin_checks.kafka_lag.check import PettwinKafkaLagCheck
from tests.agent.agent_emulation import ROOT
from tests.agent.agent_venv import embedded_python
from tests.agent.secret_backend import handles_in, with_secrets

pytestmark = pytest.mark.integration

SECTION = "### An agent you already run"
AGENT_USER = "dd-agent"
REAL_ETC = "/etc/datadog-agent"
COPY_IGNORED = shutil.ignore_patterns(".git", ".venv", ".tools-venv", "dist", "build", "__pycache__", "*.egg-info")

RECORDER = """#!{python}
import json, os, sys
with open(os.environ["HOST_AGENT_LOG"], "a") as log:
    log.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\\n")
"""
INSTALL = """#!{python}
# GNU install without -o/-g (no dd-agent user here): the owner asked for is recorded, the rest done as asked.
import json, os, subprocess, sys
args, owner = [], {{}}
argv = iter(sys.argv[1:])
for arg in argv:
    if arg in ("-o", "-g"):
        owner[arg] = next(argv)
    else:
        args.append(arg)
paths = [arg for arg in args if not arg.startswith("-") and not arg.isdigit()]
targets = paths if "-d" in args else paths[-1:]
with open(os.environ["HOST_AGENT_LOG"], "a") as log:
    log.write(json.dumps(["install-owner", owner.get("-o"), owner.get("-g"), *targets]) + "\\n")
sys.exit(subprocess.run(["{install}", *args]).returncode)
"""
SUDO = """#!/bin/sh
# Root's rights are this user's here; `-u USER` is dropped.
if [ "$1" = "-u" ]; then shift 2; fi
exec "$@"
"""


def readme_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    return block


def write_executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """A fake agent root, stand-ins on PATH and a copy of the checkout; the README block run once in it."""
    work = tmp_path_factory.mktemp("host-agent")
    root = work / "root"
    embedded_python(root / "opt" / "datadog-agent" / "embedded")
    etc = root / REAL_ETC.lstrip("/")
    for directory in ("checks.d", "conf.d"):
        (etc / directory).mkdir(parents=True)
    (etc / "datadog.yaml").write_text("api_key: 0123456789abcdef0123456789abcdef\nsite: datadoghq.com\n")
    shims = work / "bin"
    shims.mkdir()
    write_executable(shims / "sudo", SUDO)
    write_executable(shims / "install", INSTALL.format(python=sys.executable, install=shutil.which("install")))
    for name in ("systemctl", "datadog-agent"):
        write_executable(shims / name, RECORDER.format(python=sys.executable))
    clone = work / "clone"
    shutil.copytree(ROOT, clone, ignore=COPY_IGNORED)
    return {"work": work, "root": root, "etc": etc, "shims": shims, "clone": clone}


@pytest.fixture(scope="module")
def ran(host, kafka_broker):
    """The block, run once; the Confluent variables point at the devenv broker's SASL_SSL listener."""
    broker = kafka_broker.start()
    user, password = broker.plain_user
    log = host["work"] / "calls.jsonl"
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("DD_", "CONFLUENT_"))},
        "PATH": f"{host['shims']}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "DD_AGENT_ROOT": str(host["root"]),
        "HOST_AGENT_LOG": str(log),
    }
    # What the operator writes in for the placeholders, and nothing else.
    block = readme_block()
    for placeholder, value in {
        "<cluster>:9092": broker.sasl_ssl_bootstrap,
        "<API key>": user,
        "<API secret>": password,
    }.items():
        assert placeholder in block, placeholder
        block = block.replace(placeholder, value)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=host["clone"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    return {**host, "calls": calls, "broker": broker, "secret": password, "user": user}


def owners(ran) -> dict[str, tuple[str, str]]:
    return {target: (call[1], call[2]) for call in ran["calls"] if call[0] == "install-owner" for target in call[3:]}


def test_the_block_installs_the_checks_into_the_agents_python(ran):
    python = ran["root"] / "opt" / "datadog-agent" / "embedded" / "bin" / "python"
    found = subprocess.run(
        [str(python), "-c", "import pettwin_checks.kafka_lag.check as m; print(m.__file__)"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ran["work"],  # not the checkout, which `python -c` would import first
        env={"PATH": os.environ["PATH"]},
    )
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()).is_relative_to(python.parent.parent)  # the wheel, not the checkout
    assert sorted(path.name for path in (ran["etc"] / "checks.d").iterdir()) == sorted(
        path.name for path in (ROOT / "checks.d").glob("pettwin_*.py")
    )


def test_what_the_agent_reads_is_created_and_owned_by_the_agents_user(ran):
    etc = ran["etc"]
    conf = etc / "conf.d" / "pettwin_kafka_lag.d" / "conf.yaml"
    helper, secret = etc / "secrets" / "readsecret", etc / "secrets" / "confluent_api_secret"
    asked = owners(ran)
    for path in (conf.parent, etc / "secrets", conf, helper, secret):
        assert path.exists(), path
        assert asked[str(path)] == (AGENT_USER, AGENT_USER), path
    assert stat.S_IMODE(conf.stat().st_mode) == 0o640
    assert stat.S_IMODE(secret.stat().st_mode) == 0o400 and secret.read_text() == ran["secret"]
    # The agent runs a secret_backend_command only if its user owns it and group and others have no rights.
    assert stat.S_IMODE(helper.stat().st_mode) == 0o700
    settings = yaml.safe_load((etc / "datadog.yaml").read_text())
    assert settings["secret_backend_command"] == f"{REAL_ETC}/secrets/readsecret"
    assert settings["api_key"]  # what was there stays


def test_the_agent_is_restarted_and_the_check_run_as_its_user(ran):
    commands = [call for call in ran["calls"] if call[0] in ("systemctl", "datadog-agent")]
    assert commands == [["systemctl", "restart", "datadog-agent"], ["datadog-agent", "check", "pettwin_kafka_lag"]]


def test_the_configuration_resolves_through_the_installed_helper_and_connects(ran, aggregator):
    """What the agent does next: its secret_backend_command answers the handles, the check runs on what it got."""
    etc, root = ran["etc"], ran["root"]
    raw = (etc / "conf.d" / "pettwin_kafka_lag.d" / "conf.yaml").read_text()
    (instance,) = yaml.safe_load(raw.replace(f"file@{REAL_ETC}/", f"file@{etc}/"))["instances"]
    handles = sorted(set(handles_in(instance)))
    assert handles == [f"file@{etc}/secrets/confluent_api_secret"]
    helper = root / yaml.safe_load((etc / "datadog.yaml").read_text())["secret_backend_command"].lstrip("/")
    answer = subprocess.run(
        [str(root / "opt" / "datadog-agent" / "embedded" / "bin" / "python"), str(helper)],
        input=json.dumps({"version": "1.0", "secrets": handles}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert answer.returncode == 0 and not answer.stderr, answer.stderr
    resolved = with_secrets(instance, json.loads(answer.stdout))
    assert (resolved["kafka_connect_str"], resolved["sasl_plain_username"]) == (
        ran["broker"].sasl_ssl_bootstrap,
        ran["user"],
    )
    # Confluent Cloud's certificates chain to public CAs; the devenv broker's to its own.
    check = PettwinKafkaLagCheck("pettwin_kafka_lag", {}, [{**resolved, "tls_ca_cert": ran["broker"].ca_cert}])
    try:
        check.run()
    finally:
        check.cancel()
    (connect,) = aggregator.service_checks("pettwin.kafka.can_connect")
    assert connect.status == PettwinKafkaLagCheck.OK, connect.message
