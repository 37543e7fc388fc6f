"""Status snapshot health rules and rendering."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from logpulse_agent.controlplane.protocol import ConfigErrorReport
from logpulse_agent.status.report import assess, load_snapshot, render_json, render_text
from logpulse_agent.status.sections import (
    ActionsStatus,
    ConfigStatus,
    ControlPlaneStatus,
    IdentityStatus,
    UpgradeStatus,
    VectorStatus,
)
from logpulse_agent.status.tracker import StatusTracker

FIXTURES = Path(__file__).parent / "fixtures"
NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def snap(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "pid": 1,
        "agentVersion": "0.1.0",
        "startedAt": "2027-01-15T08:00:00Z",
        "controlPlane": {"state": "ok", "lastHeartbeatAt": "2027-01-15T08:00:00Z"},
        "config": {"appliedVersion": 3},
        "vector": {"state": "RUNNING", "running": True, "shouldRun": True},
    }
    base.update(overrides)
    return base


def alive(_: object) -> bool:
    return True


class TestAssess:
    def test_recent_heartbeat_and_running_vector_is_healthy(self) -> None:
        """Heartbeat within 5 minutes and Vector running: healthy."""
        assert assess(snap(), 1_800_000_100.0, alive) == ("healthy", [])

    def test_stale_heartbeat_is_degraded(self) -> None:
        """No successful heartbeat for over 5 minutes degrades the agent."""
        health, reasons = assess(snap(), NOW + 301, alive)
        assert health == "degraded" and "heartbeat" in reasons[0]

    def test_revoked_is_degraded_and_names_the_fix(self) -> None:
        """Revocation says to re-enrol."""
        health, reasons = assess(snap(controlPlane={"state": "revoked"}), NOW, alive)
        assert health == "degraded" and "re-enrol" in reasons[0]

    def test_vector_down_while_it_should_run_is_degraded(self) -> None:
        """Vector in BACKOFF while a config wants it running."""
        s = snap(vector={"state": "BACKOFF", "running": False, "shouldRun": True})
        health, reasons = assess(s, 1_800_000_100.0, alive)
        assert health == "degraded" and "BACKOFF" in reasons[0]

    def test_vector_down_says_why(self) -> None:
        """The supervisor's last error is the reason status gives (text and --json)."""
        error = "cannot execute /usr/bin/vector: No such file or directory"
        s = snap(vector={"state": "FATAL", "running": False, "shouldRun": True, "lastError": error})
        health, reasons = assess(s, 1_800_000_100.0, alive)
        assert reasons == [f"Vector should run but is FATAL: {error}"]
        assert f"  last error:    {error}" in render_text(s, health, reasons, NOW).splitlines()
        assert json.loads(render_json(s, health, reasons))["problems"] == reasons

    def test_dead_daemon_is_degraded(self) -> None:
        """A snapshot left by a daemon that no longer runs is not healthy."""
        health, reasons = assess(snap(), 1_800_000_100.0, lambda _: False)
        assert health == "degraded" and "not running" in reasons[0]


class TestTracker:
    def test_snapshot_is_written_redacted(self, tmp_path: Path) -> None:
        """A token that slipped into an error message never reaches status.json."""
        tracker = StatusTracker(tmp_path / "status.json", "0.1.0")
        tracker.set(ControlPlaneStatus(error="bad Bearer AGT_secretsecret"))
        text = (tmp_path / "status.json").read_text()
        assert "secretsecret" not in text
        data = json.loads(text)
        assert data["controlPlane"]["error"].startswith("bad Bearer")

    def test_render_mentions_every_section(self) -> None:
        """Text output shows identity, config, Vector and results."""
        text = render_text(snap(), "healthy", [], NOW)
        for word in ("agent id", "config applied", "vector", "pending results"):
            assert word in text
        assert json.loads(render_json(snap(), "healthy", []))["health"] == "healthy"


class TestWrite:
    def test_an_unwritable_status_file_is_logged_once_and_never_raises(
        self, tmp_path: Path
    ) -> None:
        """status.json only informs `status`; a disk that refuses it must not fail the
        supervisor or config sync that changed a field (logged once per distinct error)."""
        blocked = tmp_path / "not-a-dir"
        blocked.write_text("a file where the state directory should be\n")
        tracker = StatusTracker(blocked / "status.json", "0.1.0")
        with capture_logs() as logs:
            tracker.set(ConfigStatus(applied_version=1))
            tracker.set(ConfigStatus(applied_version=2))
        assert tracker.config.applied_version == 2
        assert [e["event"] for e in logs] == ["status.write_failed"]
        blocked.unlink()
        blocked.mkdir()
        tracker.set(ConfigStatus(applied_version=3))
        assert json.loads((blocked / "status.json").read_text())["config"]["appliedVersion"] == 3

    def test_status_json_is_never_fsynced(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """It is rewritten from memory all the time and at every start: no caller on the
        event loop waits for a disk flush for it."""
        flushed: list[int] = []
        monkeypatch.setattr(os, "fsync", flushed.append)
        tracker = StatusTracker(tmp_path / "status.json", "0.1.0")
        tracker.set(ConfigStatus(applied_version=1))
        tracker.set(ControlPlaneStatus("ok", None, NOW), touch=True)
        assert json.loads(tracker.path.read_text())["config"]["appliedVersion"] == 1
        assert flushed == []

    def test_a_snapshot_left_empty_by_a_power_loss_reads_as_none(self, tmp_path: Path) -> None:
        """Without fsync a power loss may leave it empty: `status` then says the daemon is
        not running, as for no snapshot, instead of failing."""
        path = tmp_path / "status.json"
        for content in ("", "{half", "[]"):
            path.write_text(content)
            assert load_snapshot(path) is None
        path.unlink()
        assert load_snapshot(path) is None


class TestSnapshotFormat:
    def test_status_json_keeps_the_layout_0_1_0_wrote(self, tmp_path: Path) -> None:
        """Every key of the 0.1.0 snapshot is still there, nested the same way, and the keys
        added since are these: scripts and `status` of either version read the other's file
        (0.1.0's `status` ignores keys it does not know)."""
        tracker = StatusTracker(tmp_path / "status.json", "0.2.0")
        tracker.set(
            IdentityStatus("a", "g", "https://cp"),
            ConfigStatus(5, "sha256:x", False, ConfigErrorReport(6, "bad", "t")),
            VectorStatus("RUNNING", 4300, True, True, "2026-01-01T00:00:00Z", "0.57.0"),
            ActionsStatus(2, UpgradeStatus("act", "0.1.0", "0.2.0", "t")),
        )
        old = json.loads((FIXTURES / "agent-0.1.0" / "lib" / "status.json").read_text())
        new = keys(json.loads(tracker.path.read_text()))
        assert new - keys(old) == {"vector.lastError"}, "additions only, each one named here"
        assert keys(old) <= new

    def test_a_set_that_changes_nothing_writes_nothing_unless_touched(self, tmp_path: Path) -> None:
        """Sections equal to the current ones leave the file alone; touch rewrites it."""
        tracker = StatusTracker(tmp_path / "status.json", "0.1.0")
        tracker.set(ConfigStatus(applied_version=1))
        tracker.path.unlink()
        tracker.set(ConfigStatus(applied_version=1))
        assert not tracker.path.exists()
        tracker.set(ConfigStatus(applied_version=1), touch=True)
        assert tracker.path.exists()


def keys(doc: object, prefix: str = "") -> set[str]:
    """The dotted paths of every key in ``doc``."""
    if not isinstance(doc, dict):
        return set()
    found = set()
    for key, value in doc.items():
        found.add(prefix + key)
        found |= keys(value, prefix + key + ".")
    return found
