"""Every action type the agent runs: ``type → factory of its handler``.

An action whose type is not here is reported ``failed`` with ``unsupported action type '<t>'``.
To add one, see :mod:`logpulse_agent.actions.handler`.
"""

from __future__ import annotations

from collections.abc import Callable

from logpulse_agent.actions.handler import ActionDeps, ActionHandler
from logpulse_agent.upgrade.handler import upgrade_handler

HANDLERS: dict[str, Callable[[ActionDeps], ActionHandler]] = {
    "upgrade_agent": upgrade_handler,
}


def build_handlers(deps: ActionDeps) -> dict[str, ActionHandler]:
    """One handler per registered type, built from ``deps``."""
    return {kind: factory(deps) for kind, factory in HANDLERS.items()}
