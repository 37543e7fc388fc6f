"""Inputs of a group: add, edit, enable/disable, delete — each one bumps the group's version.

Options are checked and normalised by :func:`logpulse_agent.server.render.validate_input`, the
same module that renders them, so nothing the renderer would refuse is ever stored. An input's
type never changes: its id keys the Vector component, whose checkpoints depend on it.

An enabled input may not listen where another enabled input of its group already does
(``listeners.py``): adding, editing or enabling such an input is a 409 naming the input that
holds the listener. Every listening type runs on both platforms, so the whole group is compared.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from logpulse_agent.server import groups
from logpulse_agent.server.errors import Conflict, NotFound, Unprocessable
from logpulse_agent.server.http import isotime
from logpulse_agent.server.listeners import Listener, first_clash, listeners
from logpulse_agent.server.render import InputSpec, validate_input, validate_routing_override
from logpulse_agent.server.store import new_id

# JSON field -> (column, the renderer's routing field), for the three routing overrides.
OVERRIDES = {
    "indexOverride": ("index_override", "index"),
    "sourcetypeOverride": ("sourcetype_override", "sourcetype"),
    "sourceOverride": ("source_override", "source"),
}


def _options_json(input_type: str, options: Mapping[str, Any]) -> str:
    try:
        normalised = validate_input(input_type, options)
    except ValueError as exc:
        raise Unprocessable(f"invalid {input_type} input: {exc}") from None
    return json.dumps(normalised, sort_keys=True, separators=(",", ":"))


def _overrides(body: Mapping[str, Any]) -> dict[str, str | None]:
    """Column -> checked value for each override present in ``body`` (``""`` clears it)."""
    checked: dict[str, str | None] = {}
    for field, (column, routing_field) in OVERRIDES.items():
        if field in body:
            try:
                checked[column] = validate_routing_override(routing_field, body[field])
            except ValueError as exc:
                raise Unprocessable(f"invalid {field}: {exc}") from None
    return checked


def _listeners(row: sqlite3.Row) -> list[Listener]:
    try:
        return listeners(row["type"], json.loads(row["options"]))
    except ValueError:  # stored before a rule existed; it cannot render, so it holds nothing
        return []


def _check_listeners(
    conn: sqlite3.Connection, group_id: str, input_id: str, input_type: str, options: str
) -> None:
    """409 when an enabled input with these options would share a listener in the group."""
    mine = listeners(input_type, json.loads(options))
    if not mine:
        return
    others = (
        (row, _listeners(row))
        for row in list_for_group(conn, group_id)
        if row["enabled"] and row["id"] != input_id
    )
    clash = first_clash(mine, others)
    if clash is not None:
        owner, held = clash
        raise Conflict(
            f"{held} is already claimed by input {owner['name']!r} ({owner['id']}) of this "
            "group; Vector refuses a config in which two inputs listen on one address"
        )


def get(conn: sqlite3.Connection, input_id: str) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM agent_inputs WHERE id = ?", (input_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"no input with id {input_id!r}")
    return row


def list_for_group(conn: sqlite3.Connection, group_id: str) -> list[sqlite3.Row]:
    """The group's inputs, oldest first (the order they are rendered in)."""
    return conn.execute(
        "SELECT * FROM agent_inputs WHERE group_id = ? ORDER BY created_at, rowid", (group_id,)
    ).fetchall()


def create(
    conn: sqlite3.Connection, group_ref: str, body: Mapping[str, Any], now: float
) -> sqlite3.Row:
    """Add the input described by a ``CreateInputRequest`` body to group ``group_ref``."""
    group = groups.resolve(conn, group_ref)
    input_type = body["type"]
    name = body["name"].strip()
    if not name:
        raise Unprocessable("invalid request body: name: must not be blank")
    options = _options_json(input_type, body.get("options", {}))
    overrides = _overrides(body)
    input_id = new_id()
    if body.get("enabled", True):
        _check_listeners(conn, group["id"], input_id, input_type, options)
    conn.execute(
        "INSERT INTO agent_inputs (id, group_id, type, name, options, enabled, index_override,"
        " sourcetype_override, source_override, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            input_id,
            group["id"],
            input_type,
            name,
            options,
            int(body.get("enabled", True)),
            overrides.get("index_override"),
            overrides.get("sourcetype_override"),
            overrides.get("source_override"),
            now,
            now,
        ),
    )
    groups.bump(conn, group["id"], now)
    return get(conn, input_id)


def update(
    conn: sqlite3.Connection, input_id: str, body: Mapping[str, Any], now: float
) -> sqlite3.Row:
    """Apply an ``UpdateInputRequest``; the group's version moves only if something changed."""
    row = get(conn, input_id)
    changes: dict[str, Any] = {}
    if "name" in body:
        name = body["name"].strip()
        if not name:
            raise Unprocessable("invalid request body: name: must not be blank")
        changes["name"] = name
    if "options" in body:
        changes["options"] = _options_json(row["type"], body["options"])
    if "enabled" in body:
        changes["enabled"] = int(body["enabled"])
    changes.update(_overrides(body))
    changes = {column: value for column, value in changes.items() if row[column] != value}
    if ("options" in changes or "enabled" in changes) and changes.get("enabled", row["enabled"]):
        options = changes.get("options", row["options"])
        _check_listeners(conn, row["group_id"], input_id, row["type"], options)
    if changes:
        # Column names come from the fixed set above, never from the request.
        assignments = ", ".join(f"{column} = ?" for column in changes)
        conn.execute(
            f"UPDATE agent_inputs SET {assignments}, updated_at = ? WHERE id = ?",  # noqa: S608
            (*changes.values(), now, input_id),
        )
        groups.bump(conn, row["group_id"], now)
    return get(conn, input_id)


def delete(conn: sqlite3.Connection, input_id: str, now: float) -> None:
    row = get(conn, input_id)
    conn.execute("DELETE FROM agent_inputs WHERE id = ?", (input_id,))
    groups.bump(conn, row["group_id"], now)


def spec(row: sqlite3.Row) -> InputSpec:
    """The renderer's view of a stored input."""
    return InputSpec(
        id=row["id"],
        type=row["type"],
        name=row["name"],
        options=json.loads(row["options"]),
        enabled=bool(row["enabled"]),
        index_override=row["index_override"],
        sourcetype_override=row["sourcetype_override"],
        source_override=row["source_override"],
    )


def to_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "groupId": row["group_id"],
        "type": row["type"],
        "name": row["name"],
        "options": json.loads(row["options"]),
        "enabled": bool(row["enabled"]),
        "indexOverride": row["index_override"],
        "sourcetypeOverride": row["sourcetype_override"],
        "sourceOverride": row["source_override"],
        "createdAt": isotime(row["created_at"]),
        "updatedAt": isotime(row["updated_at"]),
    }
