"""Status snapshot health rules and rendering."""

from __future__ import annotations

import json
from pathlib import Path

from structlog.testing import capture_logs

from logpulse_agent.status.tracker import StatusTracker, assess, render_json, render_text

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

    def test_dead_daemon_is_degraded(self) -> None:
        """A snapshot left by a daemon that no longer runs is not healthy."""
        health, reasons = assess(snap(), 1_800_000_100.0, lambda _: False)
        assert health == "degraded" and "not running" in reasons[0]


class TestTracker:
    def test_snapshot_is_written_redacted(self, tmp_path: Path) -> None:
        """A token that slipped into an error message never reaches status.json."""
        tracker = StatusTracker(tmp_path / "status.json", "0.1.0")
        tracker.update(control_plane_error="bad Bearer AGT_secretsecret")
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
            tracker.update(applied_version=1)
            tracker.update(applied_version=2)
        assert tracker.applied_version == 2
        assert [e["event"] for e in logs] == ["status.write_failed"]
        blocked.unlink()
        blocked.mkdir()
        tracker.update(applied_version=3)
        assert json.loads((blocked / "status.json").read_text())["config"]["appliedVersion"] == 3
