"""Remote actions: queueing, hand-out in heartbeats, agent-reported results, cancel, expiry.

Status moves one way::

    pending ─┬─> running ─┬─> done | failed      (reported by the agent)
             ├─> done | failed                   (agent, straight from pending)
             ├─> cancelled                       (operator)
             └─────────────┴─> expired           (sweep, past the deadline)

A heartbeat hands out the agent's ``pending`` actions (at most 10, oldest first, never past
their deadline) and keeps handing each one out until the agent reports a status for it; the
agent executes an id at most once. A reported result that does not fit the ``ActionResult``
schema (unknown status, over-long id) or breaks the state machine is logged and ignored; the
rest of the heartbeat is kept (SPEC section 5). Re-reporting the current status (the agent's
outbox delivers at least once) is a quiet no-op. Stored results are redacted, keys included.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

import structlog

from logpulse_agent.redact import redact, redact_value
from logpulse_agent.server.errors import Conflict, NotFound
from logpulse_agent.server.http import isotime
from logpulse_agent.server.openapi import OpenApi
from logpulse_agent.server.store import new_id

log = structlog.get_logger("logpulse.server.actions")

DEFAULT_DEADLINE_SECONDS = 30 * 60
MAX_PER_HEARTBEAT = 10
STATUSES = ("pending", "running", "done", "failed", "cancelled", "expired")
OPEN = ("pending", "running")

# What an agent may report, from each status.
AGENT_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"running", "done", "failed"}),
    "running": frozenset({"done", "failed"}),
}


def agent_may_report(current: str, reported: str) -> bool:
    """Whether an agent's ``reported`` status is a valid move from ``current``."""
    return reported in AGENT_TRANSITIONS.get(current, frozenset())


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def check_agents(conn: sqlite3.Connection, agent_ids: Sequence[str]) -> None:
    """:class:`NotFound` if an agent id is unknown, :class:`Conflict` if one is revoked."""
    rows = []
    for start in range(0, len(agent_ids), 500):
        chunk = list(agent_ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        rows += conn.execute(
            f"SELECT id, revoked_at FROM agent_registrations WHERE id IN ({marks})",  # noqa: S608
            chunk,
        ).fetchall()
    known = {row["id"]: row for row in rows}
    missing = [agent_id for agent_id in agent_ids if agent_id not in known]
    if missing:
        raise NotFound(f"no agent with id {', '.join(repr(m) for m in missing[:5])}")
    revoked = [agent_id for agent_id in agent_ids if known[agent_id]["revoked_at"] is not None]
    if revoked:
        raise Conflict(f"agent {', '.join(repr(r) for r in revoked[:5])} is revoked")


def create(
    conn: sqlite3.Connection,
    agent_ids: Sequence[str],
    action_type: str,
    payload: dict[str, Any],
    deadline_seconds: int,
    now: float,
) -> list[sqlite3.Row]:
    """One action per agent, all or nothing: unknown agents → 404, revoked ones → 409."""
    check_agents(conn, agent_ids)
    ids = [new_id() for _ in agent_ids]
    conn.executemany(
        "INSERT INTO agent_actions (id, agent_id, type, payload, status, created_at,"
        " deadline_at, updated_at) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
        [
            (action_id, agent_id, action_type, _dumps(payload), now, now + deadline_seconds, now)
            for action_id, agent_id in zip(ids, agent_ids, strict=True)
        ],
    )
    return [get(conn, action_id) for action_id in ids]


def get(conn: sqlite3.Connection, action_id: str) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM agent_actions WHERE id = ?", (action_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"no action with id {action_id!r}")
    return row


def list_actions(
    conn: sqlite3.Connection,
    *,
    agent_id: str | None = None,
    status: str | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[sqlite3.Row]:
    where, params = [], []
    if agent_id is not None:
        where.append("agent_id = ?")
        params.append(agent_id)
    if status is not None:
        where.append("status = ?")
        params.append(status)
    # Only the fixed clauses above are joined in; values are bound parameters.
    sql = "SELECT * FROM agent_actions" + (" WHERE " + " AND ".join(where) if where else "")  # noqa: S608
    sql += " ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?"
    return conn.execute(sql, (*params, limit, offset)).fetchall()


def cancel(conn: sqlite3.Connection, action_id: str, now: float) -> sqlite3.Row:
    """Cancel a pending action; :class:`Conflict` once it has left ``pending``."""
    row = get(conn, action_id)
    changed = conn.execute(
        "UPDATE agent_actions SET status = 'cancelled', finished_at = ?, updated_at = ?"
        " WHERE id = ? AND status = 'pending'",
        (now, now, action_id),
    ).rowcount
    if not changed:
        raise Conflict(f"action {action_id!r} is {row['status']}; only pending actions cancel")
    return get(conn, action_id)


def cancel_pending_for(conn: sqlite3.Connection, agent_id: str, now: float) -> int:
    return conn.execute(
        "UPDATE agent_actions SET status = 'cancelled', finished_at = ?, updated_at = ?"
        " WHERE agent_id = ? AND status = 'pending'",
        (now, now, agent_id),
    ).rowcount


def usable_results(api: OpenApi, agent_id: str, reports: Sequence[Any]) -> list[dict[str, Any]]:
    """The reports that fit the ``ActionResult`` schema; each other one is logged and dropped."""
    usable = []
    for report in reports:
        problem = api.problem("ActionResult", report)
        if problem is None:
            usable.append(report)
        else:
            log.warning(
                "action.result_ignored",
                agent_id=agent_id,
                reason=f"not an action result: {redact(problem)}",
            )
    return usable


def apply_results(
    conn: sqlite3.Connection, agent_id: str, results: Sequence[dict[str, Any]], now: float
) -> int:
    """Apply the agent's reported statuses; returns how many changed an action."""
    applied = 0
    for report in results:
        action_id, reported = report["actionId"], report["status"]
        row = conn.execute(
            "SELECT status FROM agent_actions WHERE id = ? AND agent_id = ?", (action_id, agent_id)
        ).fetchone()
        if row is None:
            log.warning(
                "action.result_ignored",
                agent_id=agent_id,
                action_id=action_id,
                reported=reported,
                reason="no such action for this agent",
            )
            continue
        current = row["status"]
        if current == reported:
            continue  # a re-delivered result
        if not agent_may_report(current, reported):
            log.warning(
                "action.result_ignored",
                agent_id=agent_id,
                action_id=action_id,
                reported=reported,
                current=current,
                reason="invalid transition",
            )
            continue
        result = report.get("result")
        finished = now if reported in ("done", "failed") else None
        conn.execute(
            "UPDATE agent_actions SET status = ?, result = COALESCE(?, result),"
            " started_at = COALESCE(started_at, ?), finished_at = ?, updated_at = ?"
            " WHERE id = ? AND status = ?",
            (
                reported,
                None if result is None else _dumps(redact_value(result)),
                now,
                finished,
                now,
                action_id,
                current,
            ),
        )
        applied += 1
    return applied


def pending_for(conn: sqlite3.Connection, agent_id: str, now: float) -> list[dict[str, Any]]:
    """The agent's pending actions still within their deadline, oldest first, at most 10."""
    rows = conn.execute(
        "SELECT id, type, payload, dispatched_at FROM agent_actions"
        " WHERE agent_id = ? AND status = 'pending' AND deadline_at > ?"
        " ORDER BY created_at, rowid LIMIT ?",
        (agent_id, now, MAX_PER_HEARTBEAT),
    ).fetchall()
    first_time = [(now, row["id"]) for row in rows if row["dispatched_at"] is None]
    if first_time:
        conn.executemany("UPDATE agent_actions SET dispatched_at = ? WHERE id = ?", first_time)
    return [{"id": r["id"], "type": r["type"], "payload": json.loads(r["payload"])} for r in rows]


def expire_overdue(conn: sqlite3.Connection, now: float) -> int:
    """Mark pending or running actions past their deadline ``expired``; returns how many."""
    return conn.execute(
        "UPDATE agent_actions SET status = 'expired', finished_at = ?, updated_at = ?"
        " WHERE status IN ('pending', 'running') AND deadline_at <= ?",
        (now, now, now),
    ).rowcount


def to_json(row: sqlite3.Row) -> dict[str, Any]:
    result = row["result"]
    return {
        "id": row["id"],
        "agentId": row["agent_id"],
        "type": row["type"],
        "payload": json.loads(row["payload"]),
        "status": row["status"],
        "result": None if result is None else json.loads(result),
        "createdAt": isotime(row["created_at"]),
        "deadlineAt": isotime(row["deadline_at"]),
        "dispatchedAt": isotime(row["dispatched_at"]),
        "startedAt": isotime(row["started_at"]),
        "finishedAt": isotime(row["finished_at"]),
        "updatedAt": isotime(row["updated_at"]),
    }
