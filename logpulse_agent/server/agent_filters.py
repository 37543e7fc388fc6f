"""Which agents a filter covers: the SQL shared by the agents list, its count, the status
summary and bulk selections (admin API and fleet pages alike).

Filters: ``group_id``, ``status`` (``online`` / ``offline`` / ``revoked``, from the same
offline threshold as :func:`logpulse_agent.server.agents.status_of`), ``host`` (a
case-insensitive substring of the hostname, taken literally) and ``health`` (the last reported
state, ``unknown`` for none). Every clause is one of the fixed
strings below; values are always bound parameters.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any


def _like_pattern(text: str) -> str:
    """A ``LIKE … ESCAPE '\\'`` pattern matching ``text`` anywhere, taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class AgentFilter:
    """Which agents; a ``None`` field does not filter. ``now`` and ``threshold`` (seconds) decide
    online against offline."""

    now: float
    threshold: float
    group_id: str | None = None
    status: str | None = None  # online | offline | revoked
    host: str | None = None  # case-insensitive part of the hostname, taken literally
    health: str | None = None  # healthy | degraded | failed | unknown (none reported)

    def clause(self) -> tuple[str, list[Any]]:
        """The ``WHERE`` clause (over alias ``r``, empty when nothing filters) and its values."""
        where: list[str] = []
        params: list[Any] = []
        if self.group_id is not None:
            where.append("r.group_id = ?")
            params.append(self.group_id)
        cutoff = self.now - self.threshold
        if self.status == "revoked":
            where.append("r.revoked_at IS NOT NULL")
        elif self.status == "online":
            where.append("r.revoked_at IS NULL AND r.last_heartbeat_at >= ?")
            params.append(cutoff)
        elif self.status == "offline":
            where.append(
                "r.revoked_at IS NULL AND (r.last_heartbeat_at IS NULL OR r.last_heartbeat_at < ?)"
            )
            params.append(cutoff)
        if self.health == "unknown":
            where.append("r.health_state IS NULL")
        elif self.health is not None:
            where.append("r.health_state = ?")
            params.append(self.health)
        if self.host:
            # LIKE is case-insensitive for ASCII in SQLite, which is what a host search wants.
            where.append("r.hostname LIKE ? ESCAPE '\\'")
            params.append(_like_pattern(self.host))
        return (" WHERE " + " AND ".join(where) if where else ""), params


def count(conn: sqlite3.Connection, which: AgentFilter) -> int:
    """How many agents ``agents.list_agents`` lists with the same filter and no limit."""
    where, params = which.clause()
    sql = "SELECT COUNT(*) FROM agent_registrations r" + where  # noqa: S608 (fixed clauses)
    return int(conn.execute(sql, params).fetchone()[0])


def unrevoked_ids(conn: sqlite3.Connection, which: AgentFilter) -> list[str]:
    """Ids of the agents matching the filter that are not revoked (actions can reach them)."""
    where, params = which.clause()
    where += (" AND " if where else " WHERE ") + "r.revoked_at IS NULL"
    sql = "SELECT r.id FROM agent_registrations r" + where  # noqa: S608 (fixed clauses)
    return [row[0] for row in conn.execute(sql + " ORDER BY r.hostname, r.id", params)]


def _by_ids(
    conn: sqlite3.Connection, agent_ids: Sequence[str], *, unrevoked: bool = False
) -> list[sqlite3.Row]:
    """``id`` and ``hostname`` of the agents among ``agent_ids`` (500 ids per query)."""
    rows: list[sqlite3.Row] = []
    extra = " AND revoked_at IS NULL" if unrevoked else ""
    for start in range(0, len(agent_ids), 500):
        chunk = list(agent_ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT id, hostname FROM agent_registrations WHERE id IN ({marks}){extra}"  # noqa: S608
        rows += conn.execute(sql, chunk).fetchall()
    return rows


def unrevoked_among(conn: sqlite3.Connection, agent_ids: Sequence[str]) -> list[str]:
    """Those of ``agent_ids`` that exist and are not revoked, by hostname."""
    rows = sorted(_by_ids(conn, agent_ids, unrevoked=True), key=lambda r: (r[1], r[0]))
    return [row[0] for row in rows]


def hostnames(conn: sqlite3.Connection, agent_ids: Sequence[str]) -> dict[str, str]:
    """Agent id → hostname for the given ids (unknown ids are left out)."""
    return {row[0]: row[1] for row in _by_ids(conn, agent_ids)}


_STATUS_SUMS = (
    "SELECT COALESCE(SUM(r.revoked_at IS NULL AND r.last_heartbeat_at >= ?), 0),"
    " COALESCE(SUM(r.revoked_at IS NULL"
    " AND (r.last_heartbeat_at IS NULL OR r.last_heartbeat_at < ?)), 0),"
    " COALESCE(SUM(r.revoked_at IS NOT NULL), 0)"
    " FROM agent_registrations r"
)


def status_counts(conn: sqlite3.Connection, which: AgentFilter) -> dict[str, int]:
    """``{"online", "offline", "revoked"}`` → how many of the agents matching the filter's
    group and host are in each (its status is not applied)."""
    where, params = replace(which, status=None).clause()
    cutoff = which.now - which.threshold
    row = conn.execute(_STATUS_SUMS + where, (cutoff, cutoff, *params)).fetchone()
    return dict(zip(("online", "offline", "revoked"), map(int, row), strict=True))
