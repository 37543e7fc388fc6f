"""The upgrade round trip end to end: the real daemon, the real reference server, an install
script served over 127.0.0.1, and the test playing systemd.

The host layout mimics a real install: ``versions/v<X>/logpulse-agent`` are releases (wrappers
that run this checkout, the 0.2.0 one reporting version 0.2.0), ``command`` names the release the
service runs, and :class:`ServiceManager` restarts the agent with that command whenever it
exits (``Restart=always``). The installer appends ``$LOGPULSE_VERSION`` to ``installs.log``,
switches ``command`` to the new release and SIGTERMs the agent, as the real one's
``systemctl restart`` would.

The server's database gets two test triggers that trace every heartbeat (with the version it
reported) and every action status change in one ordered table, so "``done`` arrives in the first
heartbeat after the restart" is checked exactly rather than by timing.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.agent_harness import AgentProcess, kill_vectors, wait_until
from tests.live_server import LiveServer, create_group_with_input, mint_token, start_live_server

OLD, NEW = "0.1.0", "0.2.0"

# --- the pieces of the host -----------------------------------------------------------------------


class ScriptServer:
    """Serves ``/install.sh`` over http://127.0.0.1 from a thread; counts the downloads."""

    def __init__(self, script: str) -> None:
        self.script = script.encode()
        self.downloads = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/install.sh":
                    self.send_error(404)
                    return
                outer.downloads += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/x-shellscript")
                self.send_header("Content-Length", str(len(outer.script)))
                self.end_headers()
                self.wfile.write(outer.script)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/install.sh"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


class ServiceManager:
    """Plays systemd's ``Restart=always``: whenever the agent exits, start it again with the
    command currently named in ``command_file``. Bounded by ``max_restarts``."""

    def __init__(self, agent: AgentProcess, command_file: Path, max_restarts: int = 3) -> None:
        self.agent = agent
        self.command_file = command_file
        self.max_restarts = max_restarts
        self.exit_codes: list[int] = []
        self.commands: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="service-manager", daemon=True)

    def _launch(self) -> None:
        command = self.command_file.read_text().strip()
        self.commands.append(command)
        self.agent.command = [command]
        self.agent.start()

    def start(self) -> None:
        self._launch()
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.02):
            proc = self.agent.proc
            if proc is None or proc.poll() is None:
                continue
            self.exit_codes.append(proc.returncode)
            if len(self.commands) > self.max_restarts:
                return
            self._launch()

    def stop(self) -> None:
        """Stop restarting (the agent itself keeps running)."""
        self._stop.set()
        self._thread.join(5)


def write_release(root: Path, version: str) -> Path:
    """``versions/v<version>/logpulse-agent``: this checkout, reporting ``version``."""
    code = (
        "import logpulse_agent; "
        f"logpulse_agent.__version__ = {version!r}; "
        "from logpulse_agent.cli import main; main()"
    )
    release = root / "versions" / f"v{version}" / "logpulse-agent"
    release.parent.mkdir(parents=True)
    release.write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -c {shlex.quote(code)} "$@"\n'
    )
    release.chmod(0o755)
    return release


def installer(root: Path, status_json: Path, *, fail: str | None = None) -> str:
    """The install script (POSIX sh). It ``eval``s a line with the version in it on purpose:
    a version that smuggled shell through would run here, and the tests would see it."""
    q = shlex.quote
    body = f"""#!/bin/sh
set -eu
root={q(str(root))}
printf '%s\\n' "$LOGPULSE_VERSION" >> "$root/installs.log"
eval "echo installing logpulse-agent $LOGPULSE_VERSION"
"""
    if fail is not None:
        return body + f"echo {q(fail)}\nexit 1\n"
    return (
        body
        + f"""release="$root/versions/$LOGPULSE_VERSION/logpulse-agent"
[ -x "$release" ] || {{ echo "no release $LOGPULSE_VERSION" >&2; exit 1; }}
# Held until the test opens the gate, so it can hand the action out again meanwhile.
i=0
while [ ! -e "$root/gate" ]; do
    [ ! -e "$root/abort" ] || {{ echo "aborted by the test" >&2; exit 1; }}
    i=$((i + 1))
    [ "$i" -le 600 ] || {{ echo "gate never opened" >&2; exit 1; }}
    sleep 0.05
done
printf '%s\\n' "$release" > "$root/command.tmp"
mv "$root/command.tmp" "$root/command"
pid=$(sed -n 's/^  "pid": \\([0-9][0-9]*\\),*$/\\1/p' {q(str(status_json))})
[ -n "$pid" ] || {{ echo "no agent pid in status.json" >&2; exit 1; }}
echo "restarting logpulse-agent (pid $pid)"
kill -TERM "$pid"
"""
    )


TRACE_SQL = """
CREATE TABLE IF NOT EXISTS test_trace (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL, agent_version TEXT, action_id TEXT, status TEXT
);
CREATE TRIGGER IF NOT EXISTS test_trace_heartbeat
AFTER UPDATE OF last_heartbeat_at ON agent_registrations
BEGIN INSERT INTO test_trace (kind, agent_version) VALUES ('heartbeat', NEW.agent_version); END;
CREATE TRIGGER IF NOT EXISTS test_trace_action
AFTER UPDATE OF status ON agent_actions WHEN NEW.status IS NOT OLD.status
BEGIN INSERT INTO test_trace (kind, action_id, status) VALUES ('action', NEW.id, NEW.status); END;
"""


class Host:
    """A server with one group and one enrolled (not yet started) agent host at release 0.1.0."""

    def __init__(self, tmp_path: Path, server: LiveServer, fail: str | None = None) -> None:
        self.server = server
        self.root = tmp_path / "opt"
        self.root.mkdir()
        self.command_file = self.root / "command"
        self.installs = self.root / "installs.log"
        self.marker = tmp_path / "injected"
        old = write_release(self.root, OLD)
        write_release(self.root, NEW)
        self.command_file.write_text(f"{old}\n")
        self.agent = AgentProcess(tmp_path / "host", server.url, command=[str(old)])
        self.old_command = str(old)
        self.scripts = ScriptServer(
            installer(self.root, self.agent.state_dir / "status.json", fail=fail)
        )
        self.agent.env["LOGPULSE_INSTALL_URL"] = self.scripts.url
        group = create_group_with_input(server, "web")
        out = self.agent.enrol(mint_token(server, group["slug"]))
        assert out.returncode == 0, out.stderr
        self.agent_id = json.loads((self.agent.state_dir / "identity.json").read_text())["agentId"]
        self.manager: ServiceManager | None = None
        with self.db() as conn:
            conn.executescript(TRACE_SQL)

    @contextlib.contextmanager
    def db(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.server.db, timeout=10, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()

    def start(self) -> None:
        self.manager = ServiceManager(self.agent, self.command_file)
        self.manager.start()
        wait_until(
            lambda: self.agent.snapshot().get("controlPlane", {}).get("state") == "ok",
            20,
            "the agent's first heartbeat",
        )

    def upgrade(self, target: str) -> str:
        body = {
            "agentIds": [self.agent_id],
            "type": "upgrade_agent",
            "payload": {"targetVersion": target},
        }
        return str(self.server.data("POST", "/actions", body)[0]["id"])

    def action(self, action_id: str) -> dict[str, Any]:
        return dict(self.server.data("GET", f"/actions/{action_id}"))

    def wait_final(self, action_id: str, timeout: float = 20.0) -> dict[str, Any]:
        return dict(
            wait_until(
                lambda: (a := self.action(action_id))["status"] in ("done", "failed") and a,
                timeout,
                f"action {action_id} to finish",
            )
        )

    def trace(self) -> list[tuple[str, str | None, str | None, str | None]]:
        with self.db() as conn:
            return conn.execute(
                "SELECT kind, agent_version, action_id, status FROM test_trace ORDER BY seq"
            ).fetchall()

    def reset_to_pending(self, action_id: str) -> None:
        """Make the server hand ``action_id`` out again (a lost ack, a restored database…)."""
        with self.db() as conn:
            changed = conn.execute(
                "UPDATE agent_actions SET status = 'pending' WHERE id = ?", (action_id,)
            ).rowcount
        assert changed == 1

    def hand_out_again(self, action_id: str, times: int = 3) -> None:
        """Reset ``action_id`` to pending; wait until the agent got it ``times`` more times. It
        must not react: a result of any kind would end the hand-outs."""
        before = self.handed_out(action_id)
        self.reset_to_pending(action_id)
        wait_until(
            lambda: (
                self.handed_out(action_id) >= before + times
                or self.action(action_id)["status"] != "pending"
            ),
            10,
            f"{action_id} to be handed out {times} more times",
        )
        assert self.action(action_id)["status"] == "pending", self.action(action_id)

    def handed_out(self, action_id: str) -> int:
        """How many heartbeat replies handed ``action_id`` to the agent (from ``agent.log``)."""
        count = 0
        for line in (self.agent.log_dir / "agent.log").read_text().splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("event") == "heartbeat.actions" and action_id in event.get("ids", []):
                    count += 1
        return count

    def install_runs(self) -> list[str]:
        return self.installs.read_text().splitlines() if self.installs.exists() else []

    def close(self) -> None:
        (self.root / "abort").touch()  # an installer still held at its gate gives up
        if self.manager is not None:
            self.manager.stop()
        self.agent.close()
        kill_vectors(self.agent.state_dir / "vector.yaml")
        self.scripts.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with start_live_server(tmp_path / "server") as srv:
        yield srv


@contextlib.contextmanager
def host_for(tmp_path: Path, server: LiveServer, fail: str | None = None) -> Iterator[Host]:
    host = Host(tmp_path, server, fail)
    try:
        yield host
    finally:
        host.close()


# --- the tests ------------------------------------------------------------------------------------


class TestUpgradeRoundTrip:
    def test_installer_runs_once_and_agent_comes_back_as_the_new_version(
        self, tmp_path: Path, server: LiveServer
    ) -> None:
        """pending → running → done {0.1.0 → 0.2.0} in the first heartbeat after the restart;
        the installer runs once with v0.2.0 although the server hands the action out again."""
        with host_for(tmp_path, server) as host:
            host.start()
            assert host.manager is not None
            action_id = host.upgrade(NEW)

            # The `running` ack reaches the server while the installer is held at its gate.
            wait_until(lambda: host.action(action_id)["status"] == "running", 20, "running ack")
            assert host.action(action_id)["result"] == {"fromVersion": OLD, "toVersion": NEW}
            wait_until(lambda: host.install_runs(), 10, "the installer to start")
            inflight = json.loads((host.agent.state_dir / "upgrade-inflight.json").read_text())
            assert inflight["actionId"] == action_id and inflight["toVersion"] == NEW

            # The server hands the same id out again while the installer still runs: ignored.
            host.hand_out_again(action_id)
            assert host.install_runs() == [f"v{NEW}"]

            # The installer switches the release and restarts the service.
            (host.root / "gate").touch()
            wait_until(lambda: host.manager and len(host.manager.commands) == 2, 20, "restart")
            assert host.manager.exit_codes == [0], "the old agent stopped cleanly on SIGTERM"
            assert host.manager.commands[1].endswith(f"versions/v{NEW}/logpulse-agent")
            final = host.wait_final(action_id)
            assert final["status"] == "done"
            assert final["result"] == {"fromVersion": OLD, "toVersion": NEW}

            # Heartbeats now report 0.2.0, and the very first of them carried the result.
            wait_until(
                lambda: host.agent.snapshot().get("agentVersion") == NEW, 10, "new status file"
            )
            agents = server.data("GET", "/agents")
            assert [a["agentVersion"] for a in agents] == [NEW]
            trace = host.trace()
            first_new = next(
                i for i, row in enumerate(trace) if row[0] == "heartbeat" and row[1] == NEW
            )
            assert trace[first_new + 1] == ("action", None, action_id, "done"), (
                "the first heartbeat of 0.2.0 must carry the result",
                trace[first_new - 3 : first_new + 3],
            )
            statuses = [row[3] for row in trace if row[0] == "action" and row[2] == action_id]
            assert statuses == ["running", "pending", "done"]
            assert not (host.agent.state_dir / "upgrade-inflight.json").exists()

            # Handed out once more to the restarted agent: its ledger still says no.
            host.hand_out_again(action_id)
            assert host.install_runs() == [f"v{NEW}"]
            assert host.scripts.downloads == 1
            ledger = json.loads((host.agent.state_dir / "actions-seen.json").read_text())
            assert action_id in ledger["ids"]

            host.manager.stop()
            assert host.agent.terminate() == 0
            upgrade_log = (host.agent.log_dir / "upgrade.log").read_text()
            assert f"installing logpulse-agent v{NEW}" in upgrade_log
            host.agent.assert_no_secret([host.agent.token()])

    def test_failing_installer_reports_failed_with_the_log_tail(
        self, tmp_path: Path, server: LiveServer
    ) -> None:
        """An installer exiting 1 → `failed` with fromVersion and its own words in the log."""
        message = "checksum mismatch for logpulse-agent-0.2.0-linux-x86_64.tar.gz"
        with host_for(tmp_path, server, fail=message) as host:
            host.start()
            action_id = host.upgrade(NEW)
            final = host.wait_final(action_id)
            assert final["status"] == "failed", final
            result = final["result"]
            assert result["fromVersion"] == OLD
            assert "status 1" in result["error"], result
            assert message in result["log"]
            assert f"installing logpulse-agent v{NEW}" in result["log"]
            assert host.install_runs() == [f"v{NEW}"]
            assert host.manager is not None and host.manager.commands == [host.old_command]
            assert host.agent.snapshot()["agentVersion"] == OLD
            assert not (host.agent.state_dir / "upgrade-inflight.json").exists()
            host.manager.stop()
            assert host.agent.terminate() == 0


class TestUpgradeRefusals:
    def test_shell_in_target_version_is_refused_by_server_and_agent(
        self, tmp_path: Path, server: LiveServer
    ) -> None:
        """`1.2.3; touch …` → 422 at the server; written into its database anyway, the agent
        reports `failed` and nothing runs: no download, no installer, no marker file."""
        with host_for(tmp_path, server) as host:
            host.start()
            body = {
                "agentIds": [host.agent_id],
                "type": "upgrade_agent",
                "payload": {"targetVersion": "1.2.3; touch /tmp/x"},
            }
            assert server.admin("POST", "/actions", body).status_code == 422
            assert server.data("GET", "/actions", agentId=host.agent_id) == []

            # Past the server: the real server hands out what its database holds.
            marker = shlex.quote(str(host.marker))
            bad = [
                f"1.2.3; touch {marker}",
                f"1.2.3$(touch {marker})",
                f"v1.2.3`touch {marker}`",
                "1.2.3\n",
                "1.2.3-rc.1 ",
                "0.2.0 ",
            ]
            ids = [f"injected{uuid.uuid4().hex[:8]}" for _ in bad]
            with host.db() as conn:
                now = time.time()
                conn.executemany(
                    "INSERT INTO agent_actions (id, agent_id, type, payload, status,"
                    " created_at, deadline_at, updated_at) VALUES (?, ?, 'upgrade_agent', ?,"
                    " 'pending', ?, ?, ?)",
                    [
                        (i, host.agent_id, json.dumps({"targetVersion": v}), now, now + 600, now)
                        for i, v in zip(ids, bad, strict=True)
                    ],
                )
            for action_id in ids:
                final = host.wait_final(action_id)
                assert final["status"] == "failed", final
                assert "is not a version" in final["result"]["error"]
                assert final["result"]["fromVersion"] == OLD
            assert not host.marker.exists()
            assert host.install_runs() == []
            assert host.scripts.downloads == 0
            assert not (host.agent.state_dir / "upgrade-inflight.json").exists()
            assert host.manager is not None and host.manager.exit_codes == []
            host.manager.stop()
            assert host.agent.terminate() == 0

    @pytest.mark.parametrize("target", [OLD, f"v{OLD}"])
    def test_same_version_is_done_at_once_without_the_installer(
        self, tmp_path: Path, server: LiveServer, target: str
    ) -> None:
        """Upgrading to the running version is `done` at once; nothing is downloaded or run."""
        with host_for(tmp_path, server) as host:
            host.start()
            action_id = host.upgrade(target)
            final = host.wait_final(action_id, timeout=10)
            assert final["status"] == "done"
            assert final["result"] == {"fromVersion": OLD, "toVersion": OLD}
            statuses = [r[3] for r in host.trace() if r[0] == "action" and r[2] == action_id]
            assert statuses == ["done"], "no running ack: nothing was started"
            assert host.install_runs() == []
            assert host.scripts.downloads == 0
            assert not (host.agent.log_dir / "upgrade.log").exists()
            assert host.manager is not None
            host.manager.stop()
            assert host.agent.terminate() == 0


def test_release_wrapper_reports_its_version(tmp_path: Path) -> None:
    """The 0.2.0 wrapper really is version 0.2.0 to the agent's own modules."""
    release = write_release(tmp_path, NEW)
    out = subprocess.run(
        [str(release), "--version"], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.strip() == f"logpulse-agent {NEW}"
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import logpulse_agent; logpulse_agent.__version__ = '0.2.0'; "
            "import logpulse_agent.daemon.lifecycle as d, logpulse_agent.controlplane.enrol as e; "
            "print(d.__version__, e.__version__)",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert probe.stdout.split() == [NEW, NEW]
