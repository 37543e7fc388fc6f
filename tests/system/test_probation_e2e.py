"""Upgrade probation on a real systemd: the five scenarios of issue 12, in one booted container.

The container of ``test_systemd_e2e`` (Debian with systemd as PID 1, the real installer and
self-contained releases, the reference server on the host) runs each scenario as a real
``upgrade_agent`` action through the root helper, with the operator's ``install.env`` lines in
force (downgrades allowed, a 30 s probation, 3 restarts). The misbehaving releases are the real
0.2.0 bundle with its executable wrapped (``releases.publish_patched``), published under their
own download bases, so they report the version they are installed as:

1. cannot reach the control plane (a dead proxy) → rolled back at the end of the window;
2. crashes 10 s after every start → rolled back after 3 restarts, before a 120 s window ends;
3. a good release → promoted, kept, probation cleared, action ``done``;
4. the container rebooted in the middle of the probation → still promoted and ``done``;
5. the agent SIGKILLed during the probation of a (remote) downgrade → one restart, kept,
   ``done``, no rollback;

and, without systemd managing the upgrade (``LOGPULSE_NO_SYSTEMD=1``), the installer's own
detached watcher rolls the unreachable release back by the same rules.

Each scenario starts from a known release installed directly (no probation), so they do not
depend on each other's order. Set ``LOGPULSE_PROBATION_TRANSCRIPT=path`` to keep scenario 1's
unit status, the action's final state and the upgrade log.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.live_server import LiveServer, create_group_with_input, mint_token, start_live_server
from tests.system.conftest import REAL_VERSIONS
from tests.system.container import Container, cached_rootfs, ensure_tools
from tests.system.releases import (
    INSTALL_SH,
    ReleaseServer,
    publish_patched,
    serve,
    world_traversable_dir,
)
from tests.system.test_systemd_e2e import prepare, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("releases"),
    pytest.mark.timeout(1800),
    pytest.mark.skipif(os.geteuid() != 0, reason="booting a systemd container needs root"),
]

OLD, NEW = REAL_VERSIONS
WINDOW = 30
OPERATOR_LINES = [
    "LOGPULSE_ALLOW_DOWNGRADE=1",
    f"LOGPULSE_UPGRADE_PROBATION={WINDOW}",
    "LOGPULSE_UPGRADE_PROBATION_RESTARTS=3",
]
UNREACHABLE = """\
    # Every request goes to a proxy that is not there: READY, then no heartbeat ever.
    export http_proxy=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9
    export https_proxy=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9
    unset no_proxy NO_PROXY"""
CRASHING = """\
    # Killed 10 s after every start ($$ becomes the agent at the exec below).
    (sleep 10; kill -KILL $$) &"""


@dataclass
class Host:
    box: Container
    server: LiveServer
    downloads: ReleaseServer
    agent_id: str

    def base(self, name: str) -> str:
        return f"{self.downloads.url}/{name}"

    def sh(self, script: str, **kwargs: Any) -> str:
        return self.box.sh(script, **kwargs).stdout

    def install_env(self) -> list[str]:
        return (self.box.root / "opt/logpulse-agent/install.env").read_text().splitlines()

    def set_install_env(self, key: str, value: str) -> None:
        """Change one line of install.env, as an operator (or the test) would."""
        path = self.box.root / "opt/logpulse-agent/install.env"
        lines = [line for line in self.install_env() if not line.startswith(f"{key}=")]
        path.write_text("\n".join([*lines, f"{key}={value}"]) + "\n")

    def current(self) -> str:
        return self.sh("readlink /opt/logpulse-agent/current").strip()

    def on_probation(self) -> bool:
        return (self.box.root / "opt/logpulse-agent/probation").exists()

    def record(self) -> dict[str, str]:
        text = (self.box.root / "opt/logpulse-agent/probation").read_text()
        return dict(line.split("=", 1) for line in text.splitlines())

    def upgrade_log(self, action_id: str = "") -> str:
        """upgrade.log, from the section of ``action_id`` on when one is given."""
        log = self.sh("cat /var/log/logpulse-agent/upgrade.log", check=False)
        marker = f"logpulse-agent upgrade action {action_id}:"
        return log[log.rindex(marker) :] if action_id and marker in log else log

    def row(self) -> dict[str, Any]:
        rows: list[dict[str, Any]] = self.server.data("GET", "/agents")
        return rows[0]

    def reset(self, version: str) -> None:
        """Install ``version`` directly, without probation, and wait until it reports in
        (nothing to do when the previous scenario ended there)."""
        if (
            self.current() == f"versions/{version}"
            and not self.on_probation()
            and self.row()["agentVersion"] == version
        ):
            return
        self.set_install_env("LOGPULSE_DOWNLOAD_BASE", self.base("good"))
        self.install(version, "good", LOGPULSE_UPGRADE_PROBATION="0")
        assert self.current() == f"versions/{version}"
        assert not self.on_probation()
        wait_for(
            f"{version} to report in with Vector running",
            lambda: (r := self.row())["agentVersion"] == version and r["vectorRunning"],
        )

    def install(self, version: str, base: str, **env: str) -> str:
        """Run the installer in the container as an operator would (curl | sh); its output."""
        return self.sh(
            f"curl -fsSL {self.downloads.url}/install.sh | sh",
            env={
                "LOGPULSE_VERSION": f"v{version}",
                "LOGPULSE_DOWNLOAD_BASE": self.base(base),
                "LOGPULSE_INSTALL_URL": f"{self.downloads.url}/install.sh",
                **env,
            },
            timeout=300,
        )

    def start_upgrade(self, version: str, base: str) -> str:
        """An upgrade_agent action to ``version`` from the download base ``base``; its id."""
        self.set_install_env("LOGPULSE_DOWNLOAD_BASE", self.base(base))
        body = {
            "agentIds": [self.agent_id],
            "type": "upgrade_agent",
            "payload": {"targetVersion": version},
        }
        action_id: str = self.server.data("POST", "/actions", body)[0]["id"]
        wait_for("the probation to begin", self.on_probation, timeout=180)
        return action_id

    def final(self, action_id: str, timeout: float = 300) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            state: dict[str, Any] = self.server.data("GET", f"/actions/{action_id}")
            return state if state["status"] not in ("pending", "running") else None

        return wait_for(f"action {action_id} to finish", finished, timeout=timeout)

    def ended_cleanly(self) -> None:
        """No probation left behind: no record, the timer stopped, the agent's view gone,
        the operator's lines still there."""
        assert not self.on_probation()
        wait_for(
            "the probation timer to stop",
            lambda: (
                self.sh("systemctl is-active logpulse-agent-probation.timer", check=False).strip()
                == "inactive"
            ),
            timeout=30,
        )
        assert not (self.box.root / "var/lib/logpulse-agent/upgrade-probation").exists()
        lines = self.install_env()
        for line in OPERATOR_LINES:
            if not line.startswith("LOGPULSE_UPGRADE_PROBATION="):
                assert lines.count(line) == 1, lines


@pytest.fixture(scope="module")
def host(real_releases: Path) -> Iterator[Host]:
    """One container for all five scenarios: enrolled at OLD, with the operator's lines."""
    ensure_tools()
    workdir = world_traversable_dir("logpulse-probation-e2e-")
    site = workdir / "site"
    shutil.copytree(real_releases, site / "good")
    shutil.copy(INSTALL_SH, site / "install.sh")
    publish_patched(real_releases, NEW, site / "unreachable", workdir / "u", UNREACHABLE)
    publish_patched(real_releases, NEW, site / "crashing", workdir / "c", CRASHING)
    (workdir / "server").mkdir()
    try:
        with (
            serve(site) as downloads,
            start_live_server(workdir / "server", sweep_interval=3600) as server,
            Container.boot(cached_rootfs(), workdir) as box,
        ):
            prepare(box)
            (box.root / "opt/logpulse-agent").mkdir(parents=True, exist_ok=True)
            (box.root / "opt/logpulse-agent/install.env").write_text(
                "\n".join(OPERATOR_LINES) + "\n"
            )
            group = create_group_with_input(server, "probation")
            box.sh(
                f"curl -fsSL {downloads.url}/install.sh | sh",
                env={
                    "LOGPULSE_VERSION": f"v{OLD}",
                    "LOGPULSE_DOWNLOAD_BASE": f"{downloads.url}/good",
                    "LOGPULSE_INSTALL_URL": f"{downloads.url}/install.sh",
                    "LOGPULSE_API_URL": server.url,
                    "LOGPULSE_ENROL_TOKEN": mint_token(server, group["slug"], max_uses=1),
                },
                timeout=300,
            )
            rows = wait_for("the first heartbeat", lambda: server.data("GET", "/agents"))
            yield Host(box, server, downloads, rows[0]["id"])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def status_of_units(host: Host) -> str:
    return host.sh(
        "systemctl status logpulse-agent logpulse-agent-probation.timer "
        "logpulse-agent-probation.service logpulse-agent-upgrade.service "
        "--no-pager --lines=0",
        check=False,
    )


def test_a_release_that_cannot_reach_the_control_plane_is_rolled_back(host: Host) -> None:
    """Scenario 1: READY, Vector running, but no heartbeat gets through. The window ends, the
    watcher rolls back, the old agent reports `failed` with the reason and the log; the server
    never heard from the release on probation."""
    host.reset(OLD)
    action_id = host.start_upgrade(NEW, "unreachable")
    assert host.record()["seconds"] == str(WINDOW)  # the operator's setting, in force
    wait_for(
        "the installer to finish",
        lambda: (
            host.sh("systemctl is-active logpulse-agent-upgrade.service", check=False).strip()
            == "inactive"
        ),
    )
    assert host.current() == f"versions/{NEW}"
    during = status_of_units(host)
    seen: set[str] = set()

    def finished() -> dict[str, Any] | None:
        seen.add(host.row()["agentVersion"])
        state: dict[str, Any] = host.server.data("GET", f"/actions/{action_id}")
        return state if state["status"] not in ("pending", "running") else None

    final = wait_for(f"action {action_id} to finish", finished, timeout=300)
    log = host.upgrade_log(action_id)
    reason = f"probation: no successful heartbeat within {WINDOW} s"
    assert final["status"] == "failed", f"{final}\n--- upgrade.log ---\n{log}"
    assert final["result"]["error"] == f"{reason}; rolled back from {NEW} to {OLD}"
    assert f"rolling back {NEW} to {OLD}: {reason}" in final["result"]["log"]
    assert seen == {OLD}, "the release on probation must never have reached the server"
    assert host.current() == f"versions/{OLD}"
    wait_for("the old agent's heartbeat", lambda: host.row()["agentVersion"] == OLD)
    assert host.sh("systemctl is-active logpulse-agent").strip() == "active"
    host.ended_cleanly()

    transcript = os.environ.get("LOGPULSE_PROBATION_TRANSCRIPT")
    if transcript:
        Path(transcript).write_text(
            f"$ systemctl status ...   (during the probation of {NEW})\n{during}\n"
            f"$ systemctl status ...   (after the rollback)\n{status_of_units(host)}\n"
            f"upgrade action, final state (GET /api/v1/admin/actions/{action_id}):\n"
            f"{json.dumps(final, indent=2)}\n"
            f"--- /var/log/logpulse-agent/upgrade.log ---\n{log}"
        )


def test_a_release_that_keeps_crashing_is_rolled_back_before_the_window_ends(
    host: Host,
) -> None:
    """Scenario 2: it even heartbeats (and promotes itself) before each crash, but the third
    restart ends its 120 s probation early: the reason is the restarts, not the window."""
    host.reset(OLD)
    host.set_install_env("LOGPULSE_UPGRADE_PROBATION", "120")
    try:
        action_id = host.start_upgrade(NEW, "crashing")
        final = host.final(action_id)
    finally:
        host.set_install_env("LOGPULSE_UPGRADE_PROBATION", str(WINDOW))
    log = host.upgrade_log(action_id)
    assert final["status"] == "failed", f"{final}\n--- upgrade.log ---\n{log}"
    assert final["result"]["error"] == (
        f"probation: restarted 3 times; rolled back from {NEW} to {OLD}"
    )
    assert "restarted (2 of 3 allowed restarts)" in log
    assert host.current() == f"versions/{OLD}"
    wait_for("the old agent's heartbeat", lambda: host.row()["agentVersion"] == OLD)
    host.ended_cleanly()


def test_a_good_release_is_promoted_and_kept(host: Host) -> None:
    """Scenario 3: on probation `status` says so and the action stays `running`; the agent
    promotes itself; at the end of the window it is kept, everything cleared, `done`."""
    host.reset(OLD)
    action_id = host.start_upgrade(NEW, "good")
    status = wait_for(
        "the new agent's status",
        lambda: (
            (out := host.sh("logpulse-agent status", check=False))
            and f"logpulse-agent {NEW}" in out
            and out
        ),
    )
    assert f"upgrade to {NEW} on probation until " in status, status
    promoted = host.box.root / "var/lib/logpulse-agent/upgrade-promoted"
    wait_for("the promotion", promoted.exists)
    assert promoted.read_text() == f"{NEW} {host.record()['id']}\n"
    assert host.server.data("GET", f"/actions/{action_id}")["status"] == "running"
    final = host.final(action_id)
    log = host.upgrade_log(action_id)
    assert final["status"] == "done", f"{final}\n--- upgrade.log ---\n{log}"
    assert final["result"] == {"fromVersion": OLD, "toVersion": NEW}
    assert host.current() == f"versions/{NEW}"
    assert f"logpulse-agent {NEW} passed probation" in log
    host.ended_cleanly()
    assert "on probation" not in host.sh("logpulse-agent status", check=False)


def test_a_reboot_during_probation_still_ends_right(host: Host) -> None:
    """Scenario 4: the container is powered off and booted again while the new release is on
    probation; the enabled timer resumes the watching and the release is kept, `done`."""
    host.reset(OLD)
    action_id = host.start_upgrade(NEW, "good")
    wait_for("the new release to report in", lambda: host.row()["agentVersion"] == NEW)
    host.box.reboot()
    assert host.on_probation()
    final = host.final(action_id)
    log = host.upgrade_log(action_id)
    assert final["status"] == "done", f"{final}\n--- upgrade.log ---\n{log}"
    assert host.current() == f"versions/{NEW}"
    assert "rolling back" not in log
    assert log.count("passed probation") == 1
    host.ended_cleanly()


def test_an_agent_killed_during_probation_is_neither_rolled_back_nor_stuck(host: Host) -> None:
    """Scenario 5, on a remote downgrade (allowed by the operator's install.env line): the
    agent on probation is SIGKILLed once; systemd restarts it (one restart of three), it
    promotes itself, and the window ends with the release kept and the action `done`."""
    host.reset(NEW)
    action_id = host.start_upgrade(OLD, "good")
    wait_for("the agent on probation to report in", lambda: host.row()["agentVersion"] == OLD)
    host.sh("systemctl kill --signal=KILL --kill-whom=main logpulse-agent")
    final = host.final(action_id)
    log = host.upgrade_log(action_id)
    assert final["status"] == "done", f"{final}\n--- upgrade.log ---\n{log}"
    assert final["result"] == {"fromVersion": NEW, "toVersion": OLD}
    assert "restarted (1 of 3 allowed restarts)" in log
    assert "rolling back" not in log
    assert log.count("passed probation") == 1
    assert host.current() == f"versions/{OLD}"
    host.ended_cleanly()


def test_without_systemd_the_installer_leaves_the_same_watcher_behind(host: Host) -> None:
    """The installer run by hand with LOGPULSE_NO_SYSTEMD=1 (as in a container whose agent is
    not a systemd unit; here systemd merely plays the agent's supervisor): it finds the running
    agent in status.json, puts the release on probation in `detached` mode, stops the agent
    for its supervisor, and leaves `logpulse-agent-probation watch` running, which rolls the
    unreachable release back at the end of the window and stops it again. No systemctl call
    comes from the installer or the watcher."""
    host.reset(OLD)
    before = host.sh("systemctl show -p MainPID --value logpulse-agent").strip()
    earlier = len(host.upgrade_log())
    out = host.install(NEW, "unreachable", LOGPULSE_NO_SYSTEMD="1")
    assert f"the running agent (pid {before}) was stopped for its supervisor" in out, out
    assert host.record()["mode"] == "detached"
    wait_for("the rollback", lambda: not host.on_probation(), timeout=180)
    view = (host.box.root / "var/lib/logpulse-agent/upgrade-probation").read_text()
    assert f"reason=probation: no successful heartbeat within {WINDOW} s" in view, view
    assert host.current() == f"versions/{OLD}"
    wait_for("the old agent's heartbeat", lambda: host.row()["agentVersion"] == OLD)
    log = host.upgrade_log()[earlier:]
    assert f"rolling back {NEW} to {OLD}: probation: no successful heartbeat" in log, log
    leftover = host.sh(
        "grep -ls 'logpulse-agent-probatio[n] watch' /proc/[0-9]*/cmdline", check=False
    )
    assert leftover == "", "the watcher must end with its probation"
