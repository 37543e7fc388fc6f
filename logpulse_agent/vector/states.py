"""The Vector child's named states, its exit records and the restart backoff policy.

States (``status`` prints these words)::

    STOPPED   not running, and not supposed to be (never started, stopped, or ``{}`` config)
    STARTING  spawned; waiting for "Vector has started." in vector.log
    RUNNING   started and supposed to run
    BACKOFF   exited without being asked to; waiting for the next restart
    STOPPING  asked to stop: SIGTERM sent, SIGKILL after the grace period
    FATAL     the binary cannot be executed (missing, not executable); retried at the ceiling

Any exit the supervisor did not request is a failure whatever its code: after a successful start
Vector exits 0 for every kind of stop, crashes included (vectordotdev/vector ``src/app.rs``,
``FinishedApplication::stop`` and ``quit`` both return ``exitcode::OK``); only start-up failures
give 78.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from logpulse_agent.backoff import Backoff, next_attempt


class VectorState(str, Enum):
    """Where the Vector child process is in its life cycle."""

    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    BACKOFF = "BACKOFF"
    STOPPING = "STOPPING"
    FATAL = "FATAL"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ExitRecord:
    """One observed exit of a Vector process.

    ``at``: when it was reaped, in the supervisor's clock units. ``returncode``: the exit code,
    negative for a signal (``-9`` after SIGKILL), None when unknown. ``uptime``: seconds from
    spawn to exit. ``requested``: True when the supervisor asked for it (stop, restart).
    """

    at: float
    returncode: int | None
    uptime: float
    requested: bool

    @property
    def failure(self) -> bool:
        """Whether this exit counts against Vector: every unrequested exit does."""
        return not self.requested


def failures_since(exits: Iterable[ExitRecord], since: float) -> int:
    """How many unrequested exits happened at or after ``since`` (clock units)."""
    return sum(1 for record in exits if record.failure and record.at >= since)


class ExitHistory:
    """The last ``limit`` exits and the consecutive-failure count that drives the backoff.

    Pure bookkeeping: the supervisor records what it observed and asks for the next delay.
    """

    def __init__(
        self,
        *,
        initial: float,
        maximum: float,
        stable_after: float,
        rng: random.Random | None = None,
        limit: int = 100,
    ) -> None:
        # Restarts jitter over the last fifth of each step: a fleet that crashed together on
        # one bad config does not restart in lockstep.
        self.backoff = Backoff(initial=initial, ceiling=maximum, jitter=0.2)
        self.maximum, self.stable_after = maximum, stable_after
        self.rng, self.limit = rng or random.Random(), limit
        self.exits: list[ExitRecord] = []
        self.attempt = 0  # consecutive unrequested exits, reset by a stable run or reset()

    def record(self, at: float, returncode: int | None, uptime: float, requested: bool) -> None:
        """Note one exit; an unrequested one advances (or, after a stable run, resets) attempts."""
        self.exits = [
            *self.exits[-(self.limit - 1) :],
            ExitRecord(at, returncode, uptime, requested),
        ]
        if not requested:
            self.attempt = next_attempt(self.attempt, uptime, self.stable_after)

    def reset(self) -> None:
        """Forget the failure streak (an explicit stop or restart)."""
        self.attempt = 0

    def failures_since(self, since: float) -> int:
        return failures_since(self.exits, since)

    def next_delay(self, state: VectorState) -> float:
        """How long to wait before respawning a wanted Vector.

        FATAL (the binary cannot be executed) retries at the ceiling; after an unrequested exit
        the delay backs off with the streak; after a requested one (an interrupted restart)
        there is nothing to wait for.
        """
        if state is VectorState.FATAL:
            return self.maximum
        last = self.exits[-1] if self.exits else None
        if last is not None and last.failure and self.attempt > 0:
            return self.backoff.delay(self.attempt, self.rng)
        return 0.0
