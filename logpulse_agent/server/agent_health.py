"""An agent's reported data plane and health (SPEC §11.1): what is stored, and its history.

The schemas ``DataPlane`` and ``Health`` of ``openapi.yaml`` bound every field — at most 200
components, ids and types of bounded length without control characters, counts that fit
SQLite, a reason of at most 1,000 characters — and let unknown fields through (a newer agent
may add some). :func:`usable_reports` checks each of the two on its own: one that does not fit
is logged and stored as null, and the rest of the heartbeat is kept, as for action results (an
agent with a bug in its data-plane report must not go offline). What is stored is rebuilt from
the known fields only (:func:`data_plane_json`, :func:`health_columns`), so an agent cannot make
the server keep anything else; the reason is folded to one line and a token in it is masked.

History: a row in ``agent_health_history`` per transition (:func:`is_transition`), the newest
``HISTORY_LIMIT`` kept per agent. A heartbeat that changes nothing costs one indexed read.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from logpulse_agent.redact import redact
from logpulse_agent.server.http import isotime
from logpulse_agent.server.openapi import OpenApi

log = structlog.get_logger("logpulse.server.health")

STATES = ("healthy", "degraded", "failed")
HISTORY_LIMIT = 50
COMPONENT_FIELDS = ("id", "kind", "type", "eventsIn", "eventsOut", "errors", "discarded")
TOTAL_FIELDS = ("windowSeconds", "eventsIn", "eventsOut", "errors", "discarded")
_DIGITS = re.compile(r"\d+(?:\.\d+)?")
_SPACE = re.compile(r"[\s\x00-\x1f\x7f]+")  # whitespace and control characters


@dataclass(frozen=True)
class HealthColumns:
    """The values of ``agent_registrations.data_plane`` and ``health_*`` for one heartbeat."""

    data_plane: str | None
    state: str | None
    reason: str | None
    since: float | None


def parse_time(text: str) -> float:
    """Unix seconds of an RFC 3339 time (``Z`` or an offset, any fraction of a second)."""
    stamp = text.strip().replace("z", "Z").replace("t", "T")
    if stamp.endswith("Z"):
        stamp = stamp[:-1] + "+00:00"
    whole, dot, rest = stamp.partition(".")
    if dot:  # Python 3.10 reads 3 or 6 fraction digits only
        digits = len(rest) - len(rest.lstrip("0123456789"))
        stamp = f"{whole}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}"
    moment = datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment.timestamp()


def usable_reports(api: OpenApi, agent_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with a ``dataPlane`` or ``health`` that does not fit its schema set to None."""
    for field, schema in (("dataPlane", "DataPlane"), ("health", "Health")):
        report = body.get(field)
        if report is None:
            continue
        problem = api.problem(schema, report)
        if problem is not None:
            event = f"heartbeat.{schema.lower()}_ignored"
            log.warning(event, agent_id=agent_id, reason=redact(problem))
            body[field] = None
    return body


def data_plane_json(report: dict[str, Any] | None) -> str | None:
    """The stored form of a heartbeat's ``dataPlane``: known fields only, compact JSON."""
    if report is None:
        return None
    kept: dict[str, Any] = {name: report[name] for name in TOTAL_FIELDS}
    kept["components"] = [
        {name: component[name] for name in COMPONENT_FIELDS} for component in report["components"]
    ]
    return json.dumps(kept, separators=(",", ":"), ensure_ascii=False)


def health_columns(body: dict[str, Any]) -> HealthColumns:
    """What a (schema-checked) heartbeat body stores; absent fields store ``NULL``."""
    health = body.get("health")
    plane = data_plane_json(body.get("dataPlane"))
    if health is None:
        return HealthColumns(plane, None, None, None)
    reason = health.get("reason")
    if reason is not None:
        reason = _SPACE.sub(" ", redact(reason)).strip() or None  # one line, no token
    try:
        since = parse_time(health["since"]) if health.get("since") else None
    except (ValueError, OverflowError):  # the schema's pattern admits e.g. month 13
        since = None
    return HealthColumns(plane, health["state"], reason, since)


def is_transition(
    before: tuple[str | None, str | None], after: tuple[str | None, str | None]
) -> bool:
    """Whether going from ``before`` to ``after`` (``(state, reason)``) is history.

    A new state always is. Within ``degraded`` or ``failed`` a new cause is too, but a reason
    whose only change is its numbers ("41 request errors in 30 s" → "38 …") is not.
    """
    (old_state, old_reason), (new_state, new_reason) = before, after
    if new_state is None:
        return False
    if old_state != new_state:
        return True
    if new_state == "healthy":
        return False
    return _DIGITS.sub("#", old_reason or "") != _DIGITS.sub("#", new_reason or "")


def record(conn: sqlite3.Connection, agent_id: str, columns: HealthColumns, now: float) -> None:
    """Append a history row when ``columns`` is a transition from the agent's stored health.

    Call before the heartbeat's update of ``agent_registrations`` writes the new values.
    """
    if columns.state is None:
        return
    row = conn.execute(
        "SELECT health_state, health_reason FROM agent_registrations WHERE id = ?", (agent_id,)
    ).fetchone()
    before = (None, None) if row is None else (row["health_state"], row["health_reason"])
    if not is_transition(before, (columns.state, columns.reason)):
        return
    conn.execute(
        "INSERT INTO agent_health_history (agent_id, at, state, reason, since)"
        " VALUES (?, ?, ?, ?, ?)",
        (agent_id, now, columns.state, columns.reason, columns.since),
    )
    conn.execute(
        "DELETE FROM agent_health_history WHERE agent_id = ? AND id <= ("
        " SELECT id FROM agent_health_history WHERE agent_id = ?"
        " ORDER BY id DESC LIMIT 1 OFFSET ?)",
        (agent_id, agent_id, HISTORY_LIMIT),
    )


def history(
    conn: sqlite3.Connection, agent_id: str, limit: int = HISTORY_LIMIT
) -> list[dict[str, Any]]:
    """The agent's health transitions, newest first: ``{"at", "state", "reason", "since"}``."""
    rows = conn.execute(
        "SELECT at, state, reason, since FROM agent_health_history WHERE agent_id = ?"
        " ORDER BY id DESC LIMIT ?",
        (agent_id, limit),
    ).fetchall()
    return [
        {
            "at": isotime(r["at"]),
            "state": r["state"],
            "reason": r["reason"],
            "since": isotime(r["since"]),
        }
        for r in rows
    ]


def health_json(row: sqlite3.Row) -> dict[str, Any] | None:
    """The ``health`` of an admin agent row, ``None`` until the agent reports one."""
    if row["health_state"] is None:
        return None
    return {
        "state": row["health_state"],
        "reason": row["health_reason"],
        "since": isotime(row["health_since"]),
    }


def data_plane_of(row: sqlite3.Row) -> dict[str, Any] | None:
    """The ``dataPlane`` of an admin agent row (``None``: not reported or unreadable)."""
    stored = row["data_plane"]
    return None if stored is None else json.loads(stored)
