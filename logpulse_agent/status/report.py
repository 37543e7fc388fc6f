"""The ``logpulse-agent status`` side: read ``status.json``, judge health, print it.

No network, no daemon: the snapshot the daemon last wrote (:mod:`.tracker`) is all there is.
Health is decided here, from the snapshot alone:

    healthy    exit 0
    degraded   exit 1: daemon not running, Vector down while it should run, revoked,
               or no successful heartbeat for 5 minutes
    not enrolled  exit 2
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from logpulse_agent.clock import parse_rfc3339
from logpulse_agent.pids import pid_alive
from logpulse_agent.state import atomic
from logpulse_agent.upgrade.probation import status_line

HEARTBEAT_STALE_AFTER = 300.0


def _parse_iso(value: object) -> float | None:
    when = parse_rfc3339(value)
    return None if when is None else when.timestamp()


def load_snapshot(path: Path) -> dict[str, Any] | None:
    """The snapshot at ``path``; None when there is none or it is not a JSON object (it is
    written without fsync, so a power loss can leave it empty until the daemon rewrites it).
    :class:`StateError` when it cannot be read at all."""
    raw = atomic.read_bytes(path)
    try:
        data = None if raw is None else json.loads(raw)
    except ValueError:
        return None
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
        why = f": {vec['lastError']}" if vec.get("lastError") else ""
        reasons.append(f"Vector should run but is {vec.get('state', 'not running')}{why}")
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
    if vec.get("lastError"):
        lines.append(f"  last error:    {vec['lastError']}")
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
