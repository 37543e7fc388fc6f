"""Registered agents: token checks, heartbeats, and the admin view (list, move, revoke).

An agent token is valid for its own agent id only. The checks, in order: no or garbled
``Authorization`` → 401; the token belongs to the addressed agent → 403 if revoked, else OK;
the addressed agent does not exist → 404; the token matches no agent → 401; it matches another
agent → 403.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, replace
from typing import Any

from logpulse_agent.redact import redact_value
from logpulse_agent.server import (
    actions,
    agent_filters,
    agent_health,
    config_versions,
    groups,
    rollouts,
)
from logpulse_agent.server.errors import Conflict, Forbidden, NotFound, Unauthenticated
from logpulse_agent.server.http import isotime
from logpulse_agent.server.ingest_counters import ingest_json
from logpulse_agent.server.rollout_machine import health_of
from logpulse_agent.server.tokens import is_agent_token, matches, token_hash

DEFAULT_OFFLINE_THRESHOLD = 300.0  # seconds; the product's AGENT_OFFLINE_THRESHOLD_MS
STATUSES = ("online", "offline", "revoked")
HEALTH_FILTERS = (*agent_health.STATES, "unknown")  # unknown: no health reported
CONFIG_ERROR_FIELDS = ("configVersion", "message", "at")


@dataclass(frozen=True)
class AgentContext:
    """The authenticated agent, with what the hot endpoints need from its group.

    ``config_version`` is the version this agent is served: its group's, or the older one a
    staged rollout holds it on (``held``). ``confirm_rollout`` names the rollout whose ``to``
    this agent was admitted to and has not yet confirmed by etag (:mod:`.rollouts`).
    """

    id: str
    group_id: str
    platform: str
    config_version: int
    reset_pending: bool
    held: bool = False
    confirm_rollout: str | None = None


def authenticate(conn: sqlite3.Connection, agent_id: str, token: str | None) -> AgentContext:
    """The agent ``agent_id`` if ``token`` is its valid, unrevoked token; see module docstring."""
    if token is None or not is_agent_token(token):
        raise Unauthenticated("missing or malformed agent token; send Authorization: Bearer AGT_…")
    row = conn.execute(
        "SELECT r.id, r.group_id, r.platform, r.revoked_at, r.token_hash,"  # noqa: S608 (fixed)
        f" r.config_reset_pending, g.config_version, {rollouts.SERVING_COLUMNS}"
        " FROM agent_registrations r LEFT JOIN agent_groups g ON g.id = r.group_id"
        " WHERE r.token_hash = ?",
        (token_hash(token),),
    ).fetchone()
    if row is not None and row["id"] == agent_id and matches(token, row["token_hash"]):
        if row["revoked_at"] is not None or row["group_id"] is None:
            raise Forbidden("this agent has been revoked; enrol the host again")
        served, held, confirm = rollouts.serving(row)
        return AgentContext(
            row["id"],
            row["group_id"],
            row["platform"],
            served,
            bool(row["config_reset_pending"]),
            held,
            confirm,
        )
    exists = conn.execute("SELECT 1 FROM agent_registrations WHERE id = ?", (agent_id,)).fetchone()
    if exists is None:
        raise NotFound(f"no agent with id {agent_id!r}")
    # SPEC §5: "403 token revoked or not this agent's" -- a token never issued is not its either.
    if row is None:
        raise Forbidden("this token is not this agent's (unknown token); enrol the host again")
    raise Forbidden("this agent token belongs to another agent")


def record_heartbeat(
    conn: sqlite3.Connection, agent: AgentContext, body: dict[str, Any], now: float
) -> dict[str, Any]:
    """Store every reported field, apply action results, and answer the heartbeat's data."""
    running = body["vectorRunning"]
    uptime = body.get("vectorUptimeSeconds")
    started_at = now - uptime if running and uptime is not None else None
    config_error = body.get("configError")
    if config_error is not None:  # only the known fields: agents may send more (ignored)
        config_error = {k: config_error[k] for k in CONFIG_ERROR_FIELDS if k in config_error}
    error_json = None if config_error is None else json.dumps(redact_value(config_error))
    # After a move the agent still reports versions of its old group until it fetches the new
    # group's config; until then the applied version stays at the 0 the move set.
    applied = 0 if agent.reset_pending else body["appliedConfigVersion"]
    health = agent_health.health_columns(body)
    if health.state is None:
        # An agent from before SPEC §11.1: what its older fields mean. Vector stopped on a
        # `{}` config is what that config asks for, not a failure.
        empty = not running and config_versions.is_empty(
            conn, agent.group_id, applied, agent.platform
        )
        implied = health_of(body, expect_running=not empty)
        health = replace(health, state=implied.state, reason=implied.reason)
    agent_health.record(conn, agent.id, health, now)
    conn.execute(
        "UPDATE agent_registrations SET agent_version = ?, vector_version = ?,"
        " applied_config_version = ?, vector_running = ?, vector_started_at = ?,"
        " last_heartbeat_at = ?, went_offline_at = NULL, last_config_error = ?,"
        " data_plane = ?, health_state = ?, health_reason = ?, health_since = ? WHERE id = ?",
        (
            body["agentVersion"],
            body.get("vectorVersion"),
            applied,
            int(running),
            started_at,
            now,
            error_json,
            health.data_plane,
            health.state,
            health.reason,
            health.since,
            agent.id,
        ),
    )
    actions.apply_results(conn, agent.id, body.get("actionResults") or [], now)
    rollouts.observe_heartbeat(
        conn, agent.id, agent.group_id, agent.platform, agent.reset_pending, body, now
    )
    return {
        "pendingActions": actions.pending_for(conn, agent.id, now),
        "configVersion": agent.config_version,
    }


def config_confirmed(conn: sqlite3.Connection, agent: AgentContext) -> None:
    """A moved agent polled with the new group's version and etag: its reports count again."""
    conn.execute(
        "UPDATE agent_registrations SET config_reset_pending = 0 WHERE id = ?", (agent.id,)
    )


_SELECT = """
    SELECT r.*, g.slug AS group_slug, g.name AS group_name, g.config_version AS group_version
      FROM agent_registrations r LEFT JOIN agent_groups g ON g.id = r.group_id
"""


def get(conn: sqlite3.Connection, agent_id: str) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(_SELECT + " WHERE r.id = ?", (agent_id,)).fetchone()
    if row is None:
        raise NotFound(f"no agent with id {agent_id!r}")
    return row


def list_agents(
    conn: sqlite3.Connection,
    *,
    now: float,
    threshold: float,
    group_id: str | None = None,
    status: str | None = None,
    host: str | None = None,
    health: str | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[sqlite3.Row]:
    """Agents matching the filters, by hostname: ``status`` (``STATUSES``), ``health``
    (``HEALTH_FILTERS``, the last reported state), ``host`` (a case-insensitive substring)."""
    which = agent_filters.AgentFilter(now, threshold, group_id, status, host, health)
    where, params = which.clause()
    # The page's rowids first (an index walk when the filters allow), then only those rows
    # joined: skipping OFFSET rows then costs index entries, not joined rows (deep pages of
    # 10,000 agents in about a millisecond instead of tens).
    order = " ORDER BY r.hostname, r.enrolled_at, r.id"
    page = f"SELECT r.rowid FROM agent_registrations r{where}{order} LIMIT ? OFFSET ?"  # noqa: S608
    sql = f"{_SELECT} WHERE r.rowid IN ({page}){order}"
    return conn.execute(sql, (*params, limit, offset)).fetchall()


def move(conn: sqlite3.Connection, agent_id: str, group_ref: str, now: float) -> sqlite3.Row:
    """Put the agent in another group; its applied version resets to 0 (no-op if unchanged)."""
    row = get(conn, agent_id)
    if row["revoked_at"] is not None:
        raise Conflict(f"agent {agent_id!r} is revoked; enrol the host again instead")
    group = groups.resolve(conn, group_ref)
    if group["id"] != row["group_id"]:
        conn.execute(
            "UPDATE agent_registrations SET group_id = ?, applied_config_version = 0,"
            " config_reset_pending = 1 WHERE id = ?",
            (group["id"], agent_id),
        )
        rollouts.agent_left(conn, agent_id)
    return get(conn, agent_id)


def revoke(conn: sqlite3.Connection, agent_id: str, now: float) -> sqlite3.Row:
    """Revoke (idempotent); its still-pending actions are cancelled."""
    get(conn, agent_id)
    conn.execute(
        "UPDATE agent_registrations SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        (now, agent_id),
    )
    actions.cancel_pending_for(conn, agent_id, now)
    rollouts.agent_left(conn, agent_id)
    return get(conn, agent_id)


def status_of(row: sqlite3.Row, now: float, threshold: float) -> str:
    if row["revoked_at"] is not None:
        return "revoked"
    last = row["last_heartbeat_at"]
    return "online" if last is not None and now - last <= threshold else "offline"


def to_json(row: sqlite3.Row, now: float, threshold: float) -> dict[str, Any]:
    running = row["vector_running"]
    error = row["last_config_error"]
    return {
        "id": row["id"],
        "hostname": row["hostname"],
        "platform": row["platform"],
        "os": row["os"],
        "kernel": row["kernel"],
        "groupId": row["group_id"],
        "groupSlug": row["group_slug"],
        "groupName": row["group_name"],
        "agentVersion": row["agent_version"],
        "vectorVersion": row["vector_version"],
        "appliedConfigVersion": row["applied_config_version"],
        "groupConfigVersion": row["group_version"],
        "vectorRunning": None if running is None else bool(running),
        "vectorStartedAt": isotime(row["vector_started_at"]),
        "status": status_of(row, now, threshold),
        "lastHeartbeatAt": isotime(row["last_heartbeat_at"]),
        "wentOfflineAt": isotime(row["went_offline_at"]),
        "configError": None if error is None else json.loads(error),
        "enrolledAt": isotime(row["enrolled_at"]),
        "revokedAt": isotime(row["revoked_at"]),
        "dataPlane": agent_health.data_plane_of(row),
        "health": agent_health.health_json(row),
        "ingest": ingest_json(row, now),
    }
