"""What a rollout looks like to operators: the JSON of the admin API, the CLI and the UI.

:func:`view` is ``GET /api/v1/admin/groups/{group}/rollout`` (SPEC §11.3 names ``state``,
``fromVersion``, ``toVersion``, ``phase``, ``phases``, ``counts`` and ``reason``; the rest is
added for the audit and the UI). ``counts``: ``admitted`` agents so far, of those ``applied``
(reached the target: applied ``to`` with its etag / upgraded), ``healthy`` (healthy since, not
failed), ``failed``; ``waiting`` are the agents not admitted yet (0 once the rollout ended).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from logpulse_agent.server import rollout_store
from logpulse_agent.server.http import isotime
from logpulse_agent.server.rollout_machine import cumulative_target
from logpulse_agent.server.rollout_store import Rollout

FAILED_SHOWN = 20


def _per_phase(conn: sqlite3.Connection, rollout: Rollout) -> dict[int, tuple[int, ...]]:
    """Phase -> (admitted, applied, healthy, failed) of its agents still counted: one pass."""
    return {
        row[0]: tuple(row[1:])
        for row in conn.execute(
            "SELECT phase, COUNT(*), COALESCE(SUM(reached_at IS NOT NULL AND etag_confirmed), 0),"
            " COALESCE(SUM(failure IS NULL AND healthy_since IS NOT NULL), 0),"
            " COALESCE(SUM(failure IS NOT NULL), 0) FROM rollout_agents"
            " WHERE rollout_id = ? AND admitted_at IS NOT NULL AND gone = 0 GROUP BY phase",
            (rollout.id,),
        )
    }


def counts(
    conn: sqlite3.Connection, rollout: Rollout, per_phase: dict[int, tuple[int, ...]] | None = None
) -> dict[str, int]:
    per_phase = _per_phase(conn, rollout) if per_phase is None else per_phase
    admitted, applied, healthy, failed = (sum(v[i] for v in per_phase.values()) for i in range(4))
    waiting = max(0, rollout_store.population(conn, rollout) - admitted) if rollout.open else 0
    return {
        "admitted": admitted,
        "applied": applied,
        "healthy": healthy,
        "failed": failed,
        "waiting": waiting,
    }


def phase_results(
    rollout: Rollout, events: list[sqlite3.Row], per_phase: dict[int, tuple[int, ...]]
) -> list[dict[str, Any]]:
    """One entry per phase: when it started and passed, who it admitted, how it ended."""
    started = {e["phase"]: e["at"] for e in events if e["kind"] == "phase_started"}
    passed = {e["phase"]: e["at"] for e in events if e["kind"] == "phase_passed"}
    results = []
    total = 0
    for index, phase in enumerate(rollout.phases):
        admitted, _, _, failed = per_phase.get(index, (0, 0, 0, 0))
        total += admitted
        if index in passed:
            result = "passed"
        elif index in started:
            result = "soaking" if rollout.state == "running" else rollout.state
        else:
            result = "pending"
        results.append(
            {
                "phase": index,
                "size": phase,
                "admitted": admitted,
                "admittedTotal": total if index in started else None,
                "failed": failed,
                "result": result,
                "startedAt": isotime(started.get(index)),
                "passedAt": isotime(passed.get(index)),
            }
        )
    return results


def view(conn: sqlite3.Connection, rollout: Rollout, *, detail: bool = True) -> dict[str, Any]:
    """The rollout as JSON; ``detail`` adds the failed agents and the audit events."""
    group = None
    if rollout.group_id is not None:
        group = conn.execute(
            "SELECT slug FROM agent_groups WHERE id = ?", (rollout.group_id,)
        ).fetchone()
    events = rollout_store.events(conn, rollout.id)
    per_phase = _per_phase(conn, rollout)
    data: dict[str, Any] = {
        "id": rollout.id,
        "kind": rollout.kind,
        "groupId": rollout.group_id,
        "groupSlug": None if group is None else group["slug"],
        "state": rollout.state,
        "fromVersion": rollout.from_version,
        "toVersion": rollout.to_version,
        "targetVersion": rollout.target_version,
        "phase": rollout.phase,
        "phases": list(rollout.phases),
        "soakSeconds": _number(rollout.soak_seconds),
        "maxFailures": rollout.max_failures,
        "counts": counts(conn, rollout, per_phase),
        "reason": rollout.reason,
        "phaseResults": phase_results(rollout, events, per_phase),
        "startedBy": rollout.started_by,
        "startedAt": isotime(rollout.created_at),
        "phaseStartedAt": isotime(rollout.phase_started_at),
        "updatedAt": isotime(rollout.updated_at),
        "finishedAt": isotime(rollout.finished_at),
    }
    if detail:
        data["failedAgents"] = [
            {
                "agentId": row["agent_id"],
                "hostname": row["hostname"],
                "phase": row["phase"],
                "failedAt": isotime(row["failed_at"]),
                "failure": row["failure"],
            }
            for row in rollout_store.failures(conn, rollout.id, FAILED_SHOWN)
        ]
        data["events"] = [
            {
                "at": isotime(e["at"]),
                "kind": e["kind"],
                "actor": e["actor"],
                "phase": e["phase"],
                "reason": e["reason"],
            }
            for e in events
        ]
    return data


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def next_phase_size(rollout: Rollout, total: int) -> int | None:
    """How many agents the next phase will have admitted in total (None after the last)."""
    if rollout.phase + 1 >= len(rollout.phases):
        return None
    return cumulative_target(rollout.phases, rollout.phase + 1, total)
