"""Crash-safe writes: old or new content, final mode from the first byte."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from logpulse_agent.errors import StateError
from logpulse_agent.state import atomic


class TestWriteBytes:
    def test_secret_is_created_with_its_final_mode(self, tmp_path: Path) -> None:
        """A 0600 file is 0600 even under a permissive umask."""
        old = os.umask(0)
        try:
            atomic.write_text(tmp_path / "token", "AGT_x", mode=0o600)
        finally:
            os.umask(old)
        assert stat.S_IMODE((tmp_path / "token").stat().st_mode) == 0o600

    def test_replaces_content_and_leaves_no_temp_file(self, tmp_path: Path) -> None:
        """After a write only the target exists, with the new content."""
        target = tmp_path / "f"
        atomic.write_bytes(target, b"old")
        atomic.write_bytes(target, b"new")
        assert target.read_bytes() == b"new"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]

    def test_unwritable_directory_is_a_state_error(self, tmp_path: Path) -> None:
        """A missing directory gives a one-line StateError naming the path."""
        with pytest.raises(StateError, match="cannot write"):
            atomic.write_bytes(tmp_path / "missing" / "f", b"x")


class TestReadJson:
    def test_missing_file_is_none(self, tmp_path: Path) -> None:
        """No file means no record."""
        assert atomic.read_json(tmp_path / "none.json") is None

    def test_corrupt_file_is_a_state_error(self, tmp_path: Path) -> None:
        """Garbage is reported, not returned."""
        (tmp_path / "bad.json").write_text("{nope")
        with pytest.raises(StateError, match="corrupt"):
            atomic.read_json(tmp_path / "bad.json")


class TestStaleTemps:
    def test_temp_files_of_dead_writers_are_removed(self, tmp_path: Path) -> None:
        """A write killed mid-way leaves a temp file; the next start removes it."""
        dead = tmp_path / ".status.json.tmp-999999999"
        mine = tmp_path / f".applied.json.tmp-{os.getpid()}"
        dead.write_text("{")
        mine.write_text("{")
        (tmp_path / "status.json").write_text("{}")
        assert atomic.remove_stale_temps(tmp_path) == [dead]
        assert mine.exists() and (tmp_path / "status.json").exists()
