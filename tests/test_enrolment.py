"""Enrolment in-process against the real reference server over 127.0.0.1: the daemon enrols
with the environment it was given, never with whatever ``os.environ`` holds."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from logpulse_agent.daemon.lifecycle import Daemon
from logpulse_agent.settings import Settings
from logpulse_agent.vector.commands import child_env
from tests.live_server import LiveServer, create_group_with_input, mint_token, start_live_server
from tests.standin import install_standin

pytestmark = pytest.mark.anyio


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with start_live_server(tmp_path / "server") as srv:
        yield srv


async def test_the_daemon_enrols_with_its_injected_environment(
    tmp_path: Path, server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node name and Vector's environment come from the mapping the daemon was built
    with (a test, a supervisor passing its own), not from the process environment."""
    for name in ("LOGPULSE_NODE_NAME", "LOGPULSE_ENROL_TOKEN", "STANDIN_VERSION"):
        monkeypatch.delenv(name, raising=False)
    create_group_with_input(server, "nodes")
    token = mint_token(server, "nodes")
    settings = Settings(
        api_url=server.url,
        config_dir=tmp_path / "etc",
        state_dir=tmp_path / "lib",
        log_dir=tmp_path / "log",
        vector_bin=str(install_standin(tmp_path / "bin")),
        platform="kubernetes",
    )
    environ = {
        **os.environ,
        "LOGPULSE_ENROL_TOKEN": token,
        "LOGPULSE_NODE_NAME": "worker-7",
        "STANDIN_VERSION": "0.57.9",  # what the stand-in's `vector --version` answers
    }
    identity = await Daemon(settings, environ).wait_for_enrolment()
    assert identity is not None
    agent = server.data("GET", f"/agents/{identity.agent_id}")
    assert agent["hostname"] == "worker-7" != socket.gethostname()
    assert agent["vectorVersion"] == "0.57.9"


def test_vector_never_sees_the_bootstrap_token() -> None:
    """Every Vector command (`--version` at enrolment included) runs without
    LOGPULSE_ENROL_TOKEN, and without variables Vector would read as config paths."""
    env = child_env({"LOGPULSE_ENROL_TOKEN": "EBT_x", "VECTOR_CONFIG": "/tmp/x", "PATH": "/bin"})
    assert env == {"PATH": "/bin"}
