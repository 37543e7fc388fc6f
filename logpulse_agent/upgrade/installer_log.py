"""``log_dir/upgrade.log``: what every installer run printed, one section per action.

The detached installer and the root upgrade service append their output here; the agent adds a
section header before each run and its own lines prefixed ``[logpulse-agent]``. A failed
upgrade's result carries the tail of its section (tokens masked). The file is rotated to
``upgrade.log.1`` past 1 MiB when a new section opens.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import structlog

from logpulse_agent.clock import rfc3339, utc_now
from logpulse_agent.redact import redact

log = structlog.get_logger(__name__)

TAIL_LINES = 40
TAIL_BYTES = 64 * 1024
ROTATE_BYTES = 1024 * 1024


class InstallerLog:
    """Appends to and reads back ``path``; never raises (a log must not fail an upgrade)."""

    def __init__(self, path: Path, now: Callable[[], datetime] = utc_now) -> None:
        self.path = Path(path)
        self._now = now

    def open_section(self, action_id: str, from_version: str, to_version: str) -> None:
        """Start the section of ``action_id`` (rotating a big file first)."""
        try:
            if self.path.stat().st_size > ROTATE_BYTES:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        except OSError:
            pass  # missing (first upgrade) or not rotatable: appending below still works
        self.append(
            f"=== {rfc3339(self._now())} {section_marker(action_id)}: "
            f"{from_version} -> v{to_version} ==="
        )

    def append(self, line: str) -> None:
        """Append one line (tokens masked); a failure is logged, not raised."""
        try:
            self.path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
            try:
                os.write(fd, (redact(line) + "\n").encode("utf-8", errors="replace"))
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("upgrade.log_unwritable", path=str(self.path), error=str(exc))

    def tail(self, action_id: str, lines: int = TAIL_LINES) -> str:
        """The last ``lines`` lines of the section of ``action_id`` (of the whole file when it
        has none), tokens masked; empty when the file cannot be read."""
        try:
            with self.path.open("rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - TAIL_BYTES))
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        all_lines = text.splitlines()
        marker = section_marker(action_id)
        starts = [i for i, line in enumerate(all_lines) if marker in line]
        section = all_lines[starts[-1] + 1 :] if starts else all_lines
        return redact("\n".join(section[-lines:]))


def section_marker(action_id: str) -> str:
    return f"logpulse-agent upgrade action {' '.join(action_id.split())[:80]}"
