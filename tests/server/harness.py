"""Small helpers over a server client: admin calls, enrolling agents, polls and heartbeats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

ADMIN_TOKEN = "ADM_test_admin_token_for_the_server_tests"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class FakeClock:
    """Unix seconds that move only when a test says so."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Agent:
    id: str
    token: str
    group_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def beat(**fields: Any) -> dict[str, Any]:
    """A complete heartbeat body; ``fields`` override the defaults."""
    body: dict[str, Any] = {
        "agentVersion": "0.4.1",
        "vectorVersion": "0.40.0",
        "appliedConfigVersion": 0,
        "vectorRunning": True,
        "vectorUptimeSeconds": 60,
        "configError": None,
    }
    body.update(fields)
    return body


class Fleet:
    """Drives a server through ``client`` (ASGI transport or a real socket)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.tokens: list[str] = []  # every raw token seen, for the database scan

    async def admin(
        self, method: str, path: str, json: Any = None, **params: Any
    ) -> httpx.Response:
        return await self.client.request(
            method, "/api/v1/admin" + path, json=json, params=params or None, headers=ADMIN
        )

    async def data(self, method: str, path: str, json: Any = None, **params: Any) -> Any:
        response = await self.admin(method, path, json, **params)
        assert response.is_success, response.text
        return None if response.status_code == 204 else response.json()["data"]

    async def group(self, name: str, *inputs: dict[str, Any]) -> dict[str, Any]:
        group = await self.data("POST", "/groups", {"name": name})
        for body in inputs:
            await self.data("POST", f"/groups/{group['id']}/inputs", body)
        result: dict[str, Any] = await self.data("GET", f"/groups/{group['id']}")
        return result

    async def token(self, group: str, **fields: Any) -> str:
        raw: str = (await self.data("POST", "/enrolment-tokens", {"group": group, **fields}))[
            "token"
        ]
        self.tokens.append(raw)
        return raw

    async def enrol_response(self, token: str, **fields: Any) -> httpx.Response:
        body = {
            "bootstrapToken": token,
            "hostname": "web-1.example.com",
            "platform": "linux",
            "os": "Ubuntu 24.04",
            "kernel": "6.8.0-35-generic",
            "agentVersion": "0.4.1",
            "vectorVersion": "0.40.0",
            **fields,
        }
        return await self.client.post("/api/v1/agents/enrol", json=body)

    async def enrol(self, group: str, **fields: Any) -> Agent:
        response = await self.enrol_response(await self.token(group), **fields)
        assert response.status_code == 201, response.text
        data = response.json()["data"]
        self.tokens.append(data["agentToken"])
        return Agent(data["agentId"], data["agentToken"], data["groupId"])

    async def config(self, agent: Agent, since: int = 0, etag: str | None = None) -> httpx.Response:
        headers = dict(agent.auth)
        if etag is not None:
            headers["If-None-Match"] = etag
        return await self.client.get(
            f"/api/v1/agents/{agent.id}/config", params={"since": since}, headers=headers
        )

    async def heartbeat(self, agent: Agent, **fields: Any) -> httpx.Response:
        return await self.client.post(
            f"/api/v1/agents/{agent.id}/heartbeat", json=beat(**fields), headers=agent.auth
        )

    async def pending(self, agent: Agent, **fields: Any) -> list[dict[str, Any]]:
        response = await self.heartbeat(agent, **fields)
        assert response.status_code == 200, response.text
        actions: list[dict[str, Any]] = response.json()["data"]["pendingActions"]
        return actions

    async def agent(self, agent: Agent) -> dict[str, Any]:
        result: dict[str, Any] = await self.data("GET", f"/agents/{agent.id}")
        return result

    async def upgrade(self, *agents: Agent, version: str = "0.4.2", **fields: Any) -> list[Any]:
        body = {
            "agentIds": [a.id for a in agents],
            "type": "upgrade_agent",
            "payload": {"targetVersion": version},
            **fields,
        }
        result: list[Any] = await self.data("POST", "/actions", body)
        return result


DEMO = {"type": "demo_logs", "name": "demo", "options": {"format": "json"}}
JOURNALD = {"type": "journald", "name": "journal", "options": {}}
KUBE = {"type": "kubernetes_logs", "name": "pods", "options": {}}
