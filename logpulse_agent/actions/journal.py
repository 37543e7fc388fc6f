"""The action journal: results waiting for a ``2xx`` heartbeat, and which actions ever had one.

Delivery is at least once (SPEC section 6): :meth:`ActionJournal.add` returns only once the
result is durable, and a result leaves the file only through :meth:`~ActionJournal.acknowledge`
with exactly what a successful heartbeat sent. A restart in between re-sends it; the server
tolerates repeats.

*Reported* ids — every action whose result was ever put here, delivered or not — let the
executor tell an action a killed agent recorded but never finished (reported failed when handed
out again) from one that ran. They live in the same file as the results, so a result costs one
write; in 0.1.0 they were a second write to the ledger.

On disk, ``state_dir/outbox.json`` (written atomically, mode 0600)::

    {"version": 2,
     "results": [{"actionId": "…", "status": "running", "result": {…}}, …],
     "reported": ["…", …]}

Results in insertion order, one entry per action id: a later result replaces the earlier one in
place (``running`` → ``done``), but a terminal ``done``/``failed`` is never replaced by
``running``. Reported ids oldest first, the newest :data:`REPORTED_SIZE` kept. A version-1 file
(0.1.0) has no ``reported``: the ledger's old set (``legacy_reported``) and the ids of its
results stand in, and the file is rewritten in version 2 at once.

A corrupt file must neither crash the agent nor lose results silently. It is renamed to
``outbox.json.corrupt-<UTC timestamp>`` (kept for an operator), an error is logged, and the
journal starts with whatever entries could still be parsed — empty when the file is not JSON
at all. A file that cannot be *read* (permissions, I/O error) raises :class:`StateError`: that
is a broken installation, not a torn write, and guessing would risk losing results.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from logpulse_agent.clock import utc_now
from logpulse_agent.controlplane.protocol import ActionResult
from logpulse_agent.errors import ProtocolError
from logpulse_agent.state.records import Corrupt, RecordFile, Recovery

log = structlog.get_logger(__name__)

SCHEMA = 2
REPORTED_SIZE = 1000
TERMINAL = frozenset({"done", "failed"})


@dataclass(frozen=True)
class JournalDoc:
    """The content of the file; ``reported`` is None in a version-1 file."""

    results: tuple[ActionResult, ...] = ()
    reported: tuple[str, ...] | None = None


class JournalCodec:
    """Reads the journal entry by entry, so a damaged file keeps every result that parses."""

    def encode(self, value: JournalDoc) -> dict[str, Any]:
        return {
            "version": SCHEMA,
            "results": [r.to_json() for r in value.results],
            "reported": list(value.reported or ()),
        }

    def decode(self, doc: object) -> JournalDoc:
        if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
            raise Corrupt("expected an object with a 'results' list", kept=0)
        results, problems = _parse_results(doc["results"])
        reported = doc.get("reported")
        if reported is not None and not (
            isinstance(reported, list) and all(isinstance(i, str) for i in reported)
        ):
            problems.append("'reported' is not a list of action ids")
            reported = None
        parsed = JournalDoc(tuple(results), None if reported is None else tuple(reported))
        if problems:
            salvage = parsed if results or parsed.reported else None
            raise Corrupt("; ".join(problems), salvage=salvage, kept=len(results))
        return parsed


def _parse_results(entries: list[object]) -> tuple[list[ActionResult], list[str]]:
    """The usable results of ``entries`` and what was wrong with the others."""
    results: list[ActionResult] = []
    problems: list[str] = []
    position: dict[str, int] = {}
    for index, entry in enumerate(entries):
        try:
            result = ActionResult.from_json(entry)
        except ProtocolError as exc:
            problems.append(f"results[{index}]: {exc}")
            continue
        if result.action_id in position:
            # Never written by add(); keep the most advanced of the two.
            problems.append(f"results[{index}]: duplicate actionId")
            earlier = position[result.action_id]
            if results[earlier].status not in TERMINAL:
                results[earlier] = result
            continue
        position[result.action_id] = len(results)
        results.append(result)
    return results, problems


class ActionJournal:
    """Undelivered results and reported ids, persisted in ``path`` (see the module docstring).

    ``legacy_reported`` is the ledger's reported set of a 0.1.0 agent, used only when the file
    has none of its own.
    """

    def __init__(
        self,
        path: Path,
        *,
        legacy_reported: Iterable[str] = (),
        now: Callable[[], datetime] = utc_now,
        size: int = REPORTED_SIZE,
    ) -> None:
        self._file = RecordFile(
            path,
            JournalCodec(),
            mode=0o600,
            recovery=Recovery.SALVAGE,
            event="outbox.corrupt",
            hint="results that could not be parsed are in the moved file; the server expires "
            "their actions if they are never reported",
            now=now,
        )
        self._size = size
        doc = self._file.load() or JournalDoc()
        self._results = list(doc.results)
        self._reported = list(doc.reported or ())
        if doc.reported is None:
            adopted = dict.fromkeys([*legacy_reported, *(r.action_id for r in doc.results)])
            self._reported = list(adopted)[-size:]
            if self._reported:
                self._save(self._results, self._reported)

    @property
    def path(self) -> Path:
        return self._file.path

    def add(self, result: ActionResult) -> None:
        """Queue ``result`` for the next heartbeat and note its id as reported; both are on
        disk, in one write, when this returns.

        A result for an action id already queued replaces it in place, except that ``running``
        never replaces ``done``/``failed`` (status only moves forward; the late one is dropped).
        """
        results = list(self._results)
        for index, queued in enumerate(results):
            if queued.action_id != result.action_id:
                continue
            if queued.status in TERMINAL and result.status not in TERMINAL:
                log.info(
                    "outbox.regression_ignored",
                    action_id=result.action_id,
                    queued=queued.status,
                    dropped=result.status,
                )
                return
            results[index] = result
            break
        else:
            results.append(result)
        reported = self._reported
        if result.action_id not in reported:
            reported = [*reported, result.action_id][-self._size :]
        self._save(results, reported)

    def pending(self) -> tuple[ActionResult, ...]:
        """What the next heartbeat should carry, in insertion order."""
        return tuple(self._results)

    def reported(self, action_id: str) -> bool:
        """True when some result of ``action_id`` was ever added (delivered or not)."""
        return action_id in self._reported

    def acknowledge(self, sent: Sequence[ActionResult]) -> None:
        """Drop exactly the results a ``2xx`` heartbeat carried.

        An entry that was replaced after the heartbeat was built (``running`` sent, ``done`` added
        meanwhile) does not equal what was sent and therefore stays for the next heartbeat.
        """
        if not sent:
            return
        remaining = [r for r in self._results if not any(r == s for s in sent)]
        if len(remaining) != len(self._results):
            self._save(remaining, self._reported)

    def _save(self, results: list[ActionResult], reported: list[str]) -> None:
        self._file.save(JournalDoc(tuple(results), tuple(reported)))
        self._results, self._reported = results, reported
