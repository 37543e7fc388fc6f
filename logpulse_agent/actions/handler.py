"""What an action type is to the executor: an :class:`ActionHandler`, found by type.

The executor owns the rules every action shares — at most once (the ledger), at least once for
results (the journal), one failing action never ends the loop — and hands each action to the
handler registered for its type (:mod:`.registry`). A handler owns what is particular to its
type: checking the payload, doing the work, and, when the work outlives the agent process (an
upgrade restarts it), turning what it left on disk into the final result after a restart.

Adding an action type takes three pieces:

1. a module with the handler (a :class:`OneShotHandler` when :meth:`~ActionHandler.run` always
   ends with the final result), e.g. ``logpulse_agent/actions/diagnostics.py``;
2. one entry ``"<type>": <factory>`` in :data:`logpulse_agent.actions.registry.HANDLERS`;
3. the payload's schema in the server's ``logpulse_agent/server/openapi.yaml`` (the admin API
   that creates actions validates payloads against it).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from logpulse_agent.controlplane.protocol import ActionResult, PendingAction

if TYPE_CHECKING:
    import httpx

    from logpulse_agent.settings import Settings
    from logpulse_agent.state.layout import Layout

Report = Callable[[ActionResult], None]
"""Puts a result into the journal and asks for a heartbeat. It returns once the result is on
disk and raises :class:`~logpulse_agent.errors.StateError` when it is not: a handler must keep
its own record of the work then, so that a later :meth:`ActionHandler.reconcile` reports it."""


class ActionHandler(Protocol):
    """One action type."""

    async def run(self, action: PendingAction, report: Report) -> ActionResult | None:
        """Carry out ``action``: its final result, or None when :meth:`reconcile` will report
        it later. ``report`` delivers an intermediate result (``running``). An
        :class:`~logpulse_agent.errors.ActionError` fails the action with its message; any other
        exception fails it as an unexpected error."""
        ...

    def reconcile(self, report: Report, *, after_restart: bool) -> None:
        """Report the final result of work started earlier that has finished, and only then
        forget it. ``after_restart`` is True for the call at start-up, before the first
        heartbeat; later calls come every few seconds while :meth:`in_progress` is not empty."""
        ...

    def in_progress(self) -> Collection[str]:
        """Ids of actions started (by this process or an earlier one) whose final result is
        still to come."""
        ...


class OneShotHandler:
    """Base for a handler whose :meth:`run` always returns the final result: nothing of its
    work survives the process, so there is nothing to reconcile."""

    def reconcile(self, report: Report, *, after_restart: bool) -> None:
        return None

    def in_progress(self) -> Collection[str]:
        return ()


@dataclass(frozen=True)
class ActionDeps:
    """What handlers are built from (by the daemon, once): settings, paths, the HTTP client
    (shared with the control-plane calls; never send it credentials elsewhere) and the version
    this agent runs."""

    settings: Settings
    layout: Layout
    http: httpx.AsyncClient
    agent_version: str
