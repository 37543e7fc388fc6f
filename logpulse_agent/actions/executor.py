"""The action executor: each action runs at most once, every outcome becomes a result.

Actions arrive from heartbeat replies (:meth:`ActionExecutor.submit`) and run one at a time,
each by the handler registered for its type (:mod:`.handler`, :mod:`.registry`). The executor
keeps the rules they share:

- at most once: the id goes into the :class:`~.ledger.ActionLedger` before the handler runs;
  an id handed out again is ignored, or, when an earlier process recorded it but no result of it
  ever reached the journal and no handler still works on it, reported ``failed`` (the agent was
  killed while starting it);
- at least once: every result goes into the :class:`~.journal.ActionJournal`, and a heartbeat
  is asked for at once (``notify``);
- one failing action never ends the loop: an :class:`ActionError` fails that action with its
  message, any other exception as an unexpected error;
- an action type nobody handles is ``failed`` with ``unsupported action type '<t>'``.

Work that outlives a process (an upgrade) is reconciled by its handler: once at start-up,
before the first heartbeat (:meth:`ActionExecutor.reconcile`), then every
``reconcile_interval`` seconds while a handler has work in progress.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

import structlog

from logpulse_agent.actions.handler import ActionHandler
from logpulse_agent.actions.journal import ActionJournal
from logpulse_agent.actions.ledger import ActionLedger
from logpulse_agent.controlplane.protocol import ActionResult, PendingAction
from logpulse_agent.errors import ActionError
from logpulse_agent.redact import one_line, redact

log = structlog.get_logger(__name__)


class ActionExecutor:
    """Runs queued actions one at a time through their handlers; see the module docstring.

    ``notify()`` asks the heartbeat loop for a heartbeat now (a result is waiting).
    """

    def __init__(
        self,
        *,
        journal: ActionJournal,
        ledger: ActionLedger,
        handlers: Mapping[str, ActionHandler],
        notify: Callable[[], None],
        reconcile_interval: float = 2.0,
    ) -> None:
        self._journal = journal
        self._ledger = ledger
        self._handlers = dict(handlers)
        self._notify = notify
        self._reconcile_interval = reconcile_interval
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

    def reconcile(self) -> list[ActionResult]:
        """Report what finished while the agent was down (results first, then each handler
        forgets its record); the results, in order. Call it once at start-up, before the first
        heartbeat, so they go out in that heartbeat."""
        reported: list[ActionResult] = []

        def report(result: ActionResult) -> None:
            self._report(result)
            reported.append(result)

        for handler in self._handlers.values():
            handler.reconcile(report, after_restart=True)
        return reported

    async def run(self) -> None:
        """Execute queued actions forever; reconcile work in progress meanwhile."""
        self._reconcile_guarded()
        while True:
            timeout = self._reconcile_interval if self._waiting() else None
            try:
                action = await asyncio.wait_for(self._queue.get(), timeout)
            except asyncio.TimeoutError:
                self._reconcile_guarded()
                continue
            try:
                await self._run_one(action)
            finally:
                self._queued.discard(action.id)

    # --- one action ----------------------------------------------------------------------------
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

    async def _execute(self, action: PendingAction) -> ActionResult | None:
        handler = self._handlers.get(action.type)
        if handler is None:
            return ActionResult(
                action.id, "failed", {"error": f"unsupported action type {show(action.type)}"}
            )
        return await handler.run(action, self._report)

    def _interrupted(self, action: PendingAction) -> bool:
        """An id an earlier process recorded but whose result never reached the journal.

        The agent was killed between the ledger write and the result (a few milliseconds):
        the action may or may not have begun, so it is not run again (at most once) but
        reported ``failed`` — the server would otherwise wait for its deadline.
        """
        if action.id in self._started or action.id in self._queued:
            return False
        if self._journal.reported(action.id):
            return False
        if any(action.id in handler.in_progress() for handler in self._handlers.values()):
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

    # --- results -------------------------------------------------------------------------------
    def _report(self, result: ActionResult) -> None:
        """Journal ``result`` (durable when this returns) and ask for a heartbeat."""
        self._journal.add(result)
        self._notify()

    def _deliver(self, result: ActionResult) -> None:
        try:
            self._report(result)
        except Exception:
            log.exception("actions.outbox_failed", action_id=result.action_id)

    # --- work in progress ----------------------------------------------------------------------
    def _waiting(self) -> bool:
        try:
            return any(handler.in_progress() for handler in self._handlers.values())
        except Exception:
            log.exception("actions.inflight_unreadable")
            return False

    def _reconcile_guarded(self) -> None:
        for handler in self._handlers.values():
            try:
                handler.reconcile(self._report, after_restart=False)
            except Exception:
                log.exception("actions.reconcile_failed")


def show(value: str) -> str:
    """A server-provided name, quoted and safe for a one-line message."""
    return repr(one_line(value, 60))
