"""The rollouts' clock: what moves them without a request from the agents concerned.

:func:`tick` runs every second from the sweeper (and on ``POST /admin/sweep``). For each open
rollout it settles ended upgrade actions, fails admitted agents that went silent (or upgraded
agents not healthy within the soak), and then asks the machine whether the current phase
passed: if so the next phase is admitted, or the rollout completes.

Its queries only read the rows that can change: the tally is one aggregate, and the overdue
check loads just the agents past a deadline, so a tick over a 10,000-agent rollout costs a few
milliseconds. The aggregate states :meth:`Progress.absent` and :meth:`Progress.soaked` in SQL;
``tests/server/test_rollout_machine.py`` checks that both agree.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import structlog

from logpulse_agent.server import rollout_store, rollouts, upgrades_staged
from logpulse_agent.server.rollout_machine import SILENT_INTERVALS, Tally, next_step, overdue
from logpulse_agent.server.rollout_store import Rollout

log = structlog.get_logger("logpulse.server.rollouts")

# An agent that counts towards passing: not failed, and not absent (silent since before its
# admission); it passed once it reached the target, confirmed the etag and soaked.
_BLOCKING = (
    "a.failure IS NULL"
    " AND (a.live_at_admission OR COALESCE(r.last_heartbeat_at, 0) > a.admitted_at)"
)
_PASSED = (
    "a.reached_at IS NOT NULL AND a.etag_confirmed AND a.healthy_since IS NOT NULL"
    " AND a.healthy_since <= ?"
)


def tally(conn: sqlite3.Connection, rollout: Rollout, now: float) -> Tally:
    """The admitted agents that still count, for :func:`next_step`."""
    clause, params = rollout_store.members_clause(rollout)
    row = conn.execute(
        f"SELECT COUNT(*), COALESCE(SUM({_BLOCKING}), 0),"  # noqa: S608 (fixed clauses)
        f" COALESCE(SUM({_BLOCKING} AND {_PASSED}), 0)"
        " FROM rollout_agents a JOIN agent_registrations r ON r.id = a.agent_id"
        f" WHERE a.rollout_id = ? AND a.admitted_at IS NOT NULL AND {clause}",
        (now - rollout.soak_seconds, rollout.id, *params),
    ).fetchone()
    return Tally(admitted=row[0], blocking=row[1], passed=row[2])


def _overdue(conn: sqlite3.Connection, rollout: Rollout, now: float, interval: float) -> int:
    """Fail the admitted agents past a deadline; returns how many failed."""
    clause, params = rollout_store.members_clause(rollout)
    limit = SILENT_INTERVALS * interval
    upgrade = rollout.kind == "upgrade"
    rows = conn.execute(
        "SELECT a.*, r.last_heartbeat_at, x.status AS action_status,"  # noqa: S608
        " x.dispatched_at AS action_dispatched_at"
        " FROM rollout_agents a JOIN agent_registrations r ON r.id = a.agent_id"
        " LEFT JOIN agent_actions x ON x.id = a.action_id"
        f" WHERE a.rollout_id = ? AND a.admitted_at IS NOT NULL AND {clause}"
        f" AND {_BLOCKING} AND (max(COALESCE(r.last_heartbeat_at, 0), a.admitted_at) < ?"
        " OR (? AND a.reached_at IS NOT NULL AND a.healthy_since IS NULL AND a.reached_at < ?))",
        (rollout.id, *params, now - limit, int(upgrade), now - rollout.soak_seconds),
    ).fetchall()
    changed = [
        (row["agent_id"], before, after)
        for row in rows
        for before in [rollout_store.progress_of(row)]
        for after in [
            overdue(
                before,
                now=now,
                last_heartbeat_at=row["last_heartbeat_at"],
                heartbeat_interval=interval,
                soak_seconds=rollout.soak_seconds,
                upgrading=row["action_status"] == "running"
                or (row["action_status"] == "pending" and row["action_dispatched_at"] is not None),
                upgrade=upgrade,
            )
        ]
        if after != before
    ]
    _record_all(conn, rollout, changed, now)
    if upgrade:  # after the silent ones are saved, so nobody fails twice in one tick
        settled = upgrades_staged.settle(conn, rollout, now)
        _record_all(conn, rollout, settled, now)
        changed += settled
    return len(changed)


def _record_all(
    conn: sqlite3.Connection, rollout: Rollout, changed: list[tuple[str, Any, Any]], now: float
) -> None:
    for agent_id, before, after in changed:
        current = rollout_store.get(conn, rollout.id)  # its failure count moves as we go
        rollouts.record(conn, current, agent_id, before, after, now)


def tick_one(conn: sqlite3.Connection, rollout: Rollout, now: float, interval: float) -> bool:
    """Advance one open rollout; True when it changed (failures, a phase, completion)."""
    changed = _overdue(conn, rollout, now, interval) > 0
    rollout = rollout_store.get(conn, rollout.id)
    step = next_step(rollout.state, rollout.phase, rollout.phases, tally(conn, rollout, now))
    if step.kind == "wait":
        return changed
    rollout_store.event(conn, rollout.id, "phase_passed", now, phase=rollout.phase, actor="server")
    if step.kind == "admit":
        rollouts.admit(conn, rollout, step.phase, now)
        log.info("rollout.phase", rollout_id=rollout.id, phase=step.phase)
        return True
    rollouts.complete(conn, rollout, now)
    return True


def tick(conn: sqlite3.Connection, now: float) -> int:
    """Advance every open rollout; returns how many changed."""
    opened = rollout_store.open_rollouts(conn)
    if not opened:
        return 0
    interval = rollouts.heartbeat_interval(conn)
    return sum(tick_one(conn, rollout, now, interval) for rollout in opened)
