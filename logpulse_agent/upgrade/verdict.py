"""The pure half of reconciling an upgrade: what the facts about it mean.

:meth:`~logpulse_agent.upgrade.upgrader.Upgrader.observe` gathers the facts (files, processes,
systemd) into an :class:`Observation`; :func:`verdict` decides, in this order:

    root's probation of the target version (SPEC §11.4):
      on probation, undecided, and we run it               → wait (done only once it is kept)
      rolled back, and we still run it                     → wait (the restart is coming)
      rolled back (or kept after failing it)               → failed with root's reason
    the agent runs the target version                      → done
    a request nobody picked up within ``pickup_timeout``   → failed, the request withdrawn
    the installer still runs, younger than ``max_age``     → wait
    the installer still runs, older                        → failed (overdue)
    our reaper saw it exit non-zero                        → failed with its status
    it was never launched (the agent died first)           → failed
    it is gone for less than ``settle``                    → wait (it may be restarting us)
    it is gone                                             → failed: no effect

The probation comes first because the new agent runs the target version long before root
decides: ``done`` at start-up would be final before a rollback could happen.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from logpulse_agent.upgrade.probation import ProbationView
from logpulse_agent.upgrade.record import InFlightUpgrade

UPGRADE_UNIT = "logpulse-agent-upgrade.service"
UPGRADE_PATH_UNIT = "logpulse-agent-upgrade.path"


@dataclass(frozen=True)
class Observation:
    """What reconciliation saw of an in-flight upgrade.

    ``running_version`` is this agent's (without ``v``); ``age`` counts from the record's
    ``startedAt``; ``exit_status`` is the installer's when our reaper saw it exit; ``unclaimed``
    means a request file waits and the root service is idle; ``gone_for`` is how long the
    installer has been seen gone (zero while it runs); ``probation`` is root's view of an
    upgrade probation, if it left one.
    """

    record: InFlightUpgrade
    running_version: str
    age: timedelta
    exit_status: int | None
    installer_alive: bool
    unclaimed: bool
    gone_for: timedelta
    request_path: Path
    probation: ProbationView | None = None


@dataclass(frozen=True)
class Limits:
    """How long an upgrade may take: in all, to be picked up, to restart us once finished."""

    max_age: timedelta
    pickup_timeout: timedelta
    settle: timedelta


class Outcome(enum.Enum):
    DONE = "done"
    WAIT = "wait"
    FAILED = "failed"


@dataclass(frozen=True)
class Verdict:
    """What to do: report done, keep waiting, or report failed with ``error`` (and withdraw the
    unclaimed request first when ``withdraw_request``)."""

    outcome: Outcome
    error: str | None = None
    withdraw_request: bool = False


WAIT = Verdict(Outcome.WAIT)


def verdict(o: Observation, limits: Limits) -> Verdict:
    """Decide about ``o`` (see the module docstring)."""
    to, running = o.record.to_version, o.running_version
    on_trial = o.probation if o.probation is not None and o.probation.version == to else None
    if on_trial is not None and on_trial.state in ("active", "rolled-back") and running == to:
        return WAIT
    if on_trial is not None and on_trial.state == "rolled-back":
        reason = on_trial.reason or "probation failed"
        return _failed(f"{reason}; rolled back from {to} to {running}")
    if on_trial is not None and on_trial.state == "kept":
        return _failed(on_trial.reason or f"probation of {to} failed")
    if running == to:
        return Verdict(Outcome.DONE)
    if o.unclaimed and o.age >= limits.pickup_timeout:
        seconds = int(limits.pickup_timeout.total_seconds())
        return _failed(
            f"upgrade to {to} was not picked up within {seconds} s: nothing consumed "
            f"{o.request_path}; is {UPGRADE_PATH_UNIT} enabled? "
            f"(systemctl enable --now {UPGRADE_PATH_UNIT})",
            withdraw_request=True,
        )
    if o.installer_alive:
        if o.age < limits.max_age:
            return WAIT
        minutes = int(limits.max_age.total_seconds() // 60)
        return _failed(
            f"upgrade to {to} did not finish within {minutes} minutes: "
            f"the installer is still running and the agent still runs {running}"
        )
    if o.exit_status:
        return _failed(f"upgrade to {to} failed: the installer exited with status {o.exit_status}")
    if o.record.pid is None and o.record.unit is None:
        return _failed(
            f"upgrade to {to} did not take effect: the agent stopped before "
            f"the installer was launched and still runs {running}"
        )
    if o.gone_for < limits.settle:
        return WAIT
    return _failed(f"upgrade to {to} did not take effect: agent still runs {running}")


def _failed(error: str, *, withdraw_request: bool = False) -> Verdict:
    return Verdict(Outcome.FAILED, error, withdraw_request)
