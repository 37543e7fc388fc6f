"""The server's SQLite database: connection, pragmas, migrations and transactions.

One connection per :class:`Store`, guarded by a lock, used directly from the event loop: every
statement on the hot agent paths is a short indexed lookup or update (tens of microseconds), so
a hop to a worker thread would cost more than the query. WAL mode lets readers in other
processes (``sqlite3`` on the file, backups) run beside the server; ``synchronous=NORMAL`` in
WAL mode keeps every commit atomic (a power cut may lose the last commits, never tear one).

Migrations are ``migrations/NNN_name.sql`` files, applied in order at start-up, each in its own
transaction together with its row in ``schema_version``.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

MIGRATION_RE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


class StoreError(Exception):
    """Raised when the database cannot be opened or migrated."""


def new_id() -> str:
    """A random 128-bit identifier as 32 lowercase hex digits."""
    return uuid.uuid4().hex


def migrations() -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` of every bundled migration, in order."""
    found = []
    for entry in resources.files("logpulse_agent.server").joinpath("migrations").iterdir():
        match = MIGRATION_RE.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise StoreError(f"migration numbers must run 1..N without gaps, found {versions}")
    return found


class Store:
    """The database file at ``path``, migrated to the latest schema when opened."""

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = str(path)
        self.clock = clock
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from None
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA busy_timeout=10000")
            self._migrate()
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreError(f"cannot prepare database {self.path}: {exc}") from None

    def _migrate(self) -> None:
        conn = self._conn
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
        known = migrations()
        if current > len(known):
            raise StoreError(
                f"database {self.path} has schema version {current}, newer than this server "
                f"({len(known)}); upgrade logpulse-server"
            )
        for version, name, sql in known[current:]:
            script = (
                f"BEGIN IMMEDIATE;\n{sql}\n"
                f"INSERT INTO schema_version (version, name, applied_at) "
                f"VALUES ({version}, '{name}', {self.clock()!r});\nCOMMIT;"
            )
            try:
                conn.executescript(script)
            except sqlite3.Error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @property
    def schema_version(self) -> int:
        with self.read() as conn:
            return int(conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several statements (a deferred transaction)."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                self._conn.execute("COMMIT")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken at once (``BEGIN IMMEDIATE``); rolled back on error."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """The connection in autocommit mode, for a single statement."""
        with self._lock:
            yield self._conn

    def get_setting(self, key: str) -> str | None:
        with self.connection() as conn:
            row = conn.execute("SELECT value FROM server_settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_setting(self, key: str, value: str) -> None:
        with self.write() as conn:
            conn.execute(
                "INSERT INTO server_settings (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()
