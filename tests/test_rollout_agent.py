"""Staged rollouts end to end: real agents (subprocesses) with the Vector stand-in against a
real server over 127.0.0.1 (SPEC §11.3). The agent is correct when the version it is served
goes *down* (rollback) and when the version it rejected is withdrawn.

Agents poll every 0.1 s and beat every 0.3 s; the server is told heartbeats come every 2 s, so
a busy machine never makes an agent look silent. Soaks are 2 s of real time; every wait is a
bounded poll of a condition.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent_harness import AgentProcess, wait_until
from tests.live_server import LiveServer, create_group_with_input, mint_token, start_live_server

POLICY = {"strategy": "staged", "phases": [1, "100%"], "soakSeconds": 2, "maxFailures": 0}
TIMEOUT = 40.0


class Rollout:
    """A server, a staged group with one demo_logs input, and two agent hosts."""

    def __init__(self, tmp_path: Path, server: LiveServer, hosts: int = 2) -> None:
        self.server = server
        group = create_group_with_input(server, "web")
        self.input_id = server.data("GET", f"/groups/{group['id']}/inputs")[0]["id"]
        token = mint_token(server, "web", max_uses=hosts)
        self.switches = tmp_path / "standin-switches.json"
        self.switches.write_text("{}")
        self.agents = []
        for i in range(hosts):
            agent = AgentProcess(
                tmp_path / f"host-{i}",
                server.url,
                heartbeat_interval=0.3,
                extra_env={"STANDIN_SWITCHES": str(self.switches)},
            )
            assert agent.enrol(token).returncode == 0
            agent.start()
            self.agents.append(agent)
        self.from_version = int(group["configVersion"])
        for agent in self.agents:
            self.wait_applied(agent, self.from_version)
        server.data("PATCH", "/groups/web", {"rollout": POLICY})

    def change(self, fmt: str) -> int:
        self.server.data("PATCH", f"/inputs/{self.input_id}", {"options": {"format": fmt}})
        return int(self.server.data("GET", "/groups/web")["configVersion"])

    def wait_applied(self, agent: AgentProcess, version: int) -> None:
        wait_until(lambda: agent.applied_version() == version, TIMEOUT, f"version {version}")

    def rollout(self) -> dict[str, Any]:
        result: dict[str, Any] = self.server.data("GET", "/groups/web/rollout")
        return result

    def wait_state(self, state: str) -> dict[str, Any]:
        return dict(
            wait_until(
                lambda: (r := self.rollout())["state"] == state and r,
                TIMEOUT,
                f"rollout {state}",
            )
        )

    def canary(self) -> AgentProcess:
        to = self.rollout()["toVersion"]
        return wait_until(
            lambda: next((a for a in self.agents if a.applied_version() == to), None),
            TIMEOUT,
            "the canary to apply the new version",
        )

    def close(self) -> None:
        for agent in self.agents:
            agent.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Rollout]:
    with start_live_server(tmp_path / "server", extra_args=["--heartbeat-interval", "2"]) as server:
        w = Rollout(tmp_path, server)
        try:
            yield w
        finally:
            w.close()


def validations(agent: AgentProcess) -> int:
    return len(agent.events("validated")) + len(agent.events("validate_failed"))


@pytest.mark.slow
def test_a_healthy_change_reaches_the_canary_first_then_everyone(world: Rollout) -> None:
    """Only the canary runs `to` until its soak passed; the other keeps `from` untouched."""
    live_before = world.agents[0].live_config(), world.agents[1].live_config()
    assert live_before[0] == live_before[1]
    to = world.change("syslog")
    canary = world.canary()
    other = next(a for a in world.agents if a is not canary)
    assert other.applied_version() == world.from_version
    assert other.live_config() == live_before[0]
    world.wait_state("completed")
    world.wait_applied(other, to)
    assert canary.live_config() == other.live_config()


@pytest.mark.slow
def test_abort_serves_from_again_and_the_agent_rolls_back_cleanly(world: Rollout) -> None:
    """An agent that applied `to` is served the lower `from` version (its old etag) after an
    abort: it applies it, runs Vector on it, reports no error, and validates it only once."""
    from_body = world.agents[0].live_config()
    world.change("syslog")
    canary = world.canary()
    world.server.data("POST", "/groups/web/rollout/abort", {"reason": "test"})
    world.wait_applied(canary, world.from_version)
    wait_until(lambda: canary.live_config() == from_body, TIMEOUT, "from on disk")
    assert canary.snapshot()["config"]["lastError"] is None
    count = validations(canary)
    agent_id = _agent_id(world, canary)
    wait_until(
        lambda: (
            world.server.data("GET", f"/agents/{agent_id}")["appliedConfigVersion"]
            == world.from_version
        ),
        TIMEOUT,
        "the server to see the rollback",
    )
    row = world.server.data("GET", f"/agents/{agent_id}")
    assert row["configError"] is None
    assert row["vectorRunning"] is True
    assert validations(canary) == count  # more polls and heartbeats came: nothing re-validated


@pytest.mark.slow
def test_a_rejected_to_is_withdrawn_after_the_halt(world: Rollout) -> None:
    """The canary fails to validate `to`: the rollout halts, and once the server no longer
    offers `to` the agent stops reporting the error and does not validate it again."""
    world.switches.write_text(json.dumps({"apache_common": ["fail-validate"]}))
    to = world.change("apache_common")
    halted = world.wait_state("halted")
    assert f"config error for version {to}" in halted["reason"]
    failed = halted["failedAgents"][0]["agentId"]
    canary = next(a for a in world.agents if _agent_id(world, a) == failed)
    wait_until(
        lambda: world.server.data("GET", f"/agents/{failed}")["configError"] is None,
        TIMEOUT,
        "the withdrawn error to clear",
    )
    assert canary.applied_version() == world.from_version
    count = len(canary.events("validate_failed"))
    assert count == 1
    assert canary.snapshot()["config"]["lastError"] is None
    assert len(canary.events("validate_failed")) == count


def _agent_id(world: Rollout, agent: AgentProcess) -> str:
    identity = json.loads((agent.state_dir / "identity.json").read_text())
    return str(identity["agentId"])
