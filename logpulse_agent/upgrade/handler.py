"""The ``upgrade_agent`` action handler: its life cycle, step by step.

:meth:`UpgradeHandler.run`, in this process:

1. check the payload (a strict version, :func:`~.record.parse_target_version`); the running
   version is ``done`` at once, Kubernetes and a second upgrade are ``failed``;
2. write the in-flight record (:meth:`.Upgrader.begin`) — before anyone hears of the upgrade;
3. report ``running``;
4. launch the installer (:meth:`.Upgrader.start`); a launch that fails is ``failed`` with the
   log tail and the record goes.

The installer restarts the agent. :meth:`UpgradeHandler.reconcile`, in the new process (or
every few seconds while the old one waits):

5. observe and decide (:meth:`.Upgrader.reconcile`): ``done`` when the agent now runs the
   target, ``failed`` with the log tail when the installer ended without that;
6. report the result, and only then clear the record (a crash in between reports it again).

Upgrade probation (SPEC §11.4, issue 12) sits in 5: while root keeps the new release on
probation the verdict is "wait", though the agent already runs the target; it is ``done`` once
root kept the release and ``failed`` with the rollback's reason in the old agent root restarted
(:mod:`.verdict`). The promotion itself is not this handler's: the new agent writes it after
its first ``2xx`` heartbeat with Vector running (:class:`.probation.Promoter`, wired in
:mod:`logpulse_agent.daemon.compose`), upgrade action or not.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any

import structlog

from logpulse_agent.actions.handler import ActionDeps, Report
from logpulse_agent.clock import rfc3339, utc_now
from logpulse_agent.controlplane.protocol import ActionResult, PendingAction
from logpulse_agent.errors import ActionError
from logpulse_agent.redact import one_line, redact
from logpulse_agent.upgrade.record import InFlightUpgrade, normalize_version, parse_target_version
from logpulse_agent.upgrade.upgrader import Upgrader

log = structlog.get_logger(__name__)

KUBERNETES_MESSAGE = (
    "upgrade_agent is not supported on Kubernetes: upgrade the DaemonSet image instead"
)


class UpgradeHandler:
    """Runs ``upgrade_agent`` actions through ``upgrader`` (see the module docstring).

    ``settle`` is how long a finished installer gets to restart the agent before the upgrade
    counts as failed, while this process lives.
    """

    def __init__(
        self,
        upgrader: Upgrader,
        *,
        agent_version: str,
        platform: str,
        now: Callable[[], datetime] = utc_now,
        settle: timedelta = timedelta(seconds=15),
    ) -> None:
        self.upgrader = upgrader
        self._agent_version = agent_version
        self._platform = platform
        self._now = now
        self._settle = settle

    async def run(self, action: PendingAction, report: Report) -> ActionResult | None:
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
        versions = {"fromVersion": from_version, "toVersion": target}
        if target == normalize_version(from_version):
            return ActionResult(action.id, "done", versions)
        if self._platform == "kubernetes":
            return failed(KUBERNETES_MESSAGE)
        busy = self.upgrader.inflight()
        if busy is not None:
            return failed(
                f"another upgrade (action {one_line(busy.action_id, 60)!r} to {busy.to_version}) "
                "is still in progress"
            )
        record = InFlightUpgrade(action.id, from_version, target, rfc3339(self._now()))
        # The in-flight record goes to disk before the server hears "running": a crash in
        # between is then reconciled into a result instead of leaving the action running.
        self.upgrader.begin(record)
        try:
            report(ActionResult(action.id, "running", versions))
        except Exception:  # the record is on disk: reconcile() still reports the outcome
            log.exception("actions.outbox_failed", action_id=action.id)
        try:
            await self.upgrader.start(record)
        except Exception as exc:
            if not isinstance(exc, ActionError):
                log.exception("actions.upgrade_start_crashed", action_id=action.id)
            error = str(exc) if isinstance(exc, ActionError) else f"{type(exc).__name__}: {exc}"
            report(failed(redact(error), log=self.upgrader.log_tail(action.id)))
            self.upgrader.clear_inflight()
        return None

    def reconcile(self, report: Report, *, after_restart: bool) -> None:
        settle = timedelta(0) if after_restart else self._settle
        result = self.upgrader.reconcile(self._agent_version, settle=settle)
        if result is not None:
            report(result)
            self.upgrader.clear_inflight()

    def in_progress(self) -> Collection[str]:
        record = self.upgrader.inflight()
        return () if record is None else (record.action_id,)


def upgrade_handler(deps: ActionDeps) -> UpgradeHandler:
    """The handler the registry builds: the installer from ``install_url``, state in the
    layout's files."""
    upgrader = Upgrader(
        install_url=deps.settings.install_url,
        layout=deps.layout,
        http=deps.http,
        allow_insecure_http=deps.settings.allow_insecure_http,
    )
    return UpgradeHandler(
        upgrader, agent_version=deps.agent_version, platform=deps.settings.platform
    )
