"""Feeds the status sections the daemon cannot be told about: Vector and pending actions.

Vector's state is published on every change (the supervisor's ``on_state``) and, with the
number of undelivered results and the upgrade in flight, every few seconds. A heartbeat is
built from a fresh feed (:meth:`StatusFeed.heartbeat_snapshot`), so it reports what ``status``
would show at that moment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from logpulse_agent.actions.journal import ActionJournal
from logpulse_agent.clock import rfc3339
from logpulse_agent.controlplane.protocol import ActionResult
from logpulse_agent.heartbeat.body import HeartbeatSnapshot
from logpulse_agent.state.records import RecordFile
from logpulse_agent.status.sections import ActionsStatus, UpgradeStatus, VectorStatus
from logpulse_agent.status.tracker import StatusTracker
from logpulse_agent.upgrade.record import InFlightUpgrade
from logpulse_agent.vector.supervisor import VectorState, VectorSupervisor


class StatusFeed:
    """Publishes the ``vector`` and ``actions`` sections into ``tracker`` (module docstring)."""

    def __init__(
        self,
        *,
        tracker: StatusTracker,
        supervisor: VectorSupervisor,
        journal: ActionJournal,
        inflight: RecordFile[InFlightUpgrade],
        interval: float,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._tracker = tracker
        self._supervisor = supervisor
        self._journal = journal
        self._inflight = inflight
        self._interval = interval
        self._wall_clock = wall_clock
        self._started: tuple[int | None, str | None] = (None, None)

    def publish(self, *, defer: bool = False) -> None:
        """Write the current ``vector`` and ``actions`` sections (only when they changed;
        ``defer``: with the next write)."""
        inflight = self._inflight.load()
        upgrade = None
        if inflight is not None:
            upgrade = UpgradeStatus(
                inflight.action_id, inflight.from_version, inflight.to_version, inflight.started_at
            )
        actions = ActionsStatus(len(self._journal.pending()), upgrade)
        self._tracker.set(self._vector(), actions, defer=defer)

    def on_vector_state(self, state: VectorState) -> None:
        """The supervisor's observer: publish as Vector changes state."""
        self.publish()

    async def run(self) -> None:
        """Publish every ``interval`` seconds (uptime start, results, the upgrade record)."""
        while True:
            self.publish()
            await asyncio.sleep(self._interval)

    def heartbeat_snapshot(self, results: tuple[ActionResult, ...]) -> HeartbeatSnapshot:
        """What a heartbeat carrying ``results`` reports, as of now. The refreshed sections are
        written with the heartbeat's outcome: one write per heartbeat."""
        self.publish(defer=True)
        return HeartbeatSnapshot(
            agent_version=self._tracker.agent_version,
            status=self._tracker.status,
            vector_uptime_seconds=int(self._supervisor.uptime()),
            results=results,
        )

    def _vector(self) -> VectorStatus:
        supervisor = self._supervisor
        running = supervisor.state is VectorState.RUNNING
        # The wall-clock start of the current Vector, computed once per pid, so the section
        # only changes (and status.json is rewritten) when something really changed.
        pid = supervisor.pid if running else None
        if pid != self._started[0]:
            started = None
            if pid is not None:
                started = rfc3339(self._wall_clock() - supervisor.uptime())
            self._started = (pid, started)
        return VectorStatus(
            state=supervisor.state.value,
            pid=supervisor.pid,
            running=running,
            should_run=supervisor.should_run,
            started_at=self._started[1],
            version=supervisor.version,
            last_error=supervisor.last_error,
        )
