"""Rollouts in a real server process: state survives kill -9, and ``logpulse-server rollout``.

The soaks here are real seconds (2 s, as SPEC §11.3 says short soaks must work); every wait is
a bounded loop on a condition the server reports, never a fixed sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from logpulse_agent.server.cli import main
from tests.live_server import LiveServer, create_group_with_input, mint_token, start_live_server
from tests.server.harness import beat
from tests.server.spec_check import SpecChecker

HOOKS = {"response": [SpecChecker().hook]}
POLICY = {"strategy": "staged", "phases": [1, "100%"], "soakSeconds": 2, "maxFailures": 0}
INGEST = "https://ingest.example.com"
WAIT = 30.0


class LiveHost:
    """An enrolled agent over real HTTP: polls with since/etag, beats with what it holds."""

    def __init__(self, url: str, token: str, name: str) -> None:
        body = {
            "bootstrapToken": token,
            "hostname": name,
            "platform": "linux",
            "agentVersion": "0.1.0",
        }
        data = httpx.post(f"{url}/api/v1/agents/enrol", json=body, timeout=10).json()["data"]
        self.id, self.name = data["agentId"], name
        self.auth = {"Authorization": f"Bearer {data['agentToken']}"}
        self.applied, self.etag = 0, None
        self.etags: set[str] = set()

    def sync(self, url: str, *, beat_too: bool = True, **fields: Any) -> None:
        headers = dict(self.auth)
        if self.etag:
            headers["If-None-Match"] = self.etag
        for _ in range(2):  # the second poll confirms the etag (If-None-Match)
            r = httpx.get(
                f"{url}/api/v1/agents/{self.id}/config",
                params={"since": self.applied},
                headers=headers,
                timeout=10,
            )
            if r.status_code == 200:
                self.applied, self.etag = (
                    int(r.headers["x-config-version"]),
                    r.headers["x-config-etag"],
                )
                self.etags.add(self.etag)
                headers["If-None-Match"] = self.etag
        if not beat_too:
            return
        hb = beat(appliedConfigVersion=self.applied, **fields)
        r = httpx.post(
            f"{url}/api/v1/agents/{self.id}/heartbeat", json=hb, headers=self.auth, timeout=10
        )
        assert r.status_code == 200, r.text


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def setup(server: LiveServer, name: str, n: int) -> tuple[list[LiveHost], str]:
    create_group_with_input(server, name)
    token = mint_token(server, name)
    hosts = [LiveHost(server.url, token, f"{name}-{i}") for i in range(n)]
    for host in hosts:
        host.sync(server.url)
    server.data("PATCH", f"/groups/{name}", {"rollout": POLICY})
    inputs = server.data("GET", f"/groups/{name}/inputs")
    return hosts, inputs[0]["id"]


def start(tmp_path: Path, db: Path) -> LiveServer:
    return start_live_server(
        tmp_path,
        db=db,
        ingest_url=INGEST,
        event_hooks=HOOKS,
        extra_args=["--heartbeat-interval", "30"],
    )


@pytest.mark.slow
def test_rollout_state_survives_kill_9(tmp_path: Path) -> None:
    """Kill -9 mid-rollout: after the restart the same rollout runs on, the held-back agents
    are served `from` with the same etag, and it completes."""
    db = tmp_path / "server.db"
    server = start(tmp_path, db)
    hosts, input_id = setup(server, "web", 4)
    from_etag = hosts[0].etag
    server.data("PATCH", f"/inputs/{input_id}", {"indexOverride": "v2"})
    for host in hosts:  # polls only: no healthy heartbeat yet, so no soak can end meanwhile
        host.sync(server.url, beat_too=False)
    before = server.data("GET", "/groups/web/rollout")
    assert before["counts"]["admitted"] == 1
    server.process.kill()  # SIGKILL: no shutdown, no flush beyond what was committed
    server.process.wait(10)
    server.stop()

    server = start(tmp_path / "again", db)
    try:
        after = server.data("GET", "/groups/web/rollout")
        assert (after["id"], after["state"], after["phase"]) == (before["id"], "running", 0)
        held = [h for h in hosts if h.etag == from_etag]
        assert len(held) == 3
        fresh = httpx.get(
            f"{server.url}/api/v1/agents/{held[0].id}/config", headers=held[0].auth, timeout=10
        )
        assert fresh.headers["x-config-etag"] == from_etag

        def passed() -> bool:
            for host in hosts:
                host.sync(server.url)
            return server.data("GET", "/groups/web/rollout")["state"] == "completed"

        until(passed, "the rollout to complete")
        assert all(h.applied == after["toVersion"] for h in hosts)
    finally:
        server.stop()


@pytest.mark.slow
def test_rollout_cli_during_a_halt(tmp_path: Path) -> None:
    """`rollout status` shows HALTED with the reason; abort refuses; policy and list work."""
    server = start(tmp_path, tmp_path / "server.db")
    runner = CliRunner()
    env = {"LOGPULSE_SERVER_URL": server.url, "LOGPULSE_ADMIN_TOKEN": server.admin_token}

    def cli(*args: str, code: int = 0) -> str:
        result = runner.invoke(main, list(args), env=env)
        assert result.exit_code == code, result.output
        return result.output

    try:
        hosts, input_id = setup(server, "web", 3)
        out = cli(
            "rollout", "policy", "web", "--strategy", "staged", "--phases", "1,100%", "--soak", "2"
        )
        assert "staged: phases 1, 100%; soak 2 s; max failures 0" in out
        server.data("PATCH", f"/inputs/{input_id}", {"indexOverride": "v2"})
        for host in hosts:
            host.sync(server.url)
        (canary,) = [h for h in hosts if len(h.etags) == 2]
        bad = {"state": "degraded", "reason": "sink out_1: 41 request errors in 30 s (HTTP 403)"}
        canary.sync(server.url, health=bad)
        out = cli("rollout", "status", "web")
        assert "HALTED" in out
        assert f"agent {canary.name}" in out and "HTTP 403" in out
        assert "served version 2 again" in out
        assert "cli:" not in out.split("\n")[0]
        refused = cli("rollout", "abort", "web", code=1)
        assert "cannot abort" in refused and "HTTP 409" in refused
        listed = cli("rollout", "list", "--group", "web")
        assert "halted" in listed
        canary.sync(server.url)
        assert canary.applied == 2
    finally:
        server.stop()
