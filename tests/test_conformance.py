"""Conformance (issue 3): the real agent as a subprocess against the real reference server over
127.0.0.1, with the Vector stand-in.

Each test starts its own server (so its database holds only what the test did), drives the fleet
through the admin API and the agent through its command line, and ends by scanning the server's
database files for any raw token. The cross-version upgrade round trip lives in
``test_upgrade_e2e.py``; here an upgrade is the same-version one, done at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from logpulse_agent import __version__
from tests.agent_harness import AgentProcess, wait_until
from tests.live_server import LiveServer, create_group_with_input, start_live_server

STANDIN_VERSION = "0.57.3"  # not the stand-in's default: proves the version comes from Vector
ENROL_LINE = re.compile(r'"POST /api/v1/agents/enrol HTTP/1\.1" (\d{3})')


def parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class Fleet:
    """A live server plus the hosts and bootstrap tokens a test made, for the final token scan."""

    def __init__(self, tmp_path: Path, server: LiveServer) -> None:
        self.tmp_path = tmp_path
        self.server = server
        self.hosts: list[AgentProcess] = []
        self.bootstrap_tokens: list[str] = []
        self.agent_tokens: set[str] = set()

    # --- admin side --------------------------------------------------------------------------
    def mint(self, group: dict[str, Any], **fields: Any) -> dict[str, Any]:
        minted: dict[str, Any] = self.server.data(
            "POST", "/enrolment-tokens", {"group": group["id"], **fields}
        )
        self.bootstrap_tokens.append(minted["token"])
        return minted

    def agent(self, agent_id: str) -> dict[str, Any]:
        record: dict[str, Any] = self.server.data("GET", f"/agents/{agent_id}")
        return record

    def group(self, group_id: str) -> dict[str, Any]:
        record: dict[str, Any] = self.server.data("GET", f"/groups/{group_id}")
        return record

    def preview(self, group_id: str) -> httpx.Response:
        response = self.server.admin("GET", f"/groups/{group_id}/preview", platform="linux")
        response.raise_for_status()
        return response

    def enrol_statuses(self) -> list[int]:
        """HTTP status of every enrolment the server answered, in order (its access log)."""
        return [int(code) for code in ENROL_LINE.findall(self.server.stdout())]

    # --- agent side --------------------------------------------------------------------------
    def host(self, name: str = "host", **kwargs: Any) -> AgentProcess:
        extra_env = {"STANDIN_VERSION": STANDIN_VERSION, **kwargs.pop("extra_env", {})}
        host = AgentProcess(self.tmp_path / name, self.server.url, extra_env=extra_env, **kwargs)
        host.env.pop("LOGPULSE_ENROL_TOKEN", None)
        self.hosts.append(host)
        return host

    def enrolled_host(
        self, group: dict[str, Any], name: str = "host", **kwargs: Any
    ) -> tuple[AgentProcess, str]:
        """A host enrolled into ``group`` through `logpulse-agent enrol`; returns its agent id."""
        host = self.host(name, **kwargs)
        out = host.enrol(self.mint(group)["token"])
        assert out.returncode == 0, out.stderr
        self.agent_tokens.add(host.token())
        identity = json.loads((host.state_dir / "identity.json").read_text())
        return host, str(identity["agentId"])

    def start(self, host: AgentProcess, group_id: str) -> None:
        """Run the daemon and wait until it applied the group's current config."""
        host.start()
        version = self.group(group_id)["configVersion"]
        wait_until(lambda: host.applied_version() == version, 20, f"config version {version}")

    def protocol(self, host: AgentProcess, agent_id: str) -> httpx.Client:
        """An HTTP client speaking for ``host`` (its own token) to the agent endpoints."""
        return httpx.Client(
            base_url=f"{self.server.url}/api/v1/agents/{agent_id}",
            headers={"Authorization": f"Bearer {host.token()}"},
            timeout=10,
        )

    # --- the token scan ----------------------------------------------------------------------
    def assert_no_raw_token_stored(self) -> None:
        """No bootstrap or agent token, raw, in the database files or the server's output —
        while their SHA-256 digests are there (the scan reads the right bytes)."""
        for host in self.hosts:
            with contextlib.suppress(FileNotFoundError):
                self.agent_tokens.add(host.token())
        tokens = [*self.bootstrap_tokens, *self.agent_tokens]
        assert tokens, "nothing to scan for"
        db = self.server.db
        files = [p for p in db.parent.glob(db.name + "*") if p.is_file()]
        assert db in files
        stored = b"".join(p.read_bytes() for p in files)
        logs = (self.server.stdout() + self.server.log.read_text(errors="replace")).encode()
        for token in tokens:
            assert token.encode() not in stored, "a raw token is stored in the database"
            assert token.encode() not in logs, "a raw token is in the server's output"
            assert hashlib.sha256(token.encode()).hexdigest().encode() in stored
        for host in self.hosts:
            host.assert_no_secret(tokens)

    def close(self) -> None:
        for host in self.hosts:
            host.close()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    with start_live_server(tmp_path / "server", access_log=True) as server:
        world = Fleet(tmp_path, server)
        try:
            yield world
        finally:
            world.close()


def expire_token(server: LiveServer, token_id: str) -> None:
    """Backdate a token's expiry: the admin API's shortest ttl is 60 s and the server process
    has no clock hook, so the one column the expiry check reads is edited (WAL allows it)."""
    with contextlib.closing(sqlite3.connect(server.db, timeout=10)) as conn, conn:
        conn.execute(
            "UPDATE agent_enrollment_tokens SET expires_at = ? WHERE id = ?",
            (time.time() - 1, token_id),
        )


class TestEnrolAndHeartbeat:
    def test_kubernetes_host_enrols_under_its_node_name(self, fleet: Fleet) -> None:
        """On Kubernetes the pod's hostname is its generated pod name: the agent enrols under
        LOGPULSE_NODE_NAME (the DaemonSet passes spec.nodeName); elsewhere that is ignored."""
        group = create_group_with_input(fleet.server, "nodes")
        node_env = {"LOGPULSE_NODE_NAME": "worker-7"}
        _, on_k8s = fleet.enrolled_host(
            group, "pod", extra_env={**node_env, "LOGPULSE_PLATFORM": "kubernetes"}
        )
        _, on_linux = fleet.enrolled_host(group, "vm", extra_env=node_env)
        assert (fleet.agent(on_k8s)["hostname"], fleet.agent(on_k8s)["platform"]) == (
            "worker-7",
            "kubernetes",
        )
        assert fleet.agent(on_linux)["hostname"] == socket.gethostname()

    def test_enrol_first_config_and_every_heartbeat_field_stored(self, fleet: Fleet) -> None:
        """Enrol registers the host; the first config is the group's bytes exactly; the
        heartbeat's fields all land in GET /agents/{id} and the agent shows online."""
        group = create_group_with_input(fleet.server, "web")
        host, agent_id = fleet.enrolled_host(group)

        enrolled = fleet.agent(agent_id)
        assert enrolled["groupId"] == group["id"] and enrolled["groupSlug"] == "web"
        assert enrolled["hostname"] == socket.gethostname()
        assert enrolled["platform"] == "linux"
        assert (enrolled["agentVersion"], enrolled["vectorVersion"]) == (
            __version__,
            STANDIN_VERSION,
        )
        assert enrolled["appliedConfigVersion"] == 0
        assert enrolled["lastHeartbeatAt"] is None and enrolled["status"] == "offline"

        fleet.start(host, group["id"])
        wait_until(lambda: host.events("started"), 10, "Vector to start")
        preview = fleet.preview(group["id"])
        assert host.live_config().encode() == preview.content
        assert host.snapshot()["config"]["etag"] == preview.headers["x-config-etag"]

        wait_until(
            lambda: (
                fleet.agent(agent_id)["appliedConfigVersion"] == group["configVersion"]
                and fleet.agent(agent_id)["vectorRunning"]
            ),
            10,
            "the heartbeat to report the applied config and Vector running",
        )
        record = fleet.agent(agent_id)
        started = host.events("started")[-1]["at"]
        assert record["agentVersion"] == __version__
        assert record["vectorVersion"] == STANDIN_VERSION
        assert record["appliedConfigVersion"] == record["groupConfigVersion"]
        assert record["appliedConfigVersion"] == group["configVersion"]
        assert record["vectorRunning"] is True
        # Derived from vectorUptimeSeconds (whole seconds): within a couple of seconds.
        assert abs(parse_time(record["vectorStartedAt"]) - started) < 3
        assert 0 <= time.time() - parse_time(record["lastHeartbeatAt"]) < 10
        assert record["status"] == "online"
        assert record["configError"] is None and record["revokedAt"] is None
        assert host.terminate() == 0
        fleet.assert_no_raw_token_stored()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def action_status(fleet: Fleet, action_id: str) -> dict[str, Any]:
    action: dict[str, Any] = fleet.server.data("GET", f"/actions/{action_id}")
    return action


LIFECYCLE = ["pending", "running", "done"]


class TestActions:
    def test_same_version_upgrade_is_done_at_once_and_cancelled_ones_never_reach_the_agent(
        self, fleet: Fleet
    ) -> None:
        """An upgrade to the running version goes pending → done, with from/to versions and
        no installer run; an action cancelled while pending is never handed out."""
        group = create_group_with_input(fleet.server, "web")
        # Were the installer ever fetched, it would be from a closed port on 127.0.0.1.
        closed = f"http://127.0.0.1:{closed_port()}/install.sh"
        host, agent_id = fleet.enrolled_host(group, extra_env={"LOGPULSE_INSTALL_URL": closed})
        body = {"agentIds": [agent_id], "type": "upgrade_agent"}
        [cancelled] = fleet.server.data(
            "POST", "/actions", {**body, "payload": {"targetVersion": "9.9.9"}}
        )
        fleet.server.data("POST", f"/actions/{cancelled['id']}/cancel")
        [upgrade] = fleet.server.data(
            "POST", "/actions", {**body, "payload": {"targetVersion": f"v{__version__}"}}
        )
        assert upgrade["status"] == "pending" and upgrade["dispatchedAt"] is None

        fleet.start(host, group["id"])
        seen: list[str] = []

        def finished() -> bool:
            status = action_status(fleet, upgrade["id"])["status"]
            if not seen or seen[-1] != status:
                seen.append(status)
            return status in ("done", "failed")

        wait_until(finished, 20, "the upgrade action to finish")
        assert seen == [s for s in LIFECYCLE if s in seen], seen  # one way only
        done = action_status(fleet, upgrade["id"])
        assert done["status"] == "done", done
        assert done["result"] == {"fromVersion": __version__, "toVersion": __version__}
        assert done["dispatchedAt"] is not None and done["finishedAt"] is not None

        time.sleep(0.5)  # a few more heartbeats at 0.2 s
        assert action_status(fleet, cancelled["id"])["status"] == "cancelled"
        ledger = json.loads((host.state_dir / "actions-seen.json").read_text())
        assert ledger["ids"] == [upgrade["id"]]
        assert not (host.log_dir / "upgrade.log").exists(), "no installer for the same version"
        assert host.proc is not None and host.proc.poll() is None, "the agent kept running"
        assert len(host.events("started")) == 1, "Vector was not restarted"
        assert host.terminate() == 0
        fleet.assert_no_raw_token_stored()


class TestGroupMove:
    POLL = 1.0

    def two_groups_and_a_running_agent(
        self, fleet: Fleet
    ) -> tuple[AgentProcess, str, dict[str, Any], dict[str, Any]]:
        """Groups web (demo_logs json) and db (demo_logs syslog, a different version number);
        an agent running in web with a 1 s poll interval."""
        web = create_group_with_input(fleet.server, "web")
        db = create_group_with_input(fleet.server, "db", options={"format": "syslog"})
        fleet.server.data("PATCH", f"/groups/{db['id']}", {"name": "database"})
        db = fleet.group(db["id"])
        assert db["configVersion"] != web["configVersion"], "versions must tell groups apart"
        host, agent_id = fleet.enrolled_host(web, poll_interval=self.POLL, heartbeat_interval=0.2)
        fleet.start(host, web["id"])
        wait_until(
            lambda: fleet.agent(agent_id)["appliedConfigVersion"] == web["configVersion"],
            10,
            "the first heartbeat",
        )
        return host, agent_id, web, db

    def test_move_resets_the_applied_version_and_delivers_the_new_groups_config(
        self, fleet: Fleet
    ) -> None:
        """After a move the server shows appliedConfigVersion 0 until the new group's config
        reaches the agent; a running agent gets that config within one poll interval."""
        host, agent_id, web, db = self.two_groups_and_a_running_agent(fleet)

        # Stopped agent, so nothing races the check: the move shows at once, applied back to 0.
        assert host.terminate() == 0
        moved = fleet.server.data("POST", f"/agents/{agent_id}/move", {"group": "db"})
        assert (moved["groupId"], moved["appliedConfigVersion"]) == (db["id"], 0)
        record = fleet.agent(agent_id)
        assert (record["appliedConfigVersion"], record["groupConfigVersion"]) == (
            0,
            db["configVersion"],
        )
        host.start()
        self.expect_config(fleet, host, agent_id, db, within=20.0)

        # Running agent: moved back, it has the other group's config within one poll. (Its
        # since, db's version, is ahead of web's: the server must serve web's config anyway.)
        moved = fleet.server.data("POST", f"/agents/{agent_id}/move", {"group": web["slug"]})
        assert (moved["groupId"], moved["appliedConfigVersion"]) == (web["id"], 0)
        self.expect_config(fleet, host, agent_id, web, within=self.POLL * 1.1 + 2.0)
        assert host.terminate() == 0
        fleet.assert_no_raw_token_stored()

    def test_moved_agent_never_shows_the_old_groups_version_as_applied(self, fleet: Fleet) -> None:
        """Between a move and the agent applying the new config, the server shows 0 or the new
        group's version as applied, never a version of the old group."""
        host, agent_id, _, db = self.two_groups_and_a_running_agent(fleet)
        fleet.server.data("POST", f"/agents/{agent_id}/move", {"group": "db"})
        shown = self.expect_config(fleet, host, agent_id, db, within=self.POLL * 1.1 + 2.0)
        assert host.terminate() == 0
        assert shown <= {0, db["configVersion"]}, shown

    def expect_config(
        self,
        fleet: Fleet,
        host: AgentProcess,
        agent_id: str,
        group: dict[str, Any],
        within: float,
    ) -> set[int]:
        """The host applies ``group``'s exact config within ``within`` seconds and the server
        then shows that version applied; returns every applied version the server showed."""
        preview = fleet.preview(group["id"])
        shown: set[int] = set()
        deadline = time.monotonic() + within

        def applied() -> bool:
            shown.add(fleet.agent(agent_id)["appliedConfigVersion"])
            return bool(host.applied_version() == group["configVersion"])

        wait_until(applied, within, f"group {group['slug']}'s config")
        assert time.monotonic() <= deadline
        assert host.live_config().encode() == preview.content
        wait_until(
            lambda: fleet.agent(agent_id)["appliedConfigVersion"] == group["configVersion"],
            10,
            "the server to show the new version applied",
        )
        return shown


class TestRevoke:
    def test_revoked_agent_gets_403_and_its_status_says_revoked(self, fleet: Fleet) -> None:
        """After revocation every agent endpoint answers 403 to its token; the agent notices,
        `status` says revoked (exit 1) and Vector keeps running."""
        group = create_group_with_input(fleet.server, "web")
        host, agent_id = fleet.enrolled_host(group)
        fleet.start(host, group["id"])
        wait_until(lambda: host.events("started"), 10, "Vector to start")
        revoked = fleet.server.data("POST", f"/agents/{agent_id}/revoke")
        assert revoked["status"] == "revoked" and revoked["revokedAt"] is not None

        with fleet.protocol(host, agent_id) as agent_api:
            assert agent_api.get("/config", params={"since": 0}).status_code == 403
            beat = {
                "agentVersion": __version__,
                "vectorVersion": STANDIN_VERSION,
                "appliedConfigVersion": 0,
                "vectorRunning": True,
                "vectorUptimeSeconds": 1,
                "configError": None,
            }
            assert agent_api.post("/heartbeat", json=beat).status_code == 403
        wait_until(
            lambda: host.snapshot().get("controlPlane", {}).get("state") == "revoked",
            10,
            "the agent to notice",
        )
        code, status = host.status()
        assert code == 1 and status["health"] == "degraded"
        assert any("revoked" in problem for problem in status["problems"])
        text = host.cli("status")
        assert text.returncode == 1 and "revoked" in text.stdout
        assert psutil.pid_exists(host.events("started")[-1]["pid"])
        assert not host.events("stopped")
        assert host.terminate() == 0
        fleet.assert_no_raw_token_stored()


class TestBootstrapTokens:
    def test_expired_and_exhausted_tokens_get_401(self, fleet: Fleet) -> None:
        """`logpulse-agent enrol` with an expired or a used-up token: the server answers 401
        (once each: no retry), the command says which, nothing is registered or spent."""
        group = create_group_with_input(fleet.server, "web")
        expired = fleet.mint(group, ttlSeconds=60)
        expire_token(fleet.server, expired["id"])
        single = fleet.mint(group, maxUses=1)
        first = fleet.host("first")
        assert first.enrol(single["token"]).returncode == 0

        cases = [("expired", expired["token"], "expired"), ("exhausted", single["token"], "used")]
        for name, token, says in cases:
            host = fleet.host(name)
            out = host.enrol(token)
            assert out.returncode == 1 and out.stdout == ""
            [line] = out.stderr.splitlines()
            assert line.startswith("logpulse-agent: error: ") and "HTTP 401" in line
            assert says in line and token not in line
            assert not (host.config_dir / "agent-token").exists()

        assert fleet.enrol_statuses() == [201, 401, 401]
        tokens = {t["id"]: t for t in fleet.server.data("GET", "/enrolment-tokens")}
        assert (tokens[expired["id"]]["state"], tokens[expired["id"]]["uses"]) == ("expired", 0)
        assert (tokens[single["id"]]["state"], tokens[single["id"]]["uses"]) == ("exhausted", 1)
        assert len(fleet.server.data("GET", "/agents")) == 1
        fleet.assert_no_raw_token_stored()


class TestEmptyConfig:
    def test_no_enabled_inputs_serves_empty_config_and_stops_vector(self, fleet: Fleet) -> None:
        """Disabling the group's last input: the server serves `{}`, the agent records that
        version as applied and stops Vector (stand-in `stopped`, snapshot STOPPED), and the
        server sees Vector not running. Healthy: Vector is down on purpose."""
        group = create_group_with_input(fleet.server, "web")
        [source] = fleet.server.data("GET", f"/groups/{group['id']}/inputs")
        host, agent_id = fleet.enrolled_host(group)
        fleet.start(host, group["id"])
        wait_until(lambda: host.events("started"), 10, "Vector to start")

        fleet.server.data("PATCH", f"/inputs/{source['id']}", {"enabled": False})
        empty = fleet.group(group["id"])["configVersion"]
        assert fleet.preview(group["id"]).content == b"{}"
        with fleet.protocol(host, agent_id) as agent_api:
            served = agent_api.get("/config", params={"since": 0})
        assert served.status_code == 200 and served.content == b"{}"
        assert served.headers["x-config-version"] == str(empty)

        wait_until(lambda: host.applied_version() == empty, 10, "the empty config applied")
        wait_until(lambda: host.events("stopped"), 10, "Vector to stop")
        wait_until(
            lambda: host.snapshot().get("vector", {}).get("state") == "STOPPED", 5, "STOPPED"
        )
        assert host.snapshot()["config"]["empty"] is True
        wait_until(
            lambda: (
                fleet.agent(agent_id)["vectorRunning"] is False
                and fleet.agent(agent_id)["appliedConfigVersion"] == empty
            ),
            10,
            "the server to see Vector stopped at the empty version",
        )
        code, status = host.status()
        assert (code, status["health"]) == (0, "healthy"), status
        assert host.terminate() == 0
        fleet.assert_no_raw_token_stored()

    def test_group_without_inputs_never_starts_vector(self, fleet: Fleet) -> None:
        """An agent enrolled into a group with no inputs applies `{}` and never starts Vector."""
        group = fleet.server.data("POST", "/groups", {"name": "empty"})
        host, agent_id = fleet.enrolled_host(group)
        fleet.start(host, group["id"])
        wait_until(
            lambda: host.snapshot().get("vector", {}).get("state") == "STOPPED", 5, "STOPPED"
        )
        wait_until(lambda: fleet.agent(agent_id)["lastHeartbeatAt"], 10, "a heartbeat")
        time.sleep(0.5)
        assert host.events("started") == []
        assert fleet.agent(agent_id)["vectorRunning"] is False
        assert host.terminate() == 0
        fleet.assert_no_raw_token_stored()
