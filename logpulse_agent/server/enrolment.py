"""Enrolment tokens (``EBT_``: mint, list, revoke) and enrolment itself.

Use counting is atomic: inside one ``BEGIN IMMEDIATE`` transaction, a single conditional
``UPDATE … SET uses = uses + 1 WHERE uses < max_uses AND not revoked AND not expired`` claims
one use, and the agent row is inserted only when that update touched the token. Fifty
concurrent enrolments on a token with ``maxUses=10`` therefore make exactly ten agents, also
across processes sharing the database file.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from logpulse_agent.server import groups
from logpulse_agent.server.errors import EnrolRefused, NotFound
from logpulse_agent.server.http import isotime
from logpulse_agent.server.store import new_id
from logpulse_agent.server.tokens import (
    AGENT_PREFIX,
    ENROLMENT_PREFIX,
    is_enrolment_token,
    matches,
    mint,
    token_hash,
)

DEFAULT_TTL_SECONDS = 24 * 3600
DEFAULT_MAX_USES = 100


@dataclass(frozen=True)
class Enrolment:
    """What an enrolment answers; ``agent_token`` exists only here, never in the database."""

    agent_id: str
    agent_token: str
    group_id: str
    config_version: int


def state(row: sqlite3.Row, now: float) -> str:
    """``revoked``, ``expired``, ``exhausted`` or ``active`` (in that order of precedence)."""
    if row["revoked_at"] is not None:
        return "revoked"
    if row["expires_at"] <= now:
        return "expired"
    if row["uses"] >= row["max_uses"]:
        return "exhausted"
    return "active"


def mint_token(
    conn: sqlite3.Connection,
    group_ref: str,
    *,
    ttl_seconds: int,
    max_uses: int,
    label: str | None,
    now: float,
) -> tuple[sqlite3.Row, str]:
    """A new token for group ``group_ref``: its row and the raw token (shown once)."""
    group = groups.resolve(conn, group_ref)
    raw = mint(ENROLMENT_PREFIX)
    token_id = new_id()
    conn.execute(
        "INSERT INTO agent_enrollment_tokens"
        " (id, group_id, token_hash, label, max_uses, uses, expires_at, created_at)"
        " VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
        (token_id, group["id"], token_hash(raw), label, max_uses, now + ttl_seconds, now),
    )
    return get(conn, token_id), raw


def mint_from_request(
    conn: sqlite3.Connection, body: dict[str, Any], now: float
) -> tuple[sqlite3.Row, str]:
    """:func:`mint_token` for a checked ``MintEnrolmentTokenRequest`` body, defaults applied."""
    return mint_token(
        conn,
        str(body["group"]),
        ttl_seconds=int(body.get("ttlSeconds", DEFAULT_TTL_SECONDS)),
        max_uses=int(body.get("maxUses", DEFAULT_MAX_USES)),
        label=body.get("label"),
        now=now,
    )


def get(conn: sqlite3.Connection, token_id: str) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM agent_enrollment_tokens WHERE id = ?", (token_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"no enrolment token with id {token_id!r}")
    return row


def list_tokens(conn: sqlite3.Connection, group_id: str | None) -> list[sqlite3.Row]:
    if group_id is None:
        sql = "SELECT * FROM agent_enrollment_tokens ORDER BY created_at DESC, rowid DESC"
        return conn.execute(sql).fetchall()
    return conn.execute(
        "SELECT * FROM agent_enrollment_tokens WHERE group_id = ?"
        " ORDER BY created_at DESC, rowid DESC",
        (group_id,),
    ).fetchall()


def revoke(conn: sqlite3.Connection, token_id: str, now: float) -> sqlite3.Row:
    """Revoke (idempotent: the first revocation time is kept)."""
    get(conn, token_id)
    conn.execute(
        "UPDATE agent_enrollment_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        (now, token_id),
    )
    return get(conn, token_id)


def enrol(conn: sqlite3.Connection, body: dict[str, Any], now: float) -> Enrolment:
    """Claim one use of the bootstrap token and register the host; see the module docstring.

    Raises :class:`EnrolRefused` (401) for an unknown, revoked, expired or used-up token, and
    :class:`NotFound` (404) for an unknown ``groupSlug`` — checked after the token, so an
    unauthenticated caller learns nothing about groups.
    """
    raw = body["bootstrapToken"]
    row = None
    if is_enrolment_token(raw):
        row = conn.execute(
            "SELECT * FROM agent_enrollment_tokens WHERE token_hash = ?", (token_hash(raw),)
        ).fetchone()
    if row is None or not matches(raw, row["token_hash"]):
        raise EnrolRefused("bootstrap token is unknown")
    current = state(row, now)
    if current == "revoked":
        raise EnrolRefused("bootstrap token has been revoked; mint a new one")
    if current == "expired":
        raise EnrolRefused(f"bootstrap token expired at {isotime(row['expires_at'])}")
    if current == "exhausted":
        raise EnrolRefused(f"bootstrap token is used up ({row['max_uses']} enrolments)")
    group_id = row["group_id"]
    slug = body.get("groupSlug")
    if slug is not None:
        found = conn.execute("SELECT id FROM agent_groups WHERE slug = ?", (slug,)).fetchone()
        if found is None:
            raise NotFound(f"no group with slug {slug!r}")
        group_id = found["id"]
    claimed = conn.execute(
        "UPDATE agent_enrollment_tokens SET uses = uses + 1"
        " WHERE id = ? AND uses < max_uses AND revoked_at IS NULL AND expires_at > ?",
        (row["id"], now),
    ).rowcount
    if claimed != 1:
        raise EnrolRefused(f"bootstrap token is used up ({row['max_uses']} enrolments)")
    agent_token = mint(AGENT_PREFIX)
    agent_id = new_id()
    conn.execute(
        "INSERT INTO agent_registrations (id, group_id, token_hash, enrollment_token_id,"
        " hostname, platform, os, kernel, agent_version, vector_version, enrolled_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            agent_id,
            group_id,
            token_hash(agent_token),
            row["id"],
            body["hostname"],
            body["platform"],
            body.get("os"),
            body.get("kernel"),
            body["agentVersion"],
            body.get("vectorVersion"),
            now,
        ),
    )
    version = conn.execute(
        "SELECT config_version FROM agent_groups WHERE id = ?", (group_id,)
    ).fetchone()[0]
    return Enrolment(agent_id, agent_token, group_id, int(version))


def to_json(row: sqlite3.Row, now: float) -> dict[str, Any]:
    return {
        "id": row["id"],
        "groupId": row["group_id"],
        "label": row["label"],
        "maxUses": row["max_uses"],
        "uses": row["uses"],
        "state": state(row, now),
        "expiresAt": isotime(row["expires_at"]),
        "revokedAt": isotime(row["revoked_at"]),
        "createdAt": isotime(row["created_at"]),
    }
