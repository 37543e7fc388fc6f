"""The status feed over a real supervisor and stand-in Vector: what ``status.json`` says about
Vector, and when."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from logpulse_agent.actions.journal import ActionJournal
from logpulse_agent.controlplane.protocol import ActionResult, Heartbeat, HeartbeatReply
from logpulse_agent.daemon.status_feed import StatusFeed
from logpulse_agent.errors import TransientError, VectorError
from logpulse_agent.heartbeat.loop import HeartbeatLoop
from logpulse_agent.status.tracker import StatusTracker
from logpulse_agent.upgrade.record import inflight_file
from logpulse_agent.vector.supervisor import VectorSupervisor
from tests.standin import MINIMAL_CONFIG, wait_until_async
from tests.test_vector_supervisor import World, supervising

pytestmark = pytest.mark.anyio

RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


class Host:
    """A supervisor whose state changes feed a tracker, as the daemon wires them."""

    def __init__(self, world: World, **overrides: Any) -> None:
        self.world = world
        self.path = world.root / "status.json"
        self.tracker = StatusTracker(self.path, "0.1.0")
        self.writes = 0
        self.tracker.write = self.count_write  # type: ignore[method-assign]
        self.supervisor: VectorSupervisor = world.supervisor(**overrides)
        self.journal = ActionJournal(world.root / "outbox.json")
        self.feed = StatusFeed(
            tracker=self.tracker,
            supervisor=self.supervisor,
            journal=self.journal,
            inflight=inflight_file(world.root / "upgrade-inflight.json"),
            interval=3600.0,  # never ticks in a test: what is there came from on_state
        )
        self.supervisor.on_state = self.feed.on_vector_state

    def count_write(self) -> None:
        self.writes += 1
        StatusTracker.write(self.tracker)

    def vector(self) -> dict[str, Any]:
        section: dict[str, Any] = json.loads(self.path.read_text())["vector"]
        return section


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield World(tmp_path)


class TestVectorError:
    async def test_status_says_why_vector_is_fatal(self, world: World) -> None:
        """The binary cannot be executed: status.json says so, written as the state changed."""
        host = Host(world, vector_bin=str(world.root / "missing" / "vector"))
        with pytest.raises(VectorError):
            await host.supervisor.start()
        vector = host.vector()
        assert vector["state"] == "FATAL"
        assert vector["lastError"].startswith("cannot execute ")
        assert "No such file or directory" in vector["lastError"]

    async def test_status_says_why_vector_did_not_start(self, world: World) -> None:
        """A start-up failure (exit 78) is named with Vector's own error line."""
        world.write("# standin: fail-start\n" + MINIMAL_CONFIG)
        host = Host(world)
        try:
            with pytest.raises(VectorError):
                await host.supervisor.start()
            await wait_until_async(lambda: host.vector()["state"] == "BACKOFF", what="BACKOFF")
            assert "exited with code 78 before it started" in host.vector()["lastError"]
            assert "Configuration error." in host.vector()["lastError"]
        finally:
            await host.supervisor.stop()

    async def test_status_says_why_a_running_vector_exited(self, world: World) -> None:
        """Vector started, then died: status says so while it waits to restart, and forgets
        it once Vector runs again."""
        world.write("# standin: crash-on-start\n" + MINIMAL_CONFIG)
        host = Host(world, backoff_initial=1.0, backoff_max=1.0)
        async with supervising(host.supervisor):
            await host.supervisor.start()
            await wait_until_async(lambda: host.vector()["state"] == "BACKOFF", what="BACKOFF")
            error = host.vector()["lastError"]
            assert re.fullmatch(r"Vector exited with code 0 after \d+s: .*crash-on-start.*", error)
            world.write(MINIMAL_CONFIG)
            await wait_until_async(lambda: host.vector()["state"] == "RUNNING", what="RUNNING")
            assert host.vector()["lastError"] is None

    async def test_vector_timestamps_are_rfc3339_utc_with_z(self, world: World) -> None:
        """Every time in status.json reads 2026-01-01T12:00:00Z (0.1.0 wrote Vector's start
        with +00:00 beside Z elsewhere)."""
        host = Host(world)
        async with supervising(host.supervisor):
            await host.supervisor.start()
            await wait_until_async(lambda: host.vector()["state"] == "RUNNING", what="RUNNING")
            host.feed.publish()
            snapshot = json.loads(host.path.read_text())
        times = [snapshot["startedAt"], snapshot["updatedAt"], snapshot["vector"]["startedAt"]]
        assert all(RFC3339_UTC.fullmatch(value) for value in times), times


class TestHeartbeatWrites:
    async def test_status_json_is_written_once_per_heartbeat(self, world: World) -> None:
        """The sections refreshed for a heartbeat's body and its outcome go to disk together:
        one write per heartbeat, sent or failed (0.1.0 wrote twice when a section changed)."""
        host = Host(world)
        replies: list[HeartbeatReply | Exception] = []

        async def send(body: Heartbeat) -> HeartbeatReply:
            reply = replies.pop(0) if replies else HeartbeatReply((), 1)
            if isinstance(reply, Exception):
                raise reply
            return reply

        loop = HeartbeatLoop(
            send=send,
            snapshot=host.feed.heartbeat_snapshot,
            journal=host.journal,
            on_actions=lambda actions: None,
            on_config_version=lambda version: None,
            status=host.tracker,
            interval=30.0,
            poll_interval=10.0,
        )
        for outcome in ("ok", "result", "failed", "ok"):
            if outcome == "result":
                host.journal.add(ActionResult("act-1", "done", {}))  # the pending count moves
            if outcome == "failed":
                host.journal.add(ActionResult("act-2", "done", {}))
                replies.append(TransientError("control plane unreachable"))
            before = host.writes
            await loop.beat_once()
            assert host.writes - before == 1, outcome
        snapshot = json.loads(host.path.read_text())
        assert snapshot["pendingActionResults"] == 0
        assert snapshot["controlPlane"]["state"] == "ok"
