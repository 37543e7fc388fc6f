"""The heartbeat task: report health, deliver action results, receive pending actions.

One heartbeat at start-up, then every ``heartbeat_interval`` (±10 %), and one at once whenever
``wake()`` is called (an action was picked up or finished). Results come from the persistent
outbox and are acknowledged only after a 2xx answer, so each is delivered at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Sequence

import structlog

from logpulse_agent.config_decisions import jittered, retry_ceiling
from logpulse_agent.errors import ControlPlaneError, RevokedError
from logpulse_agent.outbox import Outbox
from logpulse_agent.protocol import ActionResult, Heartbeat, HeartbeatReply, PendingAction
from logpulse_agent.retry import RetryPolicy
from logpulse_agent.status import StatusTracker

log = structlog.get_logger(__name__)

Send = Callable[[Heartbeat], Awaitable[HeartbeatReply]]
Build = Callable[[tuple[ActionResult, ...]], Heartbeat]


class HeartbeatLoop:
    """Sends heartbeats; hands pending actions and the group's config version onwards."""

    def __init__(
        self,
        *,
        send: Send,
        build: Build,
        outbox: Outbox,
        on_actions: Callable[[Sequence[PendingAction]], None],
        on_config_version: Callable[[int | None], None],
        status: StatusTracker,
        interval: float,
        poll_interval: float,
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
        on_success: Callable[[Heartbeat], object] | None = None,
    ) -> None:
        self._send = send
        self._build = build
        self.outbox = outbox
        self._on_actions = on_actions
        self._on_config_version = on_config_version
        self.status = status
        self.interval = interval
        self.ceiling = retry_ceiling(poll_interval)
        # Each send retries briefly itself; across failed heartbeats the gap grows from the
        # interval towards the ceiling, so a long outage costs one request per ceiling.
        self.backoff = RetryPolicy(initial=interval, ceiling=max(interval, self.ceiling))
        self.failures = 0
        self._rng = rng or random.Random()
        self._wall_clock = wall_clock
        self._on_success = on_success
        self._wake = asyncio.Event()
        self.sent = 0

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
        results = self.outbox.pending()
        body = self._build(results)
        try:
            reply = await self._send(body)
        except RevokedError as exc:
            self.status.mark_revoked(str(exc))
            return self.ceiling
        except ControlPlaneError as exc:
            self.failures += 1
            delay = self.backoff.backoff(self.failures, self._rng)
            log.warning("heartbeat.failed", error=str(exc), failures=self.failures, retry_in=delay)
            self.status.update(control_plane="unreachable", control_plane_error=str(exc))
            return delay
        self.failures = 0
        self.sent += 1
        self.outbox.acknowledge(results)
        self.status.update(
            control_plane="ok",
            control_plane_error=None,
            last_heartbeat_at=self._wall_clock(),
            pending_results=len(self.outbox.pending()),
        )
        if results:
            log.info(
                "heartbeat.results_delivered",
                results=[{"actionId": r.action_id, "status": r.status} for r in results],
            )
        self.status.write()
        if reply.pending_actions:
            log.info("heartbeat.actions", ids=[a.id for a in reply.pending_actions])
            self._on_actions(reply.pending_actions)
        if self._on_success is not None:
            self._on_success(body)  # what this 2xx proved (upgrade probation's promotion)
        self._on_config_version(reply.config_version)
        return jittered(self.interval, self._rng)
