"""Upgrade probation with the real daemon and server; the test plays root's watcher.

The host of :mod:`tests.test_upgrade_e2e` (releases that run this checkout as 0.1.0 and 0.2.0,
a service manager that restarts the agent with the command of the current release), with the
one thing root adds: ``upgrade-probation`` in the agent's state directory, written by the
installer before it restarts the agent, and later the watcher's verdict. The real container
tests (``tests/system/test_probation_e2e.py``) run the real watcher under systemd.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent_harness import wait_until
from tests.live_server import LiveServer, start_live_server
from tests.test_upgrade_e2e import NEW, OLD, Host, host_for, installer

PROBATION_ID = "5e1f-e2e"


def view(state: str, reason: str = "") -> str:
    return (
        f"state={state}\nid={PROBATION_ID}\nversion={NEW}\nprevious={OLD}\n"
        f"until=1800000600\nreason={reason}\n"
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with start_live_server(tmp_path / "server") as srv:
        yield srv


def on_probation(host: Host) -> Path:
    """Make the host's installer put the new release on probation before the restart; the
    path of the agent's view of it."""
    path = host.agent.state_dir / "upgrade-probation"
    script = installer(host.root, host.agent.state_dir / "status.json")
    begin = f"printf '%s' '{view('active')}' > '{path}'\n"
    host.scripts.script = script.replace('echo "restarting', begin + 'echo "restarting').encode()
    return path


def upgraded(host: Host) -> str:
    """Start the host, upgrade it to NEW, wait for the restart onto NEW; the action id."""
    host.start()
    action_id = host.upgrade(NEW)
    wait_until(lambda: host.install_runs(), 20, "the installer to start")
    (host.root / "gate").touch()
    wait_until(lambda: host.agent.snapshot().get("agentVersion") == NEW, 20, "the new agent")
    return action_id


def test_the_new_release_promotes_itself_and_reports_done_only_once_kept(
    tmp_path: Path, server: LiveServer
) -> None:
    """On probation the new agent writes 'VERSION ID' after its first successful heartbeat
    with Vector running, and keeps the action `running` (heartbeats go on) until root's view
    says 'promoted'; then `done`, and the finished view is cleared."""
    with host_for(tmp_path, server) as host:
        path = on_probation(host)
        action_id = upgraded(host)
        marker = host.agent.state_dir / "upgrade-promoted"
        wait_until(marker.exists, 20, "the promotion")
        assert marker.read_text() == f"{NEW} {PROBATION_ID}\n"
        beats = len([row for row in host.trace() if row[0] == "heartbeat"])
        wait_until(
            lambda: len([row for row in host.trace() if row[0] == "heartbeat"]) > beats + 3,
            20,
            "more heartbeats of the agent on probation",
        )
        assert host.action(action_id)["status"] == "running"
        path.write_text(view("promoted"))
        final = host.wait_final(action_id)
        assert final["status"] == "done"
        assert final["result"] == {"fromVersion": OLD, "toVersion": NEW}
        wait_until(lambda: not path.exists(), 10, "the finished view to be cleared")


def test_after_a_rollback_the_old_agent_reports_the_reason(
    tmp_path: Path, server: LiveServer
) -> None:
    """Root rolls back (view 'rolled-back', the old release's command, SIGTERM): the old agent
    reports `failed` with root's reason and the upgrade log, never leaving it `running`."""
    with host_for(tmp_path, server) as host:
        path = on_probation(host)
        action_id = upgraded(host)
        assert host.manager is not None
        reason = "probation: no successful heartbeat within 600 s"
        path.write_text(view("rolled-back", reason))
        host.command_file.write_text(f"{host.old_command}\n")
        os.kill(host.agent.snapshot()["pid"], signal.SIGTERM)
        final = host.wait_final(action_id)
        assert final["status"] == "failed", final
        assert final["result"]["error"] == f"{reason}; rolled back from {NEW} to {OLD}"
        assert final["result"]["fromVersion"] == OLD
        assert f"installing logpulse-agent v{NEW}" in final["result"]["log"]
        assert host.manager.commands[-1] == host.old_command
        assert host.agent.snapshot()["agentVersion"] == OLD
        assert not (host.agent.state_dir / "upgrade-inflight.json").exists()
