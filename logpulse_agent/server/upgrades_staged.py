"""Staged bulk upgrades (SPEC §11.3): ``upgrade_agent`` actions created phase by phase.

``POST /api/v1/admin/upgrades`` names a group or agent ids, the ``targetVersion``, and phases,
soak and maxFailures as a staged rollout policy does. The members are fixed when it is created
(the group's agents not revoked at that moment); each phase admitted queues one action per newly
admitted agent. An agent *reaches* the target when its action is ``done`` (or it reports the
target version); a failed, expired or cancelled action is a failure, and so is an upgraded
agent that is not healthy within the soak. A halt (or abort) stops creating actions and cancels
the rollout's actions still pending.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from logpulse_agent.server import actions, groups, rollout_policy, rollout_store
from logpulse_agent.server.errors import Conflict, Unprocessable
from logpulse_agent.server.rollout_machine import action_outcome, settle_action
from logpulse_agent.server.rollout_store import Rollout

ACTION_TYPE = "upgrade_agent"


def create(conn: sqlite3.Connection, body: Mapping[str, Any], now: float) -> Rollout:
    """A staged upgrade from a ``CreateStagedUpgradeRequest`` body, nobody admitted yet."""
    has_group, has_ids = "group" in body, "agentIds" in body
    if has_group == has_ids:
        raise Unprocessable("give either group or agentIds, not both and not neither")
    try:
        phases, soak, max_failures = rollout_policy.parse_stages(dict(body))
    except rollout_policy.PolicyError as exc:
        raise Unprocessable(f"invalid request body: {exc}") from None
    group_id = None
    if has_group:
        group_id = groups.resolve(conn, str(body["group"]))["id"]
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM agent_registrations WHERE group_id = ? AND revoked_at IS NULL"
                " ORDER BY id",
                (group_id,),
            )
        ]
        if not ids:
            raise Conflict(f"group {body['group']!r} has no agents to upgrade")
    else:
        ids = list(dict.fromkeys(body["agentIds"]))
        actions.check_agents(conn, ids)
    stages = rollout_policy.Policy("staged", phases, soak, max_failures).stages_json()
    rollout = rollout_store.insert(
        conn,
        kind="upgrade",
        group_id=group_id,
        stages=stages,
        now=now,
        target_version=str(body["targetVersion"]),
        deadline_seconds=int(body.get("deadlineSeconds", actions.DEFAULT_DEADLINE_SECONDS)),
    )
    rollout_store.agent_ids(conn, rollout.id, ids)
    return rollout


def queue_actions(
    conn: sqlite3.Connection, rollout: Rollout, agent_ids: Sequence[str], now: float
) -> None:
    """One ``upgrade_agent`` action per agent admitted now, remembered on its row."""
    if not agent_ids:
        return
    payload = {"targetVersion": rollout.target_version}
    deadline = rollout.deadline_seconds or actions.DEFAULT_DEADLINE_SECONDS
    rows = actions.create(conn, agent_ids, ACTION_TYPE, payload, deadline, now)
    conn.executemany(
        "UPDATE rollout_agents SET action_id = ? WHERE rollout_id = ? AND agent_id = ?",
        [(row["id"], rollout.id, row["agent_id"]) for row in rows],
    )


def _detail(result: str | None) -> str | None:
    """The ``error`` an agent reported with a failed action, if any."""
    if not result:
        return None
    try:
        value = json.loads(result)
    except ValueError:
        return None
    error = value.get("error") if isinstance(value, dict) else None
    return str(error)[:300] if error else None


def _same_version(reported: Any, target: str | None) -> bool:
    return (
        isinstance(reported, str)
        and target is not None
        and (reported.removeprefix("v") == target.removeprefix("v"))
    )


def outcome(
    conn: sqlite3.Connection, member: sqlite3.Row, body: Mapping[str, Any]
) -> tuple[bool, str | None]:
    """``(reached, target_error)`` for an admitted member, after its heartbeat's results."""
    action = conn.execute(
        "SELECT status, result FROM agent_actions WHERE id = ?", (member["action_id"],)
    ).fetchone()
    reached, error = (
        (False, None)
        if action is None
        else action_outcome(action["status"], _detail(action["result"]))
    )
    if error is None and _same_version(body.get("agentVersion"), member["target_version"]):
        reached = True
    return reached, error


def settle(conn: sqlite3.Connection, rollout: Rollout, now: float) -> list[tuple[str, Any, Any]]:
    """Members whose action ended without a heartbeat saying so (expired by the sweep,
    cancelled by an operator): ``(agent_id, before, after)`` for each that changed."""
    rows = conn.execute(
        "SELECT a.*, x.status AS action_status, x.result AS action_result"
        " FROM rollout_agents a JOIN agent_actions x ON x.id = a.action_id"
        " WHERE a.rollout_id = ? AND a.admitted_at IS NOT NULL AND a.failure IS NULL"
        " AND a.reached_at IS NULL AND x.status IN ('done', 'failed', 'expired', 'cancelled')",
        (rollout.id,),
    ).fetchall()
    changed = []
    for row in rows:
        before = rollout_store.progress_of(row)
        after = settle_action(before, row["action_status"], _detail(row["action_result"]), now)
        if after != before:
            changed.append((row["agent_id"], before, after))
    return changed


def cancel_pending(conn: sqlite3.Connection, rollout: Rollout, now: float) -> int:
    """Cancel the rollout's actions no agent has picked up yet; returns how many."""
    return conn.execute(
        "UPDATE agent_actions SET status = 'cancelled', finished_at = ?, updated_at = ?"
        " WHERE status = 'pending' AND id IN"
        " (SELECT action_id FROM rollout_agents WHERE rollout_id = ? AND action_id IS NOT NULL)",
        (now, now, rollout.id),
    ).rowcount
