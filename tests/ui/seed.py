"""Agents that enrol and beat over HTTP, for the fleet-page tests and the screenshots.

These are "heartbeats over HTTP" stand-ins: exactly the requests an agent sends, with the
values a test wants it to report (hostile hostnames, failures, versions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class HttpAgent:
    id: str
    token: str
    url: str
    last: dict[str, Any] = field(default_factory=dict)  # the last heartbeat body sent

    def beat(self, **fields: Any) -> dict[str, Any]:
        """One heartbeat; returns the server's ``data`` (pending actions, config version)."""
        body: dict[str, Any] = {
            "agentVersion": "0.4.1",
            "vectorVersion": "0.57.0",
            "appliedConfigVersion": 0,
            "vectorRunning": True,
            "vectorUptimeSeconds": 60,
            "configError": None,
            **fields,
        }
        self.last = body
        response = httpx.post(
            f"{self.url}/api/v1/agents/{self.id}/heartbeat",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10.0,
        )
        response.raise_for_status()
        data: dict[str, Any] = response.json()["data"]
        return data


def enrol(url: str, token: str, hostname: str, **fields: Any) -> HttpAgent:
    """Enrol one host with an ``EBT_`` token."""
    body = {
        "bootstrapToken": token,
        "hostname": hostname,
        "platform": "linux",
        "os": "Debian 12",
        "kernel": "6.1.0-28-amd64",
        "agentVersion": "0.4.1",
        "vectorVersion": "0.57.0",
        **fields,
    }
    response = httpx.post(f"{url}/api/v1/agents/enrol", json=body, timeout=10.0)
    response.raise_for_status()
    data = response.json()["data"]
    return HttpAgent(data["agentId"], data["agentToken"], url)
