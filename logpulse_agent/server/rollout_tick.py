"""The rollouts' clock: what moves them without a request from the agents concerned.

:func:`tick` runs every second from the sweeper (and on ``POST /admin/sweep``). For each open
rollout it settles ended upgrade actions, fails admitted agents that went silent (or upgraded
agents not healthy within the soak), and then asks the machine whether the current phase
passed: if so the next phase is admitted, or the rollout completes.

Its queries only read what can change: the tally is one aggregate over the rollout's own rows,
and the overdue check reads only the fleet's silent agents (an index range), so a tick over a
10,000-agent rollout costs a few milliseconds of the event loop. The aggregate states
:attr:`Progress.absent` and :meth:`Progress.soaked` in SQL, and admission orders candidates in
SQL as :func:`admission_order` does; ``tests/server/test_rollout_machine.py`` checks both.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import structlog

from logpulse_agent.server import rollout_store, rollouts, upgrades_staged
from logpulse_agent.server.rollout_machine import SILENT_INTERVALS, Tally, next_step, overdue
from logpulse_agent.server.rollout_store import Rollout

log = structlog.get_logger("logpulse.server.rollouts")

# An agent that counts towards passing: still a member, not failed, and not absent (silent
# since before its admission); it passed once it reached the target, confirmed the etag and
# soaked. One table, no join: a tick over 10,000 admitted agents reads one index range.
_BLOCKING = "a.gone = 0 AND a.failure IS NULL AND (a.live_at_admission OR a.heard)"
_PASSED = (
    "a.reached_at IS NOT NULL AND a.etag_confirmed AND a.healthy_since IS NOT NULL"
    " AND a.healthy_since <= ?"
)


def tally(conn: sqlite3.Connection, rollout: Rollout, now: float) -> Tally:
    """The admitted agents that still count, for :func:`next_step`."""
    row = conn.execute(
        "SELECT COALESCE(SUM(a.gone = 0), 0),"  # noqa: S608 (fixed clauses)
        f" COALESCE(SUM({_BLOCKING}), 0), COALESCE(SUM({_BLOCKING} AND {_PASSED}), 0)"
        " FROM rollout_agents a WHERE a.rollout_id = ? AND a.admitted_at IS NOT NULL",
        (now - rollout.soak_seconds, rollout.id),
    ).fetchone()
    return Tally(admitted=row[0], blocking=row[1], passed=row[2])


def _someone_unpassed(conn: sqlite3.Connection, rollout: Rollout, now: float) -> bool:
    """Cheaper than :func:`tally` while a phase waits: stops at the first agent not yet passed."""
    row = conn.execute(
        "SELECT 1 FROM rollout_agents a WHERE a.rollout_id = ?"  # noqa: S608 (fixed clauses)
        f" AND a.admitted_at IS NOT NULL AND {_BLOCKING} AND NOT ({_PASSED}) LIMIT 1",
        (rollout.id, now - rollout.soak_seconds),
    ).fetchone()
    return row is not None


def _overdue(conn: sqlite3.Connection, rollout: Rollout, now: float, interval: float) -> int:
    """Fail the admitted agents past a deadline; returns how many failed."""
    limit = SILENT_INTERVALS * interval
    upgrade = rollout.kind == "upgrade"
    # Silent agents, found through the index on last_heartbeat_at (CROSS JOIN keeps that the
    # outer loop): only the fleet's silent agents are read, not the rollout's.
    rows = conn.execute(
        "SELECT a.*, r.last_heartbeat_at, x.status AS action_status,"  # noqa: S608
        " x.dispatched_at AS action_dispatched_at"
        " FROM agent_registrations r CROSS JOIN rollout_agents a"
        " LEFT JOIN agent_actions x ON x.id = a.action_id"
        " WHERE r.last_heartbeat_at < ? AND a.rollout_id = ? AND a.agent_id = r.id"
        f" AND a.admitted_at IS NOT NULL AND a.admitted_at < ? AND {_BLOCKING}",
        (now - limit, rollout.id, now - limit),
    ).fetchall()
    if upgrade:  # upgraded but still not healthy when the soak is over
        rows += conn.execute(
            "SELECT a.*, r.last_heartbeat_at, NULL AS action_status,"  # noqa: S608
            " NULL AS action_dispatched_at"
            " FROM rollout_agents a JOIN agent_registrations r ON r.id = a.agent_id"
            f" WHERE a.rollout_id = ? AND {_BLOCKING} AND a.reached_at IS NOT NULL"
            " AND a.healthy_since IS NULL AND a.reached_at < ?",
            (rollout.id, now - rollout.soak_seconds),
        ).fetchall()
    changed: dict[str, tuple[str, Any, Any]] = {}
    for row in rows:
        before = rollout_store.progress_of(row)
        after = overdue(
            before,
            now=now,
            last_heartbeat_at=row["last_heartbeat_at"],
            heartbeat_interval=interval,
            soak_seconds=rollout.soak_seconds,
            upgrading=row["action_status"] == "running"
            or (row["action_status"] == "pending" and row["action_dispatched_at"] is not None),
            upgrade=upgrade,
        )
        if after != before:
            changed.setdefault(row["agent_id"], (row["agent_id"], before, after))
    found = list(changed.values())
    _record_all(conn, rollout, found, now)
    if upgrade:  # after the silent ones are saved, so nobody fails twice in one tick
        settled = upgrades_staged.settle(conn, rollout, now)
        _record_all(conn, rollout, settled, now)
        found += settled
    return len(found)


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
    if now < rollout.phase_started_at + rollout.soak_seconds:
        return changed  # nobody admitted by this phase can have soaked yet
    if rollout.state == "running" and _someone_unpassed(conn, rollout, now):
        return changed
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
