"""The heartbeat task: report health, deliver action results, receive pending actions.

One heartbeat at start-up, then every ``heartbeat_interval`` (±10 %), and one at once whenever
the ``wake`` event is set (the executor has a result: an action was picked up or finished). The
body is :func:`~.body.build_heartbeat` of a snapshot taken just before sending. Results come from
the persistent action journal and are acknowledged only after a 2xx answer, so each is delivered
at least once. The reply's pending actions go to ``on_actions`` (the executor), the group's
config version to ``on_config_version`` (config sync), and the snapshot a ``2xx`` answered to
``on_success`` (upgrade probation's promotion).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

import structlog

from logpulse_agent.actions.journal import ActionJournal
from logpulse_agent.backoff import Backoff, jittered
from logpulse_agent.config.decisions import retry_ceiling
from logpulse_agent.controlplane.protocol import (
    ActionResult,
    Heartbeat,
    HeartbeatReply,
    PendingAction,
)
from logpulse_agent.errors import ControlPlaneError, RevokedError
from logpulse_agent.heartbeat.body import HeartbeatSnapshot, build_heartbeat
from logpulse_agent.status.sections import ControlPlaneStatus
from logpulse_agent.status.tracker import StatusTracker

log = structlog.get_logger(__name__)

Send = Callable[[Heartbeat], Awaitable[HeartbeatReply]]
Snapshot = Callable[[tuple[ActionResult, ...]], HeartbeatSnapshot]


class HeartbeatLoop:
    """Sends heartbeats; hands pending actions and the group's config version onwards."""

    def __init__(
        self,
        *,
        send: Send,
        snapshot: Snapshot,
        journal: ActionJournal,
        on_actions: Callable[[Sequence[PendingAction]], None],
        on_config_version: Callable[[int | None], None],
        status: StatusTracker,
        interval: float,
        poll_interval: float,
        wake: asyncio.Event | None = None,
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
        on_success: Callable[[HeartbeatSnapshot], object] | None = None,
    ) -> None:
        self._send = send
        self._snapshot = snapshot
        self.journal = journal
        self._on_actions = on_actions
        self._on_config_version = on_config_version
        self.status = status
        self.interval = interval
        self.ceiling = retry_ceiling(poll_interval)
        # Each send retries briefly itself; across failed heartbeats the gap grows from the
        # interval towards the ceiling, so a long outage costs one request per ceiling.
        self.backoff = Backoff(initial=interval, ceiling=max(interval, self.ceiling))
        self.failures = 0
        self._rng = rng or random.Random()
        self._wall_clock = wall_clock
        self._wake = wake or asyncio.Event()
        self._on_success = on_success

    def wake(self) -> None:
        """Ask for a heartbeat now (thread-unsafe; call from the event loop)."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            delay = await self.beat_once()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def beat_once(self) -> float:
        """Send one heartbeat; return the delay until the next one."""
        results = self.journal.pending()
        snapshot = self._snapshot(results)
        body = build_heartbeat(snapshot)
        try:
            reply = await self._send(body)
        except RevokedError as exc:
            self.status.mark_revoked(str(exc))
            return self.ceiling
        except ControlPlaneError as exc:
            self.failures += 1
            delay = self.backoff.delay(self.failures, self._rng)
            log.warning("heartbeat.failed", error=str(exc), failures=self.failures, retry_in=delay)
            self.status.set(replace(self.status.control_plane, state="unreachable", error=str(exc)))
            return delay
        self.failures = 0
        self.journal.acknowledge(results)
        self.status.set(
            ControlPlaneStatus("ok", None, self._wall_clock()),
            replace(self.status.actions, pending_results=len(self.journal.pending())),
            touch=True,
        )
        if results:
            log.info(
                "heartbeat.results_delivered",
                results=[{"actionId": r.action_id, "status": r.status} for r in results],
            )
        if reply.pending_actions:
            log.info("heartbeat.actions", ids=[a.id for a in reply.pending_actions])
            self._on_actions(reply.pending_actions)
        if self._on_success is not None:
            self._on_success(snapshot)
        self._on_config_version(reply.config_version)
        return jittered(self.interval, self._rng)
