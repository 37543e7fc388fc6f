"""End to end on a real systemd: install, enrol, heartbeat, remote upgrade, graceful stop.

In a booted Debian bookworm container (systemd as PID 1): the real installer is piped from a
local server into ``sh`` and installs a real self-contained release; it enrols against the
reference server running on the host and starts the hardened ``Type=notify`` unit; a heartbeat
arrives; an ``upgrade_agent`` action created through the admin API goes through the privileged
request path (``logpulse-agent-upgrade.path`` → oneshot → installer), passes a 30 s probation
(the operator's line in ``install.env``) and ends ``done`` with the right versions while the
agent runs the new bundle; an upgrade to a release that cannot run is rolled back by the
installer and the action fails saying so; ``systemctl stop`` stops Vector (the stand-in)
gracefully. The probation's own scenarios are in ``test_probation_e2e``. Set
``LOGPULSE_E2E_TRANSCRIPT=path`` to keep the unit status and the action's final state.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.live_server import LiveServer, create_group_with_input, mint_token, start_live_server
from tests.system.conftest import REAL_VERSIONS
from tests.system.container import Container, cached_rootfs, ensure_tools
from tests.system.releases import (
    INSTALL_SH,
    REPO,
    ReleaseServer,
    build_release,
    publish_fake,
    serve,
    world_traversable_dir,
)

pytestmark = [
    pytest.mark.slow,
    # One worker for every test that needs the real release builds, so they are built once.
    pytest.mark.xdist_group("releases"),
    pytest.mark.timeout(1800),  # first run: debootstrap + two PyInstaller builds
    pytest.mark.skipif(os.geteuid() != 0, reason="booting a systemd container needs root"),
]

OLD, NEW = REAL_VERSIONS
BROKEN = "0.3.0"
T = TypeVar("T")

AGENT_SETTINGS = """\
# Written by the end-to-end test before installing (the installer keeps an existing file).
vector_bin: /usr/local/bin/vector
poll_interval: 1
heartbeat_interval: 2
"""
TEST_DROPIN = """\
[Service]
Environment=STANDIN_EVENTS=/var/lib/logpulse-agent/standin-events.jsonl
"""
VECTOR_WRAPPER = '#!/bin/sh\nexec python3 /usr/local/lib/vector-standin/vector_standin.py "$@"\n'
# An operator's line, there before the first install: kept by every installer run, and a short
# probation so the upgrade below is promoted (or rolled back) within the test.
INSTALL_ENV = "LOGPULSE_UPGRADE_PROBATION=30\n"


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 120.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.5)


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = world_traversable_dir("logpulse-e2e-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def box(workdir: Path) -> Iterator[Container]:
    ensure_tools()
    rootfs = cached_rootfs()
    with Container.boot(rootfs, workdir) as container:
        yield container


@pytest.fixture
def downloads(real_releases: Path, workdir: Path) -> Iterator[ReleaseServer]:
    """install.sh and the releases on one local server, as get.logpulse.io would serve them."""
    site = workdir / "site"
    shutil.copytree(real_releases, site / "releases")
    shutil.copy(INSTALL_SH, site / "install.sh")
    with serve(site) as server:
        yield server


@pytest.fixture
def control_plane(workdir: Path) -> Iterator[LiveServer]:
    server_dir = workdir / "server"
    server_dir.mkdir()
    with start_live_server(server_dir, sweep_interval=3600) as server:
        yield server


def prepare(box: Container) -> None:
    """What this host has before the installer runs: the Vector stand-in and test settings."""
    lib = box.root / "usr/local/lib/vector-standin"
    lib.mkdir(parents=True)
    for module in (REPO / "tests" / "standin").glob("*.py"):  # the script and its modules
        if module.name != "__init__.py":
            shutil.copy(module, lib / module.name)
    wrapper = box.root / "usr/local/bin/vector"
    wrapper.write_text(VECTOR_WRAPPER)
    wrapper.chmod(0o755)
    etc = box.root / "etc/logpulse-agent"
    etc.mkdir(parents=True)
    (etc / "agent.yaml").write_text(AGENT_SETTINGS)
    dropin = box.root / "etc/systemd/system/logpulse-agent.service.d"
    dropin.mkdir(parents=True)
    (dropin / "e2e-test.conf").write_text(TEST_DROPIN)
    opt = box.root / "opt/logpulse-agent"
    opt.mkdir(parents=True)
    (opt / "install.env").write_text(INSTALL_ENV)


def agent_row(server: LiveServer) -> dict[str, Any] | None:
    rows = server.data("GET", "/agents")
    return rows[0] if rows else None


def upgrade(server: LiveServer, agent_id: str, version: str) -> dict[str, Any]:
    """Create an upgrade_agent action through the admin API; its final state."""
    action = server.data(
        "POST",
        "/actions",
        {"agentIds": [agent_id], "type": "upgrade_agent", "payload": {"targetVersion": version}},
    )[0]

    def finished() -> dict[str, Any] | None:
        state: dict[str, Any] = server.data("GET", f"/actions/{action['id']}")
        return state if state["status"] in ("done", "failed", "expired") else None

    return wait_for(f"the upgrade action to {version} to finish", finished, timeout=300)


def standin_events(box: Container) -> list[dict[str, Any]]:
    path = box.root / "var/lib/logpulse-agent/standin-events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_install_enrol_heartbeat_upgrade_and_stop_under_systemd(
    box: Container, downloads: ReleaseServer, control_plane: LiveServer, workdir: Path
) -> None:
    """The whole life of a host, on a real systemd with the real installer and bundles."""
    prepare(box)
    group = create_group_with_input(control_plane, "e2e")
    token = mint_token(control_plane, group["slug"], max_uses=1)

    # --- install + enrol, the one-liner way -------------------------------------------------
    install = box.sh(
        f"curl -fsSL {downloads.url}/install.sh | sh",
        env={
            "LOGPULSE_VERSION": f"v{OLD}",
            "LOGPULSE_DOWNLOAD_BASE": f"{downloads.url}/releases",
            "LOGPULSE_INSTALL_URL": f"{downloads.url}/install.sh",
            "LOGPULSE_API_URL": control_plane.url,
            "LOGPULSE_ENROL_TOKEN": token,
        },
        timeout=300,
    )
    assert token not in install.stdout + install.stderr
    show = box.sh(
        "systemctl show logpulse-agent -p Type -p ActiveState -p SubState -p User "
        "-p NRestarts -p UnitFileState"
    ).stdout.split()
    assert {
        "Type=notify",
        "ActiveState=active",
        "SubState=running",
        "User=logpulse",
        "UnitFileState=enabled",
    } <= set(show), show
    assert box.sh("systemctl is-enabled logpulse-agent-upgrade.path").stdout.strip() == "enabled"
    assert box.sh("systemctl is-active logpulse-agent-upgrade.path").stdout.strip() == "active"

    # --- a heartbeat arrives; the hardened unit still writes its state ----------------------
    row = wait_for(
        "the first heartbeat",
        lambda: (r := agent_row(control_plane)) and r["lastHeartbeatAt"] and r,
    )
    assert row["agentVersion"] == OLD
    wait_for("Vector running", lambda: (r := agent_row(control_plane)) and r["vectorRunning"])
    owners = box.sh(
        "stat -c '%U %a %n' /etc/logpulse-agent/agent-token /var/lib/logpulse-agent "
        "/var/lib/logpulse-agent/status.json /var/lib/logpulse-agent/identity.json"
    ).stdout.splitlines()
    assert owners[0].startswith("logpulse 600 ")
    assert all(line.startswith("logpulse ") for line in owners), owners
    assert box.sh("logpulse-agent status --json", check=False).returncode == 0

    # --- upgrade_agent through the admin API ------------------------------------------------
    final = upgrade(control_plane, row["id"], NEW)
    upgrade_log = box.sh("cat /var/log/logpulse-agent/upgrade.log", check=False).stdout
    assert final["status"] == "done", f"{final}\n--- upgrade.log ---\n{upgrade_log}"
    assert final["result"] == {"fromVersion": OLD, "toVersion": NEW}
    assert box.sh("logpulse-agent --version").stdout.strip() == f"logpulse-agent {NEW}"
    assert box.sh("readlink /opt/logpulse-agent/current").stdout.strip() == f"versions/{NEW}"
    assert box.sh("readlink /opt/logpulse-agent/previous").stdout.strip() == f"versions/{OLD}"
    assert "installer exited with status 0" in upgrade_log
    assert f"logpulse-agent {NEW} passed probation" in upgrade_log  # done only once kept
    assert not (box.root / "opt/logpulse-agent/probation").exists()
    assert (
        "LOGPULSE_UPGRADE_PROBATION=30" in (box.root / "opt/logpulse-agent/install.env").read_text()
    )
    assert not (box.root / "var/lib/logpulse-agent/upgrade-request").exists()
    wait_for(
        "a heartbeat from the new version",
        lambda: (r := agent_row(control_plane)) and r["agentVersion"] == NEW,
    )
    status = box.sh("systemctl status logpulse-agent --no-pager --lines=0", check=False).stdout
    upgrade_unit = box.sh(
        "systemctl status logpulse-agent-upgrade.service --no-pager --lines=5", check=False
    ).stdout

    # --- a release that cannot run here is rolled back, and the action says so ------------
    # A stand-in bundle that answers --version, but whose `run` exits at once without READY=1,
    # and whose unit cannot start anything: the rollback must restore the old release's units
    # too, or the old agent would not come back either.
    publish_fake(
        workdir / "site" / "releases",
        BROKEN,
        build_release().host_arch(),
        workdir / "x",
        edit_unit=lambda text: text.replace("ExecStart=/usr/bin/", "ExecStart=/nonexistent/"),
    )
    broken = upgrade(control_plane, row["id"], BROKEN)
    assert broken["status"] == "failed", broken
    # The probation that began with the switch ends with the installer's reason.
    assert broken["result"]["error"] == (
        f"logpulse-agent {BROKEN} did not start (journalctl -u logpulse-agent); "
        f"rolled back from {BROKEN} to {NEW}"
    ), broken
    assert f"rolled back to {NEW}, which is running" in broken["result"]["log"], broken
    assert box.sh("readlink /opt/logpulse-agent/current").stdout.strip() == f"versions/{NEW}"
    assert box.sh("systemctl is-active logpulse-agent", check=False).stdout.strip() == "active"
    assert box.sh("logpulse-agent --version").stdout.strip() == f"logpulse-agent {NEW}"
    unit = box.root / "etc/systemd/system/logpulse-agent.service"
    assert "ExecStart=/usr/bin/logpulse-agent run" in unit.read_text()

    # --- systemctl stop stops Vector gracefully ---------------------------------------------
    before_stop = len(standin_events(box))
    box.sh("systemctl stop logpulse-agent", timeout=150)
    stop_events = [e["event"] for e in standin_events(box)[before_stop:]]
    assert "stopping" in stop_events and "stopped" in stop_events, stop_events
    assert box.sh("systemctl show logpulse-agent -p ActiveState").stdout.strip() == (
        "ActiveState=inactive"
    )
    # No Vector left behind (minbase has no pgrep; [n] keeps this command from matching itself).
    leftover = box.sh("grep -ls 'vector_standi[n]' /proc/[0-9]*/cmdline", check=False)
    assert leftover.stdout == "", leftover.stdout

    transcript = os.environ.get("LOGPULSE_E2E_TRANSCRIPT")
    if transcript:
        Path(transcript).write_text(
            f"$ systemctl status logpulse-agent   (after the upgrade)\n{status}\n"
            f"$ systemctl status logpulse-agent-upgrade.service\n{upgrade_unit}\n"
            f"upgrade action, final state:\n{json.dumps(final, indent=2)}\n"
            f"--- /var/log/logpulse-agent/upgrade.log ---\n{upgrade_log}"
        )
