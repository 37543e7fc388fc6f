"""Rollout rows in the database: create, read, admit agents, record progress, events, finish.

The thin I/O around :mod:`~logpulse_agent.server.rollout_machine`: nothing here decides
whether a phase passes or an agent failed; it reads what the machine needs and writes what it
decided. Functions take an open connection; the caller owns the transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from logpulse_agent.server import audit
from logpulse_agent.server.errors import NotFound
from logpulse_agent.server.rollout_machine import OPEN_STATES, Progress, cumulative_target
from logpulse_agent.server.rollout_policy import Phase
from logpulse_agent.server.store import new_id

FINAL_STATES = ("halted", "completed", "aborted", "replaced")


@dataclass(frozen=True)
class Rollout:
    """One ``rollouts`` row with its policy unpacked."""

    id: str
    kind: str  # "config" | "upgrade"
    group_id: str | None
    state: str
    from_version: int | None
    to_version: int | None
    target_version: str | None
    deadline_seconds: int | None
    phases: tuple[Phase, ...]
    soak_seconds: float
    max_failures: int
    phase: int
    phase_started_at: float
    failures: int
    reason: str | None
    started_by: str
    created_at: float
    updated_at: float
    finished_at: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Rollout:
        policy = json.loads(row["policy"])
        return cls(
            id=row["id"],
            kind=row["kind"],
            group_id=row["group_id"],
            state=row["state"],
            from_version=row["from_version"],
            to_version=row["to_version"],
            target_version=row["target_version"],
            deadline_seconds=row["deadline_seconds"],
            phases=tuple(policy["phases"]),
            soak_seconds=float(policy["soakSeconds"]),
            max_failures=int(policy["maxFailures"]),
            phase=row["phase"],
            phase_started_at=row["phase_started_at"],
            failures=row["failures"],
            reason=row["reason"],
            started_by=row["started_by"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            finished_at=row["finished_at"],
        )

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES


def insert(
    conn: sqlite3.Connection,
    *,
    kind: str,
    group_id: str | None,
    stages: dict[str, Any],
    now: float,
    from_version: int | None = None,
    to_version: int | None = None,
    target_version: str | None = None,
    deadline_seconds: int | None = None,
) -> Rollout:
    """A new running rollout at phase 0 (nobody admitted yet), with its ``started`` event."""
    rollout_id = new_id()
    conn.execute(
        "INSERT INTO rollouts (id, kind, group_id, state, from_version, to_version,"
        " target_version, deadline_seconds, policy, phase, phase_started_at, started_by,"
        " created_at, updated_at) VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
        (
            rollout_id,
            kind,
            group_id,
            from_version,
            to_version,
            target_version,
            deadline_seconds,
            json.dumps(stages, separators=(",", ":")),
            now,
            audit.actor(),
            now,
            now,
        ),
    )
    what = (
        f"version {from_version} → {to_version}"
        if kind == "config"
        else f"upgrade to {target_version}"
    )
    event(conn, rollout_id, "started", now, phase=0, reason=what)
    return get(conn, rollout_id)


def get(conn: sqlite3.Connection, rollout_id: str) -> Rollout:
    row = conn.execute("SELECT * FROM rollouts WHERE id = ?", (rollout_id,)).fetchone()
    if row is None:
        raise NotFound(f"no rollout with id {rollout_id!r}")
    return Rollout.from_row(row)


def latest_config(conn: sqlite3.Connection, group_id: str) -> Rollout | None:
    """The group's most recent config rollout, whatever its state."""
    row = conn.execute(
        "SELECT * FROM rollouts WHERE group_id = ? AND kind = 'config'"
        " ORDER BY created_at DESC, rowid DESC LIMIT 1",
        (group_id,),
    ).fetchone()
    return None if row is None else Rollout.from_row(row)


def open_rollouts(conn: sqlite3.Connection) -> list[Rollout]:
    rows = conn.execute(
        "SELECT * FROM rollouts WHERE state IN ('running', 'paused') ORDER BY created_at"
    ).fetchall()
    return [Rollout.from_row(row) for row in rows]


def list_rollouts(
    conn: sqlite3.Connection,
    group_id: str | None,
    limit: int,
    offset: int,
    kind: str | None = None,
) -> list[Rollout]:
    """Newest first: all of them, or one group's, or one kind's."""
    where: list[str] = []
    params: list[Any] = []
    if group_id is not None:
        where.append("group_id = ?")
        params.append(group_id)
    if kind is not None:
        where.append("kind = ?")
        params.append(kind)
    clause = " WHERE " + " AND ".join(where) if where else ""
    rows = conn.execute(
        f"SELECT * FROM rollouts{clause} ORDER BY created_at DESC, rowid DESC"  # noqa: S608
        " LIMIT ? OFFSET ?",
        (*params, limit, offset),
    ).fetchall()
    return [Rollout.from_row(row) for row in rows]


def event(
    conn: sqlite3.Connection,
    rollout_id: str,
    kind: str,
    now: float,
    *,
    phase: int | None = None,
    reason: str | None = None,
    actor: str | None = None,
) -> None:
    """Append to the audit trail; the actor defaults to who is acting now (:mod:`.audit`)."""
    conn.execute(
        "INSERT INTO rollout_events (rollout_id, at, kind, actor, phase, reason)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (rollout_id, now, kind, actor or audit.actor(), phase, reason),
    )


def events(conn: sqlite3.Connection, rollout_id: str) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT * FROM rollout_events WHERE rollout_id = ? ORDER BY id", (rollout_id,)
    ).fetchall()


def set_state(
    conn: sqlite3.Connection, rollout: Rollout, state: str, now: float, reason: str | None
) -> None:
    """Move the rollout to ``state``; a final state ends its agents' membership."""
    final = state in FINAL_STATES
    conn.execute(
        "UPDATE rollouts SET state = ?, reason = COALESCE(?, reason), updated_at = ?,"
        " finished_at = ? WHERE id = ?",
        (state, reason, now, now if final else None, rollout.id),
    )
    if final:
        conn.execute("UPDATE rollout_agents SET active = 0 WHERE rollout_id = ?", (rollout.id,))


# --- agents ----------------------------------------------------------------------------------


def progress_of(row: sqlite3.Row) -> Progress:
    """A ``rollout_agents`` row as the machine sees it."""
    return Progress(
        admitted_at=row["admitted_at"],
        live_at_admission=bool(row["live_at_admission"]),
        heard=bool(row["heard"]),
        was_healthy=bool(row["was_healthy"]),
        reached_at=row["reached_at"],
        etag_confirmed=bool(row["etag_confirmed"]),
        healthy_since=row["healthy_since"],
        failed_at=row["failed_at"],
        failure=row["failure"],
    )


def save_progress(
    conn: sqlite3.Connection, rollout_id: str, agent_id: str, progress: Progress
) -> None:
    conn.execute(
        "UPDATE rollout_agents SET heard = ?, was_healthy = ?, reached_at = ?, etag_confirmed = ?,"
        " healthy_since = ?, failed_at = ?, failure = ? WHERE rollout_id = ? AND agent_id = ?",
        (
            int(progress.heard),
            int(progress.was_healthy),
            progress.reached_at,
            int(progress.etag_confirmed),
            progress.healthy_since,
            progress.failed_at,
            progress.failure,
            rollout_id,
            agent_id,
        ),
    )


def population(conn: sqlite3.Connection, rollout: Rollout) -> int:
    """How many agents the rollout is about right now: the group's agents not revoked (config),
    or its members still enrolled (upgrade)."""
    if rollout.kind == "config":
        sql = "SELECT COUNT(*) FROM agent_registrations WHERE group_id = ? AND revoked_at IS NULL"
        return int(conn.execute(sql, (rollout.group_id,)).fetchone()[0])
    sql = "SELECT COUNT(*) FROM rollout_agents WHERE rollout_id = ? AND gone = 0"
    return int(conn.execute(sql, (rollout.id,)).fetchone()[0])


def admitted_count(conn: sqlite3.Connection, rollout: Rollout) -> int:
    sql = (
        "SELECT COUNT(*) FROM rollout_agents"
        " WHERE rollout_id = ? AND admitted_at IS NOT NULL AND gone = 0"
    )
    return int(conn.execute(sql, (rollout.id,)).fetchone()[0])


def waiting_count(conn: sqlite3.Connection, rollout: Rollout) -> int:
    """How many agents are not admitted yet."""
    return max(0, population(conn, rollout) - admitted_count(conn, rollout))


# Candidates in admission order (rollout_machine.admission_order, in SQL so that a phase of
# 10,000 agents is chosen without loading them): live first, then by agent id.
_LIVE = "COALESCE(r.last_heartbeat_at >= :live_after, 0)"
_ADMIT_CONFIG = f"""
    INSERT INTO rollout_agents (rollout_id, agent_id, phase, admitted_at, live_at_admission,
                                was_healthy, etag_confirmed)
    SELECT :rollout, r.id, :phase, :now, {_LIVE}, COALESCE(r.health_state = 'healthy', 0), 0
      FROM agent_registrations r
     WHERE r.group_id = :group AND r.revoked_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM rollout_agents a
                        WHERE a.rollout_id = :rollout AND a.agent_id = r.id)
     ORDER BY {_LIVE} DESC, r.id LIMIT :need
"""  # noqa: S608 (fixed fragments)
_ADMIT_UPGRADE = f"""
    UPDATE rollout_agents SET phase = :phase, admitted_at = :now,
           live_at_admission = (SELECT {_LIVE} FROM agent_registrations r
                                 WHERE r.id = rollout_agents.agent_id),
           was_healthy = (SELECT COALESCE(r.health_state = 'healthy', 0)
                            FROM agent_registrations r WHERE r.id = rollout_agents.agent_id)
     WHERE rollout_id = :rollout AND agent_id IN (
           SELECT a.agent_id FROM rollout_agents a JOIN agent_registrations r ON r.id = a.agent_id
            WHERE a.rollout_id = :rollout AND a.admitted_at IS NULL AND a.gone = 0
              AND r.revoked_at IS NULL
            ORDER BY {_LIVE} DESC, a.agent_id LIMIT :need)
"""  # noqa: S608


def admit(
    conn: sqlite3.Connection, rollout: Rollout, phase: int, now: float, live_after: float
) -> list[str]:
    """Admit phase ``phase``: top the admitted agents up to its cumulative target, live ones
    (a heartbeat at ``live_after`` or later) first. Returns the ids admitted now."""
    total = population(conn, rollout)
    admitted = admitted_count(conn, rollout)
    need = max(0, cumulative_target(rollout.phases, phase, total) - admitted)
    params = {
        "rollout": rollout.id,
        "group": rollout.group_id,
        "phase": phase,
        "now": now,
        "live_after": live_after,
        "need": need,
    }
    conn.execute(_ADMIT_CONFIG if rollout.kind == "config" else _ADMIT_UPGRADE, params)
    chosen = [
        row[0]
        for row in conn.execute(
            "SELECT agent_id FROM rollout_agents WHERE rollout_id = ? AND phase = ?"
            " AND admitted_at = ? ORDER BY agent_id",
            (rollout.id, phase, now),
        )
    ]
    conn.execute(
        "UPDATE rollouts SET phase = ?, phase_started_at = ?, updated_at = ? WHERE id = ?",
        (phase, now, now, rollout.id),
    )
    event(
        conn,
        rollout.id,
        "phase_started",
        now,
        phase=phase,
        reason=f"admitted {len(chosen)} agent(s), {admitted + len(chosen)} of {total} in total",
        # Phase 0 comes with the change (its author); later ones are the server's decision.
        actor=None if phase == 0 else audit.SERVER,
    )
    return chosen


def agent_left(conn: sqlite3.Connection, agent_id: str) -> None:
    """The agent was revoked or moved to another group: its open rollouts stop counting it."""
    conn.execute(
        "UPDATE rollout_agents SET gone = 1 WHERE agent_id = ? AND active = 1", (agent_id,)
    )


def hostname_label(conn: sqlite3.Connection, agent_id: str) -> str:
    """``host (id prefix)``, how a failure names an agent."""
    row = conn.execute(
        "SELECT hostname FROM agent_registrations WHERE id = ?", (agent_id,)
    ).fetchone()
    host = row[0] if row is not None else "?"
    return f"{host} ({agent_id[:8]})"


def failures(conn: sqlite3.Connection, rollout_id: str, limit: int = 20) -> list[sqlite3.Row]:
    """Failed agents, earliest first."""
    return conn.execute(
        "SELECT a.agent_id, a.phase, a.failed_at, a.failure, r.hostname FROM rollout_agents a"
        " LEFT JOIN agent_registrations r ON r.id = a.agent_id"
        " WHERE a.rollout_id = ? AND a.failure IS NOT NULL ORDER BY a.failed_at LIMIT ?",
        (rollout_id, limit),
    ).fetchall()


def agent_ids(conn: sqlite3.Connection, rollout_id: str, ids: Sequence[str]) -> None:
    """Enter ``ids`` as members of an upgrade rollout, none admitted yet."""
    conn.executemany(
        "INSERT INTO rollout_agents (rollout_id, agent_id, etag_confirmed) VALUES (?, ?, 1)",
        [(rollout_id, agent_id) for agent_id in ids],
    )
