"""Reading Vector's own log, ``vector.log``, to confirm starts and reloads.

Vector's stdout and stderr are redirected straight into ``vector.log`` (opened ``O_APPEND``), so
Vector keeps logging even when the agent dies. Vector writes its log lines on stderr
(vectordotdev/vector PR #9166) in ``tracing``'s text format::

    2026-01-01T00:00:00.000000Z  INFO vector: Vector has started. debug="false" version="0.57.0"
    2026-01-01T00:00:01.000000Z ERROR vector::cli: Configuration error. error=…

or, with ``--log-format json``, one JSON object per line with a top-level ``message``. The
lines this module keys on, verbatim from ``src/internal_events/process.rs``:

- ``Vector has started.`` (``VectorStarted``) once the topology is running;
- ``Vector has reloaded.`` (``VectorReloaded``) after a successful SIGHUP reload;
- ``Reload was not successful.`` (``VectorReloadError``) when the new topology was rejected and
  the old one kept — build errors, or changed global options;
- ``Failed to load config files, reload aborted.`` (``VectorConfigLoadError``) when the files
  did not load (parse error, secret backend failure); the old pipeline keeps running;
- ``Vector has failed to recover from a failed reload.`` (``VectorRecoveryError``), after which
  Vector shuts down.

Vector rate-limits each log call site (lib/tracing-limit): a repeat inside the window is logged
as ``Internal log [<message>] is being suppressed to avoid flooding.``, which counts as
``<message>`` here; further repeats are not logged at all, which is why the supervisor narrows
the window and spaces its reloads.

Rotation is by size with copy-then-truncate, the only scheme that works while Vector holds an
``O_APPEND`` descriptor: appends after the truncate land at the new end of the file. Lines
written between the copy and the truncate are lost; the window is one ``copyfile``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from logpulse_agent.errors import ReloadFailed, VectorError
from logpulse_agent.redact import redact

STARTED = "Vector has started."
RELOADED = "Vector has reloaded."
RELOAD_FAILURES = (
    "Reload was not successful.",
    "Failed to load config files, reload aborted.",
    "Vector has failed to recover from a failed reload.",
)
MAX_REASON = 300

_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
_SUPPRESSED_RE = re.compile(r"^Internal log \[(?P<message>.*)\] is being suppressed to avoid")
# timestamp, level (right-aligned to 5), then optional spans "name{…}: ", target, message.
_TEXT_RE = re.compile(
    r"^\S+\s+(?P<level>TRACE|DEBUG|INFO|WARN|ERROR)\s+"
    r"(?:\S*\{.*?\}:\s)*(?P<target>[A-Za-z0-9_:]+):\s(?P<message>.*)$"
)


@dataclass(frozen=True)
class LogLine:
    """One parsed line of Vector's log; ``message`` includes any trailing ``key=value`` fields."""

    level: str
    target: str
    message: str


def parse_line(line: str) -> LogLine | None:
    """Parse a text- or JSON-format Vector log line; None for anything else."""
    line = _ANSI_RE.sub("", line).strip()
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        fields = record.get("fields") if isinstance(record.get("fields"), dict) else record
        message = fields.get("message") if isinstance(fields, dict) else None
        if not isinstance(message, str):
            return None
        return LogLine(str(record.get("level", "")).upper(), str(record.get("target", "")), message)
    match = _TEXT_RE.match(line)
    if match is None:
        return None
    return LogLine(match["level"], match["target"], match["message"])


def unsuppressed(message: str) -> str:
    """The original message of a rate limiter's "is being suppressed" notice, else ``message``."""
    match = _SUPPRESSED_RE.match(message)
    return match["message"] if match else message


def summarize(line: LogLine) -> str:
    """A one-line, redacted, bounded description of an error line for messages and status."""
    text = redact(" ".join(line.message.split()))
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def log_offset(path: Path) -> int:
    """The current size of ``path`` (0 when missing): read from here to see only new lines."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


class LogFollower:
    """Yields the complete lines appended to a file after an offset; survives truncation."""

    def __init__(self, path: Path, offset: int) -> None:
        self.path = Path(path)
        self.offset = offset
        self._partial = b""

    def read(self) -> list[LogLine]:
        """The parsed lines completed since the last call (unparseable lines are skipped)."""
        try:
            with open(self.path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size < self.offset:  # truncated by rotation: the new content starts at 0
                    self.offset, self._partial = 0, b""
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        self.offset += len(chunk)
        data = self._partial + chunk
        *complete, self._partial = data.split(b"\n")
        lines = (parse_line(raw.decode("utf-8", "replace")) for raw in complete)
        return [line for line in lines if line is not None]


def last_error(path: Path, offset: int) -> str | None:
    """The last ERROR line logged after ``offset``, summarized; None when there is none."""
    errors = [line for line in LogFollower(path, offset).read() if line.level == "ERROR"]
    return summarize(errors[-1]) if errors else None


async def _watch(
    follower: LogFollower,
    timeout: float,
    poll: float,
    alive: Callable[[], bool] | None,
    on_line: Callable[[LogLine], bool],
) -> bool:
    """Feed new lines to ``on_line`` until it returns True (→ True) or Vector died (→ False).

    Raises :class:`TimeoutError` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        dead = alive is not None and not alive()
        # Read after sampling ``alive``: a line written just before the exit is still seen.
        if any(on_line(line) for line in follower.read()):
            return True
        if dead:
            return False
        if time.monotonic() >= deadline:
            raise TimeoutError
        await asyncio.sleep(poll)


async def wait_for_start(
    path: Path,
    offset: int,
    timeout: float,
    poll: float = 0.05,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Return once "Vector has started." appears after ``offset``.

    Raises :class:`VectorError` when ``alive()`` turns False first or after ``timeout``.
    """
    follower = LogFollower(path, offset)
    try:
        started = await _watch(
            follower, timeout, poll, alive, lambda ln: unsuppressed(ln.message).startswith(STARTED)
        )
    except TimeoutError:
        raise VectorError(f"Vector did not report a start within {timeout:g}s") from None
    if not started:
        raise VectorError("Vector exited before it started")


async def wait_for_reload(
    path: Path,
    offset: int,
    timeout: float,
    poll: float = 0.05,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Return once "Vector has reloaded." appears after ``offset``.

    Raises :class:`ReloadFailed` on a failure line (its message names the first error Vector
    logged for this reload), when ``alive()`` turns False, or after ``timeout``.
    """
    follower = LogFollower(path, offset)
    errors: list[LogLine] = []
    failed: list[LogLine] = []

    def on_line(line: LogLine) -> bool:
        message = unsuppressed(line.message)
        if message.startswith(RELOADED):
            return True
        if message.startswith(RELOAD_FAILURES):
            failed.append(line)
            return True
        if line.level == "ERROR":
            errors.append(line)
        return False

    try:
        confirmed = await _watch(follower, timeout, poll, alive, on_line)
    except TimeoutError:
        raise ReloadFailed(f"Vector did not confirm the reload within {timeout:g}s") from None
    if failed:
        reason = summarize((errors or failed)[0])
        raise ReloadFailed(f"Vector rejected the reload: {reason}")
    if not confirmed:
        reason = f": {summarize(errors[0])}" if errors else ""
        raise ReloadFailed(f"Vector exited during the reload{reason}")


def rotate_if_needed(path: Path, max_bytes: int = 10 * 1024 * 1024, keep: int = 3) -> bool:
    """Rotate ``path`` to ``path.1`` … ``path.<keep>`` once it exceeds ``max_bytes``.

    Copy-then-truncate, so a writer holding an ``O_APPEND`` descriptor carries on into the
    emptied file. Returns whether a rotation happened.
    """
    path = Path(path)
    try:
        if os.stat(path).st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    for index in range(keep - 1, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        with contextlib.suppress(FileNotFoundError):
            os.replace(older, path.with_name(f"{path.name}.{index + 1}"))
    if keep > 0:
        shutil.copyfile(path, path.with_name(f"{path.name}.1"))
    os.truncate(path, 0)
    return True
