"""The SQLite store: pragmas, migrations, and enrolment use counting under concurrency."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from logpulse_agent.server import enrolment, groups
from logpulse_agent.server.checkpointer import Checkpointer
from logpulse_agent.server.errors import EnrolRefused
from logpulse_agent.server.store import Store, StoreError, migrations
from logpulse_agent.server.tokens import (
    AGENT_PREFIX,
    is_agent_token,
    is_enrolment_token,
    matches,
    mint,
    token_hash,
)

SEED_TABLES = {
    "agent_groups",
    "agent_inputs",
    "agent_registrations",
    "agent_enrollment_tokens",
    "agent_actions",
}


class TestSchema:
    def test_opening_creates_the_seed_tables_in_wal_mode(self, tmp_path: Path) -> None:
        """A new file gets the five seed tables, WAL, foreign keys and a schema version."""
        store = Store(tmp_path / "s.db")
        with store.connection() as conn:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            assert tables >= SEED_TABLES
            assert "schema_version" in tables
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert store.schema_version == len(migrations())
        store.close()

    def test_reopening_applies_nothing_twice(self, tmp_path: Path) -> None:
        """Migrations already applied are skipped; data survives a restart."""
        store = Store(tmp_path / "s.db")
        with store.write() as conn:
            groups.create(conn, "web", None, 1.0)
        store.close()
        again = Store(tmp_path / "s.db")
        with again.read() as conn:
            assert [g["slug"] for g in groups.list_all(conn)] == ["web"]
            rows = conn.execute("SELECT version FROM schema_version").fetchall()
        assert [r[0] for r in rows] == list(range(1, len(migrations()) + 1))
        again.close()

    def test_a_newer_schema_is_refused(self, tmp_path: Path) -> None:
        """A database from a newer server is not touched."""
        Store(tmp_path / "s.db").close()
        conn = sqlite3.connect(tmp_path / "s.db")
        conn.execute("INSERT INTO schema_version VALUES (999, 'future', 0)")
        conn.commit()
        conn.close()
        with pytest.raises(StoreError, match="newer than this server"):
            Store(tmp_path / "s.db")

    def test_failed_write_is_rolled_back(self, tmp_path: Path) -> None:
        """An exception inside write() leaves nothing behind."""
        store = Store(tmp_path / "s.db")
        with pytest.raises(RuntimeError), store.write() as conn:
            groups.create(conn, "web", None, 1.0)
            raise RuntimeError("boom")
        with store.read() as conn:
            assert groups.list_all(conn) == []
        store.close()

    def test_unusable_path_is_a_clear_error(self, tmp_path: Path) -> None:
        """A database path in a missing directory raises StoreError naming it."""
        with pytest.raises(StoreError, match="missing"):
            Store(tmp_path / "missing" / "s.db")


class TestTokens:
    def test_minted_tokens_have_the_prefix_and_32_random_bytes(self) -> None:
        """AGT_ + 43 base64url characters, different every time."""
        tokens = {mint(AGENT_PREFIX) for _ in range(100)}
        assert len(tokens) == 100
        assert all(is_agent_token(t) and len(t) == 47 for t in tokens)
        assert not is_enrolment_token(next(iter(tokens)))
        token = next(iter(tokens))
        assert not is_agent_token(token + "\n")  # a whole-string match, not Python's "$"
        assert not is_enrolment_token("EBT_" + token[4:] + "\n")

    def test_hash_is_sha256_and_matches_in_constant_time(self) -> None:
        """The stored form is the hex SHA-256; matches() accepts only the right token."""
        token = mint(AGENT_PREFIX)
        stored = token_hash(token)
        assert len(stored) == 64 and token not in stored
        assert matches(token, stored)
        assert not matches(token + "x", stored)


class TestConcurrentEnrolment:
    def test_fifty_enrolments_on_ten_uses_make_exactly_ten_agents(self, tmp_path: Path) -> None:
        """50 threads, each with its own connection to the file, race on maxUses=10."""
        setup = Store(tmp_path / "s.db")
        with setup.write() as conn:
            groups.create(conn, "web", None, 1.0)
            _, raw = enrolment.mint_token(
                conn, "web", ttl_seconds=3600, max_uses=10, label=None, now=1.0
            )
        stores = [Store(tmp_path / "s.db") for _ in range(50)]
        barrier = threading.Barrier(50)
        outcomes: list[str] = []
        lock = threading.Lock()

        def enrol(store: Store, n: int) -> None:
            body = {
                "bootstrapToken": raw,
                "hostname": f"h{n}",
                "platform": "linux",
                "agentVersion": "1.0.0",
            }
            barrier.wait()
            try:
                with store.write() as conn:
                    enrolment.enrol(conn, body, 2.0)
                result = "enrolled"
            except EnrolRefused:
                result = "refused"
            with lock:
                outcomes.append(result)

        threads = [threading.Thread(target=enrol, args=(s, n)) for n, s in enumerate(stores)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(outcomes).count("enrolled") == 10
        assert outcomes.count("refused") == 40
        with setup.read() as conn:
            assert conn.execute("SELECT COUNT(*) FROM agent_registrations").fetchone()[0] == 10
            assert conn.execute("SELECT uses FROM agent_enrollment_tokens").fetchone()[0] == 10
        for store in [setup, *stores]:
            store.close()


class TestCheckpointer:
    def test_checkpoints_leave_the_request_path_and_come_back_on_stop(self, tmp_path: Path) -> None:
        """While it runs, commits never checkpoint (autocheckpoint 0) and its thread does;
        stopping restores SQLite's own checkpoints and leaves the WAL copied back."""
        store = Store(tmp_path / "s.db")
        wal = Checkpointer(store, interval=0.01)
        wal.start()
        with store.connection() as conn:
            assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        with store.write() as conn:
            conn.execute("INSERT INTO server_settings (key, value) VALUES ('k', 'v')")
        deadline = time.monotonic() + 10
        while wal.checkpoints < 2:
            assert time.monotonic() < deadline, "the checkpoint thread never ran"
            time.sleep(0.01)
        wal.stop()
        with store.connection() as conn:
            assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
            busy, log, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert (busy, log) == (0, done)
        store.close()
