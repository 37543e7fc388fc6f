"""Periodic sweeps: expire overdue actions, mark agents that crossed the offline threshold, and
advance staged rollouts (:mod:`.rollout_tick`: soaks that ended, silent agents).

``went_offline_at`` is set to the moment the agent crossed the threshold (its last heartbeat,
or its enrolment if it never sent one, plus the threshold), not to the time of the sweep, so
the value does not depend on the sweep interval. A heartbeat clears it again.

:meth:`Sweeper.run_once` is what tests call with an injected clock; :meth:`Sweeper.run_forever`
is the background task the app starts at its configured interval. Rollouts need a finer clock
than the sweeps (soaks of a few seconds must work), so :meth:`Sweeper.run_rollouts_forever`
ticks them alone, every second by default.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from logpulse_agent.server import actions, rollout_tick
from logpulse_agent.server.agents import DEFAULT_OFFLINE_THRESHOLD
from logpulse_agent.server.store import Store

log = structlog.get_logger("logpulse.server.sweeps")

DEFAULT_SWEEP_INTERVAL = 15.0
DEFAULT_ROLLOUT_INTERVAL = 1.0


@dataclass(frozen=True)
class SweepReport:
    expired_actions: int
    went_offline: int
    rollouts_changed: int = 0


class Sweeper:
    """The sweeps over one store, with the clock and threshold the app uses."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        offline_threshold: float = DEFAULT_OFFLINE_THRESHOLD,
    ) -> None:
        self.store = store
        self.clock = clock
        self.offline_threshold = offline_threshold

    def run_once(self) -> SweepReport:
        now = self.clock()
        with self.store.write() as conn:
            expired = actions.expire_overdue(conn, now)
            offline = conn.execute(
                "UPDATE agent_registrations"
                " SET went_offline_at = COALESCE(last_heartbeat_at, enrolled_at) + ?"
                " WHERE went_offline_at IS NULL AND revoked_at IS NULL"
                " AND COALESCE(last_heartbeat_at, enrolled_at) < ?",
                (self.offline_threshold, now - self.offline_threshold),
            ).rowcount
            changed = rollout_tick.tick(conn, now)
        report = SweepReport(
            expired_actions=expired, went_offline=offline, rollouts_changed=changed
        )
        if expired or offline:
            log.info("sweep.done", expired_actions=expired, went_offline=offline)
        return report

    def run_rollouts_once(self) -> int:
        """Advance the open rollouts; returns how many changed."""
        with self.store.write() as conn:
            return rollout_tick.tick(conn, self.clock())

    async def run_forever(
        self,
        interval: float = DEFAULT_SWEEP_INTERVAL,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        once: Callable[[], object] | None = None,
    ) -> None:
        """Sweep every ``interval`` seconds until cancelled; a failed sweep is logged, not fatal.
        ``once`` replaces the full sweep (the rollout ticker)."""
        while True:
            try:
                (once or self.run_once)()
            except Exception:
                log.exception("sweep.failed")
            await sleep(interval)

    async def run_rollouts_forever(self, interval: float = DEFAULT_ROLLOUT_INTERVAL) -> None:
        """Tick the rollouts every ``interval`` seconds until cancelled."""
        await self.run_forever(interval, once=self.run_rollouts_once)
