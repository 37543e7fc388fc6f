"""Staged rollouts at work (SPEC §11.3): what each agent is served, and what moves a rollout.

Entry points, each with an open connection inside the caller's write transaction:

- :func:`on_config_change` — from :func:`groups.bump`: records the new version's inputs and, for
  a ``staged`` group, starts a config rollout (replacing an open one) and admits its first phase;
- :func:`observe_heartbeat` — from :func:`agents.record_heartbeat`: the agent's health, and its
  progress in the rollouts it is admitted to; a failure past ``maxFailures`` halts at once;
- :func:`confirm_etag` — from the config poll: an admitted agent holds ``to`` by its etag;
- :func:`tick` — from the sweeper, every second: missing heartbeats, expired upgrade actions,
  soaks that ended (phase passing and admission), completion;
- :func:`command` — an operator's pause / resume / abort.

What an agent is served: its group's ``config_version``, unless the group holds agents back
(``held_version``, the ``from`` of a rollout) and the agent is not admitted to the rollout that
is admitting (``admitting_rollout_id``); a halt or abort clears the latter, so every agent is
served ``from`` again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import structlog

from logpulse_agent.redact import redact
from logpulse_agent.server import (
    audit,
    config_versions,
    rollout_policy,
    rollout_store,
    upgrades_staged,
)
from logpulse_agent.server.rollout_machine import (
    SILENT_INTERVALS,
    Progress,
    Report,
    halt_reason,
    health_of,
    must_halt,
    observe,
)
from logpulse_agent.server.rollout_machine import (
    command as next_state,
)
from logpulse_agent.server.rollout_store import Rollout

log = structlog.get_logger("logpulse.server.rollouts")

DEFAULT_HEARTBEAT_INTERVAL = 30.0  # seconds, the agent's default (SPEC §3)
MAX_FAILURE = 500  # characters of an agent's failure kept

# For agents.authenticate: NULL when the agent's group holds nobody back; else the agent's
# rollout_agents.etag_confirmed in the admitting rollout (NULL: not admitted).
SERVING_COLUMNS = (
    "g.held_version, CASE WHEN g.admitting_rollout_id IS NULL THEN NULL ELSE"
    " (SELECT a.etag_confirmed FROM rollout_agents a WHERE a.rollout_id = g.admitting_rollout_id"
    " AND a.agent_id = r.id AND a.admitted_at IS NOT NULL AND a.gone = 0) END AS rollout_member,"
    " g.admitting_rollout_id"
)


def serving(row: Mapping[str, Any]) -> tuple[int, bool, str | None]:
    """``(version served, held back, rollout to confirm the etag for)`` of an authenticated
    agent's row (it carries ``config_version`` and :data:`SERVING_COLUMNS`)."""
    current = int(row["config_version"])
    held = row["held_version"]
    if held is None:
        return current, False, None
    member = row["rollout_member"]
    if member is None:
        return int(held), int(held) < current, None
    return current, False, None if member else row["admitting_rollout_id"]


def agent_left(conn: sqlite3.Connection, agent_id: str) -> None:
    """From ``agents.move``/``agents.revoke``: the agent no longer counts in open rollouts."""
    rollout_store.agent_left(conn, agent_id)


def confirm_etag(conn: sqlite3.Connection, rollout_id: str, agent_id: str) -> None:
    """The agent polled with ``to``'s version and etag: it holds exactly those bytes."""
    conn.execute(
        "UPDATE rollout_agents SET etag_confirmed = 1 WHERE rollout_id = ? AND agent_id = ?",
        (rollout_id, agent_id),
    )


# --- starting --------------------------------------------------------------------------------


def on_config_change(
    conn: sqlite3.Connection, group_id: str, old_version: int, new_version: int, now: float
) -> Rollout | None:
    """A config change of the group: record it, and start a rollout if the group is staged."""
    config_versions.snapshot(conn, group_id, new_version, now)
    group = conn.execute(
        "SELECT rollout_policy, held_version FROM agent_groups WHERE id = ?", (group_id,)
    ).fetchone()
    policy = rollout_policy.load(group["rollout_policy"])
    # The last version every agent may run: what a halted or running rollout holds them on.
    base = group["held_version"] if group["held_version"] is not None else old_version
    current = rollout_store.latest_config(conn, group_id)
    if current is not None and current.open:
        rollout_store.set_state(
            conn, current, "replaced", now, f"replaced by version {new_version}, a newer change"
        )
        rollout_store.event(conn, current.id, "replaced", now, reason=f"version {new_version}")
    started = None
    if policy.staged:
        started = rollout_store.insert(
            conn,
            kind="config",
            group_id=group_id,
            stages=policy.stages_json(),
            now=now,
            from_version=base,
            to_version=new_version,
        )
        conn.execute(
            "UPDATE agent_groups SET held_version = ?, admitting_rollout_id = ? WHERE id = ?",
            (base, started.id, group_id),
        )
        admit(conn, started, 0, now)
        log.info("rollout.started", rollout_id=started.id, group_id=group_id, to=new_version)
    else:
        conn.execute(
            "UPDATE agent_groups SET held_version = NULL, admitting_rollout_id = NULL WHERE id = ?",
            (group_id,),
        )
    config_versions.prune(conn, group_id, new_version, base)
    return started


def admit(conn: sqlite3.Connection, rollout: Rollout, phase: int, now: float) -> None:
    """Admit a phase (an upgrade rollout also queues the admitted agents' actions)."""
    live_after = now - SILENT_INTERVALS * heartbeat_interval(conn)
    admitted = rollout_store.admit(conn, rollout, phase, now, live_after)
    if rollout.kind == "upgrade":
        upgrades_staged.queue_actions(conn, rollout, admitted, now)


def heartbeat_interval(conn: sqlite3.Connection) -> float:
    row = conn.execute(
        "SELECT value FROM server_settings WHERE key = 'heartbeat_interval'"
    ).fetchone()
    return DEFAULT_HEARTBEAT_INTERVAL if row is None else float(row[0])


def start_upgrade(conn: sqlite3.Connection, body: Mapping[str, Any], now: float) -> Rollout:
    """A staged bulk upgrade (``POST /admin/upgrades``), its first phase admitted."""
    rollout = upgrades_staged.create(conn, body, now)
    admit(conn, rollout, 0, now)
    return rollout_store.get(conn, rollout.id)


def complete(conn: sqlite3.Connection, rollout: Rollout, now: float) -> None:
    """The last phase passed: every agent of the group is served the new version."""
    if rollout.kind == "config":
        conn.execute(
            "UPDATE agent_groups SET held_version = NULL, admitting_rollout_id = NULL"
            " WHERE id = ? AND admitting_rollout_id = ?",
            (rollout.group_id, rollout.id),
        )
    rollout_store.set_state(conn, rollout, "completed", now, None)
    rollout_store.event(conn, rollout.id, "completed", now, phase=rollout.phase, actor="server")
    log.info("rollout.completed", rollout_id=rollout.id)


def set_heartbeat_interval(conn: sqlite3.Connection, seconds: float) -> None:
    """The agents' heartbeat interval, as the server was told at start-up."""
    conn.execute(
        "INSERT INTO server_settings (key, value) VALUES ('heartbeat_interval', ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (repr(float(seconds)),),
    )


# --- heartbeats ------------------------------------------------------------------------------

_MEMBER_SQL = (
    "SELECT a.*, o.kind, o.state, o.group_id AS rollout_group, o.to_version, o.target_version,"
    " o.policy FROM rollout_agents a JOIN rollouts o ON o.id = a.rollout_id"
    " WHERE a.agent_id = ? AND a.active = 1 AND a.admitted_at IS NOT NULL AND a.gone = 0"
)


def observe_heartbeat(
    conn: sqlite3.Connection,
    agent_id: str,
    group_id: str,
    platform: str,
    reset_pending: bool,
    body: Mapping[str, Any],
    now: float,
) -> None:
    """Move the agent along in every open rollout that admitted it (its health is stored by
    :func:`logpulse_agent.server.agents.record_heartbeat`)."""
    health = health_of(body)
    for row in conn.execute(_MEMBER_SQL, (agent_id,)).fetchall():
        if row["kind"] == "config":
            if row["rollout_group"] != group_id:
                continue  # moved away: its reports are about another group's versions
            to = row["to_version"]
            reached = not reset_pending and body.get("appliedConfigVersion") == to
            error = body.get("configError")
            target_error = None
            if isinstance(error, Mapping) and error.get("configVersion") == to:
                target_error = f"config error for version {to}: {error.get('message')}"
            empty = reached and config_versions.is_empty(conn, group_id, to, platform)
            report = Report(now, reached, target_error, health_of(body, expect_running=not empty))
        else:
            reached, target_error = upgrades_staged.outcome(conn, row, body)
            report = Report(now, reached, target_error, health)
        before = rollout_store.progress_of(row)
        after = observe(before, report)
        if after != before:
            record(conn, rollout_store.get(conn, row["rollout_id"]), agent_id, before, after, now)


def record(
    conn: sqlite3.Connection,
    rollout: Rollout,
    agent_id: str,
    before: Progress,
    after: Progress,
    now: float,
) -> None:
    """Save an agent's progress; a new failure is counted and may halt the rollout."""
    if after.failure is not None and after.failure != before.failure:
        # What an agent reported, made safe to show: no tokens, one bounded line.
        text = " ".join(redact(after.failure).split())
        after = replace(
            after, failure=text[: MAX_FAILURE - 1] + "…" if len(text) > MAX_FAILURE else text
        )
    rollout_store.save_progress(conn, rollout.id, agent_id, after)
    if before.failed or not after.failed:
        return
    label = rollout_store.hostname_label(conn, agent_id)
    detail = f"agent {label}: {after.failure}"
    rollout_store.event(conn, rollout.id, "failure", now, reason=detail, actor="server")
    conn.execute(
        "UPDATE rollouts SET failures = failures + 1, updated_at = ? WHERE id = ?",
        (now, rollout.id),
    )
    log.warning("rollout.agent_failed", rollout_id=rollout.id, agent_id=agent_id, failure=detail)
    count = rollout.failures + 1
    if rollout.open and must_halt(count, rollout.max_failures):
        halt(conn, rollout, count, detail, now)


def _rollback_text(conn: sqlite3.Connection, rollout: Rollout, now: float) -> str:
    if rollout.kind == "config":
        if rollout.group_id is not None:
            conn.execute(
                "UPDATE agent_groups SET admitting_rollout_id = NULL"
                " WHERE id = ? AND admitting_rollout_id = ?",
                (rollout.group_id, rollout.id),
            )
        return (
            f"every agent that got version {rollout.to_version} is served version"
            f" {rollout.from_version} again"
        )
    cancelled = upgrades_staged.cancel_pending(conn, rollout, now)
    return f"no further upgrade actions are created; {cancelled} pending action(s) cancelled"


def halt(conn: sqlite3.Connection, rollout: Rollout, count: int, latest: str, now: float) -> None:
    """More than maxFailures: halt and roll back; ``latest`` is the failure that tipped it."""
    rollback = _rollback_text(conn, rollout, now)
    reason = halt_reason(count, rollout.max_failures, latest, rollback, more=count - 1)
    rollout_store.set_state(conn, rollout, "halted", now, reason)
    rollout_store.event(
        conn, rollout.id, "halted", now, phase=rollout.phase, reason=reason, actor="server"
    )
    log.error("rollout.halted", rollout_id=rollout.id, reason=reason)


def command(
    conn: sqlite3.Connection, rollout: Rollout, verb: str, reason: str | None, now: float
) -> Rollout:
    """An operator's ``pause``/``resume``/``abort`` (abort rolls back like a halt)."""
    state = next_state(rollout.state, verb)  # CommandRefused when it does not apply
    text = reason
    if verb == "abort":
        rollback = _rollback_text(conn, rollout, now)
        text = f"{reason or 'aborted by ' + audit.actor()}; {rollback}"
    rollout_store.set_state(conn, rollout, state, now, text if verb == "abort" else None)
    if verb == "resume":
        conn.execute("UPDATE rollouts SET reason = NULL WHERE id = ?", (rollout.id,))
    elif verb == "pause":
        conn.execute(
            "UPDATE rollouts SET reason = ? WHERE id = ?",
            (f"paused by {audit.actor()}" + (f": {reason}" if reason else ""), rollout.id),
        )
    rollout_store.event(
        conn,
        rollout.id,
        {"pause": "paused", "resume": "resumed", "abort": "aborted"}[verb],
        now,
        phase=rollout.phase,
        reason=text,
    )
    log.info("rollout.command", rollout_id=rollout.id, verb=verb, actor=audit.actor())
    return rollout_store.get(conn, rollout.id)
