"""The action executor: each remote action runs at most once, its result goes to the outbox.

At-most-once (SPEC section 6): the id of an action is recorded durably in the
:class:`ActionLedger` *before* the action does anything, so neither a crash and restart nor the
server handing the same id out again ever runs it twice — in particular the installer. The id is
recorded when the action leaves the in-memory queue to run, not when it is submitted: an action
still queued when the agent dies was never started and may run when handed out again. The price
is that an action interrupted between the record and its result never gets one from this agent;
the server's deadline sweep expires it.

On disk, ``state_dir/actions-seen.json`` (mode 0600), oldest first, the newest
:data:`LEDGER_SIZE` kept::

    {"version": 1, "ids": ["…", …]}

A corrupt ledger is moved aside (``actions-seen.json.corrupt-<ts>``) with an error logged and
starts empty; an in-flight upgrade is still guarded by its own record.

Action types: ``upgrade_agent`` (see :mod:`logpulse_agent.upgrade`); any other type is reported
``failed`` with ``unsupported action type '<t>'``. Every result is put into the outbox and the
heartbeat is asked to run at once (``notify``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from logpulse_agent.actions.journal import Outbox
from logpulse_agent.clock import rfc3339, utc_now
from logpulse_agent.controlplane.protocol import ActionResult, PendingAction
from logpulse_agent.errors import ActionError
from logpulse_agent.redact import redact
from logpulse_agent.state import atomic
from logpulse_agent.upgrade.upgrader import (
    InFlightUpgrade,
    Upgrader,
    normalize_version,
    parse_target_version,
)

log = structlog.get_logger(__name__)

LEDGER_SIZE = 1000
UPGRADE = "upgrade_agent"
KUBERNETES_MESSAGE = (
    "upgrade_agent is not supported on Kubernetes: upgrade the DaemonSet image instead"
)


class ActionLedger:
    """Action ids ever picked up, kept durably in ``path`` (the newest ``size`` of them), and
    which of them have had a result put into the outbox ("reported")."""

    def __init__(self, path: Path, *, size: int = LEDGER_SIZE) -> None:
        self.path = Path(path)
        self._size = size
        self._ids: list[str] = self._load()
        self._set = set(self._ids)
        self._reported: set[str] = self._load_reported() & self._set

    def seen(self, action_id: str) -> bool:
        """True when ``action_id`` was recorded (by this process or an earlier one)."""
        return action_id in self._set

    def reported(self, action_id: str) -> bool:
        """True when some result of ``action_id`` reached the outbox."""
        return action_id in self._reported

    def record(self, action_id: str) -> None:
        """Record ``action_id``; it is on disk when this returns (:class:`StateError` if not)."""
        if action_id in self._set:
            return
        ids = [*self._ids, action_id][-self._size :]
        self._save(ids, self._reported & set(ids))

    def mark_reported(self, action_id: str) -> None:
        """Note that a result of ``action_id`` is in the outbox (durably, after it)."""
        if action_id in self._reported or action_id not in self._set:
            return
        self._save(self._ids, self._reported | {action_id})

    def _save(self, ids: list[str], reported: set[str]) -> None:
        body = {"version": 1, "ids": ids, "reported": [i for i in ids if i in reported]}
        atomic.write_json(self.path, body, mode=0o600)
        self._ids, self._set, self._reported = ids, set(ids), reported

    def _load_reported(self) -> set[str]:
        try:
            doc = json.loads(atomic.read_bytes(self.path) or b"{}")
        except (UnicodeDecodeError, ValueError):
            return set()
        reported = doc.get("reported") if isinstance(doc, dict) else None
        if isinstance(reported, list):
            return {i for i in reported if isinstance(i, str)}
        # A ledger written before "reported" existed: treat its ids as reported.
        return set(self._ids)

    def _load(self) -> list[str]:
        raw = atomic.read_bytes(self.path)
        if raw is None:
            return []
        try:
            doc: Any = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            doc = None
        ids = doc.get("ids") if isinstance(doc, dict) else None
        if isinstance(ids, list) and all(isinstance(i, str) for i in ids):
            return ids[-self._size :]
        moved = atomic.quarantine(self.path)
        log.error(
            "actions.ledger_corrupt",
            path=str(self.path),
            moved_to=str(moved),
            hint="starting with an empty ledger; an action handed out again may run again",
        )
        return []


class ActionExecutor:
    """Runs queued actions one at a time and reconciles an in-flight upgrade.

    ``notify()`` asks the heartbeat loop for a heartbeat now (a result is waiting).
    ``reconcile_interval`` is how often an in-flight upgrade is re-checked while the agent lives;
    ``settle`` how long a finished installer gets to restart the agent before the upgrade counts
    as failed (see :meth:`Upgrader.reconcile`).
    """

    def __init__(
        self,
        *,
        outbox: Outbox,
        ledger: ActionLedger,
        upgrader: Upgrader,
        platform: str,
        agent_version: str,
        notify: Callable[[], None],
        now: Callable[[], datetime] = utc_now,
        reconcile_interval: float = 2.0,
        settle: timedelta = timedelta(seconds=15),
    ) -> None:
        self._outbox = outbox
        self._ledger = ledger
        self._upgrader = upgrader
        self._platform = platform
        self._agent_version = agent_version
        self._notify = notify
        self._now = now
        self._reconcile_interval = reconcile_interval
        self._settle = settle
        self._queue: asyncio.Queue[PendingAction] = asyncio.Queue()
        self._queued: set[str] = set()  # queued or executing, not yet in the ledger
        self._started: set[str] = set()  # ids this process recorded in the ledger

    def submit(self, actions: Sequence[PendingAction]) -> None:
        """Queue the actions of a heartbeat reply, skipping ids already seen or queued."""
        for action in actions:
            if self._ledger.seen(action.id) and self._interrupted(action):
                continue
            if self._ledger.seen(action.id) or action.id in self._queued:
                log.debug("actions.duplicate_ignored", action_id=action.id, type=action.type)
                continue
            self._queued.add(action.id)
            self._queue.put_nowait(action)
            log.info("actions.picked_up", action_id=action.id, type=action.type)

    def _interrupted(self, action: PendingAction) -> bool:
        """An id an earlier process recorded but whose result never reached the outbox.

        The agent was killed between the ledger write and the result (a few milliseconds):
        the action may or may not have begun, so it is not run again (at most once) but
        reported ``failed`` — the server would otherwise wait for its deadline.
        """
        if action.id in self._started or action.id in self._queued:
            return False
        if self._ledger.reported(action.id):
            return False
        inflight = self._upgrader.inflight()
        if inflight is not None and inflight.action_id == action.id:
            return False
        self._started.add(action.id)
        log.warning("actions.interrupted", action_id=action.id, type=action.type)
        self._deliver(
            ActionResult(
                action.id,
                "failed",
                {
                    "error": "the agent was stopped while starting this action; "
                    "it is not retried (each action runs at most once)"
                },
            )
        )
        return True

    def reconcile(self, *, settle: timedelta = timedelta(0)) -> ActionResult | None:
        """Turn a finished in-flight upgrade into its result: outbox first, then clear the record.

        Call it once at start-up, before the first heartbeat, so the result of an upgrade that
        restarted the agent goes out in that heartbeat; :meth:`run` calls it again while waiting.
        """
        result = self._upgrader.reconcile(self._agent_version, settle=settle)
        if result is not None:
            self._outbox.add(result)
            self._ledger.mark_reported(result.action_id)
            self._upgrader.clear_inflight()
            self._notify()
        return result

    async def run(self) -> None:
        """Execute queued actions forever; one failing action never ends the loop."""
        self._guarded_reconcile(self._settle)
        while True:
            try:
                action = await asyncio.wait_for(
                    self._queue.get(), self._reconcile_interval if self._waiting() else None
                )
            except asyncio.TimeoutError:
                self._guarded_reconcile(self._settle)
                continue
            try:
                await self._run_one(action)
            finally:
                self._queued.discard(action.id)

    def _waiting(self) -> bool:
        try:
            return self._upgrader.inflight() is not None
        except Exception:
            log.exception("actions.inflight_unreadable")
            return False

    def _guarded_reconcile(self, settle: timedelta) -> None:
        try:
            self.reconcile(settle=settle)
        except Exception:
            log.exception("actions.reconcile_failed")

    async def _run_one(self, action: PendingAction) -> None:
        if self._ledger.seen(action.id):
            return
        try:
            self._ledger.record(action.id)  # before anything runs: at most once
            self._started.add(action.id)
            result = await self._execute(action)
        except ActionError as exc:
            result = ActionResult(action.id, "failed", {"error": str(exc)})
        except Exception as exc:
            log.exception("actions.crashed", action_id=action.id, type=action.type)
            error = redact(f"unexpected error: {type(exc).__name__}: {exc}")
            result = ActionResult(action.id, "failed", {"error": error})
        if result is None:
            return
        log.info("actions.finished", action_id=action.id, type=action.type, status=result.status)
        self._deliver(result)

    def _deliver(self, result: ActionResult) -> None:
        try:
            self._outbox.add(result)
            self._ledger.mark_reported(result.action_id)
        except Exception:
            log.exception("actions.outbox_failed", action_id=result.action_id)
            return
        self._notify()

    async def _execute(self, action: PendingAction) -> ActionResult | None:
        """Carry out ``action``; None when its final result will come later (upgrade started)."""
        if action.type == UPGRADE:
            return await self._upgrade(action)
        return ActionResult(
            action.id, "failed", {"error": f"unsupported action type {_show(action.type)}"}
        )

    async def _upgrade(self, action: PendingAction) -> ActionResult | None:
        from_version = self._agent_version

        def failed(error: str, **extra: Any) -> ActionResult:
            return ActionResult(
                action.id, "failed", {"error": error, "fromVersion": from_version, **extra}
            )

        try:
            target = parse_target_version(action.payload)
        except ActionError as exc:
            log.warning("actions.upgrade_rejected", action_id=action.id, error=str(exc))
            return failed(str(exc))
        if target == normalize_version(from_version):
            return ActionResult(
                action.id, "done", {"fromVersion": from_version, "toVersion": target}
            )
        if self._platform == "kubernetes":
            return failed(KUBERNETES_MESSAGE)
        busy = self._upgrader.inflight()
        if busy is not None:
            return failed(
                f"another upgrade (action {_show(busy.action_id)} to {busy.to_version}) "
                "is still in progress"
            )
        versions = {"fromVersion": from_version, "toVersion": target}
        record = InFlightUpgrade(action.id, from_version, target, rfc3339(self._now()))
        # The in-flight record goes to disk before the server hears "running": a crash in
        # between is then reconciled into a result instead of leaving the action running.
        self._upgrader.begin(record)
        self._deliver(ActionResult(action.id, "running", versions))
        try:
            await self._upgrader.start(record)
        except Exception as exc:
            if not isinstance(exc, ActionError):
                log.exception("actions.upgrade_start_crashed", action_id=action.id)
            error = str(exc) if isinstance(exc, ActionError) else f"{type(exc).__name__}: {exc}"
            result = failed(redact(error), log=self._upgrader.log_tail(action.id))
            self._outbox.add(result)
            self._upgrader.clear_inflight()
            self._notify()
        return None


def _show(value: str) -> str:
    """A server-provided name, safe for a one-line message."""
    flat = " ".join(redact(value).split())
    return repr(flat if len(flat) <= 60 else flat[:59] + "…")
