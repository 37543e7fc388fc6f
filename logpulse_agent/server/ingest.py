"""The HEC-compatible ingest's state: who may send, what was counted, pause, refusals.

:class:`Ingest` is built once by ``create_app`` and shared by the HEC routes
(``ingest_routes.py``) and the admin API (``admin_dataplane_routes.py``). Agents authenticate
with their own ``AGT_`` token (``Authorization: Splunk AGT_…``), looked up by its SHA-256 on the
unique index, one indexed read per request; a revoked agent's token is refused with "Token
disabled" from its next request on.

:meth:`Ingest.pause` makes the ingest answer 503 "Server is busy" (and its health check 503)
until :meth:`Ingest.resume` or the pause runs out: operators use it to drain before
maintenance, and tests use it (``POST /api/v1/admin/ingest/pause``) to make every sink see a
503 burst, which Vector retries without dropping events.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from logpulse_agent.server.http import isotime
from logpulse_agent.server.ingest_counters import DEFAULT_MAX_ROUTES, IngestCounters
from logpulse_agent.server.ingest_hec import (
    INVALID_TOKEN,
    TOKEN_DISABLED,
    Batch,
    HecError,
    HecReply,
)
from logpulse_agent.server.ingest_recent import DEFAULT_RING_SIZE, RecentEvents
from logpulse_agent.server.store import Store
from logpulse_agent.server.tokens import is_agent_token, token_hash

DEFAULT_INGEST_BODY_LIMIT = 16 * 1024 * 1024  # bytes, compressed and decompressed
MAX_PAUSE_SECONDS = 86400.0


@dataclass(frozen=True)
class IngestAgent:
    """The agent a HEC request authenticated as."""

    id: str
    group_id: str


def lookup(conn: sqlite3.Connection, token: str) -> IngestAgent:
    """The agent whose token ``token`` is; :class:`HecError` when unknown (403 "Invalid token")
    or revoked (403 "Token disabled")."""
    if not is_agent_token(token):
        raise HecError(INVALID_TOKEN)
    row = conn.execute(
        "SELECT id, group_id, revoked_at FROM agent_registrations WHERE token_hash = ?",
        (token_hash(token),),
    ).fetchone()
    if row is None:
        raise HecError(INVALID_TOKEN)
    if row["revoked_at"] is not None or row["group_id"] is None:
        raise HecError(TOKEN_DISABLED)
    return IngestAgent(row["id"], row["group_id"])


def reason_of(reply: HecReply) -> str:
    """A stable snake_case name for a refusal: ``"token_disabled"``, ``"server_is_busy"``…"""
    return re.sub(r"[^a-z0-9]+", "_", reply.text.lower()).strip("_")


class Ingest:
    """Counters, recent events, pause and refusal counts of one server."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float],
        *,
        body_limit: int = DEFAULT_INGEST_BODY_LIMIT,
        ring_size: int = DEFAULT_RING_SIZE,
        max_routes: int = DEFAULT_MAX_ROUTES,
    ) -> None:
        self.store = store
        self.clock = clock
        self.body_limit = body_limit
        self.counters = IngestCounters(store, max_routes=max_routes)
        self.recent = RecentEvents(ring_size)
        self.accepted = 0  # requests
        self.refused: Counter[str] = Counter()
        self.paused_until: float | None = None
        self._lock = threading.Lock()

    def authenticate(self, token: str) -> IngestAgent:
        with self.store.connection() as conn:
            return lookup(conn, token)

    def record(self, agent: IngestAgent, batch: Batch, now: float) -> None:
        """Count an accepted request's events and keep its last ones for ``tail``."""
        self.counters.add(agent.group_id, agent.id, batch, now)
        self.recent.add(agent.group_id, agent.id, batch, now)
        with self._lock:
            self.accepted += 1

    def refuse(self, reply: HecReply) -> HecReply:
        with self._lock:
            self.refused[reason_of(reply)] += 1
        return reply

    def pause(self, seconds: float, now: float) -> None:
        """Answer 503 for ``seconds`` (at most a day) from ``now``."""
        self.paused_until = now + min(max(seconds, 0.0), MAX_PAUSE_SECONDS)

    def resume(self) -> None:
        self.paused_until = None

    def busy(self, now: float) -> bool:
        until = self.paused_until
        return until is not None and now < until

    def status(self, now: float) -> dict[str, Any]:
        """The admin view: pause state and request counts since the server started."""
        busy = self.busy(now)
        with self._lock:
            refused = dict(sorted(self.refused.items()))
            accepted = self.accepted
        return {
            "paused": busy,
            "pausedUntil": isotime(self.paused_until) if busy else None,
            "bodyLimitBytes": self.body_limit,
            "requests": {"accepted": accepted, "refused": refused},
        }
