"""Crash-safe file writes: temp file in the same directory, fsync, rename, fsync of the directory.

A crash or power loss at any instant leaves either the old or the new content at ``path``,
never a torn file (``durable=False`` gives that up for power loss only, see
:func:`write_bytes`). Secrets are created with their final mode (the temp file is opened with
it), never chmod-ed after the bytes are already on disk.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from logpulse_agent.clock import utc_now
from logpulse_agent.errors import StateError
from logpulse_agent.pids import pid_alive


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry change (a rename or unlink) to disk."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: Path, data: bytes, mode: int = 0o644, *, durable: bool = True) -> None:
    """Atomically replace ``path`` with ``data``; the file has ``mode`` from its first byte.

    ``durable=False`` skips both fsyncs: still never torn for a reader or after the writer is
    killed (the rename is atomic), but after a power loss the file may be empty or old. Only
    for files rewritten from memory all the time (``status.json``), where an fsync on the
    event loop would cost every caller a disk flush for nothing.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            # The umask may have stripped bits from ``mode``; fchmod on our own fresh fd
            # sets exactly the mode before any byte is written.
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StateError(f"cannot write {path}: {exc.strerror or exc}") from exc


def remove_stale_temps(directory: Path) -> list[Path]:
    """Remove temp files that writers killed mid-write left in ``directory``.

    A temp file of a live process (another writer right now) is left alone.
    """
    removed = []
    for path in Path(directory).glob(".*.tmp-*"):
        pid = path.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or pid_alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed


def write_text(path: Path, text: str, mode: int = 0o644, *, durable: bool = True) -> None:
    """Atomically replace ``path`` with UTF-8 ``text`` (``durable`` as in :func:`write_bytes`)."""
    write_bytes(path, text.encode("utf-8"), mode, durable=durable)


def write_json(path: Path, value: Any, mode: int = 0o644, *, durable: bool = True) -> None:
    """Atomically replace ``path`` with ``value`` as pretty, key-sorted JSON."""
    write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n", mode, durable=durable)


def read_bytes(path: Path) -> bytes | None:
    """The bytes of ``path``; ``None`` when it does not exist, :class:`StateError` when it
    exists but cannot be read."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror or exc}") from exc


def read_json(path: Path) -> Any:
    """Read JSON from ``path``; ``None`` when the file does not exist.

    Raises :class:`StateError` when the file exists but cannot be read or parsed.
    """
    raw = read_bytes(path)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise StateError(f"{path} is corrupt (not JSON): {exc}") from exc


def remove(path: Path) -> None:
    """Remove ``path`` durably if it exists."""
    path = Path(path)
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StateError(f"cannot remove {path}: {exc.strerror or exc}") from exc
    fsync_dir(path.parent)


def quarantine(path: Path, now: Callable[[], datetime] | None = None) -> Path:
    """Rename a corrupt ``path`` to ``<name>.corrupt-<UTC timestamp>`` and return the new path."""
    stamp = (now or utc_now)().astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    try:
        os.replace(path, target)
        fsync_dir(path.parent)
    except OSError as exc:
        raise StateError(f"cannot move corrupt {path} aside: {exc.strerror or exc}") from exc
    return target
