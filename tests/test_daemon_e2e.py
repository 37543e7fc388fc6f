"""The real daemon (``logpulse-agent run`` subprocess) with the Vector stand-in against the real
reference server over 127.0.0.1: the config lifecycle, revocation, outages, signals, secrets."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from tests.agent_harness import AgentProcess, vector_processes, wait_until
from tests.live_server import LiveServer, create_group_with_input, mint_token, start_live_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with start_live_server(tmp_path / "server") as srv:
        yield srv


class World:
    """A server, a group with one demo_logs input, and one agent host."""

    def __init__(self, tmp_path: Path, server: LiveServer, poll_interval: float = 0.1) -> None:
        self.server = server
        self.group = create_group_with_input(server, "web")
        self.input_id = server.data("GET", f"/groups/{self.group['id']}/inputs")[0]["id"]
        self.bootstrap = mint_token(server, self.group["slug"], max_uses=5)
        self.switches = tmp_path / "standin-switches.json"
        self.switches.write_text("{}")
        self.agent = AgentProcess(
            tmp_path / "host",
            server.url,
            poll_interval=poll_interval,
            extra_env={"STANDIN_SWITCHES": str(self.switches)},
        )

    def group_version(self) -> int:
        return int(self.server.data("GET", f"/groups/{self.group['id']}")["configVersion"])

    def set_format(self, fmt: str) -> int:
        self.server.data("PATCH", f"/inputs/{self.input_id}", {"options": {"format": fmt}})
        return self.group_version()

    def set_enabled(self, enabled: bool) -> int:
        self.server.data("PATCH", f"/inputs/{self.input_id}", {"enabled": enabled})
        return self.group_version()

    def server_agent(self) -> dict[str, Any]:
        agents = self.server.data("GET", "/agents")
        assert len(agents) == 1
        return dict(agents[0])

    def wait_applied(self, version: int, timeout: float = 20.0) -> None:
        wait_until(
            lambda: self.agent.applied_version() == version,
            timeout,
            f"agent to apply config version {version}",
        )

    def enrol_and_start(self) -> None:
        out = self.agent.enrol(self.bootstrap)
        assert out.returncode == 0, out.stderr
        self.agent.start()
        self.wait_applied(self.group_version())
        wait_until(lambda: self.agent.events("started"), 10, "Vector to start")

    def crash_loop_and_roll_back(self) -> int:
        """Serve a config that makes Vector crash at once; wait until the agent reported the
        rollback, check it runs the config it had before again; the crashing version."""
        good = self.group_version()
        self.switches.write_text(json.dumps({"apache_error": ["crash-on-start"]}))
        bad = self.set_format("apache_error")
        wait_until(
            lambda: "rolled back" in json.dumps(self.server_agent().get("configError")),
            30,
            "rollback reported in a heartbeat",
        )
        assert self.server_agent()["configError"]["configVersion"] == bad
        assert self.agent.applied_version() == good
        assert "format: json" in self.agent.live_config()
        wait_until(
            lambda: self.agent.snapshot().get("vector", {}).get("state") == "RUNNING",
            15,
            "Vector running on the rolled-back config",
        )
        return bad

    def close(self) -> None:
        self.agent.close()


@pytest.fixture
def world(tmp_path: Path, server: LiveServer) -> Iterator[World]:
    w = World(tmp_path, server)
    try:
        yield w
    finally:
        w.close()


class TestConfigLifecycle:
    def test_enrol_apply_reload_reject_stop_restart(self, world: World) -> None:
        """Enrol → first config runs → a new version is reloaded → an invalid one is kept out
        (validated once, configError reported) → `{}` stops Vector → a config starts it again."""
        agent = world.agent
        out = agent.enrol(world.bootstrap)
        assert out.returncode == 0, out.stderr
        assert "agent id" in out.stdout
        assert (agent.config_dir / "agent-token").stat().st_mode & 0o777 == 0o600

        agent.start()
        world.wait_applied(2)
        wait_until(lambda: agent.events("started"), 10, "Vector to start")
        first_pid = agent.events("started")[-1]["pid"]
        assert "format: json" in agent.live_config()
        assert "SECRET[logpulse.agent_token]" in agent.live_config()
        wait_until(lambda: agent.events("secret_resolved"), 10, "the exec secret backend")
        assert all(e.get("obtained", True) for e in agent.events("secret_resolved"))

        # A new version is validated and reloaded into the same Vector process.
        version = world.set_format("syslog")
        world.wait_applied(version)
        wait_until(lambda: agent.events("reloaded"), 10, "Vector to reload")
        assert agent.events("reloaded")[-1]["pid"] == first_pid
        assert "format: syslog" in agent.live_config()

        # An invalid version is kept out: old content still live, error reported, one validation.
        world.switches.write_text(json.dumps({"apache_common": ["fail-validate"]}))
        bad = world.set_format("apache_common")
        wait_until(
            lambda: (world.server_agent().get("configError") or {}).get("configVersion") == bad,
            20,
            "configError in a heartbeat",
        )
        error = world.server_agent()["configError"]
        assert "validate" in error["message"]
        time.sleep(1.0)  # ten more polls at 0.1 s: none may validate the same version again
        bad_validations = [
            e for e in agent.events("validate_failed") if "apache_common" in json.dumps(e)
        ] or agent.events("validate_failed")
        assert len(bad_validations) == 1
        assert "format: syslog" in agent.live_config()
        assert agent.applied_version() == version
        assert agent.events("started")[-1]["pid"] == first_pid
        assert not agent.events("stopped")

        # `{}`: Vector stops entirely and the version is recorded as applied.
        empty = world.set_enabled(False)
        world.wait_applied(empty)
        wait_until(lambda: agent.events("stopped"), 10, "Vector to stop")
        wait_until(lambda: agent.snapshot()["vector"]["state"] == "STOPPED", 5, "status STOPPED")
        wait_until(
            lambda: world.server_agent()["configError"] is None, 5, "a later version clears it"
        )

        # A real config again starts Vector again.
        world.switches.write_text("{}")
        world.set_enabled(True)
        again = world.set_format("json")
        world.wait_applied(again)
        wait_until(lambda: len(agent.events("started")) == 2, 10, "Vector to start again")
        code, status = agent.status()
        assert code == 0, status
        assert status["health"] == "healthy"

        assert agent.terminate() == 0
        agent.assert_no_secret([agent.token(), world.bootstrap])

    def test_crash_looping_config_is_rolled_back(self, world: World) -> None:
        """A config that makes Vector exit repeatedly is replaced by the last-known-good one."""
        world.enrol_and_start()
        # Let the first config survive its crash window (6 polls) to become last-known-good.
        wait_until(
            lambda: (world.agent.state_dir / "vector.lkg.yaml").exists(), 10, "last-known-good"
        )
        world.crash_loop_and_roll_back()
        assert world.agent.terminate() == 0


CONFIG_POLL = re.compile(r'"GET /api/v1/agents/[^/]+/config\?since=(\d+) HTTP/1\.1" (\d{3})')


class TestSupersededFallback:
    def test_a_config_replaced_inside_its_window_is_rolled_back_to(self, tmp_path: Path) -> None:
        """v1 runs; v2 replaces it well inside v1's crash window (6 s at a 1 s poll) and makes
        Vector crash: the agent goes back to v1 and Vector runs, instead of stopping with "no
        last-known-good config". Later polls send v2's version and etag, and the server
        answers 204 instead of v2 in full at every poll."""
        with start_live_server(tmp_path / "srv", access_log=True) as server:
            w = World(tmp_path, server, poll_interval=1.0)
            try:
                w.enrol_and_start()
                bad = w.crash_loop_and_roll_back()
                assert "config.fallback" in w.agent.output()

                def polls() -> list[tuple[int, int]]:
                    found = CONFIG_POLL.findall(server.stdout())
                    return [(int(since), int(code)) for since, code in found]

                before = len(polls())
                wait_until(lambda: len(polls()) >= before + 3, 15, "three more config polls")
                assert set(polls()[before:]) == {(bad, 204)}
                assert w.agent.output().count("skip-rejected") <= 1
                assert w.agent.terminate() == 0
            finally:
                w.close()


class TestRevoked:
    def test_revoked_agent_says_so_once_and_keeps_vector(self, world: World) -> None:
        """403 → one clear log line, status says revoked, Vector untouched, fewer requests."""
        world.enrol_and_start()
        pid = world.agent.events("started")[-1]["pid"]
        agent_id = world.server_agent()["id"]
        world.server.data("POST", f"/agents/{agent_id}/revoke")
        wait_until(
            lambda: world.agent.snapshot().get("controlPlane", {}).get("state") == "revoked",
            10,
            "the agent to notice the revocation",
        )
        time.sleep(1.5)
        output = world.agent.output()
        assert output.count("controlplane.revoked") == 1
        assert "enrol --force" in output
        code, status = world.agent.status()
        assert code == 1 and any("revoked" in p for p in status["problems"])
        assert psutil.pid_exists(pid)
        assert world.agent.events("started")[-1]["pid"] == pid
        assert not world.agent.events("stopped")
        assert world.agent.terminate() == 0


class TestRequestRate:
    def test_revocation_slows_requests_to_the_ceiling(self, tmp_path: Path) -> None:
        """Before revocation the agent polls every 0.1 s; after it, once per ceiling (3 s)."""
        with start_live_server(tmp_path / "srv", access_log=True) as server:
            w = World(tmp_path, server)
            try:
                w.enrol_and_start()

                def requests() -> int:
                    return len(re.findall(r'"(?:GET|POST) /api/v1/agents/', server.stdout()))

                before = requests()
                time.sleep(2.0)
                busy = requests() - before
                server.data("POST", f"/agents/{w.server_agent()['id']}/revoke")
                wait_until(
                    lambda: w.agent.snapshot().get("controlPlane", {}).get("state") == "revoked",
                    10,
                    "revocation noticed",
                )
                time.sleep(0.5)
                before = requests()
                time.sleep(2.0)
                quiet = requests() - before
                assert busy >= 10, busy
                assert quiet <= 2, quiet
            finally:
                w.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestOutage:
    def test_control_plane_down_keeps_vector_and_heartbeats_resume(self, tmp_path: Path) -> None:
        """With the server gone Vector keeps running; when it is back, heartbeats resume."""
        port = free_port()
        server = start_live_server(tmp_path / "srv", port=port)
        w = World(tmp_path, server)
        try:
            w.enrol_and_start()
            pid = w.agent.events("started")[-1]["pid"]
            server.stop()
            wait_until(
                lambda: w.agent.snapshot().get("controlPlane", {}).get("state") == "unreachable",
                10,
                "the agent to notice the outage",
            )
            time.sleep(1.0)
            assert psutil.pid_exists(pid) and not w.agent.events("stopped")
            last = w.agent.snapshot()["controlPlane"]["lastHeartbeatAt"]
            server = start_live_server(tmp_path / "srv", port=port, db=server.db)
            w.server = server
            wait_until(
                lambda: (
                    w.agent.snapshot().get("controlPlane", {}).get("state") == "ok"
                    and w.agent.snapshot()["controlPlane"]["lastHeartbeatAt"] != last
                ),
                15,
                "heartbeats to resume",
            )
            assert w.server_agent()["status"] == "online"
            assert w.agent.events("started")[-1]["pid"] == pid
            assert w.agent.terminate() == 0
        finally:
            w.close()
            server.stop()


class TestSignals:
    def test_sigterm_stops_vector_gracefully_and_exits_zero(self, world: World) -> None:
        """SIGTERM: Vector gets its graceful stop, the agent exits 0 within the grace period."""
        world.enrol_and_start()
        started = time.monotonic()
        assert world.agent.proc is not None
        world.agent.proc.send_signal(signal.SIGTERM)
        assert world.agent.proc.wait(20) == 0
        assert time.monotonic() - started < 10
        assert world.agent.events("stopped"), "Vector stopped gracefully (its own stop event)"
        assert not vector_processes(world.agent.state_dir / "vector.yaml")
        assert not (world.agent.state_dir / "vector.pid").exists()
        snap = world.agent.snapshot()
        assert snap["vector"]["state"] == "STOPPED"


class TestStatus:
    def test_status_says_why_vector_is_fatal(self, world: World) -> None:
        """Vector dies and its binary is gone when the supervisor starts it again: `status`
        (text and --json) names the cause, not just the state."""
        world.enrol_and_start()
        vector = world.agent.vector_bin
        vector.rename(vector.with_name("vector.removed"))
        os.kill(world.agent.events("started")[-1]["pid"], signal.SIGKILL)
        wait_until(
            lambda: world.agent.snapshot().get("vector", {}).get("state") == "FATAL",
            20,
            "Vector FATAL",
        )
        code, status = world.agent.status()
        assert code == 1
        why = f"Vector should run but is FATAL: cannot execute {vector}"
        assert any(problem.startswith(why) for problem in status["problems"]), status
        text = world.agent.cli("status").stdout
        assert f"  ! {why}" in text
        assert f"  last error:    cannot execute {vector}" in text
        assert world.agent.terminate() == 0


class TestSecrets:
    def test_token_never_leaves_its_file(self, world: World) -> None:
        """Token file 0600; no token in logs, outputs, status --json or the Vector config."""
        world.enrol_and_start()
        token = world.agent.token()
        code, status = world.agent.status()
        assert code == 0
        assert token not in json.dumps(status)
        config = yaml.safe_load(world.agent.live_config())
        assert token not in json.dumps(config)
        assert oct(os.stat(world.agent.config_dir / "agent-token").st_mode & 0o777) == "0o600"
        assert world.agent.terminate() == 0
        world.agent.assert_no_secret([token, world.bootstrap])
