"""The at-most-once ledger: every action id picked up, recorded before the action does anything.

At most once (SPEC section 6): an id is recorded durably *before* its handler runs, so neither a
crash and restart nor the server handing the same id out again ever runs it twice — in
particular the installer. The id is recorded when the action leaves the in-memory queue to run,
not when it is submitted: an action still queued when the agent dies was never started and may
run when handed out again. The price is that an action interrupted between the record and its
result gets no result from its handler; the executor reports it failed instead.

On disk ``state_dir/actions-seen.json`` (mode 0600), oldest first, the newest
:data:`LEDGER_SIZE` kept::

    {"version": 2, "ids": ["…", …], "reported": null}

Version 1 (0.1.0) listed under ``reported`` the ids whose result had reached the outbox; that
set now lives in the action journal (:mod:`.journal`), which takes it over once through
:attr:`ActionLedger.legacy_reported`, so version 2 writes ``null`` there (0.1.0 reads ``null``
like a missing list). A version-1 file without ``reported`` predates it: every
id in it counts as reported. A corrupt ledger is moved aside with an error logged and starts
empty; an unreadable one is a :class:`StateError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from logpulse_agent.clock import utc_now
from logpulse_agent.state.records import DataclassCodec, RecordFile, Recovery

LEDGER_SIZE = 1000
SCHEMA = 2


@dataclass(frozen=True)
class SeenIds:
    """The content of ``actions-seen.json``; ``reported`` only in version 1 files."""

    ids: tuple[str, ...]
    version: int = 1
    reported: tuple[str, ...] | None = None


class ActionLedger:
    """Action ids ever picked up, kept durably in ``path`` (the newest ``size`` of them)."""

    def __init__(
        self, path: Path, *, size: int = LEDGER_SIZE, now: Callable[[], datetime] = utc_now
    ) -> None:
        self._file = RecordFile(
            path,
            DataclassCodec(SeenIds, name="action ledger"),
            mode=0o600,
            recovery=Recovery.SALVAGE,
            event="actions.ledger_corrupt",
            hint="starting with an empty ledger; an action handed out again may run again",
            now=now,
        )
        self._size = size
        loaded = self._file.load() or SeenIds(())
        self._ids = list(loaded.ids[-size:])
        self._set = set(self._ids)
        self.legacy_reported = _legacy_reported(loaded, self._ids)

    @property
    def path(self) -> Path:
        return self._file.path

    def seen(self, action_id: str) -> bool:
        """True when ``action_id`` was recorded (by this process or an earlier one)."""
        return action_id in self._set

    def record(self, action_id: str) -> None:
        """Record ``action_id``; it is on disk when this returns (:class:`StateError` if not)."""
        if action_id in self._set:
            return
        ids = [*self._ids, action_id][-self._size :]
        self._file.save(SeenIds(tuple(ids), version=SCHEMA))
        self._ids, self._set = ids, set(ids)


def _legacy_reported(loaded: SeenIds, kept: list[str]) -> tuple[str, ...]:
    """The reported ids a version-1 file hands over to the journal, oldest first (see the
    module docstring)."""
    if loaded.version >= SCHEMA:
        return ()
    reported = set(kept if loaded.reported is None else loaded.reported)
    return tuple(i for i in kept if i in reported)
