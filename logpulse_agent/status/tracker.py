"""The daemon's side of the status snapshot: hold the sections, write ``status.json``.

``status`` never talks to the network or to the daemon: it reads ``state_dir/status.json``,
which the daemon rewrites (atomically) whenever a section changes and after every successful
heartbeat. Parts of the daemon replace whole sections (:mod:`.sections`) with :meth:`set`; the
file is written only when something changed, and once per heartbeat: the sections refreshed for
a heartbeat's body are written with its outcome (``defer``).

The file is rewritten from memory all the time and at every start, so it is written without
fsync (:func:`~logpulse_agent.state.atomic.write_bytes` ``durable=False``): a reader never sees
a torn file, and no event-loop caller waits for a disk flush.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog

from logpulse_agent.clock import rfc3339
from logpulse_agent.errors import StateError
from logpulse_agent.redact import redact_value
from logpulse_agent.state import atomic
from logpulse_agent.status.sections import (
    SECTION_FIELDS,
    ActionsStatus,
    AgentStatus,
    ConfigStatus,
    ControlPlaneStatus,
    IdentityStatus,
    Section,
    VectorStatus,
)

log = structlog.get_logger(__name__)


class StatusTracker:
    """The current :class:`AgentStatus`, persisted to ``path`` (see the module docstring)."""

    def __init__(
        self, path: Path, agent_version: str, wall_clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path)
        self.agent_version = agent_version
        self.wall_clock = wall_clock
        self.started_at = wall_clock()
        self.status = AgentStatus()
        self._unwritten = False  # a deferred change is waiting for the next write
        self._write_error: str | None = None

    # --- the sections --------------------------------------------------------------------------
    @property
    def identity(self) -> IdentityStatus | None:
        return self.status.identity

    @property
    def control_plane(self) -> ControlPlaneStatus:
        return self.status.control_plane

    @property
    def config(self) -> ConfigStatus:
        return self.status.config

    @property
    def vector(self) -> VectorStatus | None:
        return self.status.vector

    @property
    def actions(self) -> ActionsStatus:
        return self.status.actions

    def set(self, *sections: Section, touch: bool = False, defer: bool = False) -> None:
        """Replace these sections; write the snapshot when anything changed (since the last
        write), or anyway when ``touch`` (a successful heartbeat refreshes ``updatedAt``).
        ``defer`` holds a change for the next write: the heartbeat's own, or the status feed's
        next tick."""
        changes: dict[str, Any] = {SECTION_FIELDS[type(s)]: s for s in sections}
        status = replace(self.status, **changes)
        if status != self.status:
            self.status = status
            self._unwritten = True
        if touch or (self._unwritten and not defer):
            self.write()

    def mark_revoked(self, error: str) -> None:
        """Record a 403/404 from the control plane; the first one is logged with its fix."""
        if self.control_plane.state != "revoked":
            log.error(
                "controlplane.revoked",
                error=error,
                fix="this agent was revoked or deleted: run 'logpulse-agent enrol --force' "
                "with a new bootstrap token, then restart the agent",
            )
        self.set(replace(self.control_plane, state="revoked", error=error))

    # --- status.json ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The document ``status.json`` holds, tokens masked."""
        snap = {
            "pid": os.getpid(),
            "agentVersion": self.agent_version,
            "startedAt": rfc3339(self.started_at),
            "updatedAt": rfc3339(self.wall_clock()),
            **self.status.to_json(),
        }
        return dict(redact_value(snap))

    def write(self) -> None:
        """Persist the snapshot. Best effort: the file only informs ``status``, so a full or
        read-only disk is logged (once per distinct error) and never fails the caller, which
        may be in the middle of supervising Vector or applying a config."""
        self._unwritten = False
        try:
            atomic.write_json(self.path, self.snapshot(), mode=0o640, durable=False)
        except StateError as exc:
            if str(exc) != self._write_error:
                log.warning("status.write_failed", error=str(exc))
            self._write_error = str(exc)
        else:
            self._write_error = None
