"""Agent groups: create, list, rename, delete, and the config-version bump every edit makes.

Functions take an open connection (the caller owns the transaction, so an edit and its version
bump commit together) and ``now`` in Unix seconds. A group is addressed by id or slug.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from logpulse_agent.server import rollout_policy
from logpulse_agent.server.errors import Conflict, NotFound, Unprocessable
from logpulse_agent.server.http import isotime
from logpulse_agent.server.store import new_id

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")

_SELECT = """
    SELECT g.*,
           (SELECT COUNT(*) FROM agent_inputs i WHERE i.group_id = g.id) AS input_count,
           (SELECT COUNT(*) FROM agent_registrations r
             WHERE r.group_id = g.id AND r.revoked_at IS NULL) AS agent_count
      FROM agent_groups g
"""


def slugify(name: str) -> str:
    """A slug from a display name: ``"Prod Web (EU)"`` → ``"prod-web-eu"``."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63].strip("-")
    if not SLUG_RE.match(slug):
        raise Unprocessable(f"cannot derive a slug from name {name!r}; give one with 'slug'")
    return slug


def resolve(conn: sqlite3.Connection, ref: str) -> sqlite3.Row:
    """The bare ``agent_groups`` row with id or slug ``ref``; :class:`NotFound` otherwise."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM agent_groups WHERE id = ?", (ref,)
    ).fetchone()
    if row is None:
        row = conn.execute("SELECT * FROM agent_groups WHERE slug = ?", (ref,)).fetchone()
    if row is None:
        raise NotFound(f"no group with id or slug {ref!r}")
    return row


def get(conn: sqlite3.Connection, ref: str) -> sqlite3.Row:
    """The group ``ref`` with its input and agent counts."""
    group_id = resolve(conn, ref)["id"]
    row: sqlite3.Row | None = conn.execute(_SELECT + " WHERE g.id = ?", (group_id,)).fetchone()
    assert row is not None
    return row


def list_all(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute(_SELECT + " ORDER BY g.slug").fetchall()


def bump(conn: sqlite3.Connection, group_id: str, now: float) -> int:
    """Increment the group's ``config_version``; returns the new version.

    Every config change passes here, so here it is recorded and, for a group with a staged
    rollout policy, a rollout starts (:func:`rollouts.on_config_change`).
    """
    # Imported here: rollouts reads inputs (config_versions), and inputs import this module.
    from logpulse_agent.server import rollouts

    row = conn.execute(
        "UPDATE agent_groups SET config_version = config_version + 1, updated_at = ?"
        " WHERE id = ? RETURNING config_version",
        (now, group_id),
    ).fetchone()
    if row is None:
        raise NotFound(f"no group with id {group_id!r}")
    version = int(row[0])
    rollouts.on_config_change(conn, group_id, version - 1, version, now)
    return version


def _check_slug_free(conn: sqlite3.Connection, slug: str, group_id: str | None = None) -> None:
    row = conn.execute("SELECT id FROM agent_groups WHERE slug = ?", (slug,)).fetchone()
    if row is not None and row["id"] != group_id:
        raise Conflict(f"a group with slug {slug!r} already exists")


def create(conn: sqlite3.Connection, name: str, slug: str | None, now: float) -> sqlite3.Row:
    """A new group at config version 1 (so a fresh agent, ``since=0``, always gets a config)."""
    name = name.strip()
    if not name:
        raise Unprocessable("invalid request body: name: must not be blank")
    slug = slug or slugify(name)
    _check_slug_free(conn, slug)
    group_id = new_id()
    conn.execute(
        "INSERT INTO agent_groups (id, name, slug, config_version, created_at, updated_at)"
        " VALUES (?, ?, ?, 1, ?, ?)",
        (group_id, name, slug, now, now),
    )
    from logpulse_agent.server import config_versions  # see bump()

    config_versions.snapshot(conn, group_id, 1, now)
    return get(conn, group_id)


def update(
    conn: sqlite3.Connection,
    ref: str,
    name: str | None,
    slug: str | None,
    now: float,
    rollout: Any = None,
) -> sqlite3.Row:
    """Rename; bumps the version when the name or slug actually changes. ``rollout``, when
    given, is the new rollout policy (JSON form; it applies from the next change on and does
    not itself change the config)."""
    row = resolve(conn, ref)
    if rollout is not None:
        try:
            policy = rollout_policy.parse(rollout)
        except rollout_policy.PolicyError as exc:
            raise Unprocessable(f"invalid request body: {exc}") from None
        conn.execute(
            "UPDATE agent_groups SET rollout_policy = ? WHERE id = ?",
            (rollout_policy.dump(policy), row["id"]),
        )
    new_name = row["name"] if name is None else name.strip()
    if not new_name:
        raise Unprocessable("invalid request body: name: must not be blank")
    new_slug = row["slug"] if slug is None else slug
    if (new_name, new_slug) != (row["name"], row["slug"]):
        _check_slug_free(conn, new_slug, row["id"])
        conn.execute(
            "UPDATE agent_groups SET name = ?, slug = ? WHERE id = ?",
            (new_name, new_slug, row["id"]),
        )
        bump(conn, row["id"], now)
    return get(conn, row["id"])


def delete(conn: sqlite3.Connection, ref: str) -> None:
    """Delete with inputs and enrolment tokens; :class:`Conflict` while live agents use it."""
    row = resolve(conn, ref)
    live = conn.execute(
        "SELECT COUNT(*) FROM agent_registrations WHERE group_id = ? AND revoked_at IS NULL",
        (row["id"],),
    ).fetchone()[0]
    if live:
        raise Conflict(
            f"group {row['slug']!r} still has {live} agent(s); move or revoke them first"
        )
    conn.execute("DELETE FROM agent_groups WHERE id = ?", (row["id"],))


def to_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "slug": row["slug"],
        "configVersion": row["config_version"],
        "rollout": rollout_policy.load(row["rollout_policy"]).to_json(),
        "inputCount": row["input_count"],
        "agentCount": row["agent_count"],
        "createdAt": isotime(row["created_at"]),
        "updatedAt": isotime(row["updated_at"]),
    }
