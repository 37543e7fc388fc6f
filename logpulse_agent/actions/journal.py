"""The action-result outbox: results wait on disk until a ``2xx`` heartbeat has carried them.

Delivery is at least once (SPEC section 6): :meth:`Outbox.add` returns only once the result is
durable, and a result leaves the file only through :meth:`Outbox.acknowledge` with exactly what a
successful heartbeat sent. A restart in between re-sends it; the server tolerates repeats.

On disk, ``state_dir/outbox.json`` (written atomically, mode 0600)::

    {"version": 1, "results": [{"actionId": "…", "status": "running", "result": {…}}, …]}

in insertion order. One entry per action id: a later result replaces the earlier one in place
(``running`` → ``done``), but a terminal ``done``/``failed`` is never replaced by ``running``.

A corrupt file must neither crash the agent nor lose results silently. It is renamed to
``outbox.json.corrupt-<UTC timestamp>`` (kept for an operator), an error is logged, and the
outbox starts with whatever entries could still be parsed — empty when the file is not JSON at
all. A file that cannot be *read* (permissions, I/O error) raises :class:`StateError`: that is a
broken installation, not a torn write, and guessing would risk losing results.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from logpulse_agent.clock import utc_now
from logpulse_agent.controlplane.protocol import ActionResult
from logpulse_agent.errors import ProtocolError
from logpulse_agent.state import atomic

log = structlog.get_logger(__name__)

FORMAT_VERSION = 1
TERMINAL = frozenset({"done", "failed"})


class Outbox:
    """Action results not yet delivered, persisted in ``path`` (see the module docstring)."""

    def __init__(self, path: Path, *, now: Callable[[], datetime] = utc_now) -> None:
        self.path = Path(path)
        self._now = now
        self._results: list[ActionResult] = self._load()

    def add(self, result: ActionResult) -> None:
        """Queue ``result`` for the next heartbeat; it is on disk when this returns.

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
        self._save(results)

    def pending(self) -> tuple[ActionResult, ...]:
        """What the next heartbeat should carry, in insertion order."""
        return tuple(self._results)

    def acknowledge(self, sent: Sequence[ActionResult]) -> None:
        """Drop exactly the results a ``2xx`` heartbeat carried.

        An entry that was replaced after the heartbeat was built (``running`` sent, ``done`` added
        meanwhile) does not equal what was sent and therefore stays for the next heartbeat.
        """
        if not sent:
            return
        remaining = [r for r in self._results if not any(r == s for s in sent)]
        if len(remaining) != len(self._results):
            self._save(remaining)

    def _save(self, results: list[ActionResult]) -> None:
        body = {"version": FORMAT_VERSION, "results": [r.to_json() for r in results]}
        atomic.write_json(self.path, body, mode=0o600)
        self._results = results

    def _load(self) -> list[ActionResult]:
        raw = atomic.read_bytes(self.path)
        if raw is None:
            return []
        results, problem = _parse(raw)
        if problem is None:
            return results
        moved = atomic.quarantine(self.path, self._now)
        log.error(
            "outbox.corrupt",
            path=str(self.path),
            moved_to=str(moved),
            problem=problem,
            kept=len(results),
            hint="results that could not be parsed are in the moved file; the server expires "
            "their actions if they are never reported",
        )
        if results:
            self._save(results)
        return results


def _parse(raw: bytes) -> tuple[list[ActionResult], str | None]:
    """Parse the file; return the usable results and a description of what was wrong, if any."""
    try:
        doc: Any = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        return [], f"not JSON: {exc}"
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        return [], "expected an object with a 'results' list"
    results: list[ActionResult] = []
    problems: list[str] = []
    position: dict[str, int] = {}
    for index, entry in enumerate(doc["results"]):
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
    return results, "; ".join(problems) or None
