"""Agents that poll and beat like the real one, for the rollout tests (ASGI, injected clock)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette

from tests.server.harness import DEMO, Agent, FakeClock, Fleet

STAGED = {"strategy": "staged", "phases": [1, "50%", "100%"], "soakSeconds": 30, "maxFailures": 0}


@dataclass
class Host:
    """One enrolled agent and what it holds: version and etag applied, etags ever seen."""

    agent: Agent
    hostname: str
    applied: int = 0
    etag: str | None = None
    seen: set[str] = field(default_factory=set)
    heartbeat_version: int | None = None  # configVersion of the last heartbeat answer


class Flock:
    """A group of hosts on one server, driven step by step."""

    def __init__(self, fleet: Fleet, app: Starlette, clock: FakeClock) -> None:
        self.fleet, self.app, self.clock = fleet, app, clock
        self.hosts: list[Host] = []
        self.group: dict[str, Any] = {}
        self.input_id = ""

    async def start(self, n: int, policy: dict[str, Any] | None = None, name: str = "web") -> None:
        """A group with one input and ``n`` agents that applied its config and beat healthy."""
        self.group = await self.fleet.group(name, DEMO)
        inputs = await self.fleet.data("GET", f"/groups/{self.group['id']}/inputs")
        self.input_id = inputs[0]["id"]
        for i in range(n):
            agent = await self.fleet.enrol(name, hostname=f"{name}-{i}")
            self.hosts.append(Host(agent, f"{name}-{i}"))
        await self.everyone()
        if policy is not None:
            await self.fleet.data("PATCH", f"/groups/{name}", {"rollout": policy})

    async def change(self, index: str = "v2") -> int:
        """A config change (the input's index); returns the new group version."""
        await self.fleet.data("PATCH", f"/inputs/{self.input_id}", {"indexOverride": index})
        return int((await self.fleet.data("GET", f"/groups/{self.group['id']}"))["configVersion"])

    async def poll(self, host: Host) -> int:
        """One config poll as the agent makes it; a 200 is applied at once."""
        response = await self.fleet.config(host.agent, host.applied, host.etag)
        if response.status_code == 200:
            host.applied = int(response.headers["x-config-version"])
            host.etag = response.headers["x-config-etag"]
            host.seen.add(host.etag)
        return response.status_code

    async def beat(self, host: Host, **fields: Any) -> dict[str, Any]:
        response = await self.fleet.heartbeat(
            host.agent, appliedConfigVersion=host.applied, **fields
        )
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        host.heartbeat_version = data["configVersion"]
        return data

    async def sync(self, host: Host, **fields: Any) -> None:
        """Heartbeat; poll at once if told to (as the agent does), poll, beat again."""
        data = await self.beat(host, **fields)
        if data["configVersion"] > host.applied:
            await self.poll(host)
        await self.poll(host)  # the regular poll: confirms the etag by If-None-Match
        await self.beat(host, **fields)

    async def everyone(self, **fields: Any) -> None:
        for host in self.hosts:
            await self.sync(host, **fields)

    def tick(self) -> int:
        changed: int = self.app.state.ctx.sweeper.run_rollouts_once()
        return changed

    async def rollout(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.fleet.data(
            "GET", f"/groups/{self.group['slug']}/rollout"
        )
        return result

    def on(self, version: int) -> list[Host]:
        return [h for h in self.hosts if h.applied == version]
