"""The upgrade edge: strict versions, a real installer served over 127.0.0.1, reconciliation."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from logpulse_agent.errors import ActionError
from logpulse_agent.pids import pid_alive
from logpulse_agent.state.layout import Layout
from logpulse_agent.upgrade.launcher import (
    Launch,
    SpawnRequest,
    spawn_systemd_run,
    systemd_unit_active,
)
from logpulse_agent.upgrade.record import InFlightUpgrade, parse_target_version
from logpulse_agent.upgrade.upgrader import Upgrader

pytestmark = pytest.mark.anyio

NOW = datetime.now(timezone.utc).isoformat(timespec="seconds")
RECORD = InFlightUpgrade("act-1", "0.1.0", "0.2.0", NOW)

# A stand-in agent: starts the upgrade, prints the installer's pid and exits at once.
AGENT_SNIPPET = """
import asyncio, os
from pathlib import Path
import httpx
from logpulse_agent.state.layout import Layout
from logpulse_agent.upgrade.record import InFlightUpgrade
from logpulse_agent.upgrade.upgrader import Upgrader

async def main():
    async with httpx.AsyncClient(trust_env=False) as http:
        layout = Layout(Path({tmp!r}) / "etc", Path({tmp!r}) / "state", Path({tmp!r}) / "log")
        up = Upgrader(install_url={url!r}, layout=layout, http=http, systemd_pid1=lambda: False)
        await up.start(InFlightUpgrade("act-9", "0.1.0", "0.2.0", "2099-01-01T00:00:00Z"))
        print(up.inflight().pid, flush=True)
    os._exit(0)

asyncio.run(main())
"""


# --- helpers -------------------------------------------------------------------------------------


@dataclass
class ScriptServer:
    """A tiny HTTP server on 127.0.0.1 answering ``routes[path] = (status, headers, body)``."""

    base_url: str
    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[ScriptServer]:
    state = ScriptServer("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            status, headers, body = state.routes.get(self.path, (404, {}, b"not found\n"))
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def installer(work: Path, *, exit_code: int = 0, message: str = "", hold: bool = False) -> bytes:
    """An install script that records its version and arguments, optionally waits, then exits."""
    lines = [
        "#!/bin/sh",
        'echo "installer starting version=$LOGPULSE_VERSION"',
        f'printf \'%s|%s|%s\\n\' "$LOGPULSE_VERSION" "$#" "$*" >> \'{work}/ran\'',
    ]
    if hold:
        lines.append(f"while [ ! -e '{work}/release' ]; do sleep 0.01; done")
    if hold:
        lines.append(f"touch '{work}/finished'")
    if message:
        lines.append(f"echo '{message}' >&2")
    lines.append(f"exit {exit_code}")
    return ("\n".join(lines) + "\n").encode()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
        yield client


def make_upgrader(tmp_path: Path, url: str, http: httpx.AsyncClient, **kwargs: object) -> Upgrader:
    kwargs.setdefault("systemd_pid1", lambda: False)
    return Upgrader(
        install_url=url,
        layout=Layout(tmp_path / "etc", tmp_path / "state", tmp_path / "log"),
        http=http,
        **kwargs,  # type: ignore[arg-type]
    )


class RecordingSpawn:
    """A spawn strategy that launches nothing and remembers what it was asked."""

    def __init__(self, launch: Launch | None = None) -> None:
        self.requests: list[SpawnRequest] = []
        self.launch = launch or Launch(unit="fake-unit")

    async def __call__(self, request: SpawnRequest) -> Launch:
        self.requests.append(request)
        return self.launch


# --- target versions ----------------------------------------------------------------------------


class TestParseTargetVersion:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("0.4.2", "0.4.2"),
            ("v0.4.2", "0.4.2"),
            ("10.20.30-rc.1", "10.20.30-rc.1"),
            ("1.2.3+build.5", "1.2.3+build.5"),
        ],
    )
    def test_accepts_strict_versions(self, raw: str, expected: str) -> None:
        """Versions of the SPEC's shape are returned without their leading v."""
        assert parse_target_version({"targetVersion": raw}) == expected

    @pytest.mark.parametrize(
        "raw",
        [
            "1.2.3; touch /tmp/x",
            "$(reboot)",
            "1.2",
            "1.2.3\n",
            " 1.2.3",
            "vv1.2.3",
            "1.2.3-",
            "1.2.3-rc 1",
            "\u0661.\u0662.\u0663",
            "1.2.3-" + "a" * 100,
        ],
    )
    def test_rejects_anything_else(self, raw: str) -> None:
        """Strings that are not strictly a version never get through, with a one-line message."""
        with pytest.raises(ActionError) as info:
            parse_target_version({"targetVersion": raw})
        assert "\n" not in str(info.value)
        assert "is not a version" in str(info.value)

    @pytest.mark.parametrize(
        ("payload", "message"),
        [
            (None, "must be an object"),
            (["1.2.3"], "must be an object"),
            ({}, "no 'targetVersion'"),
            ({"targetVersion": 123}, "must be a string"),
            ({"targetVersion": None}, "must be a string"),
        ],
    )
    def test_rejects_malformed_payloads(self, payload: object, message: str) -> None:
        """A payload that is not an object with a string targetVersion is refused."""
        with pytest.raises(ActionError, match=message):
            parse_target_version(payload)


# --- starting the installer ---------------------------------------------------------------------


class TestStart:
    async def test_runs_the_installer_once_detached_with_the_pinned_version(
        self, tmp_path: Path, server: ScriptServer, http: httpx.AsyncClient
    ) -> None:
        """The served script runs once, in its own session, with LOGPULSE_VERSION=v<target>."""
        server.routes["/install.sh"] = (200, {}, installer(tmp_path, hold=True))
        upgrader = make_upgrader(tmp_path, f"{server.base_url}/install.sh", http)
        try:
            await upgrader.start(RECORD)
            record = upgrader.inflight()
            assert record is not None and record.pid is not None
            assert record.action_id == "act-1" and record.unit is None
            wait_until(lambda: (tmp_path / "ran").exists())
            assert os.getsid(record.pid) != os.getsid(0)
            assert os.getsid(record.pid) == record.pid
            assert upgrader.reconcile("0.1.0") is None  # still running: keep waiting
        finally:
            (tmp_path / "release").touch()
        wait_until(lambda: "installer exited with status 0" in upgrader.log_path.read_text())
        assert (tmp_path / "ran").read_text() == "v0.2.0|0|\n"
        assert server.requests == ["/install.sh"]
        log_text = upgrader.log_path.read_text()
        assert "logpulse-agent upgrade action act-1: 0.1.0 -> v0.2.0" in log_text
        assert "installer starting version=v0.2.0" in log_text

    def test_the_installer_outlives_the_agent(self, tmp_path: Path, server: ScriptServer) -> None:
        """An agent process that exits right after starting the upgrade leaves it running."""
        server.routes["/install.sh"] = (200, {}, installer(tmp_path, hold=True))
        agent = AGENT_SNIPPET.format(url=f"{server.base_url}/install.sh", tmp=str(tmp_path))
        try:
            done = subprocess.run(
                [sys.executable, "-c", agent], capture_output=True, text=True, timeout=30
            )
            assert done.returncode == 0, done.stderr
            pid = int(done.stdout.split()[-1])  # after any log lines
            wait_until(lambda: (tmp_path / "ran").exists())
            assert pid_alive(pid, None)  # the agent is gone, the installer is not
        finally:
            (tmp_path / "release").touch()
        wait_until(lambda: (tmp_path / "finished").exists())

    async def test_saves_the_script_private_under_the_state_dir(
        self, tmp_path: Path, server: ScriptServer, http: httpx.AsyncClient
    ) -> None:
        """The downloaded script is kept as state_dir/upgrade/install-<id>.sh with mode 0700."""
        server.routes["/install.sh"] = (200, {}, b"#!/bin/sh\nexit 0\n")
        spawn = RecordingSpawn()
        upgrader = make_upgrader(tmp_path, f"{server.base_url}/install.sh", http, spawn=spawn)
        await upgrader.start(RECORD)
        script = tmp_path / "state" / "upgrade" / "install-act1.sh"
        assert spawn.requests[0].script == script
        assert spawn.requests[0].version == "v0.2.0"
        assert stat.S_IMODE(script.stat().st_mode) == 0o700
        assert script.read_bytes() == b"#!/bin/sh\nexit 0\n"

    async def test_http_404_is_an_action_error_and_nothing_runs(
        self, tmp_path: Path, server: ScriptServer, http: httpx.AsyncClient
    ) -> None:
        """A missing install script fails the start; no installer is launched."""
        spawn = RecordingSpawn()
        upgrader = make_upgrader(tmp_path, f"{server.base_url}/missing.sh", http, spawn=spawn)
        upgrader.log_path.parent.mkdir()
        upgrader.log_path.write_text("output of an earlier upgrade\n")
        with pytest.raises(ActionError, match="HTTP 404"):
            await upgrader.start(RECORD)
        assert spawn.requests == []
        tail = upgrader.log_tail("act-1")
        assert "HTTP 404" in tail and "earlier upgrade" not in tail

    async def test_follows_redirects_within_loopback_http(
        self, tmp_path: Path, server: ScriptServer, http: httpx.AsyncClient
    ) -> None:
        """A redirect to another plain-http loopback URL is followed."""
        server.routes["/latest"] = (302, {"Location": "/v/install.sh"}, b"")
        server.routes["/v/install.sh"] = (200, {}, b"#!/bin/sh\n")
        spawn = RecordingSpawn()
        upgrader = make_upgrader(tmp_path, f"{server.base_url}/latest", http, spawn=spawn)
        await upgrader.start(RECORD)
        assert server.requests == ["/latest", "/v/install.sh"]
        assert len(spawn.requests) == 1

    @pytest.mark.parametrize(
        ("respond", "message"),
        [
            (
                lambda r: httpx.Response(302, headers={"Location": "http://get.example/i.sh"}),
                "from https to plain http is refused",
            ),
            (lambda r: httpx.Response(200, content=b"x" * (1024 * 1024 + 1)), "larger than"),
            (lambda r: httpx.Response(200, content=b"  \n"), "is empty"),
            (lambda r: httpx.Response(500), "HTTP 500"),
        ],
    )
    async def test_refuses_unsafe_or_broken_downloads(
        self, tmp_path: Path, respond: Callable[[httpx.Request], httpx.Response], message: str
    ) -> None:
        """Downgrades to http, oversized or empty scripts and server errors fail the start."""
        spawn = RecordingSpawn()
        async with httpx.AsyncClient(transport=httpx.MockTransport(respond)) as http:
            upgrader = make_upgrader(tmp_path, "https://get.example/", http, spawn=spawn)
            with pytest.raises(ActionError, match=message):
                await upgrader.start(RECORD)
        assert spawn.requests == []

    async def test_never_sends_credentials_to_the_install_host(self, tmp_path: Path) -> None:
        """A client shared with control-plane calls does not leak its Authorization header."""
        seen: list[httpx.Headers] = []

        def respond(request: httpx.Request) -> httpx.Response:
            seen.append(request.headers)
            return httpx.Response(200, content=b"#!/bin/sh\n")

        transport = httpx.MockTransport(respond)
        headers = {"Authorization": "Bearer AGT_secret"}
        async with httpx.AsyncClient(transport=transport, headers=headers) as http:
            upgrader = make_upgrader(tmp_path, "https://get.example/", http, spawn=RecordingSpawn())
            await upgrader.start(RECORD)
        assert len(seen) == 1 and "authorization" not in seen[0]

    async def test_refuses_plain_http_to_a_remote_host(
        self, tmp_path: Path, http: httpx.AsyncClient
    ) -> None:
        """A plain-http install URL off the loopback is refused without allow_insecure_http."""
        upgrader = make_upgrader(tmp_path, "http://get.example/install.sh", http)
        with pytest.raises(ActionError, match="plain http"):
            await upgrader.start(RECORD)

    async def test_the_systemd_run_strategy_launches_a_transient_unit(
        self,
        tmp_path: Path,
        server: ScriptServer,
        http: httpx.AsyncClient,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Given spawn_systemd_run (a root agent), the installer becomes its own transient unit."""
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        fake = bin_dir / "systemd-run"
        fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp_path}/systemd-run.args"\n')
        fake.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        server.routes["/install.sh"] = (200, {}, b"#!/bin/sh\n")
        upgrader = make_upgrader(
            tmp_path,
            f"{server.base_url}/install.sh",
            http,
            systemd_pid1=lambda: True,
            spawn=spawn_systemd_run,
            unit_active=lambda unit: unit == "logpulse-agent-upgrade-act1",
        )
        await upgrader.start(RECORD)
        log = tmp_path / "log" / "upgrade.log"
        script = tmp_path / "state" / "upgrade" / "install-act1.sh"
        assert (tmp_path / "systemd-run.args").read_text().splitlines() == [
            "--unit=logpulse-agent-upgrade-act1",
            "--collect",
            "--quiet",
            "--setenv=LOGPULSE_VERSION=v0.2.0",
            "--property=StandardInput=null",
            f"--property=StandardOutput=append:{log}",
            f"--property=StandardError=append:{log}",
            "/bin/sh",
            str(script),
        ]
        record = upgrader.inflight()
        assert record is not None and record.unit == "logpulse-agent-upgrade-act1"
        assert upgrader.reconcile("0.1.0") is None  # the unit is still active

    async def test_a_failing_systemd_run_is_an_action_error(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """systemd-run's own error becomes the message."""
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        fake = bin_dir / "systemd-run"
        fake.write_text("#!/bin/sh\necho 'Failed to start transient service unit' >&2\nexit 1\n")
        fake.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        request = SpawnRequest(tmp_path / "i.sh", "v0.2.0", tmp_path / "u.log", "u")
        with pytest.raises(ActionError, match="status 1: Failed to start transient"):
            await spawn_systemd_run(request)


# --- the privileged request path (systemd) ------------------------------------------------------


class UnitState:
    """What ``systemctl is-active logpulse-agent-upgrade.service`` would say, settable."""

    def __init__(self) -> None:
        self.busy = False
        self.asked: list[str] = []

    def __call__(self, unit: str) -> bool:
        self.asked.append(unit)
        return self.busy


class TestPrivilegedRequest:
    async def test_systemd_hosts_write_only_the_version_to_the_request_file(
        self, tmp_path: Path, server: ScriptServer, http: httpx.AsyncClient
    ) -> None:
        """Under systemd the agent downloads and runs nothing: it writes the version, atomically."""
        server.routes["/install.sh"] = (200, {}, installer(tmp_path))
        upgrader = make_upgrader(
            tmp_path, f"{server.base_url}/install.sh", http, systemd_pid1=lambda: True
        )
        await upgrader.start(RECORD)
        request = tmp_path / "state" / "upgrade-request"
        assert request.read_text() == "v0.2.0\n"
        assert stat.S_IMODE(request.stat().st_mode) == 0o600
        assert server.requests == []
        assert not (tmp_path / "ran").exists()
        assert [p.name for p in request.parent.iterdir() if p.name.startswith(".")] == []
        record = upgrader.inflight()
        assert record is not None and record.unit == "logpulse-agent-upgrade.service"
        assert record.pid is None
        assert "requested v0.2.0 from logpulse-agent-upgrade.path" in upgrader.log_tail("act-1")

    async def test_a_request_waiting_for_pickup_is_in_progress(
        self, tmp_path: Path, http: httpx.AsyncClient
    ) -> None:
        """Until the path unit takes the request, the upgrade is still running."""
        units = UnitState()
        upgrader = make_upgrader(
            tmp_path, "https://get.example/", http, systemd_pid1=lambda: True, unit_active=units
        )
        # A fresh start time: RECORD's is taken at import, maybe minutes before this test runs.
        fresh = datetime.now(timezone.utc).isoformat(timespec="seconds")
        await upgrader.start(replace(RECORD, started_at=fresh))
        assert upgrader.reconcile("0.1.0", settle=timedelta(0)) is None

    async def test_a_request_nobody_picks_up_fails_naming_the_path_unit(
        self, tmp_path: Path, http: httpx.AsyncClient
    ) -> None:
        """No path unit (or a disabled one): failed after the pickup timeout, request removed."""
        clock = Clock(datetime.now(timezone.utc))
        upgrader = make_upgrader(
            tmp_path,
            "https://get.example/",
            http,
            systemd_pid1=lambda: True,
            unit_active=UnitState(),
            now=clock,
            pickup_timeout=timedelta(seconds=60),
        )
        record = InFlightUpgrade("act-1", "0.1.0", "0.2.0", clock.now.isoformat())
        await upgrader.start(record)
        clock.now += timedelta(seconds=59)
        assert upgrader.reconcile("0.1.0") is None
        clock.now += timedelta(seconds=2)
        result = upgrader.reconcile("0.1.0")
        assert result is not None and result.status == "failed"
        assert "not picked up within 60 s" in result.result["error"]
        assert "systemctl enable --now logpulse-agent-upgrade.path" in result.result["error"]
        assert not (tmp_path / "state" / "upgrade-request").exists()

    async def test_a_consumed_request_runs_while_the_service_is_activating(
        self, tmp_path: Path, http: httpx.AsyncClient
    ) -> None:
        """The oneshot took the request and still runs: in progress, past the pickup timeout."""
        clock = Clock(datetime.now(timezone.utc))
        units = UnitState()
        upgrader = make_upgrader(
            tmp_path,
            "https://get.example/",
            http,
            systemd_pid1=lambda: True,
            unit_active=units,
            now=clock,
            pickup_timeout=timedelta(seconds=60),
        )
        await upgrader.start(InFlightUpgrade("act-1", "0.1.0", "0.2.0", clock.now.isoformat()))
        (tmp_path / "state" / "upgrade-request").unlink()  # what the root service does first
        units.busy = True
        clock.now += timedelta(minutes=5)
        assert upgrader.reconcile("0.1.0") is None
        assert units.asked[-1] == "logpulse-agent-upgrade.service"

    async def test_a_finished_service_without_the_new_version_fails_with_its_log(
        self, tmp_path: Path, http: httpx.AsyncClient
    ) -> None:
        """The root service's output (appended to upgrade.log) is the failure's log tail."""
        units = UnitState()
        upgrader = make_upgrader(
            tmp_path, "https://get.example/", http, systemd_pid1=lambda: True, unit_active=units
        )
        await upgrader.start(RECORD)
        (tmp_path / "state" / "upgrade-request").unlink()
        with (tmp_path / "log" / "upgrade.log").open("a") as log:
            log.write("logpulse-agent installer: error: checksum mismatch for x.tar.gz\n")
        result = upgrader.reconcile("0.1.0", settle=timedelta(0))
        assert result is not None and result.status == "failed"
        assert "checksum mismatch" in result.result["log"]
        upgrader.clear_inflight()
        assert upgrader.inflight() is None

    async def test_done_after_the_restart_as_the_target(
        self, tmp_path: Path, http: httpx.AsyncClient
    ) -> None:
        """The installer restarted the agent as the new version: done with both versions."""
        upgrader = make_upgrader(tmp_path, "https://get.example/", http, systemd_pid1=lambda: True)
        await upgrader.start(RECORD)
        (tmp_path / "state" / "upgrade-request").unlink()
        restarted = make_upgrader(tmp_path, "https://get.example/", http)
        result = restarted.reconcile("0.2.0")
        assert result is not None and result.status == "done"
        assert result.result == {"fromVersion": "0.1.0", "toVersion": "0.2.0"}

    async def test_clearing_a_result_removes_a_leftover_request(
        self, tmp_path: Path, http: httpx.AsyncClient
    ) -> None:
        """Once the result is final, a request still lying there can no longer install later."""
        upgrader = make_upgrader(tmp_path, "https://get.example/", http, systemd_pid1=lambda: True)
        await upgrader.start(RECORD)
        upgrader.clear_inflight()
        assert not (tmp_path / "state" / "upgrade-request").exists()

    async def test_an_unwritable_state_dir_is_an_action_error(
        self, tmp_path: Path, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A request that cannot be written fails the action with the reason."""
        upgrader = make_upgrader(tmp_path, "https://get.example/", http, systemd_pid1=lambda: True)
        from logpulse_agent.errors import StateError
        from logpulse_agent.state import atomic

        real = atomic.write_text

        def refuse(path: Path, text: str, mode: int = 0o644, **options: bool) -> None:
            if path.name == "upgrade-request":
                raise StateError(f"cannot write {path}: Read-only file system")
            real(path, text, mode, **options)

        monkeypatch.setattr(atomic, "write_text", refuse)
        with pytest.raises(ActionError, match="cannot request the upgrade"):
            await upgrader.start(RECORD)


class TestSystemdUnitActive:
    @pytest.mark.parametrize(
        ("state", "busy"),
        [("activating", True), ("active", True), ("inactive", False), ("failed", False)],
    )
    def test_reads_the_state_not_the_exit_status(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: str, busy: bool
    ) -> None:
        """`is-active` exits 3 for a oneshot that is activating: the printed state decides."""
        fake = tmp_path / "systemctl"
        fake.write_text(f"#!/bin/sh\necho {state}\nexit 3\n")
        fake.chmod(0o755)
        monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
        assert systemd_unit_active("logpulse-agent-upgrade.service") is busy


# --- reconciling ------------------------------------------------------------------------------


class TestReconcile:
    async def test_nothing_in_flight_gives_nothing(
        self, tmp_path: Path, http: httpx.AsyncClient
    ) -> None:
        """Without an in-flight record there is nothing to report."""
        assert make_upgrader(tmp_path, "https://get.example/", http).reconcile("0.1.0") is None

    async def test_done_when_the_agent_runs_the_target(
        self, tmp_path: Path, server: ScriptServer, http: httpx.AsyncClient
    ) -> None:
        """After a restart as the target version the result is done with both versions."""
        server.routes["/install.sh"] = (200, {}, installer(tmp_path))
        url = f"{server.base_url}/install.sh"
        await make_upgrader(tmp_path, url, http).start(RECORD)
        restarted = make_upgrader(tmp_path, url, http)
        result = restarted.reconcile("v0.2.0")
        assert result is not None
        assert result.to_json() == {
            "actionId": "act-1",
            "status": "done",
            "result": {"fromVersion": "0.1.0", "toVersion": "0.2.0"},
        }
        assert restarted.inflight() is not None  # removal is the caller's, after outbox.add
        restarted.clear_inflight()
        assert restarted.inflight() is None
        assert not (tmp_path / "state" / "upgrade" / "install-act1.sh").exists()

    async def test_failed_with_the_log_tail_when_the_version_did_not_change(
        self, tmp_path: Path, server: ScriptServer, http: httpx.AsyncClient
    ) -> None:
        """An installer that exited 0 without changing the version gives failed plus its log."""
        server.routes["/install.sh"] = (200, {}, installer(tmp_path))
        url = f"{server.base_url}/install.sh"
        upgrader = make_upgrader(tmp_path, url, http)
        await upgrader.start(RECORD)
        wait_until(lambda: "exited with status 0" in upgrader.log_path.read_text())
        result = make_upgrader(tmp_path, url, http).reconcile("0.1.0")
        assert result is not None and result.status == "failed"
        assert result.result["error"] == (
            "upgrade to 0.2.0 did not take effect: agent still runs 0.1.0"
        )
        assert result.result["fromVersion"] == "0.1.0"
        assert "installer starting version=v0.2.0" in result.result["log"]

    async def test_failing_installer_gives_failed_with_its_message(
        self, tmp_path: Path, server: ScriptServer, http: httpx.AsyncClient
    ) -> None:
        """An installer exiting 1 is reported failed, its message in the log tail, with or
        without a restart in between."""
        message = "checksum mismatch for logpulse-agent-v0.2.0 AGT_leaked"
        server.routes["/install.sh"] = (200, {}, installer(tmp_path, exit_code=1, message=message))
        url = f"{server.base_url}/install.sh"
        upgrader = make_upgrader(tmp_path, url, http)
        await upgrader.start(RECORD)
        wait_until(lambda: "exited with status 1" in upgrader.log_path.read_text())
        seen_exit = upgrader.reconcile("0.1.0")
        after_restart = make_upgrader(tmp_path, url, http).reconcile("0.1.0")
        assert seen_exit is not None and after_restart is not None
        assert seen_exit.result["error"] == (
            "upgrade to 0.2.0 failed: the installer exited with status 1"
        )
        for result in (seen_exit, after_restart):
            assert result.status == "failed"
            assert "checksum mismatch for logpulse-agent-v0.2.0 AGT_***" in result.result["log"]
            assert "AGT_leaked" not in json.dumps(result.to_json())

    async def test_settle_gives_a_finished_installer_time_to_restart_the_agent(
        self, tmp_path: Path, http: httpx.AsyncClient
    ) -> None:
        """While the agent lives, a vanished installer counts as failed only after ``settle``."""
        clock = Clock(datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc))
        upgrader = make_upgrader(
            tmp_path,
            "https://get.example/",
            http,
            now=clock,
            unit_active=lambda unit: False,
        )
        upgrader.begin(InFlightUpgrade("act-1", "0.1.0", "0.2.0", "x", unit="u"))
        assert upgrader.reconcile("0.1.0", settle=timedelta(seconds=15)) is None
        clock.now += timedelta(seconds=16)
        result = upgrader.reconcile("0.1.0", settle=timedelta(seconds=15))
        assert result is not None and result.status == "failed"

    async def test_an_installer_running_too_long_is_failed(
        self, tmp_path: Path, http: httpx.AsyncClient
    ) -> None:
        """An installer still active past max_age is reported failed instead of waited for."""
        clock = Clock(datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc))
        upgrader = make_upgrader(
            tmp_path, "https://get.example/", http, now=clock, unit_active=lambda unit: True
        )
        upgrader.begin(InFlightUpgrade("act-1", "0.1.0", "0.2.0", "2024-05-01T12:00:00Z", unit="u"))
        clock.now += timedelta(minutes=29)
        assert upgrader.reconcile("0.1.0") is None
        clock.now += timedelta(minutes=2)
        result = upgrader.reconcile("0.1.0")
        assert result is not None and result.status == "failed"
        assert "did not finish within 30 minutes" in result.result["error"]

    async def test_a_record_without_a_launch_is_failed(
        self, tmp_path: Path, http: httpx.AsyncClient
    ) -> None:
        """A crash between writing the record and launching the installer is reported failed."""
        upgrader = make_upgrader(tmp_path, "https://get.example/", http)
        upgrader.begin(RECORD)
        result = upgrader.reconcile("0.1.0")
        assert result is not None
        assert "stopped before the installer was launched" in result.result["error"]

    async def test_a_corrupt_record_is_moved_aside(
        self, tmp_path: Path, http: httpx.AsyncClient
    ) -> None:
        """A torn in-flight record is kept aside and does not crash reconciliation."""
        upgrader = make_upgrader(tmp_path, "https://get.example/", http)
        upgrader.inflight_path.parent.mkdir(parents=True)
        upgrader.inflight_path.write_text('{"actionId": 5}')
        assert upgrader.reconcile("0.1.0") is None
        assert not upgrader.inflight_path.exists()
        assert list(upgrader.inflight_path.parent.glob("upgrade-inflight.json.corrupt-*"))

    def test_a_reused_pid_is_not_the_installer(self) -> None:
        """A live pid whose create time differs from the recorded one is not our installer."""
        assert pid_alive(os.getpid(), None)
        assert not pid_alive(os.getpid(), 12345.0)
