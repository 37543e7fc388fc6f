"""The versions a group's config has had: the inputs of each, and the bytes each was served as.

A staged rollout serves agents it has not admitted the previous version (``from``) byte for byte
after the inputs changed, across restarts too. So:

- every new version records the inputs it was made of (``config_versions``), taken in the same
  transaction as the version bump; at start-up the current version of every group is recorded
  when it is not yet (databases from before rollouts existed);
- a body, once rendered, is stored (``config_bodies``) and served from there ever after, so a
  version keeps its etag even when the renderer or the ingest URL changes later.

The last :data:`KEEP_VERSIONS` versions of a group are kept (the UI shows diffs between them),
and never one a rollout still serves.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3

from logpulse_agent.server import inputs
from logpulse_agent.server.render import InputSpec

KEEP_VERSIONS = 50


def snapshot(conn: sqlite3.Connection, group_id: str, version: int, now: float) -> None:
    """Record the group's current inputs as version ``version``."""
    specs = [dataclasses.asdict(inputs.spec(row)) for row in inputs.list_for_group(conn, group_id)]
    conn.execute(
        "INSERT OR REPLACE INTO config_versions (group_id, version, inputs, created_at)"
        " VALUES (?, ?, ?, ?)",
        (group_id, version, json.dumps(specs, sort_keys=True, separators=(",", ":")), now),
    )


def snapshot_missing(conn: sqlite3.Connection, now: float) -> int:
    """Record the current version of every group that has no record of it; returns how many."""
    rows = conn.execute(
        "SELECT g.id, g.config_version FROM agent_groups g WHERE NOT EXISTS"
        " (SELECT 1 FROM config_versions v WHERE v.group_id = g.id"
        " AND v.version = g.config_version)"
    ).fetchall()
    for row in rows:
        snapshot(conn, row["id"], row["config_version"], now)
    return len(rows)


def specs(conn: sqlite3.Connection, group_id: str, version: int) -> list[InputSpec] | None:
    """The inputs version ``version`` was made of; ``None`` when it was not recorded."""
    row = conn.execute(
        "SELECT inputs FROM config_versions WHERE group_id = ? AND version = ?",
        (group_id, version),
    ).fetchone()
    if row is None:
        return None
    known = {f.name for f in dataclasses.fields(InputSpec)}
    return [
        InputSpec(**{k: v for k, v in item.items() if k in known}) for item in json.loads(row[0])
    ]


def stored_body(
    conn: sqlite3.Connection, group_id: str, version: int, platform: str
) -> tuple[bytes, str] | None:
    """``(body, etag)`` of a version as first served, if it has been rendered before."""
    row = conn.execute(
        "SELECT body, etag FROM config_bodies WHERE group_id = ? AND version = ? AND platform = ?",
        (group_id, version, platform),
    ).fetchone()
    return None if row is None else (bytes(row[0]), str(row[1]))


def store_body(
    conn: sqlite3.Connection, group_id: str, version: int, platform: str, body: bytes, etag: str
) -> None:
    """Keep a freshly rendered body; the first one stored for a version wins."""
    conn.execute(
        "INSERT OR IGNORE INTO config_bodies (group_id, version, platform, body, etag)"
        " VALUES (?, ?, ?, ?, ?)",
        (group_id, version, platform, body, etag),
    )


def is_empty(conn: sqlite3.Connection, group_id: str, version: int, platform: str) -> bool:
    """Whether that version's body for ``platform`` is ``{}`` (Vector is meant to be stopped)."""
    row = conn.execute(
        "SELECT body FROM config_bodies WHERE group_id = ? AND version = ? AND platform = ?",
        (group_id, version, platform),
    ).fetchone()
    return row is not None and bytes(row[0]).strip() == b"{}"


def prune(conn: sqlite3.Connection, group_id: str, newest: int, oldest_in_use: int) -> None:
    """Forget versions older than the last :data:`KEEP_VERSIONS` and than ``oldest_in_use``."""
    keep_from = min(newest - KEEP_VERSIONS + 1, oldest_in_use)
    for table in ("config_versions", "config_bodies"):
        conn.execute(
            f"DELETE FROM {table} WHERE group_id = ? AND version < ?",  # noqa: S608 (fixed names)
            (group_id, keep_from),
        )


def settings_changed(conn: sqlite3.Connection, fingerprint: str) -> bool:
    """At start-up: when the render settings (the ingest URL) differ from the last start's,
    forget the stored bodies except those a rollout holds agents on, so the new settings reach
    agents at their next poll (as before bodies were stored) while ``from`` keeps its bytes."""
    row = conn.execute("SELECT value FROM server_settings WHERE key = 'render_settings'").fetchone()
    if row is not None and row[0] == fingerprint:
        return False
    conn.execute(
        "INSERT INTO server_settings (key, value) VALUES ('render_settings', ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (fingerprint,),
    )
    if row is None:
        return False
    conn.execute(
        "DELETE FROM config_bodies WHERE NOT EXISTS (SELECT 1 FROM agent_groups g"
        " WHERE g.id = config_bodies.group_id AND g.held_version = config_bodies.version)"
    )
    return True
