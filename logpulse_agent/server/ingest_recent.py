"""The last events the ingest received, per group, in memory (``logpulse-server tail GROUP``).

Each group keeps a ring of at most ``size`` events; every event gets a sequence number that
only grows, so a follower asks for the events after the last number it saw. An event whose JSON
is over ``MAX_EVENT_BYTES`` is kept as a note of its size, so the rings stay small
(``size`` times ``MAX_EVENT_BYTES`` per group at most). The rings are lost on restart; they are a
window for operators, not storage.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from typing import Any

from logpulse_agent.server.http import isotime
from logpulse_agent.server.ingest_hec import Batch

DEFAULT_RING_SIZE = 200
MAX_EVENT_BYTES = 4096


class RecentEvents:
    """Rings of recent events keyed by group id."""

    def __init__(self, size: int = DEFAULT_RING_SIZE) -> None:
        self.size = size
        self._rings: dict[str, deque[dict[str, Any]]] = {}
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, group_id: str, agent_id: str, batch: Batch, now: float) -> None:
        """Remember the batch's last events (``batch.recent``) for the group."""
        if not batch.recent or self.size <= 0:
            return
        received = isotime(now)
        with self._lock:
            ring = self._rings.get(group_id)
            if ring is None:
                ring = self._rings[group_id] = deque(maxlen=self.size)
            for (index, sourcetype, source), envelope, size in batch.recent:
                event = envelope.get("event")
                if size > MAX_EVENT_BYTES:
                    event = f"(event of {size} bytes, not kept)"
                host = envelope.get("host")
                time = envelope.get("time")
                ring.append(
                    {
                        "seq": next(self._numbers),
                        "receivedAt": received,
                        "agentId": agent_id,
                        "host": host if isinstance(host, str) and len(host) <= 256 else None,
                        "time": time if _short_scalar(time) else None,
                        "index": index,
                        "sourcetype": sourcetype,
                        "source": source,
                        "event": event,
                    }
                )

    def since(self, group_id: str, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """The group's events numbered above ``after``, oldest first, at most the last ``limit``."""
        with self._lock:
            ring = self._rings.get(group_id)
            found = [e for e in ring or () if e["seq"] > after]
        return found[-limit:] if limit > 0 else []


def _short_scalar(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= 64
    return isinstance(value, (int, float)) and not isinstance(value, bool)
