"""The agent's embedded Python stand-in, built once per session for the tests that need it."""

import pytest

from tests.agent.agent_venv import build_agent_venv


@pytest.fixture(scope="session")
def agent_workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("agent-embedded")


@pytest.fixture(scope="session")
def agent_python(agent_workdir):
    """(python, packages before the install, packages after) of the agent-like interpreter."""
    return build_agent_venv(agent_workdir)
