"""The whole data path over real HTTP on 127.0.0.1: reference server → real agent → exec secret
backend → Vector stand-in → the server's HEC ingest (SPEC §11.2).

The server's test hook for a failing ingest is ``POST /api/v1/admin/ingest/pause`` (503 "Server
is busy" for a while, ``…/resume`` to end it early): the agent-side health tests use it for
"degraded within one heartbeat while the ingest answers 503, healthy again after".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent_harness import AgentProcess, wait_until
from tests.live_server import LiveServer, create_group_with_input, mint_token, start_live_server

DEMO_OPTIONS = {"format": "json", "interval": 0.05}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with start_live_server(tmp_path / "server") as srv:
        yield srv


class Host:
    """One group with a demo_logs input, and one real agent host (stand-in Vector) in it."""

    def __init__(self, tmp_path: Path, server: LiveServer, options: dict[str, Any]) -> None:
        self.server = server
        self.group = create_group_with_input(server, "web", options=options)
        self.agent = AgentProcess(tmp_path / "host", server.url)
        out = self.agent.enrol(mint_token(server, self.group["slug"]))
        assert out.returncode == 0, out.stderr
        (row,) = self.server.data("GET", "/agents")
        self.agent_id = str(row["id"])

    def start(self) -> None:
        self.agent.start()
        wait_until(lambda: self.agent.applied_version() == 2, 20, "the config to be applied")

    def ingest(self) -> dict[str, Any]:
        row: dict[str, Any] = self.server.data("GET", f"/agents/{self.agent_id}")["ingest"]
        return row

    def refused(self) -> dict[str, int]:
        status: dict[str, Any] = self.server.data("GET", "/ingest")
        return dict(status["requests"]["refused"])


@pytest.fixture
def make_host(tmp_path: Path, server: LiveServer) -> Iterator[Any]:
    hosts: list[Host] = []

    def make(options: dict[str, Any] = DEMO_OPTIONS) -> Host:
        host = Host(tmp_path, server, options)
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        host.agent.close()


def test_a_live_agents_events_are_counted(make_host: Any, server: LiveServer) -> None:
    """The agent's Vector sends its demo events with the agent's own token: the server counts
    them on the agent, per sourcetype, and keeps the last ones for tail."""
    host = make_host()
    host.start()
    wait_until(lambda: host.ingest()["events"] >= 20, 30, "20 events at the ingest")
    checks = host.agent.events("hec_healthcheck")
    assert checks and checks[0]["passed"] is True
    totals = server.data("GET", "/ingest/totals", by="sourcetype,source", group="web")
    assert [(t["sourcetype"], t["source"]) for t in totals] == [
        ("agent_demo_logs", "logpulse-agent")
    ]
    recent = server.data("GET", "/groups/web/events", limit=1)[0]
    assert recent["agentId"] == host.agent_id
    assert "SECRET[logpulse.agent_token]" in host.agent.live_config()
    host.agent.assert_no_secret([host.agent.token()])
    wait_until(lambda: host.ingest()["eventsPerSecond"] > 0, 15, "a rate on the agent row")


def test_a_revoked_agents_token_is_refused(make_host: Any, server: LiveServer) -> None:
    """Revoking the agent: its Vector keeps running on the last config, and every batch it
    sends from then on is refused with 403 "Token disabled" and not counted."""
    host = make_host()
    host.start()
    wait_until(lambda: host.ingest()["events"] > 0, 30, "events at the ingest")
    server.data("POST", f"/agents/{host.agent_id}/revoke")
    wait_until(lambda: host.refused().get("token_disabled", 0) >= 2, 30, "two refused batches")
    frozen = host.ingest()["events"]
    refused = host.refused()["token_disabled"]
    wait_until(lambda: host.refused()["token_disabled"] > refused, 30, "one more refusal")
    assert host.ingest()["events"] == frozen
    dropped = [b for b in host.agent.events("hec_batch") if not b["delivered"]]
    assert dropped and {b["status"] for b in dropped} == {403}


def test_a_paused_ingest_loses_no_event(make_host: Any, server: LiveServer) -> None:
    """The 503 hook: while paused, Vector's sink is answered 503 and retries the same batch;
    after resume that batch and everything buffered behind it arrive, none dropped, none
    counted twice."""
    server.data("POST", "/ingest/pause", {"seconds": 300})
    host = make_host({"format": "json", "interval": 0.02})
    host.start()
    wait_until(lambda: host.refused().get("server_is_busy", 0) >= 2, 30, "two 503 answers")
    checks = host.agent.events("hec_healthcheck")
    assert checks and checks[0]["status"] == 503
    assert host.ingest()["events"] == 0 and not host.agent.events("hec_batch")
    server.data("POST", "/ingest/resume")

    def delivered() -> list[dict[str, Any]]:
        return [b for b in host.agent.events("hec_batch") if b["delivered"]]

    wait_until(lambda: len(delivered()) >= 3, 60, "three batches after the resume")
    assert delivered()[0]["attempts"] >= 3  # the batch held through the 503s, not dropped
    assert all(b["delivered"] for b in host.agent.events("hec_batch"))
    wait_until(
        lambda: host.ingest()["events"] == sum(b["events"] for b in delivered()),
        30,
        "the server's count to equal what the sink delivered",
    )
