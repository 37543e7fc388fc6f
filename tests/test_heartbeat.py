"""The heartbeat loop against a fake sender: results delivered at least once, actions handed on."""

from __future__ import annotations

from pathlib import Path

import pytest

from logpulse_agent.actions.journal import ActionJournal
from logpulse_agent.controlplane.protocol import (
    ActionResult,
    ConfigErrorReport,
    Heartbeat,
    HeartbeatReply,
    PendingAction,
)
from logpulse_agent.errors import RevokedError, TransientError
from logpulse_agent.heartbeat.body import HeartbeatSnapshot, build_heartbeat
from logpulse_agent.heartbeat.loop import HeartbeatLoop
from logpulse_agent.status.sections import AgentStatus, ConfigStatus, VectorStatus
from logpulse_agent.status.tracker import StatusTracker

pytestmark = pytest.mark.anyio


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.outbox = ActionJournal(tmp_path / "outbox.json")
        self.sent: list[Heartbeat] = []
        self.replies: list[HeartbeatReply | Exception] = []
        self.actions: list[PendingAction] = []
        self.versions: list[int | None] = []
        self.status = StatusTracker(tmp_path / "status.json", "0.1.0")
        self.loop = HeartbeatLoop(
            send=self.send,
            snapshot=self.snapshot,
            journal=self.outbox,
            on_actions=self.actions.extend,
            on_config_version=self.versions.append,
            status=self.status,
            interval=30.0,
            poll_interval=10.0,
            wall_clock=lambda: 5000.0,
        )

    def snapshot(self, results: tuple[ActionResult, ...]) -> HeartbeatSnapshot:
        vector = VectorStatus("RUNNING", 42, True, True, "2026-01-01T00:00:00Z", "0.57.0")
        status = AgentStatus(config=ConfigStatus(applied_version=3), vector=vector)
        return HeartbeatSnapshot("0.1.0", status, vector_uptime_seconds=12, results=results)

    async def send(self, body: Heartbeat) -> HeartbeatReply:
        self.sent.append(body)
        reply = self.replies.pop(0) if self.replies else HeartbeatReply((), 3)
        if isinstance(reply, Exception):
            raise reply
        return reply


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


DONE = ActionResult("act-1", "done", {"fromVersion": "0.1.0", "toVersion": "0.2.0"})


class TestResults:
    async def test_result_is_removed_only_after_a_successful_heartbeat(self, h: Harness) -> None:
        """A failed heartbeat keeps the result for the next one."""
        h.outbox.add(DONE)
        h.replies = [TransientError("down"), HeartbeatReply((), 3)]
        await h.loop.beat_once()
        assert h.outbox.pending() == (DONE,)
        assert h.status.control_plane.state == "unreachable"
        await h.loop.beat_once()
        assert h.outbox.pending() == ()
        assert [b.action_results for b in h.sent] == [(DONE,), (DONE,)]
        assert h.status.control_plane.state == "ok"
        assert h.status.control_plane.last_heartbeat_at == 5000.0

    async def test_result_survives_a_restart(self, h: Harness, tmp_path: Path) -> None:
        """The outbox is on disk: a new process delivers what the old one could not."""
        h.outbox.add(DONE)
        h.replies = [TransientError("down")]
        await h.loop.beat_once()
        assert ActionJournal(tmp_path / "outbox.json").pending() == (DONE,)


class TestReply:
    async def test_pending_actions_are_handed_to_the_executor(self, h: Harness) -> None:
        """Actions from the reply go on; the group's version goes to config sync."""
        action = PendingAction("a1", "upgrade_agent", {"targetVersion": "0.2.0"})
        h.replies = [HeartbeatReply((action,), 4)]
        await h.loop.beat_once()
        assert h.actions == [action]
        assert h.versions == [4]

    async def test_revoked_agent_backs_off_to_the_ceiling(self, h: Harness) -> None:
        """403 is logged once and heartbeats slow down to the 5-minute ceiling."""
        h.replies = [RevokedError("403"), RevokedError("403")]
        assert await h.loop.beat_once() == 300.0
        assert await h.loop.beat_once() == 300.0
        assert h.status.control_plane.state == "revoked"

    async def test_interval_is_jittered_around_the_setting(self, h: Harness) -> None:
        """A normal beat waits the heartbeat interval ±10 %."""
        delay = await h.loop.beat_once()
        assert 27.0 <= delay <= 33.0


class TestOutage:
    async def test_gap_grows_to_the_ceiling_and_resets_on_success(self, h: Harness) -> None:
        """During an outage heartbeats back off towards 5 minutes; one success resets them."""
        h.replies = [TransientError("down")] * 8
        delays = [await h.loop.beat_once() for _ in range(8)]
        assert delays[0] <= 30.0
        assert 270.0 <= delays[-1] <= 300.0
        assert 27.0 <= await h.loop.beat_once() <= 33.0


class TestBody:
    def test_the_body_is_a_view_of_the_status_sections(self) -> None:
        """Applied version, config error, Vector's state and version come from the sections;
        uptime and results from the snapshot."""
        error = ConfigErrorReport(8, "vector validate rejected the config", "2026-01-01T00:00:00Z")
        vector = VectorStatus("RUNNING", 42, True, True, "2026-01-01T00:00:00Z", "0.57.0")
        status = AgentStatus(config=ConfigStatus(7, "sha256:x", False, error), vector=vector)
        body = build_heartbeat(HeartbeatSnapshot("0.2.0", status, 12, (DONE,)))
        assert body.to_json() == {
            "agentVersion": "0.2.0",
            "vectorVersion": "0.57.0",
            "appliedConfigVersion": 7,
            "vectorRunning": True,
            "vectorUptimeSeconds": 12,
            "configError": error.to_json(),
            "actionResults": [DONE.to_json()],
        }

    def test_before_vector_was_asked_it_is_reported_not_running(self) -> None:
        """No Vector section yet: not running, no version."""
        body = build_heartbeat(HeartbeatSnapshot("0.2.0", AgentStatus(), 0))
        assert (body.vector_running, body.vector_version, body.applied_config_version) == (
            False,
            None,
            0,
        )
