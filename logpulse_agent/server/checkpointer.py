"""WAL checkpoints on a thread of their own, not inside an agent's request.

SQLite copies the write-ahead log back into the database file when it reaches 1,000 pages
("autocheckpoint"), inside whichever ``COMMIT`` crossed that size, and with
``synchronous=NORMAL`` the checkpoint is the one step that fsyncs. The store's connection is
used from the event loop, so that commit — a heartbeat's — stalled every request for the length
of a copy and an fsync: 10-50 ms on a busy machine, every few seconds at fleet scale, which is
what a short window such as a config change's rollout showed as its p99.

:class:`Checkpointer` turns the automatic checkpoint off on the store's connection and runs a
``PASSIVE`` checkpoint from its own connection every ``interval`` seconds instead (PASSIVE never
waits for readers or writers; the sqlite3 module releases the GIL while it copies and syncs).
On stop it checkpoints once more and turns autocheckpoint back on, so a store used without the
thread (tests, admin tools) behaves as before.
"""

from __future__ import annotations

import sqlite3
import threading

import structlog

from logpulse_agent.server.store import Store

log = structlog.get_logger("logpulse.server.store")

DEFAULT_INTERVAL = 1.0
AUTOCHECKPOINT_PAGES = 1000  # SQLite's default


class Checkpointer:
    """A daemon thread checkpointing ``store``'s WAL every ``interval`` seconds."""

    def __init__(self, store: Store, interval: float = DEFAULT_INTERVAL) -> None:
        self.store = store
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.checkpoints = 0

    def start(self) -> None:
        with self.store.connection() as conn:
            conn.execute("PRAGMA wal_autocheckpoint=0")
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, checkpoint what is left, and give SQLite its own checkpoints back."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)
        with self.store.connection() as conn:
            conn.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.store.path, timeout=10.0, check_same_thread=False)
        except sqlite3.Error as exc:
            log.error("checkpoint.unavailable", error=str(exc))
            return
        try:
            while not self._stop.wait(self.interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    self.checkpoints += 1
                except sqlite3.Error as exc:  # busy or I/O trouble: try again next time
                    log.warning("checkpoint.failed", error=str(exc))
        finally:
            conn.close()
