"""The rollout state machine (SPEC §11.3) as pure functions: values in, decisions out.

:mod:`logpulse_agent.server.rollouts` reads the database, calls these, and writes what they
decide; nothing here touches a clock, a connection or the network.

States of a rollout::

    running ──pause──> paused ──resume──> running
       │                 │
       ├─────abort───────┴──> aborted      (operator; rolled back like a halt)
       ├─ more than maxFailures failures ─> halted   (rolled back; also while paused)
       ├─ a newer config change ─────────> replaced
       └─ the last phase passed ─────────> completed

One admitted agent, from its heartbeats (:func:`observe`) and the passing of time
(:func:`overdue`): it *reaches* the target (applies ``to`` / runs the upgraded version), and from
its first healthy heartbeat after that its soak runs. Failures, each counted once per agent:

- the agent reports a config error for ``to`` (upgrades: its action failed, expired or was
  cancelled);
- its health is ``failed`` once it runs the target;
- its health is ``degraded`` once it runs the target, having been healthy before (at admission
  or at any heartbeat since);
- no heartbeat for two heartbeat intervals. An agent that was already silent when admitted
  and has not spoken since is *absent*: not a failure, and the phase does not wait for it (it
  picks the change up when it returns);
- (upgrades) upgraded, but not healthy within ``soakSeconds``.

A phase passes when every admitted agent that is neither failed nor absent has reached the
target, confirmed its etag (config), and has been healthy for ``soakSeconds``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from logpulse_agent.server.rollout_policy import Phase, phase_target

STATES = ("running", "paused", "halted", "completed", "aborted", "replaced")
OPEN_STATES = ("running", "paused")
HEALTH_STATES = ("healthy", "degraded", "failed")
SILENT_INTERVALS = 2  # heartbeat intervals without a heartbeat that make an agent a failure


class CommandRefused(Exception):
    """Raised when pause/resume/abort does not apply to the rollout's state; ``str()`` says why."""


@dataclass(frozen=True)
class Health:
    state: str  # one of HEALTH_STATES
    reason: str | None = None


def health_of(body: Mapping[str, Any], *, expect_running: bool = True) -> Health:
    """The health a heartbeat reports (SPEC §11.1), or, from an agent that does not send
    ``health`` yet, what its older fields mean: healthy iff Vector runs (when its config has
    inputs) and no config error is pending."""
    reported = body.get("health")
    if isinstance(reported, Mapping) and reported.get("state") in HEALTH_STATES:
        reason = reported.get("reason")
        return Health(str(reported["state"]), reason if isinstance(reason, str) else None)
    error = body.get("configError")
    if isinstance(error, Mapping):
        return Health("degraded", f"config error for version {error.get('configVersion')}")
    if expect_running and not body.get("vectorRunning"):
        return Health("failed", "Vector is not running")
    return Health("healthy")


@dataclass(frozen=True)
class Report:
    """What one heartbeat says about an admitted agent and the rollout's target."""

    at: float
    reached: bool  # runs `to` (appliedConfigVersion) / the target agent version
    target_error: str | None  # a config error for `to`, or the upgrade action's failure
    health: Health


@dataclass(frozen=True)
class Progress:
    """One admitted agent's way through a rollout (a ``rollout_agents`` row)."""

    admitted_at: float
    live_at_admission: bool
    heard: bool = False  # a heartbeat came after its admission
    was_healthy: bool = False
    reached_at: float | None = None
    etag_confirmed: bool = True  # config rollouts start at False: the poll confirms it
    healthy_since: float | None = None
    failed_at: float | None = None
    failure: str | None = None  # one line: what went wrong, e.g. "health failed: <reason>"

    @property
    def failed(self) -> bool:
        return self.failure is not None

    @property
    def absent(self) -> bool:
        """Silent since before its admission and not heard from since."""
        return not self.live_at_admission and not self.heard

    def soaked(self, now: float, soak_seconds: float) -> bool:
        return (
            not self.failed
            and self.reached_at is not None
            and self.etag_confirmed
            and self.healthy_since is not None
            and now - self.healthy_since >= soak_seconds
        )


def _fail(progress: Progress, at: float, failure: str) -> Progress:
    return replace(progress, failed_at=at, failure=failure)


def observe(progress: Progress, report: Report) -> Progress:
    """``progress`` after one heartbeat; a failed agent stays as it is."""
    if progress.failed:
        return progress
    progress = replace(progress, heard=True)
    if report.target_error is not None:
        return _fail(progress, report.at, report.target_error)
    health = report.health
    if not report.reached:
        # Still on the old version: only tells whether it was healthy before the change.
        was = progress.was_healthy or health.state == "healthy"
        return replace(progress, was_healthy=was, reached_at=None, healthy_since=None)
    reached = replace(progress, reached_at=progress.reached_at or report.at)
    reason = health.reason or "no reason given"
    if health.state == "healthy":
        since = reached.healthy_since or report.at
        return replace(reached, was_healthy=True, healthy_since=since)
    if health.state == "failed":
        return _fail(reached, report.at, f"health failed: {reason}")
    if progress.was_healthy:
        return _fail(reached, report.at, f"degraded (was healthy): {reason}")
    return reached  # degraded before the change as after it: not its fault, but no soak either


def overdue(
    progress: Progress,
    *,
    now: float,
    last_heartbeat_at: float | None,
    heartbeat_interval: float,
    soak_seconds: float,
    upgrading: bool = False,
    upgrade: bool = False,
) -> Progress:
    """``progress`` after time passed without a heartbeat (the periodic tick).

    ``upgrading``: its upgrade action is running, so silence is expected (the action's
    deadline bounds it). ``upgrade``: an upgraded agent must be healthy within the soak.
    """
    if progress.failed or progress.absent:
        return progress
    limit = SILENT_INTERVALS * heartbeat_interval
    quiet_since = max(last_heartbeat_at or 0.0, progress.admitted_at)
    if not upgrading and now - quiet_since > limit:
        return _fail(
            progress,
            now,
            f"no heartbeat for {now - quiet_since:.0f} s (two heartbeat intervals are {limit:g} s)",
        )
    if (
        upgrade
        and progress.reached_at is not None
        and progress.healthy_since is None
        and now - progress.reached_at > soak_seconds
    ):
        return _fail(progress, now, f"upgraded but not healthy within {soak_seconds:g} s")
    return progress


# --- the rollout as a whole ------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """The admitted agents of a rollout, counted (what :func:`next_step` decides on)."""

    admitted: int = 0
    blocking: int = 0  # neither failed nor absent: the phase waits for these
    passed: int = 0  # blocking agents that reached the target and soaked


@dataclass(frozen=True)
class Step:
    """What the tick should do: ``wait``, ``admit`` (phase ``phase``), ``complete``."""

    kind: str
    phase: int = 0


def cumulative_target(phases: tuple[Phase, ...], phase: int, total: int) -> int:
    """Agents admitted in total once phase ``phase`` (0-based) is admitted."""
    return max(phase_target(p, total) for p in phases[: phase + 1])


def next_step(state: str, phase: int, phases: tuple[Phase, ...], tally: Tally) -> Step:
    """After a tick's failures were handled: does the current phase pass, and what follows?"""
    if state != "running" or tally.passed < tally.blocking:
        return Step("wait", phase)
    if phase + 1 >= len(phases):
        return Step("complete", phase)
    return Step("admit", phase + 1)


def must_halt(failures: int, max_failures: int) -> bool:
    """More than ``maxFailures`` failures halt (and roll back) the rollout."""
    return failures > max_failures


def command(state: str, verb: str) -> str:
    """The state after an operator's ``pause``/``resume``/``abort``; :class:`CommandRefused`
    when it does not apply."""
    moves = {
        ("pause", "running"): "paused",
        ("resume", "paused"): "running",
        ("abort", "running"): "aborted",
        ("abort", "paused"): "aborted",
    }
    new = moves.get((verb, state))
    if new is not None:
        return new
    if state not in OPEN_STATES:
        raise CommandRefused(f"the rollout is {state}; only a running or paused one can {verb}")
    raise CommandRefused(f"the rollout is already {state}")


def admission_order(candidates: Iterable[tuple[str, bool]]) -> list[str]:
    """Agent ids in the order phases admit them: live agents first, then by agent id.

    ``candidates`` are ``(agent_id, live)``. Agent ids are random (UUID4 hex), so their order
    is a shuffle that needs no state and survives restarts, and a change that replaces a rollout
    reaches the agents of the replaced one first. :func:`rollout_store.admit` does the same
    ordering in SQL (a test checks they agree).
    """
    return [agent_id for agent_id, _ in sorted(candidates, key=lambda c: (not c[1], c[0]))]


def halt_reason(
    failures: int, max_failures: int, first: str, rollback: str, *, more: int = 0
) -> str:
    """The reason a person reads: how many failed, the first failure, what happened next."""
    also = f" (and {more} more)" if more else ""
    return f"{failures} failure(s), more than maxFailures {max_failures}: {first}{also}; {rollback}"


TERMINAL_ACTION_STATES = ("failed", "expired", "cancelled")


def action_outcome(status: str, detail: str | None) -> tuple[bool, str | None]:
    """``(reached, target_error)`` of an upgrade from its action's status: ``done`` reached the
    target; ``failed``, ``expired`` (no result before the deadline) and ``cancelled`` failed it."""
    if status == "done":
        return True, None
    if status in TERMINAL_ACTION_STATES:
        return False, f"upgrade action {status}" + (f": {detail}" if detail else "")
    return False, None


def settle_action(progress: Progress, status: str, detail: str | None, at: float) -> Progress:
    """``progress`` once its upgrade action ended, seen without a heartbeat (the tick)."""
    reached, error = action_outcome(status, detail)
    if progress.failed:
        return progress
    if error is not None:
        return _fail(progress, at, error)
    if reached:
        return replace(progress, reached_at=progress.reached_at or at)
    return progress
