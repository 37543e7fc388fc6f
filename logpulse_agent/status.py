"""The status snapshot: what the daemon knows, written to disk for ``logpulse-agent status``.

``status`` never talks to the network or to the daemon: it reads ``state_dir/status.json``,
which the daemon rewrites (atomically) whenever something an operator cares about changes and at
every heartbeat. Health is decided here, from the snapshot alone:

    healthy    exit 0
    degraded   exit 1: daemon not running, Vector down while it should run, revoked,
               or no successful heartbeat for 5 minutes
    not enrolled  exit 2
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import structlog

from logpulse_agent import atomic
from logpulse_agent.atomic import pid_alive
from logpulse_agent.errors import StateError
from logpulse_agent.probation import status_line
from logpulse_agent.redact import redact_value

log = structlog.get_logger(__name__)

HEARTBEAT_STALE_AFTER = 300.0


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return (
        datetime.fromtimestamp(ts, timezone.utc)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


def _parse_iso(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass
class StatusTracker:
    """Mutable daemon status; every setter persists the snapshot (small file, atomic write)."""

    path: Path
    agent_version: str
    wall_clock: Callable[[], float] = time.time
    identity: dict[str, str] = field(default_factory=dict)
    control_plane: str = "connecting"  # connecting | ok | unreachable | revoked | waiting-enrolment
    control_plane_error: str | None = None
    last_heartbeat_at: float | None = None
    applied_version: int = 0
    applied_etag: str | None = None
    config_empty: bool = False
    config_error: dict[str, Any] | None = None
    vector: dict[str, Any] = field(default_factory=dict)
    pending_results: int = 0
    inflight_upgrade: dict[str, Any] | None = None
    started_at: float = field(default_factory=time.time)
    _write_error: str | None = field(default=None, repr=False, compare=False)

    def snapshot(self) -> dict[str, Any]:
        snap = {
            "pid": os.getpid(),
            "agentVersion": self.agent_version,
            "startedAt": _iso(self.started_at),
            "updatedAt": _iso(self.wall_clock()),
            "identity": self.identity or None,
            "controlPlane": {
                "state": self.control_plane,
                "error": self.control_plane_error,
                "lastHeartbeatAt": _iso(self.last_heartbeat_at),
            },
            "config": {
                "appliedVersion": self.applied_version,
                "etag": self.applied_etag,
                "empty": self.config_empty,
                "lastError": self.config_error,
            },
            "vector": self.vector,
            "pendingActionResults": self.pending_results,
            "inflightUpgrade": self.inflight_upgrade,
        }
        return dict(redact_value(snap))

    def write(self) -> None:
        """Persist the snapshot. Best effort: the file only informs ``status``, so a full or
        read-only disk is logged (once per distinct error) and never fails the caller, which
        may be in the middle of supervising Vector or applying a config."""
        try:
            atomic.write_json(self.path, self.snapshot(), mode=0o640)
        except StateError as exc:
            if str(exc) != self._write_error:
                log.warning("status.write_failed", error=str(exc))
            self._write_error = str(exc)
        else:
            self._write_error = None

    def mark_revoked(self, error: str) -> None:
        """Record a 403/404 from the control plane; the first one is logged with its fix."""
        if self.control_plane != "revoked":
            log.error(
                "controlplane.revoked",
                error=error,
                fix="this agent was revoked or deleted: run 'logpulse-agent enrol --force' "
                "with a new bootstrap token, then restart the agent",
            )
        self.update(control_plane="revoked", control_plane_error=error)

    def update(self, **changes: Any) -> None:
        """Set fields and persist when anything actually changed."""
        dirty = False
        for key, value in changes.items():
            if getattr(self, key) != value:
                setattr(self, key, value)
                dirty = True
        if dirty:
            self.write()


# --- reading side (the ``status`` command) ---------------------------------------------------


def load_snapshot(path: Path) -> dict[str, Any] | None:
    data = atomic.read_json(path)
    return data if isinstance(data, dict) else None


def assess(
    snap: dict[str, Any],
    now: float,
    alive: Callable[[object], bool] = pid_alive,
) -> tuple[str, list[str]]:
    """Return ``("healthy" | "degraded", reasons)`` for a snapshot read at wall time ``now``."""
    reasons: list[str] = []
    if not alive(snap.get("pid")):
        reasons.append("the agent daemon is not running")
    cp = snap.get("controlPlane") or {}
    if cp.get("state") == "revoked":
        reasons.append("the control plane revoked this agent (403/404): re-enrol with --force")
    elif cp.get("state") == "waiting-enrolment":
        reasons.append("waiting for an enrolment token")
    else:
        last = _parse_iso(cp.get("lastHeartbeatAt"))
        started = _parse_iso(snap.get("startedAt")) or now
        reference = last if last is not None else started
        if now - reference > HEARTBEAT_STALE_AFTER:
            reasons.append("no successful heartbeat for over 5 minutes")
    vec = snap.get("vector") or {}
    if vec.get("shouldRun") and not vec.get("running"):
        reasons.append(f"Vector should run but is {vec.get('state', 'not running')}")
    return ("degraded" if reasons else "healthy"), reasons


def render_text(snap: dict[str, Any], health: str, reasons: list[str], now: float) -> str:
    """The human-readable ``status`` output."""
    ident = snap.get("identity") or {}
    cp = snap.get("controlPlane") or {}
    cfg = snap.get("config") or {}
    vec = snap.get("vector") or {}
    lines = [f"logpulse-agent {snap.get('agentVersion', '?')}: {health}"]
    lines += [f"  ! {reason}" for reason in reasons]
    lines.append(f"agent id:        {ident.get('agentId', '-')}")
    lines.append(f"group id:        {ident.get('groupId', '-')}")
    lines.append(f"control plane:   {ident.get('apiUrl', '-')} ({cp.get('state', '?')})")
    if cp.get("error"):
        lines.append(f"  last error:    {cp['error']}")
    lines.append(f"last heartbeat:  {cp.get('lastHeartbeatAt') or 'never'}")
    applied = "{} (empty: Vector stopped)" if cfg.get("empty") else "{}"
    lines.append(f"config applied:  {applied.format(cfg.get('appliedVersion', 0))}")
    lines.append(f"config etag:     {cfg.get('etag') or '-'}")
    err = cfg.get("lastError")
    if err:
        lines.append(f"config error:    version {err.get('configVersion')}: {err.get('message')}")
    started = _parse_iso(vec.get("startedAt"))
    uptime = f"{int(now - started)}s" if started is not None and vec.get("running") else "-"
    lines.append(
        f"vector:          {vec.get('state', '?')} pid={vec.get('pid') or '-'} "
        f"uptime={uptime} version={vec.get('version') or '-'}"
    )
    lines.append(f"pending results: {snap.get('pendingActionResults', 0)}")
    upgrade = snap.get("inflightUpgrade")
    if upgrade:
        lines.append(
            f"upgrade:         {upgrade.get('fromVersion')} -> {upgrade.get('toVersion')} "
            f"(action {upgrade.get('actionId')}, since {upgrade.get('startedAt')})"
        )
    on_probation = status_line(snap.get("probation"))
    if on_probation:
        lines.append(f"probation:       {on_probation}")
    lines.append(f"snapshot:        {snap.get('updatedAt', '?')} (pid {snap.get('pid')})")
    return "\n".join(lines)


def render_json(snap: dict[str, Any], health: str, reasons: list[str]) -> str:
    return json.dumps({**snap, "health": health, "problems": reasons}, sort_keys=True)
