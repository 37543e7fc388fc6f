"""Ingest counters: events and bytes per agent, group, index, sourcetype and source (SPEC §11.2).

The hot path never writes SQL: :meth:`IngestCounters.add` adds a request's totals to in-memory
deltas (one dict update per routing triple in the request, usually one), and :meth:`flush`
writes all deltas in one transaction — one upsert per (group, agent, routing) into
``ingest_counters`` and one update per agent of ``agent_registrations.ingest_*``. The app
flushes every second and before every admin read, so what the admin API shows is exact.

Events per second come from a tumbling window (``RATE_WINDOW``-second buckets: the current one
and the one before), advanced in memory as events arrive and copied into the agent's row at
each flush, so any reader of the row computes the rate over the last ``RATE_WINDOW`` seconds
with :func:`events_per_second`, however late the flush ran.

A hostile agent cannot grow the table without bound: past ``max_routes`` distinct routing
triples per agent (since this server started), further triples are counted under
``OVERFLOW_ROUTING``.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

from logpulse_agent.server.http import isotime
from logpulse_agent.server.ingest_hec import Batch, Routing
from logpulse_agent.server.store import Store

log = structlog.get_logger("logpulse.server.ingest")

RATE_WINDOW = 10  # seconds
DEFAULT_FLUSH_INTERVAL = 1.0
DEFAULT_MAX_ROUTES = 64
OVERFLOW_ROUTING: Routing = ("(other)", "(other)", "(other)")
DIMENSIONS = ("group", "agent", "index", "sourcetype", "source")
_COLUMNS = {
    "group": "group_id",
    "agent": "agent_id",
    "index": "index_name",
    "sourcetype": "sourcetype",
    "source": "source",
}

Key = tuple[str, str, str, str, str]  # (group_id, agent_id, index, sourcetype, source)


def events_per_second(
    window_start: float | None, window_events: int, prev_events: int, now: float
) -> float:
    """Events per second over the last ``RATE_WINDOW`` seconds, from an agent's window columns.

    The older bucket counts in proportion to how much of it the sliding window still covers.
    """
    if window_start is None:
        return 0.0
    current = math.floor(now / RATE_WINDOW) * RATE_WINDOW
    left = 1.0 - (now - current) / RATE_WINDOW  # share of the previous bucket still in view
    if window_start == current:
        return (prev_events * left + window_events) / RATE_WINDOW
    if window_start == current - RATE_WINDOW:
        return window_events * left / RATE_WINDOW
    return 0.0


def ingest_json(row: sqlite3.Row, now: float) -> dict[str, Any]:
    """The ``ingest`` object of an admin agent row."""
    rate = events_per_second(
        row["ingest_window_start"],
        row["ingest_window_events"],
        row["ingest_prev_window_events"],
        now,
    )
    return {
        "events": row["ingest_events"],
        "bytes": row["ingest_bytes"],
        "lastEventAt": isotime(row["ingest_last_event_at"]),
        "eventsPerSecond": round(rate, 2),
    }


class IngestCounters:
    """In-memory deltas over ``store``, written by :meth:`flush`."""

    def __init__(self, store: Store, *, max_routes: int = DEFAULT_MAX_ROUTES) -> None:
        self.store = store
        self.max_routes = max_routes
        self._lock = threading.Lock()
        self._routes: dict[Key, list[float]] = {}  # key -> [events, bytes, last event time]
        self._agents: dict[str, list[float]] = {}  # agent id -> [events, bytes, last]
        self._seen: dict[str, set[Routing]] = {}  # agent id -> routing triples counted so far
        self._windows: dict[str, list[float]] = {}  # agent id -> [bucket start, events, prev]

    def add(self, group_id: str, agent_id: str, batch: Batch, now: float) -> None:
        """Count ``batch`` for the agent (in memory until the next :meth:`flush`)."""
        with self._lock:
            seen = self._seen.setdefault(agent_id, set())
            events = size = 0
            for routing, (count, nbytes) in batch.counts.items():
                if routing not in seen:
                    if len(seen) >= self.max_routes:
                        routing = OVERFLOW_ROUTING
                    seen.add(routing)
                delta = self._routes.setdefault((group_id, agent_id, *routing), [0, 0, now])
                delta[0] += count
                delta[1] += nbytes
                delta[2] = now
                events += count
                size += nbytes
            total = self._agents.setdefault(agent_id, [0, 0, now])
            total[0] += events
            total[1] += size
            total[2] = now
            self._windows[agent_id] = advance(self._windows.get(agent_id), now, events)

    def pending(self) -> bool:
        return bool(self._agents)

    def flush(self) -> int:
        """Write the deltas in one transaction; returns how many agents were updated.

        On a database error the deltas are kept for the next flush.
        """
        with self._lock:
            routes, agents = self._routes, self._agents
            self._routes, self._agents = {}, {}
            windows = {agent_id: list(self._windows[agent_id]) for agent_id in agents}
        if not agents:
            return 0
        try:
            with self.store.write() as conn:
                _write(conn, routes, agents, windows)
        except sqlite3.Error as exc:
            log.error("ingest.flush_failed", error=str(exc), agents=len(agents))
            with self._lock:
                _merge(self._routes, routes)
                _merge(self._agents, agents)
            return 0
        return len(agents)

    async def run_forever(
        self,
        interval: float = DEFAULT_FLUSH_INTERVAL,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Flush every ``interval`` seconds until cancelled."""
        while True:
            await sleep(interval)
            try:
                self.flush()
            except Exception:
                log.exception("ingest.flush_crashed")


def _merge(into: dict[Any, list[float]], deltas: dict[Any, list[float]]) -> None:
    for key, (events, size, last) in deltas.items():
        mine = into.setdefault(key, [0, 0, last])
        mine[0] += events
        mine[1] += size
        mine[2] = max(mine[2], last)


def advance(window: list[float] | None, now: float, events: int) -> list[float]:
    """The ``[bucket start, events in it, events in the bucket before]`` after ``events`` more
    events at ``now``."""
    bucket = math.floor(now / RATE_WINDOW) * RATE_WINDOW
    if window is None or window[0] < bucket - RATE_WINDOW or window[0] > bucket:
        window = [bucket, 0, 0]
    elif window[0] == bucket - RATE_WINDOW:
        window = [bucket, 0, window[1]]
    window[1] += events
    return window


def _write(
    conn: sqlite3.Connection,
    routes: dict[Key, list[float]],
    agents: dict[str, list[float]],
    windows: dict[str, list[float]],
) -> None:
    conn.executemany(
        "INSERT INTO ingest_counters (group_id, agent_id, index_name, sourcetype, source,"
        " events, bytes, last_event_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (group_id, agent_id, index_name, sourcetype, source) DO UPDATE SET"
        " events = events + excluded.events, bytes = bytes + excluded.bytes,"
        " last_event_at = MAX(last_event_at, excluded.last_event_at)",
        [(*key, int(v[0]), int(v[1]), v[2]) for key, v in routes.items()],
    )
    rows = []
    for agent_id, (events, size, last) in agents.items():
        start, current, previous = windows[agent_id]
        rows.append((int(events), int(size), last, start, int(current), int(previous), agent_id))
    conn.executemany(
        "UPDATE agent_registrations SET"
        " ingest_events = ingest_events + ?, ingest_bytes = ingest_bytes + ?,"
        " ingest_last_event_at = MAX(COALESCE(ingest_last_event_at, 0), ?),"
        " ingest_window_start = ?, ingest_window_events = ?, ingest_prev_window_events = ?"
        " WHERE id = ?",
        rows,
    )


def totals(
    conn: sqlite3.Connection,
    by: Sequence[str],
    *,
    group_id: str | None = None,
    agent_id: str | None = None,
) -> list[dict[str, Any]]:
    """Counted events and bytes grouped by ``by`` (names from ``DIMENSIONS``), most events first.

    Each row: the chosen dimensions (``groupId``/``agentId`` for group/agent), ``events``,
    ``bytes``, ``lastEventAt``.
    """
    unknown = [d for d in by if d not in _COLUMNS]
    if unknown:
        raise ValueError(f"unknown dimension {unknown[0]!r} (known: {', '.join(DIMENSIONS)})")
    columns = [_COLUMNS[d] for d in dict.fromkeys(by)]
    where, params = [], []
    if group_id is not None:
        where.append("group_id = ?")
        params.append(group_id)
    if agent_id is not None:
        where.append("agent_id = ?")
        params.append(agent_id)
    select = ", ".join([*columns, "SUM(events) AS events", "SUM(bytes) AS bytes",
                        "MAX(last_event_at) AS last_event_at"])  # fmt: skip
    sql = f"SELECT {select} FROM ingest_counters"  # noqa: S608 - column names from _COLUMNS
    if where:
        sql += " WHERE " + " AND ".join(where)
    if columns:
        sql += " GROUP BY " + ", ".join(columns)
    sql += " ORDER BY events DESC"
    names = {"group_id": "groupId", "agent_id": "agentId", "index_name": "index"}
    out = []
    for row in conn.execute(sql, params):
        if row["events"] is None:  # no rows at all, no GROUP BY
            continue
        item = {names.get(c, c): row[c] for c in columns}
        item.update(
            events=row["events"], bytes=row["bytes"], lastEventAt=isotime(row["last_event_at"])
        )
        out.append(item)
    return out
