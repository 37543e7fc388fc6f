"""Staged bulk upgrades (POST /api/v1/admin/upgrades): actions phase by phase, gated on health."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette

from tests.server.harness import Agent, FakeClock, Fleet

pytestmark = pytest.mark.anyio

DEGRADED = {"state": "degraded", "reason": "sink out_1: 3 request errors"}


class Upgrade:
    def __init__(self, fleet: Fleet, app: Starlette, clock: FakeClock) -> None:
        self.fleet, self.app, self.clock = fleet, app, clock
        self.agents: list[Agent] = []
        self.versions: dict[str, str] = {}

    async def start(
        self, n: int, *, beat: dict[str, Any] | None = None, **body: Any
    ) -> dict[str, Any]:
        await self.fleet.group("web")
        for i in range(n):
            agent = await self.fleet.enrol("web", hostname=f"web-{i}")
            self.agents.append(agent)
            self.versions[agent.id] = "0.4.1"
            await self.fleet.heartbeat(agent, **(beat or {}))
        request = {
            "group": "web",
            "targetVersion": "0.4.2",
            "phases": [1, "100%"],
            "soakSeconds": 30,
            **body,
        }
        result: dict[str, Any] = await self.fleet.data("POST", "/upgrades", request)
        return result

    async def beat(self, agent: Agent, **fields: Any) -> list[dict[str, Any]]:
        return await self.fleet.pending(agent, agentVersion=self.versions[agent.id], **fields)

    async def run_action(self, agent: Agent, status: str = "done", **fields: Any) -> bool:
        """Heartbeat; execute a handed-out upgrade the way the agent reports it."""
        actions = await self.beat(agent, **fields)
        if not actions:
            return False
        (action,) = actions
        if status == "done":
            self.versions[agent.id] = action["payload"]["targetVersion"]
        result = {"actionId": action["id"], "status": status, "result": {"error": "no space"}}
        await self.beat(agent, actionResults=[result], **fields)
        return True

    async def show(self, rollout: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.fleet.data("GET", f"/rollouts/{rollout['id']}")
        return result

    def tick(self) -> None:
        self.app.state.ctx.sweeper.run_rollouts_once()


@pytest.fixture
def up(fleet: Fleet, app: Starlette, clock: FakeClock) -> Upgrade:
    return Upgrade(fleet, app, clock)


async def test_actions_are_created_phase_by_phase(up: Upgrade) -> None:
    """Phase 0 queues one action; after the canary upgraded and soaked healthy, the rest."""
    rollout = await up.start(4)
    assert (rollout["kind"], rollout["targetVersion"], rollout["state"]) == (
        "upgrade",
        "0.4.2",
        "running",
    )
    assert rollout["counts"]["admitted"] == 1
    assert len(await up.fleet.data("GET", "/actions")) == 1
    handed = [await up.run_action(a) for a in up.agents]
    assert handed.count(True) == 1
    up.clock.advance(31)
    for agent in up.agents:
        await up.beat(agent)
    up.tick()
    shown = await up.show(rollout)
    assert shown["phase"] == 1
    assert shown["phaseResults"][0]["result"] == "passed"
    assert len(await up.fleet.data("GET", "/actions")) == 4
    for agent in up.agents:
        await up.run_action(agent)
    up.clock.advance(31)
    for agent in up.agents:
        await up.beat(agent)
    up.tick()
    shown = await up.show(rollout)
    assert shown["state"] == "completed"
    assert shown["counts"]["applied"] == 4
    listed = await up.fleet.data("GET", "/rollouts", kind="upgrade")
    assert [r["id"] for r in listed] == [rollout["id"]]


async def test_a_failed_upgrade_halts_and_no_more_actions_are_created(up: Upgrade) -> None:
    """The canary's action fails: halted, the reason says why, nothing else is queued."""
    rollout = await up.start(4, phases=[2, "100%"])
    ran = [await up.run_action(a, status="failed") for a in up.agents[:4]]
    shown = await up.show(rollout)
    assert shown["state"] == "halted"
    assert "upgrade action failed: no space" in shown["reason"]
    assert ran.count(True) >= 1
    up.clock.advance(100)
    up.tick()
    statuses = sorted(a["status"] for a in await up.fleet.data("GET", "/actions"))
    assert len(statuses) == 2  # only phase 0's
    assert "pending" not in statuses  # the one not picked up yet was cancelled


async def test_an_expired_action_is_a_failure_found_by_the_tick(up: Upgrade) -> None:
    """An action past its deadline (expired by the sweep) fails the agent without a beat."""
    rollout = await up.start(2, deadlineSeconds=60)
    for step in (30, 31):  # handed out, never reported: the agent is busy upgrading
        for agent in up.agents:
            await up.beat(agent)
        up.clock.advance(step)
    up.app.state.ctx.sweeper.run_once()
    shown = await up.show(rollout)
    assert shown["state"] == "halted"
    assert "expired" in shown["reason"]


async def test_upgraded_but_not_healthy_within_the_soak(up: Upgrade) -> None:
    """An upgraded agent that never reports healthy is a failure once the soak has passed."""
    rollout = await up.start(2, beat={"health": DEGRADED})
    for agent in up.agents:
        await up.run_action(agent, health=DEGRADED)
    up.clock.advance(20)
    for agent in up.agents:
        await up.beat(agent, health=DEGRADED)
    up.tick()
    assert (await up.show(rollout))["state"] == "running"
    up.clock.advance(11)
    for agent in up.agents:
        await up.beat(agent, health=DEGRADED)
    up.tick()
    shown = await up.show(rollout)
    assert shown["state"] == "halted"
    assert "not healthy within 30 s" in shown["reason"]


async def test_agent_ids_and_bad_requests(up: Upgrade) -> None:
    """agentIds work as a group does; both or neither, or unknown ids, are refused."""
    await up.fleet.group("web")
    agent = await up.fleet.enrol("web")
    ok = await up.fleet.admin(
        "POST", "/upgrades", {"agentIds": [agent.id], "targetVersion": "0.4.2"}
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["data"]["groupId"] is None
    cases = [
        ({"targetVersion": "0.4.2"}, 422, "either group or agentIds"),
        ({"group": "web", "agentIds": [agent.id], "targetVersion": "0.4.2"}, 422, "not both"),
        ({"agentIds": ["f" * 32], "targetVersion": "0.4.2"}, 404, "no agent"),
        ({"group": "web", "targetVersion": "0.4.2; rm -rf /"}, 422, "targetVersion"),
        ({"group": "web", "targetVersion": "0.4.2", "phases": ["50%"]}, 422, "100%"),
    ]
    for body, status, message in cases:
        response = await up.fleet.admin("POST", "/upgrades", body)
        assert response.status_code == status, (body, response.text)
        assert message in response.json()["error"]["message"]
